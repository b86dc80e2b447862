# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The filter plugins: the one address rule, inventory to model inputs, and wrong input named."""
from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.lbha.cluster.plugins.filter import cluster, inventory, operations

HOSTVARS = {
    "lb1": {"ansible_host": "1.1.1.1", "lbha_director_priority": 100, "lbha_director_router_id": "master"},
    "lb2": {"ansible_host": "lb2.example.test", "lbha_director_address": "1.1.1.2", "lbha_director_priority": 90,
            "lbha_director_state": "BACKUP"},
    "lb3": {"ansible_host": "lb3.example.test", "ansible_default_ipv4": {"address": "1.1.1.9"}},
    "web1": {"ansible_host": "1.1.1.3", "lbha_real_server_weight": 2},
    "web2": {"ansible_host": "1.1.1.4", "lbha_real_server_address": "1.1.1.40",
             "lbha_real_server_check": {"connect_timeout": 3}},
    "web3": {"ansible_host": "web3.example.test"},
}
CLUSTER = {"vrrp_instances": [{"virtual_ipaddress": ["1.1.1.111/24", {"address": "1.1.1.112/24"}]}],
           "virtual_servers": [{"address": "1.1.1.111", "port": 80, "real_servers_group": "real_servers"},
                               {"address": "1.1.1.111", "port": 53, "protocol": "udp"}]}


def test_the_one_address_rule():
    # the explicit variable, then ansible_host when it is an IP address, then the gathered default address
    assert inventory.host_addresses(["lb1", "lb2", "lb3"], HOSTVARS, "director") == ["1.1.1.1", "1.1.1.2", "1.1.1.9"]
    assert inventory.host_addresses(["web1", "web2"], HOSTVARS, "real_server") == ["1.1.1.3", "1.1.1.40"]
    with pytest.raises(AnsibleFilterError, match="address of web3 is not known; set lbha_real_server_address"):
        inventory.host_addresses(["web3"], HOSTVARS, "real_server")
    with pytest.raises(AnsibleFilterError, match="role must be one of"):
        inventory.host_addresses(["web1"], HOSTVARS, "client")
    with pytest.raises(AnsibleFilterError, match="expected a list"):
        inventory.host_addresses("web1", HOSTVARS, "real_server")


def test_director_planes():
    hostvars = {"lb1": {"lbha_director_dataplane": "auto", "lbha_director_detected_plane": "nftables"},
                "lb2": {"lbha_director_dataplane": "ipvs"}, "lb3": {}, "lb4": {"lbha_director_dataplane": "lvs"}}
    expected = {"lb1": "nftables", "lb2": "ipvs", "lb3": "auto"}
    assert inventory.director_planes(["lb1", "lb2", "lb3"], hostvars) == expected
    with pytest.raises(AnsibleFilterError, match="lb4: lbha_director_dataplane 'lvs'"):
        inventory.director_planes(["lb4"], hostvars)


def test_director_hosts():
    assert inventory.director_hosts(["lb1", "lb2"], HOSTVARS) == [
        {"name": "lb1", "address": "1.1.1.1", "priority": 100, "router_id": "master"},
        {"name": "lb2", "address": "1.1.1.2", "priority": 90, "state": "BACKUP"}]
    with pytest.raises(AnsibleFilterError, match="'lb9' is in the group but not in the inventory"):
        inventory.director_hosts(["lb9"], HOSTVARS)


def test_real_server_hosts_reads_the_groups_the_cluster_names():
    groups = {"real_servers": ["web1", "web2", "web3"]}
    assert inventory.real_server_hosts(CLUSTER, groups, HOSTVARS) == {"real_servers": [
        {"name": "web1", "address": "1.1.1.3", "weight": 2},
        {"name": "web2", "address": "1.1.1.40", "check": {"connect_timeout": 3}},
        {"name": "web3", "address": None}]}, "an unknown address is left to the model, which names the host"
    assert inventory.real_server_hosts(CLUSTER, {}, HOSTVARS) == {"real_servers": []}


def test_vips_and_virtual_services():
    assert cluster.vips(CLUSTER) == ["1.1.1.111", "1.1.1.112"]
    assert cluster.virtual_services(CLUSTER) == [{"address": "1.1.1.111", "port": 53, "protocol": "UDP"},
                                                 {"address": "1.1.1.111", "port": 80, "protocol": "TCP"}]
    assert cluster.vips(None) == [] and cluster.virtual_services(None) == []
    for bad in ("text", ["list"], 5):
        with pytest.raises(AnsibleFilterError, match="expected the lbha_cluster mapping"):
            cluster.vips(bad)


def test_director_reports_keeps_only_readable_results():
    hostvars = {"lb1": {"info": {"vrrp_instances": [], "master": False}},
                "lb2": {"info": {"unreachable": True, "msg": "timeout"}},
                "lb3": {"info": {"failed": True, "msg": "boom"}}, "lb4": {}}
    assert operations.director_reports(["lb1", "lb2", "lb3", "lb4"], hostvars, "info") == {
        "lb1": {"vrrp_instances": [], "master": False}, "lb2": None, "lb3": None, "lb4": None}


@pytest.mark.parametrize("call, message", [
    (lambda: operations.cluster_status([]), "cluster_status: expected director reports"),
    (lambda: operations.switchover_plan("x"), "switchover_plan: expected director reports"),
    (lambda: operations.peer_problems({}, None), "peer_problems: expected the peer's report"),
    (lambda: operations.drain_problems({}, "1.1.1.3"), "drain_problems: expected real-server addresses"),
    (lambda: operations.real_servers_settled({}, ["1.1.1.3"], "gone"), "state must be drained or undrained"),
    (lambda: operations.director_reports("lb1", {}, "x"), "director_reports: expected inventory host names"),
])
def test_wrong_input_is_named_not_a_template_error(call, message):
    with pytest.raises(AnsibleFilterError, match=message):
        call()


def test_every_filter_is_registered():
    names = set()
    for module in (cluster, inventory, operations):
        names |= set(module.FilterModule().filters())
    assert names == {"vips", "virtual_services", "director_hosts", "director_planes", "host_addresses",
                     "real_server_hosts",
                     "director_reports", "cluster_status", "switchover_plan", "peer_problems", "drain_problems",
                     "real_servers_settled", "restore_report", "vrrp_rules", "stale_vrrp_rules", "health_ruleset",
                     "upgrade_plan", "vip_problems"}


@pytest.mark.parametrize("vips, interface, interfaces, expected", [
    (["1.1.1.111", "fd01::111"], "lo", ["lo", "eth0"], []),
    (["1.1.1.111"], "lo", None, []),
    (["1.1.1.111/32"], "lo", ["lo"], ["vips[0]: '1.1.1.111/32' is not an IP address without prefix or scope"]),
    (["1.1.1.111"], "dummy0", ["lo", "eth0"], ["interface: dummy0 is not an interface of this host (it has eth0, lo)"]),
    (["1.1.1.111"], "lo 1", None, ["interface: 'lo 1' is not an interface name"]),
])
def test_vip_problems_follow_the_real_server_vips_rules(vips, interface, interfaces, expected):
    assert cluster.vip_problems(vips, interface, interfaces) == expected
