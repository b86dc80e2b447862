# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The real server's health path in network namespaces: a director's check reaches the service
only while the VIP is on the real server; other traffic is untouched.

    lbhah-d  10.253.0.1 (director), 10.253.0.9 (an address that is no director)
       └─ veth ─┐
    lbhah-rs 10.253.0.3, VIP 10.253.0.111/32 on lo, a TCP service on every address, port 8080
"""
from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import importlib.util
import os
import shutil
import subprocess
import sys
import time

import pytest

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
_SPEC = importlib.util.spec_from_file_location("lbha_realserver",
                                               os.path.join(REPO, "plugins", "module_utils", "realserver.py"))
realserver = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(realserver)

D, RS = "lbhah-d", "lbhah-rs"
DIRECTOR, OTHER, RIP, VIP, PORT = "10.253.0.1", "10.253.0.9", "10.253.0.3", "10.253.0.111", 8080

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or not all(shutil.which(t) for t in ("ip", "nft")),
    reason="needs root, ip and nft (network namespaces)")

CONNECT = r'''
import socket, sys
s = socket.socket()
s.settimeout(1.5)
s.bind((sys.argv[1], 0))
try:
    s.connect((sys.argv[2], int(sys.argv[3])))
    print("connected")
except OSError as exc:
    print("failed: %s" % exc)
'''


def sh(*argv, **kw):
    return subprocess.run(list(argv), check=kw.pop("check", True), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True, timeout=30, **kw)


def ns(name, *argv, **kw):
    return sh("ip", "netns", "exec", name, *argv, **kw)


@pytest.fixture(scope="module")
def topology():
    for name in (D, RS):
        sh("ip", "netns", "del", name, check=False)
        sh("ip", "netns", "add", name)
        ns(name, "ip", "link", "set", "lo", "up")
    sh("ip", "link", "add", "lbhah0", "netns", D, "type", "veth", "peer", "name", "lbhah1", "netns", RS)
    ns(D, "ip", "addr", "add", DIRECTOR + "/24", "dev", "lbhah0")
    ns(D, "ip", "addr", "add", OTHER + "/24", "dev", "lbhah0")
    ns(D, "ip", "link", "set", "lbhah0", "up")
    ns(RS, "ip", "addr", "add", RIP + "/24", "dev", "lbhah1")
    ns(RS, "ip", "link", "set", "lbhah1", "up")
    for key, value in (("arp_ignore", "1"), ("arp_announce", "2")):
        ns(RS, "sysctl", "-qw", "net.ipv4.conf.all.%s=%s" % (key, value))
    server = subprocess.Popen(["ip", "netns", "exec", RS, sys.executable, "-c",
                               "import socket,time\ns=socket.socket()\ns.setsockopt(socket.SOL_SOCKET,"
                               "socket.SO_REUSEADDR,1)\ns.bind(('0.0.0.0',%d))\ns.listen(64)\n"
                               "while True:\n c,_=s.accept()\n c.close()\n" % PORT])
    ruleset = realserver.health_ruleset(RIP, [{"address": VIP, "port": PORT, "protocol": "TCP"}], [DIRECTOR])
    ns(RS, "nft", "-f", "-", input=ruleset)
    try:
        yield
    finally:
        server.kill()
        server.wait()
        for name in (D, RS):
            sh("ip", "netns", "del", name, check=False)


def connect(source, dest=RIP):
    return ns(D, sys.executable, "-c", CONNECT, source, dest, str(PORT)).stdout.strip()


def until(predicate, seconds=10):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


def test_the_check_passes_with_the_vip_fails_without_and_comes_back(topology):
    ns(RS, "ip", "addr", "replace", VIP + "/32", "dev", "lo", "label", "lo:1")
    assert until(lambda: connect(DIRECTOR) == "connected"), connect(DIRECTOR)
    ns(RS, "ip", "addr", "del", VIP + "/32", "dev", "lo")
    assert connect(DIRECTOR).startswith("failed"), "the check passed although the VIP is gone"
    assert connect(OTHER) == "connected", "traffic from an address that is no director was touched"
    ns(RS, "ip", "addr", "replace", VIP + "/32", "dev", "lo", "label", "lo:1")
    assert until(lambda: connect(DIRECTOR) == "connected")


def test_without_the_ruleset_the_check_cannot_tell(topology):
    """The control: the service answers on the real server's address whether the VIP is there or not."""
    ns(RS, "ip", "addr", "del", VIP + "/32", "dev", "lo", check=False)
    ns(RS, "nft", "delete", "table", "inet", realserver.HEALTH_TABLE)
    try:
        assert until(lambda: connect(DIRECTOR) == "connected")
    finally:
        ns(RS, "nft", "-f", "-", input=realserver.health_ruleset(RIP, [{"address": VIP, "port": PORT}], [DIRECTOR]))
