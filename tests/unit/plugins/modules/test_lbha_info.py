# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""lbha.cluster.lbha_info with captured command outputs (ip, ipvsadm, nft) and files in a temp dir."""
from __future__ import (absolute_import, division, print_function)
from __future__ import annotations
__metaclass__ = type

import json
import os
import time

import pytest

from ansible_collections.lbha.cluster.plugins.module_utils import hostdoc
from ansible_collections.lbha.cluster.plugins.modules import lbha_info

FIXTURES = os.path.join(os.path.dirname(__file__), "..", "..", "fixtures")


def fixture(*parts):
    with open(os.path.join(FIXTURES, *parts)) as f:
        return f.read()


class Host:
    """Commands and files of a simulated director."""

    def __init__(self, tmp_path, monkeypatch):
        self.tmp = tmp_path
        self.commands = {}
        self.bins = {"ip", "ipvsadm", "nft", "pidof"}
        self.ran = []
        self.proc = tmp_path / "proc"
        self.proc.mkdir()
        self.proc_ip_vs = tmp_path / "proc_net_ip_vs"
        monkeypatch.setattr(lbha_info, "PROC", str(self.proc))
        monkeypatch.setattr(lbha_info, "PROC_IP_VS", str(self.proc_ip_vs))
        host = self

        def get_bin_path(module, arg, required=False, opt_dirs=None):
            if arg in host.bins:
                return "/fake/" + arg
            if required:
                module.fail_json(msg="Failed to find required executable %s" % arg)
            return None

        def run_command(module, args, **kwargs):
            key = " ".join(os.path.basename(a) if i == 0 else a for i, a in enumerate(args))
            host.ran.append(key)
            return host.commands.get(key, (1, "", "%s: not simulated" % key))

        monkeypatch.setattr(lbha_info.AnsibleModule, "get_bin_path", get_bin_path)
        monkeypatch.setattr(lbha_info.AnsibleModule, "run_command", run_command)
        self.doc = tmp_path / "cluster.json"
        self.state_dir = tmp_path / "vrrp"
        self.checker = tmp_path / "checker.json"
        self.pidfile = tmp_path / "keepalived.pid"

    def args(self, **kw):
        base = dict(document=str(self.doc), keepalived_pidfile=str(self.pidfile))
        base.update(kw)
        return base

    def document(self, plane, drained=()):
        """A host document with the instances of the status fixtures: VI_1 and VI_2."""
        def vs(address, port):
            return {"address": address, "port": port, "protocol": "TCP", "real_servers": [
                {"address": "1.1.1.3", "port": port, "weight": 1}, {"address": "1.1.1.4", "port": port, "weight": 1}]}
        doc = {"format": hostdoc.FORMAT, "version": hostdoc.VERSION, "director": "lb1", "plane": plane,
               "paths": dict(hostdoc.DEFAULT_PATHS, vrrp_state_dir=str(self.state_dir),
                             checker_state=str(self.checker)),
               "services": dict(hostdoc.DEFAULT_SERVICES),
               "nftables": dict(hostdoc.NFTABLES_DEFAULTS, seed=1) if plane == "nftables" else None,
               "drained": sorted(drained),
               "model": {"vrrp_instances": [
                   {"name": "VI_1", "interface": "eth0", "virtual_router_id": 51, "priority": 100, "state": "MASTER",
                    "virtual_ipaddress": [{"address": a} for a in ("1.1.1.111", "1.1.1.112", "2001:db8::111")]},
                   {"name": "VI_2", "interface": "eth1", "virtual_router_id": 52, "priority": 100, "state": "MASTER",
                    "virtual_ipaddress": [{"address": "10.0.0.10"}]}],
                   "virtual_servers": [vs("1.1.1.111", 80)]}}
        self.doc.write_text(json.dumps(doc))

    def ip_addr(self, name):
        self.commands["ip -j addr show"] = (0, fixture("status", name), "")

    def ipvs(self):
        self.proc_ip_vs.write_text("IP Virtual Server version 1.2.1 (size=4096)\n")
        self.commands["ipvsadm -L -n"] = (0, fixture("ipvs", "list-seed.txt"), "")
        self.commands["ipvsadm -L -n --stats --exact"] = (0, fixture("ipvs", "stats-seed.txt"), "")

    def nft(self):
        self.commands["nft -j list table netdev lbha"] = (0, fixture("status", "nft-list-table.json"), "")

    def keepalived_pid(self, pid, comm="keepalived"):
        self.pidfile.write_text("%d\n" % pid)
        (self.proc / str(pid)).mkdir()
        (self.proc / str(pid) / "comm").write_text(comm + "\n")

    def vrrp_state(self, name, state):
        self.state_dir.mkdir(exist_ok=True)
        (self.state_dir / (name + ".state")).write_text(state + "\n")


@pytest.fixture
def host(tmp_path, monkeypatch):
    return Host(tmp_path, monkeypatch)


def test_ipvs_master(run_module, host):
    host.ip_addr("ip-addr-director-master.json")
    host.ipvs()
    host.document("ipvs", drained=["1.1.1.4"])
    host.vrrp_state("VI_1", "MASTER")
    host.keepalived_pid(812)
    result, failed = run_module(lbha_info.main, host.args())
    assert not failed, result
    assert result["changed"] is False
    assert result["deployed"] and result["director"] == "lb1"
    assert result["dataplane"] == "ipvs" and result["checker"] is None and result["drained"] == ["1.1.1.4"]
    assert result["keepalived"] == {"running": True, "pid": 812}
    assert result["vrrp_instances"] == [
        {"name": "VI_1", "state": "MASTER", "state_source": "file", "virtual_router_id": 51, "priority": 100,
         "nopreempt": False, "vips": ["1.1.1.111", "1.1.1.112", "2001:db8::111"]},
        {"name": "VI_2", "state": "BACKUP", "state_source": "vip", "virtual_router_id": 52, "priority": 100,
         "nopreempt": False, "vips": ["10.0.0.10"]},
    ]
    assert [(v["address"], v["held"], v["interface"]) for v in result["vips"]] == [
        ("1.1.1.111", True, "eth0"), ("1.1.1.112", False, None), ("2001:db8::111", True, "eth0"),
        ("10.0.0.10", False, None)]
    assert result["master"] is True and result["master_instances"] == ["VI_1"]
    web = result["virtual_servers"][0]
    assert (web["address"], web["port"], web["protocol"], web["scheduler"]) == ("1.1.1.111", 80, "TCP", "rr")
    rs3, rs4 = web["real_servers"]
    assert (rs3["healthy"], rs3["weight"], rs3["active_conn"], rs3["inactive_conn"], rs3["conns"],
            rs3["in_packets"], rs3["out_packets"], rs3["in_bytes"], rs3["out_bytes"]) == \
        (True, 1, 2, 4, 6, 36, 0, 2244, 0)
    assert (rs4["healthy"], rs4["weight"], rs4["drained"]) == (False, 0, True)
    assert rs3["drained"] is False
    assert "ipvsadm -L -n --stats --exact" in host.ran


def test_nftables_backup_by_vip_fallback(run_module, host):
    host.ip_addr("ip-addr-director-backup.json")
    host.nft()
    checker = json.loads(fixture("status", "checker.json"))
    checker.update(pid=os.getpid(), updated=time.time())
    host.checker.write_text(json.dumps(checker))
    (host.proc / str(os.getpid())).mkdir()
    (host.proc / str(os.getpid()) / "cmdline").write_text("/usr/bin/python3\0/usr/lib/lbha-cluster/lbha_checkerd.py\0")
    host.document("nftables")
    host.commands["pidof keepalived"] = (0, "813 812\n", "")
    result, failed = run_module(lbha_info.main, host.args(_ansible_check_mode=True))
    assert not failed, result
    assert result["dataplane"] == "nftables"
    assert result["checker"]["alive"] and result["checker"]["table_loaded"] and result["checker"]["pid"] == os.getpid()
    # the same pid now belongs to another program: the checker is dead
    (host.proc / str(os.getpid()) / "cmdline").write_text("/bin/sleep\0" + "60\0")
    result, failed = run_module(lbha_info.main, host.args(_ansible_check_mode=True))
    assert not failed and result["checker"]["alive"] is False
    (host.proc / str(os.getpid()) / "cmdline").write_text("/usr/bin/python3\0/usr/lib/lbha-cluster/lbha_checkerd.py\0")
    assert [(i["name"], i["state"], i["state_source"]) for i in result["vrrp_instances"]] == [
        ("VI_1", "BACKUP", "vip"), ("VI_2", "BACKUP", "vip")]
    assert result["master"] is False and result["holds_vips"] == []
    assert result["keepalived"] == {"running": True, "pid": 812}
    vs = result["virtual_servers"][0]
    assert (vs["in_packets"], vs["in_bytes"]) == (3, 180)
    assert [(r["address"], r["healthy"]) for r in vs["real_servers"]] == [("1.1.1.3", True), ("1.1.1.4", False)]
    assert not any(cmd.startswith("ipvsadm") for cmd in host.ran)   # no /proc/net/ip_vs: not asked


def test_a_dead_checker_or_a_missing_table_is_reported(run_module, host):
    host.ip_addr("ip-addr-director-backup.json")
    host.checker.write_text(json.dumps(dict(json.loads(fixture("status", "checker.json")), pid=999999,
                                            updated=time.time() - 60)))
    host.document("nftables")
    result, failed = run_module(lbha_info.main, host.args())
    assert not failed, result
    assert result["checker"]["alive"] is False and result["checker"]["table_loaded"] is False
    assert result["checker"]["age"] >= 60


def test_nothing_running_with_explicit_vips(run_module, host):
    host.ip_addr("ip-addr-real-server.json")
    host.keepalived_pid(4242, comm="bash")      # a stale pid file pointing at another process
    host.commands["pidof keepalived"] = (1, "", "")
    result, failed = run_module(lbha_info.main, host.args(vips=["1.1.1.111/24"]))
    assert not failed, result
    assert result["dataplane"] == "none" and result["deployed"] is False
    assert result["virtual_servers"] == []
    assert result["vrrp_instances"] == []
    # a real server holds the VIP on lo:1, and the report says exactly where
    assert result["vips"] == [{"address": "1.1.1.111", "held": True, "interface": "lo", "label": "lo:1",
                               "prefixlen": 32}]
    assert result["keepalived"] == {"running": False, "pid": None}


def test_the_plane_is_the_documents_never_guessed(run_module, host):
    host.ip_addr("ip-addr-director-master.json")
    host.document("ipvs")
    host.nft()                       # a leftover nftables table does not make it the nftables plane
    host.checker.write_text(fixture("status", "checker.json"))
    result, failed = run_module(lbha_info.main, host.args())
    assert not failed
    assert result["dataplane"] == "ipvs" and result["virtual_servers"] == []
    assert any("this kernel has no IPVS" in w for w in result["warnings"])


def test_broken_sources_warn_but_do_not_fail(run_module, host):
    host.ip_addr("ip-addr-director-master.json")
    host.proc_ip_vs.write_text("")
    host.commands["ipvsadm -L -n"] = (0, "garbage line\n", "")
    host.document("ipvs")
    result, failed = run_module(lbha_info.main, host.args())
    assert not failed, result
    assert result["virtual_servers"] == []
    assert any(w.startswith("cannot parse ipvsadm output") for w in result["warnings"])
    host.document("nftables")
    host.checker.write_text("{not json")
    result, failed = run_module(lbha_info.main, host.args())
    assert not failed and any("not a valid checker state file" in w for w in result["warnings"])


def test_a_document_of_another_version_fails(run_module, host):
    host.ip_addr("ip-addr-director-master.json")
    host.doc.write_text(json.dumps({"format": hostdoc.FORMAT, "version": 99}))
    result, failed = run_module(lbha_info.main, host.args())
    assert failed and "version 99" in result["msg"]


def test_ip_failure_fails(run_module, host):
    host.commands["ip -j addr show"] = (1, "", "Cannot open netlink socket")
    result, failed = run_module(lbha_info.main, host.args(vips=["1.1.1.111"]))
    assert failed and "Cannot open netlink socket" in result["msg"]


def test_a_state_file_symlink_or_fifo_is_not_read(run_module, host, tmp_path):
    """The state directory belongs to keepalived's script user: lbha_info (root) follows no
    symlink there and opens no FIFO (it would block)."""
    host.ip_addr("ip-addr-director-backup.json")
    host.document("ipvs")
    state_dir = str(host.state_dir)
    os.makedirs(state_dir, exist_ok=True)
    target = tmp_path / "secret"
    target.write_text("MASTER\n")
    os.symlink(str(target), os.path.join(state_dir, "VI_1.state"))
    os.mkfifo(os.path.join(state_dir, "VI_2.state"))
    result, failed = run_module(lbha_info.main, host.args(_ansible_check_mode=True))
    assert not failed, result
    assert [(i["name"], i["state_source"]) for i in result["vrrp_instances"]] == [("VI_1", "vip"), ("VI_2", "vip")]
