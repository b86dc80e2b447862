# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""lbha.cluster.firewall_rules against a simulated firewall-cmd (runtime and permanent zones in a
file; like the real one it refuses two kinds of change in one call)."""
from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import pytest

from ansible_collections.lbha.cluster.plugins.module_utils import firewall
from ansible_collections.lbha.cluster.plugins.modules import firewall_rules

# like the real one it refuses two kinds of change in one call
FAKE = r'''
config = state["permanent" if "--permanent" in args else "runtime"]
ops = [a for a in args if a.startswith("--") and a not in ("--permanent",) and not a.startswith("--zone=")]
kinds = set(a.split("=", 1)[0] for a in ops)
if len(kinds) > 1:
    print("firewall-cmd: error: argument %s: not allowed with argument %s" % tuple(sorted(kinds))[:2], file=sys.stderr)
    sys.exit(2)
for op in ops:
    name, _, value = op.partition("=")
    if name == "--list-all":
        print("public\n  target: default\n  services: ssh\n  ports: %s\n  protocols: \n  rich rules: \n%s"
              % (" ".join(config["ports"]), "".join("\t%s\n" % r for r in config["rules"])))
    elif name == "--add-port":
        config["ports"] += [value] if value not in config["ports"] else []
    elif name == "--add-rich-rule":
        config["rules"] += [value] if value not in config["rules"] else []
    elif name == "--remove-rich-rule":
        config["rules"] = [r for r in config["rules"] if r != value]
'''

VRRP = 'rule family="ipv4" source address="%s" protocol value="vrrp" accept'
SYNC = 'rule family="ipv4" source address="1.1.1.2" port port="8848" protocol="udp" accept'


class Firewalld(object):
    def __init__(self, fake_command, run_module):
        empty = dict(runtime=dict(ports=[], rules=[]), permanent=dict(ports=[], rules=[]))
        self.cmd = fake_command("firewall-cmd", FAKE, empty)
        self.run_module = run_module

    def set(self, **configs):
        self.cmd.set(configs)

    def zones(self):
        return self.cmd.state()

    def changes(self):
        return [c for c in self.cmd.calls() if "--list-all" not in c]

    def run(self, **args):
        return self.run_module(firewall_rules.main, args)


@pytest.fixture()
def fw(fake_command, run_module):
    return Firewalld(fake_command, run_module)


def test_adds_to_runtime_and_permanent_then_changes_nothing(fw):
    args = dict(ports=["80/tcp", "443"], rich_rules=[VRRP % "1.1.1.2", SYNC])
    result, failed = fw.run(**args)
    assert not failed and result["changed"]
    for config in ("runtime", "permanent"):
        assert sorted(fw.zones()[config]["ports"]) == ["443/tcp", "80/tcp"]
        assert fw.zones()[config]["rules"] == [VRRP % "1.1.1.2", SYNC]
    assert len(fw.changes()) == 4       # ports, then rules, in each configuration
    before = len(fw.changes())
    again, _failed = fw.run(**args)
    assert not again["changed"] and len(fw.changes()) == before


def test_purge_vrrp_removes_former_peers_and_subnets_but_no_other_rule(fw):
    other = 'rule family="ipv4" source address="10.0.0.1" service name="ssh" accept'
    old = [VRRP % "1.1.1.9", 'rule family="ipv4" source address="1.1.1.0/24" protocol value="vrrp" accept', other]
    fw.set(runtime=dict(ports=[], rules=list(old)), permanent=dict(ports=[], rules=list(old)))
    result, _failed = fw.run(rich_rules=[VRRP % "1.1.1.2"], purge_vrrp=True)
    assert result["runtime"]["remove_rich_rules"] == old[:2]
    for config in ("runtime", "permanent"):
        assert fw.zones()[config]["rules"] == [other, VRRP % "1.1.1.2"]


def test_absent_rules_go_and_only_where_present(fw):
    fw.set(runtime=dict(ports=[], rules=[]), permanent=dict(ports=[], rules=[SYNC]))
    result, _failed = fw.run(absent_rich_rules=[SYNC])
    assert result["changed"] and result["runtime"]["remove_rich_rules"] == []
    assert result["permanent"]["remove_rich_rules"] == [SYNC]
    assert fw.zones()["permanent"]["rules"] == []


def test_runtime_drift_alone_is_put_back(fw):
    fw.set(runtime=dict(ports=[], rules=[]), permanent=dict(ports=["80/tcp"], rules=[]))
    result, _failed = fw.run(ports=["80/tcp"])
    assert result["runtime"]["add_ports"] == ["80/tcp"] and result["permanent"]["add_ports"] == []
    assert fw.changes() == [["--add-port=80/tcp"]]


def test_check_mode_and_diff_change_nothing(fw):
    result, _failed = fw.run(ports=["80/tcp"], _ansible_check_mode=True, _ansible_diff=True)
    assert result["changed"] and fw.changes() == []
    assert "80/tcp" in result["diff"][0]["after"] and "80/tcp" not in result["diff"][0]["before"]


def test_zone_is_passed_on(fw):
    fw.run(zone="internal", ports=["80/tcp"])
    assert all("--zone=internal" in call for call in fw.changes())


@pytest.mark.parametrize("args, message", [
    (dict(ports=["http"]), "is not a port"),
    (dict(ports=["70000/tcp"]), "is not a port"),
    (dict(ports=["90-80/tcp"]), "is not a port"),
    (dict(ports=["80/icmp"]), "is not a port"),
    (dict(rich_rules=[SYNC], absent_rich_rules=[SYNC]), "both present and absent"),
])
def test_bad_arguments_change_nothing(fw, args, message):
    result, failed = fw.run(**args)
    assert failed and message in result["msg"] and fw.changes() == []


def test_parse_list_all_reads_ports_and_every_rich_rule():
    text = ("public (active)\n  target: default\n  ports: 80/tcp 8848/udp\n  protocols: \n"
            "  rich rules: \n\trule family=\"ipv4\"  source address=\"1.1.1.2\" protocol value=\"vrrp\" accept\n"
            "\t%s\n" % SYNC)
    assert firewall.parse_list_all(text) == {"ports": ["80/tcp", "8848/udp"],
                                             "rich_rules": [VRRP % "1.1.1.2", SYNC]}
    assert firewall.parse_list_all("public\n  ports: \n  rich rules: \n") == {"ports": [], "rich_rules": []}


SYSTEMCTL = r'''
unit = state.setdefault("firewalld.service", {"ActiveState": "inactive", "UnitFileState": "disabled"})
verb = args[0]
if verb == "show":
    print("Id=firewalld.service\nLoadState=loaded\nActiveState=%s\nUnitFileState=%s\nNeedDaemonReload=no"
          % (unit["ActiveState"], unit["UnitFileState"]))
elif verb == "enable":
    unit["UnitFileState"] = "enabled"
elif verb == "start":
    unit["ActiveState"] = "active"
'''


@pytest.fixture()
def systemctl(fake_command):
    return fake_command("systemctl", SYSTEMCTL, {})


def test_start_enables_and_starts_firewalld_first_then_sets_the_zone(fw, systemctl):
    result, failed = fw.run(ports=["80/tcp"], start=True)
    assert not failed and result["changed"]
    assert result["service"] == {"enabled": ["firewalld.service"], "started": ["firewalld.service"]}
    assert [c[0] for c in systemctl.calls()] == ["show", "enable", "start"]
    assert fw.zones()["runtime"]["ports"] == ["80/tcp"]
    again, _failed = fw.run(ports=["80/tcp"], start=True)
    assert not again["changed"] and again["service"] == {"enabled": [], "started": []}
    assert [c[0] for c in systemctl.calls()][3:] == ["show"]


def test_start_in_check_mode_with_firewalld_stopped_changes_nothing_and_says_so(fw, systemctl):
    result, failed = fw.run(ports=["80/tcp"], start=True, _ansible_check_mode=True)
    assert not failed and result["changed"]
    assert result["service"]["started"] == ["firewalld.service"]
    assert any("not running" in w for w in result["warnings"])
    assert [c[0] for c in systemctl.calls()] == ["show"] and fw.cmd.calls() == []
    assert fw.zones()["runtime"]["ports"] == []


class FakeSettings(object):
    def __init__(self, config):
        self.config = config

    def getPorts(self):  # noqa: N802 (firewalld's API)
        return [tuple(p.split("/")) for p in self.config["ports"]]

    def getRichRules(self):  # noqa: N802
        return list(self.config["rules"])


def test_the_zone_is_read_over_dbus_when_the_firewall_package_is_there(fw, monkeypatch):
    """firewalld's Python answers the reads: a zone that needs nothing runs no firewall-cmd; a change
    is still made with firewall-cmd."""
    import sys
    import types
    zones = dict(runtime=dict(ports=["80/tcp"], rules=[VRRP % "1.1.1.2"]),
                 permanent=dict(ports=["80/tcp"], rules=[VRRP % "1.1.1.2"]))
    fw.set(**zones)

    class Client(object):
        connected = True

        def getDefaultZone(self):  # noqa: N802
            return "public"

        def getZoneSettings(self, name):  # noqa: N802
            assert name == "public"
            return FakeSettings(fw.zones()["runtime"])

        def config(self):
            zone = types.SimpleNamespace(getSettings=lambda: FakeSettings(fw.zones()["permanent"]))
            return types.SimpleNamespace(getZoneByName=lambda name: zone)

    package = types.ModuleType("firewall")
    client = types.ModuleType("firewall.client")
    client.FirewallClient = Client
    package.client = client
    monkeypatch.setitem(sys.modules, "firewall", package)
    monkeypatch.setitem(sys.modules, "firewall.client", client)
    result, failed = fw.run(ports=["80/tcp"], rich_rules=[VRRP % "1.1.1.2"], purge_vrrp=True)
    assert not failed and not result["changed"]
    assert fw.cmd.calls() == []
    result, failed = fw.run(ports=["80/tcp", "443/tcp"], rich_rules=[VRRP % "1.1.1.2"], purge_vrrp=True)
    assert not failed and result["changed"]
    assert [c for c in fw.cmd.calls() if "--list-all" in c] == []
    assert sorted(fw.zones()["permanent"]["ports"]) == ["443/tcp", "80/tcp"]
