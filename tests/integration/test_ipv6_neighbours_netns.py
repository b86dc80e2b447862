# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""IPv6 direct routing's neighbour discovery on this machine's kernel, in network namespaces.

IPv4 DR needs ``arp_ignore=1`` and ``arp_announce=2`` on the real servers, or they answer ARP for
the VIP they hold on ``lo`` and announce it. These tests measure what IPv6 needs instead: a VIP
held as a /128 on ``lo`` (``nodad``), and nothing else. Linux answers a neighbour solicitation
only for an address of the interface it arrived on (``ndisc_recv_ns``: a strict lookup on that
device; ``proxy_ndp`` off, the default), and solicits from an address of the outgoing interface
(its link-local address when the packet's source, the VIP, is on another interface).

Topology (ULA fd6c:6268:6100::/64 only, no routes out, every namespace named ``lbh6-*``)::

    lbh6-cli ::10 ─┐
    lbh6-d1  ::1  ─┤  bridge in lbh6-sw     (the MASTER: the VIP ::111/64 on eth0)
    lbh6-rs1 ::3  ─┘                        (the VIP ::111/128 on lo, an HTTP server on [::]:80)
"""
from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import json
import os
import shutil
import subprocess
import sys

import pytest
from netns_helpers import Namespaces, run as _run

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
NDPROBE = os.path.join(REPO, "molecule", "suite", "lbha_suite", "ndprobe.py")
PREFIX = "lbh6-"
NET = "fd6c:6268:6100::"
VIP = NET + "111"
HOSTS = {"d1": 1, "rs1": 3, "cli": 10}
MAC = "02:52:00:00:06:%02x"
PYTHON = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable

SERVER = r'''
import socket, sys
s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("::", 80))
s.listen(16)
sys.stdout.write("listening\n"); sys.stdout.flush()
while True:
    c, peer = s.accept()
    c.recv(1024)
    c.sendall(("%s %s\n" % (sys.argv[1], c.getsockname()[0])).encode())
    c.close()
'''

CLIENT = r'''
import socket, sys
c = socket.create_connection((sys.argv[1], 80), timeout=3)
c.sendall(b"hello\n")
print(c.recv(1024).decode().strip())
'''


def missing_prerequisites():
    """What this machine lacks for these tests (empty when all is there)."""
    if os.geteuid() != 0:
        return ["root (network namespaces and raw sockets need CAP_NET_ADMIN and CAP_NET_RAW)"]
    if not shutil.which("ip"):
        return ["the 'ip' command"]
    probe = "%sprobe%d" % (PREFIX, os.getpid())
    res = _run("ip", "netns", "add", probe, check=False)
    if res.returncode != 0:
        return ["network namespaces ('ip netns add' failed: %s)" % res.stderr.strip()]
    try:
        if not os.path.exists("/proc/sys/net/ipv6"):
            return ["IPv6 in the kernel"]
    finally:
        _run("ip", "netns", "del", probe, check=False)
    return []


MISSING = missing_prerequisites()
pytestmark = pytest.mark.skipif(bool(MISSING), reason="this machine lacks %s" % ", ".join(MISSING))


def mac_of(name):
    return MAC % HOSTS[name]


class Topology(Namespaces):
    def __init__(self):
        super(Topology, self).__init__(PREFIX)
        self.procs = []

    def build(self):
        self.ipv6_lan(NET, HOSTS, MAC)
        # the real server: the VIP on lo, as the real_server role holds an IPv4 one (label lo:1
        # has no IPv6 counterpart); the director: the VIP on its interface
        self.ip("rs1", "-6", "addr", "add", VIP + "/128", "dev", "lo", "nodad")
        # as keepalived adds an IPv6 VIP: nodad, and deprecated (preferred_lft 0) so that the
        # director's own connections (its health checks) never leave from the VIP
        self.ip("d1", "-6", "addr", "add", VIP + "/64", "dev", "eth0", "nodad", "preferred_lft", "0")
        server = self.popen("rs1", PYTHON, "-c", SERVER, "rs1", stdout=subprocess.PIPE, universal_newlines=True)
        self.procs.append(server)
        assert server.stdout.readline().strip() == "listening"

    def solicit(self, target, count=3):
        out = self.exec("cli", PYTHON, NDPROBE, "solicit", "eth0", target, str(count), "0.5").stdout
        return json.loads(out)

    def close(self):
        for proc in self.procs:
            proc.terminate()
            proc.wait(10)
        self.delete_all()


@pytest.fixture
def topo():
    topology = Topology()
    try:
        topology.build()
        yield topology
    finally:
        topology.close()


def test_only_the_director_answers_solicitations_for_the_vip(topo):
    assert VIP in topo.ip("rs1", "-6", "addr", "show", "dev", "lo").stdout
    result = topo.solicit(VIP)
    assert result["macs"] == [mac_of("d1")], result
    assert all(r.get("tlla") == mac_of("d1") for r in result["replies"]), result


def test_a_real_server_holding_the_vip_on_lo_never_answers_for_it(topo):
    # the director releases the VIP (a BACKUP): nobody may answer, the real server least of all
    topo.ip("d1", "-6", "addr", "del", VIP + "/64", "dev", "eth0")
    assert VIP in topo.ip("rs1", "-6", "addr", "show", "dev", "lo").stdout
    result = topo.solicit(VIP)
    assert result["replies"] == [], result
    # while it answers for an address of its own interface: the probe sees answers at all
    own = topo.solicit(NET + "3")
    assert own["macs"] == [mac_of("rs1")], own


def test_a_real_server_answering_from_the_vip_solicits_from_its_own_address(topo):
    # DR: the client's packet reaches the real server's MAC (the director rewrote it), the reply
    # leaves from the VIP; the real server must resolve the client without naming the VIP
    topo.ip("cli", "-6", "neigh", "replace", VIP, "lladdr", mac_of("rs1"), "dev", "eth0", "nud", "permanent")
    watcher = topo.popen("cli", PYTHON, NDPROBE, "watch", "eth0", "4",
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True)
    try:
        assert watcher.stderr.readline().strip() == "listening"
        answer = topo.exec("cli", PYTHON, "-c", CLIENT, VIP).stdout.strip()
    finally:
        out, _err = watcher.communicate(timeout=30)
    # served by the real server, from the VIP (the connection's local address there)
    assert answer == "rs1 %s" % VIP
    seen = [s for s in json.loads(out)["solicitations"] if s["eth_src"] == mac_of("rs1")]
    assert seen, "the real server did not solicit the client's address: %s" % out
    assert all(s["src"] != VIP and s["src"].startswith("fe80:") for s in seen), seen
