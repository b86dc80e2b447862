# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The checker: health state machine (health.py), probes (probes.py), the orchestrator over the
host document (checker.py) and the daemon program (lbha_checkerd.py), without real time."""
from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import hashlib
import json
import logging
import os
import pwd
import socket
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from ansible_collections.lbha.cluster.plugins.module_utils import checker, health, nft, probes
from ansible_collections.lbha.cluster.tests.unit.plugins.module_utils.checker_doubles import (
    Clock, FakePlane, bucket_counts, doc_dict, host_document, rs_dict, vs_dict)


class Script(object):
    """A probe that returns scripted results: True, False, or an int (dynamic weight)."""

    def __init__(self, *results):
        self.results = list(results)
        self.calls = 0

    def push(self, *results):
        self.results.extend(results)

    def __call__(self):
        self.calls += 1
        r = self.results.pop(0)
        if r is True:
            return True, None, None
        if r is False:
            return False, "TCP connection to [1.1.1.3]:tcp:80 timeout", None
        return True, None, r


# -- the state machine -------------------------------------------------------------------------

def make(probe, clock=None, vs=None, rs=None, initial=None):
    vs = vs or vs_dict()
    rs = rs or vs["real_servers"][0]
    events = []
    c = health.RealServerCheck(vs, rs, probe, clock=clock or Clock(),
                               on_change=lambda chk, e: events.append(e), initial=initial)
    return c, events


def test_failure_is_retried_then_declared_down(caplog):
    clock = Clock()
    probe = Script(True, False, False, False, False, False)
    c, events = make(probe, clock)
    assert c.run() == 6.0 and c.up
    delays = []
    for _attempt in range(3):
        clock.now += 6
        delays.append(c.run())
        assert c.up, "declared down before the retries were used"
    assert delays == [2.0, 2.0, 2.0]
    assert events == []
    clock.now += 2
    with caplog.at_level(logging.INFO, logger="lbha-checker"):
        assert c.run() == 6.0
    assert not c.up and events == ["down"]
    assert c.since == clock.now
    assert c.last_error == "TCP connection to [1.1.1.3]:tcp:80 timeout"
    assert "TCP_CHECK on service [1.1.1.3]:tcp:80 failed after 3 retries." in caplog.text
    # already down: no retries, back to delay_loop, no new event
    assert c.run() == 6.0 and events == ["down"]


def test_one_success_brings_a_server_back(caplog):
    clock = Clock()
    c, events = make(Script(True), clock, initial={"healthy": False, "since": 900.0, "last_error": "x"})
    assert not c.up and c.since == 900.0
    clock.now = 1234.0
    with caplog.at_level(logging.INFO, logger="lbha-checker"):
        assert c.run() == 6.0
    assert c.up and events == ["up"] and c.since == 1234.0 and c.last_error is None
    assert "TCP_CHECK on service [1.1.1.3]:tcp:80 success." in caplog.text


def test_a_success_between_failures_resets_the_retries():
    c, events = make(Script(False, False, True, False, False, False, False))
    for _attempt in range(3):
        c.run()
    assert c.retry_it == 0 and c.up
    for _attempt in range(3):
        assert c.run() == 2.0
    assert c.run() == 6.0 and events == ["down"]


def test_retry_zero_goes_down_at_once():
    vs = vs_dict(real_servers=[rs_dict("1.1.1.3", retry=0)])
    c, events = make(Script(False), vs=vs)
    assert c.run() == 6.0 and events == ["down"]


def test_a_probe_that_raises_is_a_failure():
    def boom():
        raise RuntimeError("broken")
    vs = vs_dict(real_servers=[rs_dict("1.1.1.3", retry=0)])
    c, events = make(boom, vs=vs)
    c.run()
    assert events == ["down"] and "RuntimeError: broken" in c.last_error


def test_the_virtual_servers_delay_loop_paces_the_checks():
    c, _unused = make(Script(True), vs=vs_dict(delay_loop=3))
    assert c.run() == 3.0


def test_dynamic_weight_from_misc_check():
    c, events = make(Script(7))
    c.run()
    assert c.weight == 7 and events == ["weight"]


# -- quorum, sorry server, inhibit -------------------------------------------------------------

@pytest.mark.parametrize("up,alive,quorum,hyst,expected", [
    (True, 2, 2, 0, True), (True, 1, 2, 0, False), (False, 2, 2, 0, True),
    (True, 1, 2, 1, True), (True, 0, 2, 1, False), (False, 2, 2, 1, False), (False, 3, 2, 1, True),
    (True, 0, 1, 0, False),
])
def test_quorum_rule(up, alive, quorum, hyst, expected):
    assert health.quorum_next(up, alive, quorum, hyst) is expected


def daemon(doc, scripts, tmp_path, plane=None, clock=None, previous=None, quorum=None):
    c = checker.Checker(plane or FakePlane(), str(tmp_path / "cluster.json"), str(tmp_path / "state.json"),
                        clock=clock or Clock(),
                        probe_factory=lambda rs, check: scripts[rs["address"]])
    c.configure(doc, previous, quorum)
    return c


def test_lost_quorum_switches_to_the_sorry_server(tmp_path, caplog):
    vs = vs_dict(quorum=2, sorry_server={"address": "1.1.1.5", "port": 80},
                 real_servers=[rs_dict("1.1.1.3", retry=0), rs_dict("1.1.1.4", retry=0)])
    scripts = {"1.1.1.3": Script(False, True), "1.1.1.4": Script(True, True)}
    c = daemon(doc_dict(vs), scripts, tmp_path)
    c.apply()
    assert set(bucket_counts(c)) == {nft.server_id("1.1.1.3"), nft.server_id("1.1.1.4")}
    with caplog.at_level(logging.INFO, logger="lbha-checker"):
        c.run_all_once()
    assert "Lost quorum 2-0=2 > 1 for VS [1.1.1.111]:tcp:80" in caplog.text
    assert "Adding sorry server [1.1.1.5]:tcp:80 to VS [1.1.1.111]:tcp:80" in caplog.text
    c.apply()
    assert bucket_counts(c) == {nft.server_id("1.1.1.5"): 251}
    with caplog.at_level(logging.INFO, logger="lbha-checker"):
        c.run_all_once()
    assert "Gained quorum 2+0=2 <= 2 for VS [1.1.1.111]:tcp:80" in caplog.text
    assert "Removing sorry server [1.1.1.5]:tcp:80 from VS [1.1.1.111]:tcp:80" in caplog.text
    c.apply()
    assert set(bucket_counts(c)) == {nft.server_id("1.1.1.3"), nft.server_id("1.1.1.4")}


def test_lost_quorum_without_sorry_server_keeps_the_healthy_ones(tmp_path):
    vs = vs_dict(quorum=2, real_servers=[rs_dict("1.1.1.3", retry=0), rs_dict("1.1.1.4", retry=0)])
    c = daemon(doc_dict(vs), {"1.1.1.3": Script(False), "1.1.1.4": Script(True)}, tmp_path)
    c.run_all_once()
    c.apply()
    assert not c.vss[0].quorum_up
    assert bucket_counts(c) == {nft.server_id("1.1.1.4"): 251}


def test_inhibit_on_failure_keeps_the_server_with_no_new_flows(tmp_path, caplog):
    vs = vs_dict(real_servers=[rs_dict("1.1.1.3", inhibit=True, retry=0), rs_dict("1.1.1.4")])
    c = daemon(doc_dict(vs), {"1.1.1.3": Script(False), "1.1.1.4": Script(True)}, tmp_path)
    with caplog.at_level(logging.INFO, logger="lbha-checker"):
        c.run_all_once()
    assert "Disabling service [1.1.1.3]:tcp:80 from VS [1.1.1.111]:tcp:80" in caplog.text
    c.apply()
    tab = c.tables["TCP/1.1.1.111:80"]
    assert tab["servers"][nft.server_id("1.1.1.3")] == "1.1.1.3"
    assert bucket_counts(c) == {nft.server_id("1.1.1.4"): 251}


def test_removal_is_logged_like_keepalived(tmp_path, caplog):
    vs = vs_dict(real_servers=[rs_dict("1.1.1.3", retry=0), rs_dict("1.1.1.4")])
    c = daemon(doc_dict(vs), {"1.1.1.3": Script(False, True), "1.1.1.4": Script(True, True)}, tmp_path)
    with caplog.at_level(logging.INFO, logger="lbha-checker"):
        c.run_all_once()
        c.run_all_once()
    assert "Removing service [1.1.1.3]:tcp:80 from VS [1.1.1.111]:tcp:80" in caplog.text
    assert "Adding service [1.1.1.3]:tcp:80 to VS [1.1.1.111]:tcp:80" in caplog.text


# -- kernel updates and the state file ---------------------------------------------------------

def test_first_apply_creates_then_updates_elements_only(tmp_path):
    plane = FakePlane()
    scripts = {"1.1.1.3": Script(True, False, False, False, False), "1.1.1.4": Script(*([True] * 5))}
    c = daemon(doc_dict(), scripts, tmp_path, plane=plane)
    assert c.apply() == "created"
    assert plane.loaded[0].startswith("# lbha.cluster") and "delete table netdev lbha" in plane.loaded[0]
    assert c.apply() == "unchanged" and len(plane.loaded) == 1
    for _attempt in range(5):
        c.run_all_once()
    assert c.dirty
    assert c.apply() == "updated"
    update = plane.loaded[-1]
    # elements only; the flow map is flushed because 1.1.1.3 failed (a reused client port must
    # not follow an old entry to it), and nothing else of the table is touched
    assert "delete" not in update
    assert [line for line in update.splitlines() if "flows_" in line] == [
        "flush map netdev lbha flows_tcp_1_1_1_111_80"]
    assert bucket_counts(c) == {nft.server_id("1.1.1.4"): 251}


def test_inhibit_on_failure_keeps_the_flow_map(tmp_path):
    plane = FakePlane()
    vs = vs_dict(real_servers=[rs_dict("1.1.1.3", inhibit=True), rs_dict("1.1.1.4")])
    scripts = {"1.1.1.3": Script(True, False, False, False, False), "1.1.1.4": Script(*([True] * 5))}
    c = daemon(doc_dict(vs), scripts, tmp_path, plane=plane)
    assert c.apply() == "created"
    for _attempt in range(5):
        c.run_all_once()
    assert c.apply() == "updated"
    assert "flows_" not in plane.loaded[-1]
    assert bucket_counts(c) == {nft.server_id("1.1.1.4"): 251}


def test_structure_change_replaces_the_table(tmp_path):
    plane = FakePlane()
    c = daemon(doc_dict(), {"1.1.1.3": Script(), "1.1.1.4": Script()}, tmp_path, plane=plane)
    c.apply()
    c.configure(dict(doc_dict(), flow_timeout=30))
    assert c.apply() == "replaced"
    assert "timeout 30s" in plane.loaded[-1]


def test_state_file_and_restart_keep_health_and_table(tmp_path):
    clock = Clock(5000.0)
    plane = FakePlane()
    vs = vs_dict(real_servers=[rs_dict("1.1.1.3", retry=0), rs_dict("1.1.1.4")])
    c = daemon(doc_dict(vs), {"1.1.1.3": Script(False), "1.1.1.4": Script(True)}, tmp_path,
               plane=plane, clock=clock)
    c.run_all_once()
    c.apply()
    c.write_state()
    state = json.loads((tmp_path / "state.json").read_text())
    rs = {r["address"]: r for r in state["virtual_servers"][0]["real_servers"]}
    assert rs["1.1.1.3"]["healthy"] is False and rs["1.1.1.3"]["since"] == 5000.0
    assert rs["1.1.1.3"]["buckets"] == 0 and rs["1.1.1.4"]["buckets"] == 251
    assert rs["1.1.1.3"]["last_error"].startswith("TCP connection")
    assert state["virtual_servers"][0]["quorum_up"] is True
    assert set(state) >= {"updated", "pid", "virtual_servers"}
    assert oct((tmp_path / "state.json").stat().st_mode & 0o777) == "0o640", "last_error may name a command line"
    assert not list(tmp_path.glob(".checker.*")), "temporary file left behind"

    # a restart: health comes from the state file; the kernel gets an element update that is
    # identical to what was loaded before (no reshuffle, the flow map is not touched)
    previous, quorum = checker.read_previous_state(str(tmp_path / "state.json"))
    clock.now = 6000.0
    c2 = daemon(doc_dict(vs), {"1.1.1.3": Script(), "1.1.1.4": Script()}, tmp_path, plane=plane,
                clock=clock, previous=previous, quorum=quorum)
    assert c2.vss[0].checks[0].up is False and c2.vss[0].checks[0].since == 5000.0
    assert c2.apply() == "updated"
    assert plane.loaded[-1] == nft.render_update(c2.doc, c.tables)


def test_read_previous_state_tolerates_missing_or_broken_files(tmp_path):
    assert checker.read_previous_state(str(tmp_path / "nope.json")) == ({}, {})
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    assert checker.read_previous_state(str(bad)) == ({}, {})


def test_reload_keeps_health_of_unchanged_servers(tmp_path):
    cfg = tmp_path / "cluster.json"
    vs = vs_dict(real_servers=[rs_dict("1.1.1.3", retry=0), rs_dict("1.1.1.4")])
    cfg.write_text(json.dumps(host_document(doc_dict(vs))))
    scripts = {"1.1.1.3": Script(False), "1.1.1.4": Script(True)}
    c = daemon(doc_dict(vs), scripts, tmp_path)
    c.run_all_once()
    vs2 = vs_dict(real_servers=[rs_dict("1.1.1.3", retry=0), rs_dict("1.1.1.4", weight=0)])
    cfg.write_text(json.dumps(host_document(doc_dict(vs2))))
    c.start_threads = lambda: None   # no real threads in a unit test
    assert c.reload()
    checks = {x.rs["address"]: x for x in c.vss[0].checks}
    assert checks["1.1.1.3"].up is False and checks["1.1.1.4"].weight == 0
    c.apply()
    assert bucket_counts(c) == {}
    cfg.write_text("[]")
    assert not c.reload()
    assert c.vss[0].checks[1].weight == 0
    cfg.write_text(json.dumps(dict(host_document(doc_dict(vs)), plane="ipvs")))
    assert not c.reload(), "a document of the ipvs plane is not the checker's"


# -- probes against real sockets on 127.0.0.1 ----------------------------------------------------

class _Web1(BaseHTTPRequestHandler):
    """web1's page on /, 404 elsewhere; records each request's Host header in ``server.hosts``."""

    def log_message(self, *a):
        pass

    def do_GET(self):
        # record before answering: the client may read the reply before this thread resumes
        self.server.hosts.append(self.headers.get("Host"))
        body = b"hello from web1\n"
        code = 200 if self.path == "/" else 404
        self.send_response(code)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture()
def http_server():
    srv = HTTPServer(("127.0.0.1", 0), _Web1)
    srv.hosts = []
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def test_tcp_probe(http_server):
    port = http_server.server_address[1]
    assert probes.tcp_probe("127.0.0.1", port, 2)() == (True, None, None)
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    closed = s.getsockname()[1]
    s.close()
    ok, err, _unused = probes.tcp_probe("127.0.0.1", closed, 2)()
    assert not ok and "TCP connection to [127.0.0.1]:tcp:%d failed" % closed in err


def test_http_probe_status_and_digest(http_server):
    port = http_server.server_address[1]
    digest = hashlib.md5(b"hello from web1\n").hexdigest()
    ok = probes.http_probe("127.0.0.1", port, 2, [{"path": "/", "status_code": [200], "digest": digest}],
                           virtualhost="www.example.test")()
    assert ok == (True, None, None)
    assert http_server.hosts[-1] == "www.example.test"
    bad, err, _unused = probes.http_probe("127.0.0.1", port, 2, [{"path": "/", "digest": "0" * 32}])()
    assert not bad and "MD5 digest error" in err
    bad, err, _unused = probes.http_probe("127.0.0.1", port, 2, [{"path": "/missing"}])()
    assert not bad and "status_code [404]" in err
    ok, _e, _w = probes.http_probe("127.0.0.1", port, 2, [{"path": "/missing", "status_code": [404]}])()
    assert ok
    assert http_server.hosts[-1] == "127.0.0.1:%d" % port


def test_http_probe_of_an_ipv6_server_brackets_its_host_header():
    class Server6(HTTPServer):
        address_family = socket.AF_INET6

    try:
        srv = Server6(("::1", 0), _Web1)
    except OSError as exc:
        pytest.skip("no IPv6 loopback on this host (%s); the netns tests cover IPv6 checks" % exc)
    srv.hosts = []
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        port = srv.server_address[1]
        assert probes.http_probe("::1", port, 2, [{"path": "/"}])() == (True, None, None)
        assert srv.hosts == ["[::1]:%d" % port]
    finally:
        srv.shutdown()
        srv.server_close()


class _Run(object):
    """subprocess.run double: records the keyword arguments, answers with ``rc``."""

    def __init__(self, rc=0):
        self.rc = rc
        self.calls = []

    def __call__(self, argv, **kwargs):
        self.calls.append((argv, kwargs))
        return subprocess.CompletedProcess(argv, self.rc)


def test_misc_probe_runs_as_the_script_user_with_nothing_of_roots(checkerd, monkeypatch):
    monkeypatch.setattr(checkerd, "_script_identity", lambda user: {"keepalived_script": (998, 997)}[user])
    run = _Run(0)
    assert checkerd.misc_probe("/usr/local/bin/check --port 80", 2, user="keepalived_script", run=run)()[0] is True
    argv, kwargs = run.calls[0]
    assert argv == ["/usr/local/bin/check", "--port", "80"]
    assert (kwargs["user"], kwargs["group"], kwargs["extra_groups"]) == (998, 997, [])
    assert kwargs["cwd"] == "/" and sorted(kwargs["env"]) == ["LANG", "PATH"]
    assert checkerd.misc_probe("/bin/x", 2, user="keepalived_script", run=_Run(1))()[0] is False
    assert checkerd.misc_probe("/bin/x", 2, dynamic=True, user="keepalived_script", run=_Run(9))() == (True, None, 7)


def test_misc_probe_never_falls_back_to_root(checkerd, monkeypatch):
    def missing(user):
        raise KeyError(user)
    monkeypatch.setattr(checkerd, "_script_identity", missing)
    run = _Run(0)
    ok, err, _unused = checkerd.misc_probe("/bin/true", 2, user="nosuchuser", run=run)()
    assert not ok and "script user nosuchuser does not exist" in err and run.calls == []


@pytest.mark.skipif(os.geteuid() != 0, reason="changing to another user needs root")
def test_misc_probe_really_runs_as_nobody(tmp_path, checkerd):
    nobody = pwd.getpwnam("nobody")
    # up only when the check runs as nobody, in nobody's group and no other
    check = ("/bin/sh -c 'test $(id -u) = %d && test $(id -g) = %d && test \"$(id -G)\" = %d'"
             % (nobody.pw_uid, nobody.pw_gid, nobody.pw_gid))
    assert checkerd.misc_probe(check, 5, user="nobody")() == (True, None, None)
    assert checkerd.misc_probe("/bin/sh -c 'exit 9'", 5, dynamic=True, user="nobody")() == (True, None, 7)
    ok, err, _unused = checkerd.misc_probe(str(tmp_path / "missing"), 2, user="nobody")()
    assert not ok and "could not run" in err


# -- command line ------------------------------------------------------------------------------

def test_misc_check_needs_the_daemons_probe(checkerd, tmp_path, monkeypatch):
    check = {"type": "MISC_CHECK", "misc_path": "/bin/true", "misc_timeout": 2, "misc_dynamic": False,
             "retry": 1, "delay_before_retry": 1}
    with pytest.raises(probes.ProbeError, match="MISC_CHECK"):
        probes.make_probe({"address": "1.1.1.3", "port": 80}, check)
    doc = host_document(doc_dict())
    doc["model"]["global_defs"] = {"script_user": "lbha-check-user"}
    path = tmp_path / "cluster.json"
    path.write_text(json.dumps(doc))
    seen = []
    monkeypatch.setattr(checkerd, "_script_identity", lambda user: seen.append(user) or (4242, 4242))
    run = _Run(0)
    monkeypatch.setattr(checkerd.subprocess, "run", run)
    assert checkerd.ProbeFactory(str(path))({"address": "1.1.1.3", "port": 80}, check)()[0] is True
    assert seen == ["lbha-check-user"] and run.calls[0][1]["user"] == 4242


def test_check_config_prints_the_ruleset(tmp_path, capsys, checkerd):
    cfg = tmp_path / "cluster.json"
    cfg.write_text(json.dumps(host_document(doc_dict())))
    assert checkerd.main(["--check-config", "--document", str(cfg), "--state", str(tmp_path / "s.json")]) == 0
    out = capsys.readouterr().out
    assert "table netdev lbha {" in out and "add element netdev lbha buckets_tcp_1_1_1_111_80" in out
    assert not (tmp_path / "s.json").exists()


def test_a_document_of_another_version_or_plane_exits_2(tmp_path, capsys, checkerd):
    cfg = tmp_path / "cluster.json"
    cfg.write_text(json.dumps(dict(host_document(doc_dict()), version=99)))
    assert checkerd.main(["--check-config", "--document", str(cfg)]) == 2
    assert "version 99; this code reads version 1" in capsys.readouterr().err
    cfg.write_text(json.dumps(dict(host_document(doc_dict()), plane="ipvs")))
    assert checkerd.main(["--check-config", "--document", str(cfg)]) == 2
    assert "uses the ipvs plane, not nftables" in capsys.readouterr().err
    assert checkerd.main(["--check-config", "--document", str(tmp_path / "missing.json")]) == 2


def test_once_installs_through_nft_and_writes_state(tmp_path, checkerd):
    cfg = tmp_path / "cluster.json"
    cfg.write_text(json.dumps(host_document(doc_dict())))
    fake_nft = tmp_path / "nft"
    log = tmp_path / "nft.log"
    fake_nft.write_text("#!/bin/sh\necho \"$@\" >> %s\nif [ \"$1\" = -t ]; then exit 1; fi\ncat >> %s\n"
                        % (log, log))
    fake_nft.chmod(0o755)
    state = tmp_path / "state.json"
    assert checkerd.main(["--once", "--document", str(cfg), "--state", str(state), "--nft", str(fake_nft)]) == 0
    text = log.read_text()
    assert "-t list table netdev lbha" in text and "-f -" in text and "delete table netdev lbha" in text
    assert json.loads(state.read_text())["virtual_servers"][0]["real_servers"][0]["healthy"] is True


def test_nft_plane_reports_errors(tmp_path, checkerd):
    def run(argv, **kw):
        return subprocess.CompletedProcess(argv, 1, stdout="", stderr="Error: syntax error")
    plane = checkerd.NftPlane("/usr/sbin/nft", run=run)
    assert plane.fingerprint("lbha") is None
    with pytest.raises(checker.NftError, match="syntax error"):
        plane.load("bogus")
