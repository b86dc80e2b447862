# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The nftables DR plane forwarding IPv6, in network namespaces on this machine.

The IPv4 topology of ``test_nft_plane_netns.py`` on a ULA (fd6c:6268:6200::/64), one director::

    lbh6n-cli ::10 ─┐
    lbh6n-d1  ::1  ─┤  bridge in lbh6n-sw   (the VIP ::111/64 on eth0, lbha-checker)
    lbh6n-rs1 ::3  ─┤                       (the VIP ::111/128 on lo, nodad; an HTTP server)
    lbh6n-rs2 ::4  ─┘

The director runs ``lbha-checker`` from this tree: it health-checks the real servers over IPv6
and loads the ``ip6`` ruleset, whose ``fwd ip6 to`` resolves each real server by neighbour
discovery; the real servers answer the client from the VIP (direct server return).
"""
from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import json
import subprocess

import pytest
from netns_helpers import until

import test_nft_plane_netns as v4

NET = "fd6c:6268:6200::"
VIP = NET + "111"
HOSTS = {"d1": 1, "rs1": 3, "rs2": 4, "cli": 10}

SERVER = r'''
import socket, sys, threading
s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("::", 80))
s.listen(64)
def serve(c):
    try:
        c.recv(1024)
        c.sendall(("HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\n%s %s\n"
                   % (sys.argv[1], c.getsockname()[0])).encode())
    finally:
        c.close()
while True:
    c, _peer = s.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
'''

CLIENT = r'''
import json, socket, sys
counts, local, errors = {}, set(), []
for _attempt in range(int(sys.argv[2])):
    try:
        c = socket.create_connection((sys.argv[1], 80), timeout=3)
        c.sendall(b"GET / HTTP/1.0\r\n\r\n")
        data = b""
        while True:
            chunk = c.recv(4096)
            if not chunk:
                break
            data += chunk
        c.close()
        name, addr = data.split(b"\r\n\r\n", 1)[1].decode().split()
        counts[name] = counts.get(name, 0) + 1
        local.add(addr)
    except Exception as exc:
        errors.append(repr(exc))
print(json.dumps({"counts": counts, "answered_from": sorted(local), "failures": len(errors), "errors": errors[:5]}))
'''


def dataplane():
    """The host document of ``test_nft_plane_netns.dataplane`` with this file's IPv6 addresses."""
    doc = v4.dataplane()
    vs = doc["model"]["virtual_servers"][0]
    vs["address"] = VIP
    for rs in vs["real_servers"]:
        rs["address"] = NET + str(HOSTS[rs["name"]])
    return doc


class Topology6(v4.Topology):
    def __init__(self):
        super(Topology6, self).__init__(directors=("d1",), prefix="lbh6n-")

    def build(self):
        self.ipv6_lan(NET, HOSTS, "02:52:00:00:07:%02x")
        for rs in ("rs1", "rs2"):
            # what the real_server role does for an IPv6 VIP; no sysctl (see test_ipv6_neighbours_netns.py)
            self.ip(rs, "-6", "addr", "add", VIP + "/128", "dev", "lo", "nodad")
            self.start_server(rs)
        # as keepalived adds an IPv6 VIP: nodad, and deprecated (preferred_lft 0) so that the
        # director's own connections (its health checks) never leave from the VIP
        self.ip("d1", "-6", "addr", "add", VIP + "/64", "dev", "eth0", "nodad", "preferred_lft", "0")

    def start_server(self, rs):
        self.procs["http-" + rs] = self.popen(rs, v4.PYTHON, "-c", SERVER, rs,
                                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        until("the HTTP server of %s" % rs, lambda: self.exec(
            "cli", v4.PYTHON, "-c", "import socket; socket.create_connection(('%s%d', 80), 1).close()"
            % (NET, HOSTS[rs]), check=False).returncode == 0)

    def many(self, n):
        res = self.exec("cli", v4.PYTHON, "-c", CLIENT, VIP, str(n), timeout=n * 4 + 30)
        return json.loads(res.stdout)


@pytest.fixture(scope="module")
def topo(request):
    t = Topology6()
    request.addfinalizer(t.close)
    t.build()
    t.write_config(dataplane())
    t.start_checkers()
    until("both real servers healthy on d1",
          lambda: len(t.servers("d1")) == 2 and all(r["healthy"] for r in t.servers("d1").values()))
    return t


pytestmark = pytest.mark.skipif(bool(v4._MISSING), reason="needs " + "; ".join(v4._MISSING))


def test_the_director_loads_an_ip6_ruleset(topo):
    table = topo.exec("d1", "nft", "list", "table", "netdev", "lbha").stdout
    assert "ip6 daddr %s tcp dport 80" % VIP in table, table
    assert "fwd ip6 to" in table, table


def test_ipv6_requests_through_the_vip_reach_both_real_servers_and_return_from_the_vip(topo):
    res = topo.many(40)
    assert res["failures"] == 0, res
    assert set(res["counts"]) == {"rs1", "rs2"}, res
    # direct server return: each real server answered on the VIP it holds on lo
    assert res["answered_from"] == [VIP], res


def test_a_failed_ipv6_real_server_leaves_the_pool_and_returns(topo):
    topo.stop_server("rs1")
    try:
        until("rs1 down on d1", lambda: not topo.servers("d1")[NET + "3"]["healthy"], deadline=20)
        # rs2 was checked meanwhile (every second) and passed: the director's IPv6 checks work
        # (a real server starts healthy, before its first check)
        rs2 = topo.servers("d1")[NET + "4"]
        assert rs2["healthy"] and rs2["last_error"] is None, rs2
        res = topo.many(20)
        assert res["failures"] == 0 and set(res["counts"]) == {"rs2"}, res
    finally:
        topo.start_server("rs1")
    until("rs1 back on d1", lambda: topo.servers("d1")[NET + "3"]["healthy"], deadline=20)
    res = topo.many(40)
    assert res["failures"] == 0 and set(res["counts"]) == {"rs1", "rs2"}, res
    assert "Removing service [%s3]:tcp:80" % NET in topo.log("d1"), topo.log("d1")[-2000:]
