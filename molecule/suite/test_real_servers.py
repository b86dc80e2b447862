# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The real servers after converge: VIP on lo, ARP sysctls, firewalld, nginx, silence on ARP."""
from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import re
import subprocess
import threading

import pytest

from lbha_suite.cluster import (CLIENT, DIRECTORS, DIRECTOR_MASTER, PAGES, REAL_SERVERS, SERVICE_PORT, VIP,
                                arp_replies, wait_for)
from lbha_suite.playbooks import run_module, write_inventory

SCOPES = ("all", "lo", "default")


def test_vip_is_on_lo_as_32_with_label(real_server):
    vips = [a for a in real_server.addresses("lo") if a["local"] == VIP]
    assert [(a["prefixlen"], a.get("label")) for a in vips] == [(32, "lo:1")]


def test_vip_is_on_no_other_interface(real_server):
    assert VIP not in [a["local"] for a in real_server.addresses(real_server.interface)]


def test_vip_unit_holds_the_vip_across_reboots(real_server):
    assert real_server.is_enabled("lbha-vip.service")
    assert real_server.is_active("lbha-vip.service")
    unit = real_server.check("systemctl", "cat", "lbha-vip.service")
    assert re.search(r"^ExecStart=/\S*/ip addr replace %s/32 dev lo label lo:1$" % re.escape(VIP), unit, re.M), unit
    assert re.search(r"^ExecStop=-/\S*/ip addr del %s/32 dev lo$" % re.escape(VIP), unit, re.M), unit


@pytest.mark.parametrize("scope", SCOPES)
def test_arp_sysctls_hold(real_server, scope):
    assert real_server.sysctl("net.ipv4.conf.%s.arp_ignore" % scope) == "1"
    assert real_server.sysctl("net.ipv4.conf.%s.arp_announce" % scope) == "2"
    assert real_server.sysctl("net.ipv4.conf.%s.rp_filter" % scope) == "2"


def test_sysctls_persist_in_sysctl_d(real_server):
    lines = set(real_server.check("cat", "/etc/sysctl.d/90-lbha-real-server.conf").split())
    for scope in SCOPES:
        assert "net.ipv4.conf.%s.arp_ignore=1" % scope in lines
        assert "net.ipv4.conf.%s.arp_announce=2" % scope in lines


@pytest.mark.parametrize("permanent", [False, True], ids=["runtime", "permanent"])
def test_firewalld_allows_the_service_port(real_server, permanent):
    assert real_server.is_active("firewalld")
    argv = ["firewall-cmd", "--list-ports"] + (["--permanent"] if permanent else [])
    assert "%d/tcp" % SERVICE_PORT in real_server.check(*argv).split()


def test_nginx_serves_its_page_on_the_real_ip(real_server, client):
    assert real_server.is_active("nginx") and real_server.is_enabled("nginx")
    url = "http://%s:%d/" % (REAL_SERVERS[real_server.name], SERVICE_PORT)
    assert client.check("curl", "-sS", "--max-time", "5", url).strip() == PAGES[real_server.name]


def test_nginx_answers_on_the_vip_locally(real_server):
    url = "http://%s:%d/" % (VIP, SERVICE_PORT)
    assert real_server.check("curl", "-sS", "--max-time", "5", url).strip() == PAGES[real_server.name]


def test_no_real_server_answers_arp_for_the_vip(topology):
    real_macs = {topology[name].mac() for name in REAL_SERVERS}
    answered = arp_replies(topology[CLIENT], VIP)
    assert not real_macs.intersection(answered), "real server(s) answered ARP for the VIP: %s" % answered


def test_only_the_master_answers_arp_for_the_vip(topology, steady_cluster):
    master = topology[DIRECTOR_MASTER]
    answered = arp_replies(topology[CLIENT], VIP)
    assert answered == [master.mac()], (
        "expected only %s (%s) to answer, got %s; directors: %s" % (
            DIRECTOR_MASTER, master.mac(), answered, {n: topology[n].mac() for n in DIRECTORS}))


class AddressMonitor(object):
    """`ip -o monitor address` on a host, its lines collected by a thread on the controller."""

    PROBE = "10.99.99.254"

    def __init__(self, host):
        self.host = host
        self.lines = []
        self.proc = host.popen("timeout", "120", "ip", "-o", "monitor", "address",
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, universal_newlines=True)
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def wait_ready(self):
        """A probe address added and deleted until the monitor reports it: it is subscribed."""
        def seen():
            self.host.check("ip", "addr", "replace", "%s/32" % self.PROBE, "dev", "lo")
            self.host.check("ip", "addr", "del", "%s/32" % self.PROBE, "dev", "lo")
            return any(" %s/" % self.PROBE in line for line in list(self.lines))
        wait_for(seen, 30, "ip monitor on %s to report address events" % self.host.name, interval=0.5)

    def stop(self):
        self.proc.stdin.close()
        self.proc.terminate()
        self.proc.wait(timeout=30)
        self.thread.join(timeout=30)
        return [line for line in self.lines if " %s/" % self.PROBE not in line]


def test_adding_a_vip_relabels_nothing_and_never_takes_a_live_vip_down(topology, tmp_path):
    """A new VIP listed before the cluster's takes the next free label; the cluster's VIP keeps
    lo:1 and is never deleted (ip monitor records every address event on the host meanwhile)."""
    web = topology[sorted(REAL_SERVERS)[0]]
    extra = "10.99.99.1"
    inventory = write_inventory(str(tmp_path))
    monitor = AddressMonitor(web)
    try:
        monitor.wait_ready()
        added = run_module(inventory, web.name, "real_server_vips", {"vips": [extra, VIP]})
        assert added.returncode == 0, added.tail()
        labels = dict((a["local"], a.get("label")) for a in web.addresses("lo") if a["prefixlen"] == 32)
        assert labels == {VIP: "lo:1", extra: "lo:2"}, labels
    finally:
        restored = run_module(inventory, web.name, "real_server_vips", {"vips": [VIP]})
        # the removal of the extra VIP is reported before the monitor stops
        if restored.returncode == 0 and any(" %s/" % extra in line for line in list(monitor.lines)):
            wait_for(lambda: any("Deleted" in line and " %s/" % extra in line for line in list(monitor.lines)),
                     30, "ip monitor to report the removal of %s" % extra)
        events = monitor.stop()
    assert restored.returncode == 0, restored.tail()
    assert [a["local"] for a in web.addresses("lo") if a["prefixlen"] == 32] == [VIP]
    assert not [line for line in events if "Deleted" in line and " %s/" % VIP in line], events
    assert any(" %s/" % extra in line and "Deleted" not in line for line in events), \
        "ip monitor did not see %s added: %s" % (extra, events)
