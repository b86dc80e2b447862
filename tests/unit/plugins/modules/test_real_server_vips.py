# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""lbha.cluster.real_server_vips against a simulated `ip` that keeps the addresses of lo in a file."""
from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import json

import pytest
from ansible.module_utils import basic

from ansible_collections.lbha.cluster.plugins.modules import real_server_vips

FAKE_IP = r'''#!/usr/bin/env python3
import json, sys
state, log = sys.argv[0] + ".json", sys.argv[0] + ".log"
args = sys.argv[1:]
with open(log, "a") as f:
    f.write(" ".join(args) + "\n")
addrs = json.load(open(state))
if args[:2] == ["-j", "addr"]:
    infos = [dict(family="inet6" if ":" in a else "inet", local=a, prefixlen=128 if ":" in a else 32,
                  **({"label": l} if l else {})) for a, l in addrs]
    print(json.dumps([{"ifname": "lo", "addr_info": infos}]))
    sys.exit(0)
v6 = args[0] == "-6"
args = args[1:] if v6 else args
address = args[2].split("/")[0]
if args[1] == "add":
    if address == "1.1.1.99":
        sys.stderr.write("RTNETLINK answers: Operation not permitted\n")
        sys.exit(2)
    if any(a == address for a, _l in addrs):
        sys.exit(2)
    addrs.append([address, args[args.index("label") + 1] if "label" in args else None])
elif args[1] == "del":
    addrs = [x for x in addrs if x[0] != address]
json.dump(addrs, open(state, "w"))
'''


class Host(object):
    def __init__(self, tmp_path, monkeypatch, run_module):
        self.ip = tmp_path / "ip"
        self.ip.write_text(FAKE_IP)
        self.ip.chmod(0o755)
        self.state = tmp_path / "ip.json"
        self.state.write_text("[]")
        self.log = tmp_path / "ip.log"
        self.unit = tmp_path / "lbha-vip.service"
        self.run_module = run_module
        monkeypatch.setattr(basic.AnsibleModule, "get_bin_path",
                            lambda module, name, required=False, opt_dirs=None: str(self.ip))

    def run(self, vips, **kw):
        return self.run_module(real_server_vips.main, dict(vips=vips, unit_path=str(self.unit), **kw))

    def addresses(self):
        return dict((a, l) for a, l in json.loads(self.state.read_text()))

    def changes(self):
        return [c for c in self.log.read_text().splitlines() if " add " in " %s " % c or " del " in " %s " % c] \
            if self.log.exists() else []


@pytest.fixture()
def host(tmp_path, monkeypatch, run_module):
    return Host(tmp_path, monkeypatch, run_module)


def test_converge_is_idempotent(host):
    result, failed = host.run(["1.1.1.111"])
    assert not failed and result["changed"] and result["added"] == ["1.1.1.111"]
    assert host.addresses() == {"1.1.1.111": "lo:1"}
    assert "addr replace 1.1.1.111/32 dev lo label lo:1" in host.unit.read_text()
    host.log.unlink()
    result, failed = host.run(["1.1.1.111"])
    assert not failed and not result["changed"] and host.changes() == []


def test_adding_a_vip_relabels_nothing_and_never_removes_a_live_vip(host):
    host.run(["1.1.1.111", "1.1.1.112"])
    host.log.unlink()
    result, failed = host.run(["1.1.1.100", "1.1.1.111", "1.1.1.112"])
    assert not failed and result["added"] == ["1.1.1.100"] and result["removed"] == []
    assert host.changes() == ["addr add 1.1.1.100/32 dev lo label lo:3"]
    assert host.addresses() == {"1.1.1.111": "lo:1", "1.1.1.112": "lo:2", "1.1.1.100": "lo:3"}


def test_a_removed_vip_is_deleted_and_the_rest_untouched(host):
    host.run(["1.1.1.111", "1.1.1.112"])
    host.log.unlink()
    result, failed = host.run(["1.1.1.112"])
    assert not failed and result["removed"] == ["1.1.1.111"] and host.changes() == ["addr del 1.1.1.111/32 dev lo"]
    assert host.addresses() == {"1.1.1.112": "lo:2"}


def test_no_vip_left_removes_the_unit(host):
    host.run(["1.1.1.111"])
    result, failed = host.run([])
    assert not failed and result["removed"] == ["1.1.1.111"] and result["unit_changed"]
    assert not host.unit.exists() and host.addresses() == {}


def test_check_mode_and_diff_change_nothing(host):
    result, failed = host.run(["1.1.1.111"], _ansible_check_mode=True, _ansible_diff=True)
    assert not failed and result["changed"] and result["added"] == ["1.1.1.111"]
    assert "label lo:1" in result["diff"]["after"]
    assert host.addresses() == {} and not host.unit.exists()


def test_a_bad_vip_changes_nothing(host):
    result, failed = host.run(["1.1.1.111", "fe80::1%eth0"])
    assert failed and "vips[1]" in result["msg"]
    assert host.addresses() == {} and not host.unit.exists()


def test_a_failing_ip_says_which_command_and_why(host):
    result, failed = host.run(["1.1.1.99"])
    assert failed
    assert result["msg"] == "addr add 1.1.1.99/32 dev lo label lo:1 failed: RTNETLINK answers: Operation not permitted"
    # the unit was written first, so a reboot retries what failed; the result says what it holds
    assert result["vips"] == [{"address": "1.1.1.99", "label": "lo:1", "version": 4}] and result["unit_changed"]


ARP = {"net.ipv4.conf.all.arp_ignore": 1, "net.ipv4.conf.all.arp_announce": 2, "net.ipv4.conf.lo.arp_ignore": 1}


@pytest.fixture()
def kernel(tmp_path, monkeypatch):
    """/proc/sys of a host that answers ARP for every address (the kernel's defaults)."""
    from ansible_collections.lbha.cluster.plugins.module_utils import sysctl
    root = tmp_path / "proc"
    for key in ARP:
        path = root / key.replace(".", "/")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("0\n")
    monkeypatch.setattr(sysctl, "PROC", str(root))
    return root


def test_sysctls_are_set_and_kept_in_the_same_call_as_the_vips(host, kernel, tmp_path):
    conf = tmp_path / "90-lbha-real-server.conf"
    result, failed = host.run(["1.1.1.111"], sysctls=ARP, sysctl_file=str(conf), sysctl_header="Managed: test")
    assert not failed and result["changed"]
    assert sorted(result["sysctls_set"]) == sorted(ARP) and result["sysctl_file_changed"]
    assert (kernel / "net/ipv4/conf/all/arp_announce").read_text().strip() == "2"
    assert conf.read_text().startswith("# Managed: test") and "net.ipv4.conf.lo.arp_ignore=1" in conf.read_text()
    assert host.addresses() == {"1.1.1.111": "lo:1"}
    again, _failed = host.run(["1.1.1.111"], sysctls=ARP, sysctl_file=str(conf), sysctl_header="Managed: test")
    assert not again["changed"] and again["sysctls_set"] == [] and not again["sysctl_file_changed"]
    # drift of a live value is put back, and that alone is a change
    (kernel / "net/ipv4/conf/lo/arp_ignore").write_text("0\n")
    drift, _failed = host.run(["1.1.1.111"], sysctls=ARP, sysctl_file=str(conf), sysctl_header="Managed: test")
    assert drift["changed"] and drift["sysctls_set"] == ["net.ipv4.conf.lo.arp_ignore"] and host.changes() == [
        c for c in host.changes() if "1.1.1.111" in c]


def test_sysctls_in_check_mode_change_nothing_and_show_both_files(host, kernel, tmp_path):
    conf = tmp_path / "90-lbha-real-server.conf"
    result, failed = host.run(["1.1.1.111"], sysctls=ARP, sysctl_file=str(conf),
                              _ansible_check_mode=True, _ansible_diff=True)
    assert not failed and result["changed"]
    assert [d["before_header"] for d in result["diff"]] == [str(conf), str(host.unit)]
    assert not conf.exists() and host.addresses() == {}
    assert (kernel / "net/ipv4/conf/all/arp_ignore").read_text().strip() == "0"


def test_an_unknown_sysctl_key_changes_nothing(host, kernel, tmp_path):
    result, failed = host.run(["1.1.1.111"], sysctls={"net.ipv4.conf.nosuch0.arp_ignore": 1},
                              sysctl_file=str(tmp_path / "x.conf"))
    assert failed and "nosuch0" in result["msg"]
    assert host.addresses() == {} and not (tmp_path / "x.conf").exists()
