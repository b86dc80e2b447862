# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""module_utils/status.py against outputs captured from iproute2 and nftables on Linux, and the
notify hook that writes the VRRP state files."""
from __future__ import (absolute_import, division, print_function)
from __future__ import annotations
__metaclass__ = type

import json
import os
import shutil
import stat
import subprocess

import pytest

from ansible_collections.lbha.cluster.plugins.module_utils import status

HERE = os.path.dirname(__file__)
FIXTURES = os.path.join(HERE, "..", "..", "fixtures", "status")
NOTIFY = os.path.join(HERE, "..", "..", "..", "..", "roles", "director", "files", "lbha-notify")


def fixture(name):
    with open(os.path.join(FIXTURES, name)) as f:
        return f.read()


# ---------------------------------------------------------------------------- ip -j addr

def test_real_server_holds_the_vip_on_lo_1():
    addrs = status.parse_ip_addr(fixture("ip-addr-real-server.json"))
    vip = [a for a in addrs if a["address"] == "1.1.1.111"]
    assert vip == [{"address": "1.1.1.111", "prefixlen": 32, "family": "inet", "interface": "lo", "label": "lo:1"}]
    # an IPv6 address has no label in ip's JSON: the interface name stands in
    v6lo = [a for a in addrs if a["address"] == "::1"][0]
    assert v6lo["label"] == "lo"


def test_vip_ownership_master_and_backup():
    master = status.parse_ip_addr(fixture("ip-addr-director-master.json"))
    backup = status.parse_ip_addr(fixture("ip-addr-director-backup.json"))
    vips = ["1.1.1.111/24", "2001:DB8::111", "1.1.1.111"]
    assert status.vip_ownership(vips, master) == [
        {"address": "1.1.1.111", "held": True, "interface": "eth0", "label": "eth0", "prefixlen": 24},
        {"address": "2001:db8::111", "held": True, "interface": "eth0", "label": "eth0", "prefixlen": 128},
    ]
    assert [v["held"] for v in status.vip_ownership(vips, backup)] == [False, False]
    assert status.vip_ownership(["1.1.1.111"], backup)[0]["interface"] is None


def test_parse_ip_addr_rejects_non_json():
    with pytest.raises(ValueError, match="not JSON"):
        status.parse_ip_addr("1: lo: <LOOPBACK,UP>")


# ---------------------------------------------------------------------------- state files

@pytest.mark.parametrize("text, expected", [
    ("MASTER\n", "MASTER"), ("backup", "BACKUP"), ("FAULT 90\n", "FAULT"), ("STOP", "STOP"),
    ("", None), (None, None), ("BANANA", None),
])
def test_parse_state_file(text, expected):
    assert status.parse_state_file(text) == expected


def test_vrrp_instances_file_wins_then_vip_inference():
    vip_status = [{"address": "1.1.1.111", "held": True}, {"address": "1.1.1.112", "held": False},
                  {"address": "10.0.0.10", "held": False}]

    def inst(name, *vips):
        return {"name": name, "vips": list(vips), "virtual_router_id": 51, "priority": 100}
    out = status.vrrp_instances(
        {"VI_1": "BACKUP", "VI_3": None, "VI_9": "MASTER"},
        [inst("VI_1", "1.1.1.111"), inst("VI_2", "10.0.0.10"), inst("VI_3"), inst("VI_4", "1.1.1.111", "1.1.1.112"),
         inst("VI_5", "1.1.1.111")],
        vip_status)
    by = {i["name"]: (i["state"], i["state_source"]) for i in out}
    assert by == {
        "VI_1": ("BACKUP", "file"),        # the notify hook's word wins over the VIP
        "VI_2": ("BACKUP", "vip"),
        "VI_3": (None, "none"),            # unreadable state file, no known VIP
        "VI_4": ("FAULT", "vip"),          # half of its VIPs: not a state keepalived leaves
        "VI_5": ("MASTER", "vip"),
    }, "only the document's instances: a stale state file of an old instance (VI_9) is not one"


# ---------------------------------------------------------------------------- nftables plane

def test_nft_counters_from_a_real_listing():
    counters = status.parse_nft_counters(fixture("nft-list-table.json"))
    # three SYNs were sent to the VIP while the fixture was captured
    assert counters["gotos"]["vs_tcp_1_1_1_111_80"] == {"packets": 3, "bytes": 180}
    chain = counters["chains"]["vs_tcp_1_1_1_111_80"]
    assert (chain["packets"], chain["drop_packets"]) == (3, 0)
    assert counters["chains"]["ingress_eth0"]["packets"] == 3


def test_nft_counters_tolerate_anything():
    assert status.parse_nft_counters("") == {"chains": {}, "gotos": {}}
    assert status.parse_nft_counters("not json") == {"chains": {}, "gotos": {}}
    odd = {"nftables": [{"rule": {"chain": "c", "expr": [{"counter": {"packets": 2, "bytes": 9}}, {"drop": None}]}},
                        {"rule": {"chain": "c", "expr": "weird"}}, "junk", {"rule": "junk"}]}
    out = status.parse_nft_counters(json.dumps(odd))
    assert out["chains"]["c"] == {"packets": 2, "bytes": 9, "drop_packets": 2, "drop_bytes": 9}


def test_checker_virtual_servers_merge_health_and_counters():
    checker = status.parse_checker_state(fixture("checker.json"))
    counters = status.parse_nft_counters(fixture("nft-list-table.json"))
    vss = status.checker_virtual_servers(checker, counters)
    assert len(vss) == 1
    vs = vss[0]
    assert (vs["address"], vs["port"], vs["protocol"], vs["quorum_up"]) == ("1.1.1.111", 80, "TCP", True)
    assert (vs["in_packets"], vs["in_bytes"], vs["dropped_packets"]) == (3, 180, 0)
    web1, web2 = vs["real_servers"]
    assert (web1["address"], web1["healthy"], web1["buckets"]) == ("1.1.1.3", True, 126)
    assert (web2["address"], web2["healthy"], web2["last_error"]) == ("1.1.1.4", False, "connect: Connection refused")
    assert web1["conns"] is None and web1["active_conn"] is None


def test_checker_state_garbage():
    assert status.parse_checker_state("{") is None
    assert status.parse_checker_state("[]") is None
    assert status.parse_checker_state('{"virtual_servers": 3}')["virtual_servers"] == []


def test_checker_liveness():
    alive = {"pid": 10, "updated": 1000.0}
    assert status.checker_liveness(alive, 1004.0, lambda pid: True, True) == {
        "pid": 10, "updated": 1000.0, "age": 4.0, "alive": True, "table_loaded": True}
    assert not status.checker_liveness(alive, 1004.0, lambda pid: False, True)["alive"], "its process is gone"
    assert not status.checker_liveness(alive, 1000.0 + status.CHECKER_STALE_SECONDS, lambda pid: True, True)["alive"]
    assert status.checker_liveness(None, 1000.0, lambda pid: True, False) == {
        "pid": None, "updated": None, "age": None, "alive": False, "table_loaded": False}


def test_mark_drained():
    vss = [{"real_servers": [{"address": "1.1.1.3", "port": 80}, {"address": "1.1.1.4", "port": 80}]}]
    status.mark_drained(vss, lambda a, p: a == "1.1.1.4")
    assert [rs["drained"] for rs in vss[0]["real_servers"]] == [False, True]


def test_build_report():
    vrrp = [{"name": "VI_1", "state": "MASTER", "state_source": "file", "vips": ["1.1.1.111"]},
            {"name": "VI_2", "state": "BACKUP", "state_source": "vip", "vips": []}]
    vips = [{"address": "1.1.1.111", "held": True}, {"address": "10.0.0.10", "held": False}]
    doc = {"plane": "ipvs", "director": "lb1", "drained": ["1.1.1.3"], "services": {"keepalived": "keepalived"}}
    rep = status.build_report(doc, vrrp, vips, [], {"running": True, "pid": 1})
    assert (rep["master"], rep["master_instances"], rep["holds_vips"]) == (True, ["VI_1"], ["1.1.1.111"])
    assert (rep["deployed"], rep["dataplane"], rep["director"], rep["drained"]) == (True, "ipvs", "lb1", ["1.1.1.3"])
    assert rep["services"] == {"keepalived": "keepalived"}
    rep = status.build_report(None, vrrp[1:], vips[1:], [], {"running": False, "pid": None})
    assert (rep["master"], rep["holds_vips"], rep["deployed"], rep["dataplane"]) == (False, [], False, "none")


# ---------------------------------------------------------------------------- the notify hook

def _notify(tmp_path, *args, path=None):
    env = dict(os.environ, LBHA_STATE_DIR=str(tmp_path / "vrrp"))
    if path is not None:
        env["PATH"] = path
    return subprocess.run(["sh", NOTIFY] + list(args), env=env, capture_output=True, text=True, timeout=30,
                          check=False)


def test_notify_is_executable_posix_sh():
    assert os.stat(NOTIFY).st_mode & stat.S_IXUSR
    with open(NOTIFY) as f:
        assert f.readline().strip() == "#!/bin/sh"
    if shutil.which("dash"):
        assert subprocess.run(["dash", "-n", NOTIFY], check=False).returncode == 0


def test_notify_writes_the_state_the_info_module_reads(tmp_path):
    res = _notify(tmp_path, "INSTANCE", "VI_1", "MASTER", "100")
    assert res.returncode == 0, res.stderr
    state_file = tmp_path / "vrrp" / status.state_file_name("VI_1")
    assert state_file.read_text() == "MASTER\n"
    assert status.parse_state_file(state_file.read_text()) == "MASTER"
    assert stat.S_IMODE(state_file.stat().st_mode) == 0o644
    _notify(tmp_path, "INSTANCE", "VI_1", "BACKUP", "100")
    assert state_file.read_text() == "BACKUP\n"
    # nothing left behind from the temporary file + rename; the order of the last recorded transition
    assert sorted(p.name for p in (tmp_path / "vrrp").iterdir()) == [".VI_1.order", "VI_1.state"]


def test_notify_keeps_the_later_of_two_concurrent_transitions(tmp_path):
    """keepalived forks a hook per transition: MASTER then BACKUP a millisecond apart run at once.
    The hook started later (the later transition) wins, whichever finishes last."""
    def notify(state, order):
        env = dict(os.environ, LBHA_STATE_DIR=str(tmp_path / "vrrp"), LBHA_NOTIFY_ORDER=order)
        return subprocess.run(["sh", NOTIFY, "INSTANCE", "VI_1", state], env=env, capture_output=True,
                              text=True, timeout=30, check=True)
    state_file = tmp_path / "vrrp" / status.state_file_name("VI_1")
    notify("BACKUP", "00000000000000001000.0000001150")    # the later hook finishes first
    notify("MASTER", "00000000000000001000.0000001149")    # the earlier one last: not recorded
    assert state_file.read_text() == "BACKUP\n"
    notify("MASTER", "00000000000000001001.0000000007")    # a later transition (pid wrapped)
    assert state_file.read_text() == "MASTER\n"


def test_notify_group_deleted_and_unsafe_names(tmp_path):
    _notify(tmp_path, "GROUP", "G1", "MASTER")
    assert (tmp_path / "vrrp" / "groups" / "G1.state").read_text() == "MASTER\n"
    assert not (tmp_path / "vrrp" / "G1.state").exists()
    _notify(tmp_path, "INSTANCE", "../../etc/x y", "FAULT")
    name = status.state_file_name("../../etc/x y")
    assert "/" not in name
    assert (tmp_path / "vrrp" / name).read_text() == "FAULT\n"
    _notify(tmp_path, "INSTANCE", "../../etc/x y", "DELETED")
    assert not (tmp_path / "vrrp" / name).exists()


@pytest.mark.parametrize("args", [(), ("INSTANCE",), ("INSTANCE", "VI_1"), ("BOGUS", "VI_1", "MASTER"),
                                  ("INSTANCE", "VI_1", "SLEEPY")])
def test_notify_never_fails_and_ignores_bad_calls(tmp_path, args):
    res = _notify(tmp_path, *args)
    assert res.returncode == 0
    assert not (tmp_path / "vrrp").exists() or not any((tmp_path / "vrrp").iterdir())


def test_notify_exits_0_when_the_directory_cannot_be_made(tmp_path):
    blocker = tmp_path / "vrrp"
    blocker.write_text("a file where the directory should be")
    res = _notify(tmp_path, "INSTANCE", "VI_1", "MASTER")
    assert res.returncode == 0
    assert blocker.read_text() == "a file where the directory should be"


def test_notify_logs_through_logger_when_present(tmp_path):
    bindir = tmp_path / "bin"
    bindir.mkdir()
    log = tmp_path / "logger.out"
    fake = bindir / "logger"
    fake.write_text('#!/bin/sh\nprintf "%%s\\n" "$*" >> "%s"\n' % log)
    fake.chmod(0o755)
    path = "%s:%s" % (bindir, os.environ.get("PATH", "/usr/bin:/bin"))
    assert _notify(tmp_path, "INSTANCE", "VI_1", "MASTER", "100", path=path).returncode == 0
    assert log.read_text() == "-t lbha-notify -- INSTANCE VI_1 is MASTER (priority 100)\n"


def test_notify_starts_few_programs_per_transition(tmp_path):
    """Each program the hook starts delays the state file on a slow machine: a transition starts
    only flock and mv, then logger (and stat, to check the directory, when run as root)."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    started = tmp_path / "started"
    real_path = os.environ.get("PATH", "/usr/bin:/bin")
    for tool in ("awk", "basename", "cat", "chmod", "cp", "date", "dirname", "expr", "flock", "id", "ln",
                 "logger", "mkdir", "mktemp", "mv", "printf", "readlink", "rm", "sed", "setpriv", "stat",
                 "tail", "touch", "tr"):
        real = shutil.which(tool, path=real_path)
        if real is None:
            continue
        wrapper = bindir / tool
        wrapper.write_text('#!/bin/sh\necho %s >> "%s"\nexec "%s" "$@"\n' % (tool, started, real))
        wrapper.chmod(0o755)
    path = "%s:%s" % (bindir, real_path)
    assert _notify(tmp_path, "INSTANCE", "VI_1", "BACKUP", "100", path=path).returncode == 0
    started.write_text("")
    assert _notify(tmp_path, "INSTANCE", "VI_1", "MASTER", "100", path=path).returncode == 0
    assert (tmp_path / "vrrp" / status.state_file_name("VI_1")).read_text() == "MASTER\n"
    expected = (["stat"] if os.geteuid() == 0 else []) + ["flock", "mv", "logger"]
    assert started.read_text().split() == [t for t in expected if shutil.which(t, path=real_path)]
