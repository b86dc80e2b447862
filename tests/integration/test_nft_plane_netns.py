# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The nftables DR plane end to end, in network namespaces on this machine.

Topology (10.252.0.0/24 only, no default routes, every namespace named ``lbhat-*``)::

    lbhat-cli 10.252.0.10 ─┐
    lbhat-d1  10.252.0.1  ─┤  bridge in lbhat-sw
    lbhat-d2  10.252.0.2  ─┤
    lbhat-rs1 10.252.0.3  ─┤  (VIP 10.252.0.111/32 on lo, arp_ignore=1, arp_announce=2)
    lbhat-rs2 10.252.0.4  ─┘

Both directors run ``lbha-checker`` from this tree against the same host document; the
VIP is on d1 (the "MASTER") until the failover test moves it to d2.
"""
from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import importlib.util
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import pytest
from netns_helpers import Namespaces, run as _run, until

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
PREFIX = "lbhat-"
NET = "10.252.0."
VIP = NET + "111"
HOSTS = {"d1": 1, "d2": 2, "rs1": 3, "rs2": 4, "cli": 10}
PYTHON = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable


def _model_bundle():
    """The lookup plugin that builds the model archive the director role installs."""
    spec = importlib.util.spec_from_file_location(
        "lbha_model_bundle", os.path.join(REPO, "plugins", "lookup", "model_bundle.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


SERVER = r'''
import socketserver, sys, time
from http.server import BaseHTTPRequestHandler, HTTPServer
from urllib.parse import urlparse, parse_qs
NAME = sys.argv[1]
class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"
    def log_message(self, *a):
        pass
    def do_GET(self):
        u = urlparse(self.path)
        if u.path == "/slow":
            q = parse_qs(u.query)
            chunks, delay = int(q["chunks"][0]), float(q["delay"][0])
            self.send_response(200)
            self.send_header("X-Server", NAME)
            self.send_header("Content-Length", str(chunks * 16384))
            self.end_headers()
            block = (NAME.encode() * 16384)[:16384]
            for _attempt in range(chunks):
                self.wfile.write(block)
                self.wfile.flush()
                time.sleep(delay)
            return
        body = NAME.encode() + b"\n"
        self.send_response(200)
        self.send_header("X-Server", NAME)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
class S(socketserver.ThreadingMixIn, HTTPServer):
    daemon_threads = True
    allow_reuse_address = True
S(("0.0.0.0", 80), H).serve_forever()
'''

CLIENT = r'''
import http.client, json, sys
mode, host = sys.argv[1], sys.argv[2]
if mode == "many":
    counts, failures, errors = {}, 0, []
    for _attempt in range(int(sys.argv[3])):
        try:
            c = http.client.HTTPConnection(host, 80, timeout=3)
            c.request("GET", "/", headers={"Connection": "close"})
            body = c.getresponse().read().decode().strip()
            c.close()
            counts[body] = counts.get(body, 0) + 1
        except Exception as exc:
            failures += 1
            errors.append(repr(exc))
    print(json.dumps({"counts": counts, "failures": failures, "errors": errors[:5]}))
elif mode == "ports":
    # one request from each given client port; closed with a RST so the port is free at once
    import socket, struct
    out = {}
    for port in sys.argv[3:]:
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        s.settimeout(3)
        try:
            s.bind(("0.0.0.0", int(port)))
            s.connect((host, 80))
            s.sendall(b"GET / HTTP/1.0\r\n\r\n")
            data = b""
            while True:
                b = s.recv(4096)
                if not b:
                    break
                data += b
            out[port] = data.split(b"\r\n\r\n", 1)[1].decode().strip()
        except Exception as exc:
            out[port] = "error: %r" % exc
        finally:
            s.close()
    print(json.dumps(out))
else:
    chunks, delay = int(sys.argv[3]), sys.argv[4]
    try:
        c = http.client.HTTPConnection(host, 80, timeout=10)
        c.request("GET", "/slow?chunks=%d&delay=%s" % (chunks, delay))
        r = c.getresponse()
        name = r.getheader("X-Server")
        got = len(r.read(16384))
        print("start %s" % name, flush=True)
        while True:
            b = r.read(65536)
            if not b:
                break
            got += len(b)
        ok = got == chunks * 16384
        print(json.dumps({"server": name, "bytes": got, "ok": ok}), flush=True)
    except Exception as exc:
        print(json.dumps({"server": None, "bytes": -1, "ok": False, "error": repr(exc)}), flush=True)
'''


def missing_prerequisites():
    """What this machine lacks for the namespace tests (empty when all is there)."""
    missing = []
    if os.geteuid() != 0:
        missing.append("root (network namespaces and nftables need CAP_NET_ADMIN)")
    for tool in ("ip", "nft"):
        if not shutil.which(tool):
            missing.append("the '%s' command" % tool)
    if not os.path.exists(PYTHON):
        missing.append(PYTHON)
    if missing:
        return missing
    probe = "%sprobe%d" % (PREFIX, os.getpid())
    res = _run("ip", "netns", "add", probe, check=False)
    if res.returncode != 0:
        return ["network namespaces ('ip netns add' failed: %s)" % res.stderr.strip()]
    try:
        res = _run("ip", "netns", "exec", probe, "nft", "add", "table", "netdev", "t", check=False)
        if res.returncode != 0:
            missing.append("nftables netdev tables ('nft add table netdev' failed: %s)" % res.stderr.strip())
    finally:
        _run("ip", "netns", "del", probe, check=False)
    return missing


def dataplane(algo="rr", weights=(1, 1), delay_loop=1, drained=()):
    """The host document (/etc/lbha/cluster.json, nftables plane) the checkers read."""
    rss = []
    for i, w in enumerate(weights):
        rss.append({"address": NET + str(HOSTS["rs%d" % (i + 1)]), "port": 80, "weight": w,
                    "inhibit_on_failure": False, "name": "rs%d" % (i + 1),
                    "check": {"type": "TCP_CHECK", "connect_timeout": 1, "retry": 1,
                              "delay_before_retry": 1, "connect_port": 80, "connect_ip": None}})
    vss = [{"address": VIP, "port": 80, "protocol": "TCP", "lb_algo": algo, "lb_kind": "DR",
            "delay_loop": delay_loop, "persistence_timeout": None, "persistence_granularity": None,
            "quorum": 1, "hysteresis": 0, "sorry_server": None, "interface": "eth0", "real_servers": rss}]
    return {"format": "lbha.cluster/host", "version": 1, "director": "d1", "plane": "nftables",
            "paths": {"document": "/etc/lbha/cluster.json", "keepalived_conf": "/etc/keepalived/keepalived.conf",
                      "vrrp_state_dir": "/run/lbha/vrrp", "checker_state": "/run/lbha/checker.json"},
            "services": {"keepalived": "keepalived", "checker": "lbha-checker"},
            "nftables": {"table": "lbha", "seed": 1525, "buckets": 251, "flow_timeout": 60, "flow_size": 65536},
            "drained": sorted(drained), "model": {"vrrp_instances": [], "virtual_servers": vss}}


class Topology(Namespaces):
    """Namespaces, bridge, real servers and checkers; ``close()`` removes everything."""

    def __init__(self, directors=("d1", "d2"), prefix=PREFIX):
        super(Topology, self).__init__(prefix)
        self.tmp = tempfile.mkdtemp(prefix="lbhat-")
        self.directors = list(directors)
        self.procs = {}
        # The installed layout: the daemon beside the model archive the role copies.
        self.lib = os.path.join(self.tmp, "lib")
        os.makedirs(self.lib)
        shutil.copy(os.path.join(REPO, "roles", "director", "files", "lbha_checkerd.py"), self.lib)
        with open(os.path.join(self.lib, "lbha_cluster.zip"), "wb") as fh:
            fh.write(_model_bundle().bundle(os.path.join(REPO, "plugins", "module_utils")))
        for name, text in (("server.py", SERVER), ("client.py", CLIENT)):
            with open(os.path.join(self.tmp, name), "w") as fh:
                fh.write(text)

    # -- building -----------------------------------------------------------------------------
    def build(self):
        hosts = self.directors + ["rs1", "rs2", "cli"]
        for ns in ["sw"] + hosts:
            self.add(ns)
        self.ip("sw", "link", "add", "br0", "type", "bridge")
        self.ip("sw", "link", "set", "br0", "up")
        for ns in hosts:
            num = HOSTS[ns]
            self.ip("sw", "link", "add", "p-" + ns, "type", "veth", "peer", "name", "eth0",
                    "netns", self.netns(ns))
            self.ip("sw", "link", "set", "p-" + ns, "master", "br0", "up")
            self.ip(ns, "link", "set", "eth0", "address", "02:52:00:00:00:%02x" % num)
            self.ip(ns, "addr", "add", "%s%d/24" % (NET, num), "dev", "eth0")
            self.ip(ns, "link", "set", "eth0", "up")
        for rs in ("rs1", "rs2"):
            self.ip(rs, "addr", "add", VIP + "/32", "dev", "lo", "label", "lo:1")
            for dev in ("all", "default", "lo", "eth0"):
                self.exec(rs, "sysctl", "-q", "-w", "net.ipv4.conf.%s.arp_ignore=1" % dev)
                self.exec(rs, "sysctl", "-q", "-w", "net.ipv4.conf.%s.arp_announce=2" % dev)
            self.start_server(rs)
        self.ip(self.directors[0], "addr", "add", VIP + "/32", "dev", "eth0")

    def start_server(self, rs):
        proc = self.popen(rs, PYTHON, os.path.join(self.tmp, "server.py"), rs,
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.procs["http-" + rs] = proc
        until("the HTTP server of %s" % rs, lambda: self.exec(
            "cli", PYTHON, "-c", "import socket; socket.create_connection(('%s%d', 80), 1).close()"
            % (NET, HOSTS[rs]), check=False).returncode == 0)

    def stop_server(self, rs):
        proc = self.procs.pop("http-" + rs)
        proc.terminate()
        proc.wait(10)

    def config_path(self, d):
        return os.path.join(self.tmp, "%s.json" % d)

    def state_path(self, d):
        return os.path.join(self.tmp, "%s-state.json" % d)

    def write_config(self, doc):
        for d in self.directors:
            with open(self.config_path(d) + ".tmp", "w") as fh:
                json.dump(doc, fh)
            os.replace(self.config_path(d) + ".tmp", self.config_path(d))

    def start_checkers(self):
        env = dict(os.environ)
        env.pop("PYTHONPATH", None)
        for d in self.directors:
            log = open(os.path.join(self.tmp, "%s.log" % d), "w")
            self.procs["checker-" + d] = self.popen(
                d, PYTHON, os.path.join(self.lib, "lbha_checkerd.py"),
                "--document", self.config_path(d), "--state", self.state_path(d),
                "--nft", shutil.which("nft"), env=env, stdout=log, stderr=subprocess.STDOUT)
            log.close()
        for d in self.directors:
            until("checker state of %s" % d, lambda d=d: self.state(d))

    def log(self, d):
        with open(os.path.join(self.tmp, "%s.log" % d)) as fh:
            return fh.read()

    def state(self, d):
        try:
            with open(self.state_path(d)) as fh:
                return json.load(fh)
        except (OSError, ValueError):
            return None

    def servers(self, d):
        st = self.state(d)
        if not st or not st["virtual_servers"]:
            return {}
        return {r["address"]: r for r in st["virtual_servers"][0]["real_servers"]}

    def reload(self, doc, expect):
        """Write ``doc`` to every director, SIGHUP the checkers, wait until ``expect(servers)``."""
        since = time.time()
        self.write_config(doc)
        for d in self.directors:
            self.procs["checker-" + d].send_signal(signal.SIGHUP)
        for d in self.directors:
            until("reload of %s" % d, lambda d=d: (self.state(d) or {}).get("updated", 0) > since
                  and expect(self.state(d)["virtual_servers"][0]), deadline=20)

    # -- traffic ------------------------------------------------------------------------------
    def many(self, n):
        res = self.exec("cli", PYTHON, os.path.join(self.tmp, "client.py"), "many", VIP, str(n),
                        timeout=n * 4 + 30)
        return json.loads(res.stdout)

    def from_ports(self, ports):
        """One request from each client port in ``ports``; returns {port: server or error}."""
        res = self.exec("cli", PYTHON, os.path.join(self.tmp, "client.py"), "ports", VIP,
                        *[str(p) for p in ports], timeout=len(ports) * 4 + 30)
        return {int(k): v for k, v in json.loads(res.stdout).items()}

    def slow(self, chunks=150, delay="0.03"):
        """Start a paced download through the VIP; returns (proc, server name)."""
        proc = self.popen("cli", PYTHON, os.path.join(self.tmp, "client.py"), "slow", VIP, str(chunks),
                          delay, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          universal_newlines=True)
        line = proc.stdout.readline().strip()
        if not line.startswith("start "):
            proc.wait(30)
            raise AssertionError("download did not start: %r" % line)
        return proc, line.split(" ", 1)[1]

    @staticmethod
    def finish(proc, timeout=60):
        out, _unused = proc.communicate(timeout=timeout)
        return json.loads(out.strip().splitlines()[-1])

    def garp(self, ns, ip):
        """Send gratuitous ARP requests for ``ip`` from ``ns``'s eth0 (like ``arping -U``)."""
        code = (
            "import socket,struct,sys,time\n"
            "s=socket.socket(socket.AF_PACKET,socket.SOCK_RAW)\n"
            "s.bind(('eth0',0x0806))\n"
            "mac=s.getsockname()[4]\n"
            "ip=socket.inet_aton(sys.argv[1])\n"
            "f=b'\\xff'*6+mac+struct.pack('!HHHBBH',0x0806,1,0x0800,6,4,1)+mac+ip+b'\\x00'*6+ip\n"
            "for i in range(3):\n"
            "    s.send(f)\n"
            "    time.sleep(0.3)\n")
        self.exec(ns, PYTHON, "-c", code, ip)

    def vs_packets(self, d):
        res = self.exec(d, "nft", "list", "chain", "netdev", "lbha", "ingress_eth0")
        for line in res.stdout.splitlines():
            if "goto vs_" in line and "packets" in line:
                return int(line.split("packets", 1)[1].split()[0])
        return 0

    def close(self):
        for name, proc in list(self.procs.items()):
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(5)
        self.procs.clear()
        self.delete_all()
        shutil.rmtree(self.tmp, ignore_errors=True)


_MISSING = missing_prerequisites()
pytestmark = pytest.mark.skipif(bool(_MISSING), reason="needs " + "; ".join(_MISSING))


@pytest.fixture(scope="module")
def topo(request):
    existing = _run("ip", "netns", "list").stdout
    clash = [line.split()[0] for line in existing.splitlines()
             if line.split() and line.split()[0] in ["%s%s" % (PREFIX, n) for n in ["sw"] + list(HOSTS)]]
    if clash:
        pytest.fail("network namespaces from an earlier run are in the way: %s" % ", ".join(clash))
    t = Topology()
    request.addfinalizer(t.close)
    t.build()
    t.write_config(dataplane())
    t.start_checkers()
    for d in t.directors:
        until("both real servers healthy on %s" % d,
              lambda d=d: all(r["healthy"] for r in t.servers(d).values()) and len(t.servers(d)) == 2)
    return t


def _both_up(vs):
    return all(r["healthy"] and r["weight"] == 1 for r in vs["real_servers"]) and vs["lb_algo"] == "rr"


def test_rr_reaches_both_real_servers(topo):
    res = topo.many(40)
    assert res["failures"] == 0, res
    assert set(res["counts"]) == {"rs1", "rs2"}, res
    assert sum(res["counts"].values()) == 40
    # direct server return: the director saw only client->VIP traffic, never the replies
    assert topo.vs_packets("d1") > 0


def test_identical_tables_on_both_directors(topo):
    maps = [topo.exec(d, "nft", "list", "map", "netdev", "lbha", "buckets_tcp_10_252_0_111_80").stdout
            for d in ("d1", "d2")]
    assert "elements" in maps[0]
    assert maps[0] == maps[1]


def test_wrr_ratio_holds(topo):
    topo.reload(dataplane("wrr", (3, 1)),
                lambda vs: vs["lb_algo"] == "wrr" and [r["weight"] for r in vs["real_servers"]] == [3, 1])
    try:
        res = topo.many(200)
        assert res["failures"] == 0, res
        share = res["counts"].get("rs1", 0) / 200.0
        # 188 of 251 buckets (0.749); 200 random source ports: +-0.12 is over 3 sigma
        assert 0.62 <= share <= 0.88, res
    finally:
        topo.reload(dataplane(), _both_up)


def test_failed_server_is_removed_and_recovers(topo):
    topo.stop_server("rs1")
    try:
        until("rs1 down on d1", lambda: not topo.servers("d1")[NET + "3"]["healthy"], deadline=20)
        assert "Removing service [10.252.0.3]:tcp:80 from VS [10.252.0.111]:tcp:80" in topo.log("d1")
        res = topo.many(40)
        assert res["failures"] == 0, res
        assert res["counts"] == {"rs2": 40}, res
    finally:
        topo.start_server("rs1")
    until("rs1 up on d1", lambda: topo.servers("d1")[NET + "3"]["healthy"], deadline=20)
    assert "Adding service [10.252.0.3]:tcp:80 to VS [10.252.0.111]:tcp:80" in topo.log("d1")

    def both_answer():
        res = topo.many(20)
        return res["failures"] == 0 and set(res["counts"]) == {"rs1", "rs2"}
    until("both real servers answering again", both_answer, deadline=20, interval=0.5)


def _downloads_on_both(topo, limit=24):
    """Start paced downloads until one runs on each real server; returns {server: proc}."""
    found, extra = {}, []
    for _attempt in range(limit):
        proc, server = topo.slow()
        if server in found:
            extra.append(proc)
        else:
            found[server] = proc
        if len(found) == 2:
            break
    for proc in extra:
        proc.kill()
        proc.wait(10)
    assert set(found) == {"rs1", "rs2"}, "downloads landed on %s only" % sorted(found)
    return found


def test_drain_lets_running_flows_finish(topo):
    downloads = _downloads_on_both(topo)
    try:
        topo.reload(dataplane(drained=[NET + str(HOSTS["rs1"])]),
                    lambda vs: [r["weight"] for r in vs["real_servers"]] == [0, 1]
                    and vs["real_servers"][0]["drained"] and vs["real_servers"][0]["buckets"] == 0)
        res = topo.many(40)
        assert res["failures"] == 0, res
        assert res["counts"] == {"rs2": 40}, res
        for server, proc in downloads.items():
            assert proc.poll() is None, "the %s download ended before the drain was checked" % server
            done = topo.finish(proc)
            assert done["ok"] and done["server"] == server, done
    finally:
        for proc in downloads.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
        topo.reload(dataplane(), _both_up)


def test_drained_server_takes_no_new_connection_on_a_reused_client_port(topo):
    """A new connection from a port whose last connection went to a drained server is rehashed.

    The flow map still holds ``client . port -> rs1`` from the first round (its idle timeout is
    far longer than this test); only the SYN rule keeps the second round off rs1.
    """
    first = topo.from_ports(range(42000, 42016))
    assert not [v for v in first.values() if v.startswith("error")], first
    on_rs1 = sorted(p for p, v in first.items() if v == "rs1")
    assert on_rs1, "no client port hashed to rs1: %s" % first
    again = topo.from_ports(on_rs1)
    assert set(again.values()) == {"rs1"}, "a reused port moved while nothing changed: %s" % again
    topo.reload(dataplane(drained=[NET + str(HOSTS["rs1"]) + ":80"]),
                lambda vs: [r["weight"] for r in vs["real_servers"]] == [0, 1]
                and vs["real_servers"][0]["drained"] and vs["real_servers"][0]["buckets"] == 0)
    try:
        flows = topo.exec("d1", "nft", "list", "map", "netdev", "lbha", "flows_tcp_10_252_0_111_80").stdout
        pinned = {int(port) for port, sid in re.findall(
            r"10\.252\.0\.10 \. (\d+) (?:timeout \S+ )?expires \S+ : (0x[0-9a-f]+)", flows)
            if sid == "0x0afc0003"}
        assert set(on_rs1) <= pinned, "the flow map should still pin %s to rs1: %s" % (on_rs1, flows)
        drained = topo.from_ports(on_rs1)
        assert set(drained.values()) == {"rs2"}, "the drained rs1 took new connections: %s" % drained
    finally:
        topo.reload(dataplane(), _both_up)


def test_flows_survive_director_failover(topo):
    downloads = _downloads_on_both(topo)
    try:
        before = topo.vs_packets("d2")
        topo.ip("d1", "addr", "del", VIP + "/32", "dev", "eth0")
        topo.ip("d2", "addr", "add", VIP + "/32", "dev", "eth0")
        topo.garp("d2", VIP)
        until("client traffic reaching d2", lambda: topo.vs_packets("d2") > before, deadline=10)
        for server, proc in downloads.items():
            assert proc.poll() is None, "the %s download ended before the failover" % server
            done = topo.finish(proc)
            assert done["ok"] and done["server"] == server, done
        res = topo.many(20)
        assert res["failures"] == 0 and set(res["counts"]) == {"rs1", "rs2"}, res
    finally:
        for proc in downloads.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
        topo.ip("d2", "addr", "del", VIP + "/32", "dev", "eth0", check=False)
        topo.ip("d1", "addr", "add", VIP + "/32", "dev", "eth0", check=False)
        topo.garp("d1", VIP)


def test_checker_restart_keeps_table_and_flows(topo):
    """SIGTERM leaves the table loaded; a restart updates elements only, never the flow map."""
    proc, server = topo.slow(chunks=100)
    try:
        flows_before = topo.exec("d1", "nft", "list", "map", "netdev", "lbha", "flows_tcp_10_252_0_111_80").stdout
        assert "elements" in flows_before
        checker = topo.procs.pop("checker-d1")
        checker.terminate()
        assert checker.wait(15) == 0
        assert "buckets_tcp_10_252_0_111_80" in topo.exec("d1", "nft", "list", "table", "netdev", "lbha").stdout
        topo.directors, saved = ["d1"], topo.directors
        try:
            topo.start_checkers()
        finally:
            topo.directors = saved
        until("restarted checker's update", lambda: "table netdev lbha updated" in topo.log("d1"))
        done = topo.finish(proc)
        assert done["ok"] and done["server"] == server, done
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


@pytest.mark.parametrize("golden", ["seed.nft", "wrr.nft", "persistence.nft", "failed.nft", "multi.nft"])
def test_golden_rulesets_load_into_the_kernel(golden, request):
    """Every golden ruleset of the unit tests is accepted by this kernel and nft, and reloads."""
    ns = "%sgold%d" % (PREFIX, os.getpid())
    _run("ip", "netns", "add", ns)
    request.addfinalizer(lambda: _run("ip", "netns", "del", ns, check=False))
    _run("ip", "-n", ns, "link", "add", "eth0", "type", "veth", "peer", "name", "eth1")
    path = os.path.join(REPO, "tests", "unit", "fixtures", "nft", golden)
    for _attempt in range(2):
        res = _run("ip", "netns", "exec", ns, "nft", "-f", path, check=False)
        assert res.returncode == 0, res.stderr
    listing = _run("ip", "netns", "exec", ns, "nft", "-t", "list", "table", "netdev", "lbha").stdout
    with open(path) as fh:
        assert 'comment "lbha structure ' in listing
        assert listing.split('comment "', 1)[1].split('"', 1)[0] in fh.read()
