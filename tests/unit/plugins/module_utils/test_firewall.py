# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""VRRP from the peers only: bare addresses, and the rules of former peers removed."""
from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.lbha.cluster.plugins.filter import inventory
from ansible_collections.lbha.cluster.plugins.module_utils import firewall

DIRECTORS = [{"name": "lb1", "address": "1.1.1.1/24", "priority": 100},
             {"name": "lb2", "address": "1.1.1.2/24", "priority": 90},
             {"name": "lb3", "address": "2001:db8::3", "priority": 80}]


def test_a_prefixed_address_admits_the_peer_never_its_subnet():
    assert firewall.vrrp_rules(DIRECTORS, "lb1") == [
        'rule family="ipv4" source address="1.1.1.2" protocol value="vrrp" accept',
        'rule family="ipv6" source address="2001:db8::3" protocol value="vrrp" accept']
    assert not any("/" in r for r in firewall.vrrp_rules(DIRECTORS, "lb2"))


def test_explicit_unicast_peers_are_admitted_too():
    cluster = {"vrrp_instances": [{"name": "VI_1", "unicast_peers": ["1.1.1.9", "1.1.1.1"]},
                                  {"name": "VI_2", "unicast_peers": "1.1.1.8"}]}
    assert firewall.peer_sources(DIRECTORS[:2], "lb1", cluster) == ["1.1.1.2", "1.1.1.8", "1.1.1.9"]


def test_an_ipv6_multicast_instance_admits_link_local_vrrp_to_the_group_only():
    v6 = {"name": "VI_6", "virtual_ipaddress": ["fd01:1:1:1::111/64"]}
    v4 = {"name": "VI_1", "virtual_ipaddress": [{"address": "1.1.1.111/24"}]}
    rules = firewall.vrrp_rules(DIRECTORS[:2], "lb1", {"vrrp_instances": [v4, v6]})
    # exactly as firewall-cmd --list-rich-rules prints it (firewalld 1.3), or every run re-adds it
    assert rules[-1] == ('rule family="ipv6" source address="fe80::/10" destination address="ff02::12" '
                         'protocol value="vrrp" accept')
    assert rules[:-1] == ['rule family="ipv4" source address="1.1.1.2" protocol value="vrrp" accept']
    # wanted, so never purged as a subnet
    assert firewall.stale_vrrp_rules(rules, rules) == []
    # unicast adverts leave from the configured address: no link-local rule
    for unicast in ({"unicast": True}, {"unicast_peers": ["fd01:1:1:1::2"]}):
        cluster = {"vrrp_instances": [v4, dict(v6, **unicast)]}
        assert firewall.LINK_LOCAL_VRRP_RULE not in firewall.vrrp_rules(DIRECTORS[:2], "lb1", cluster)
    assert firewall.vrrp_rules(DIRECTORS[:2], "lb1", {"vrrp_instances": [v4]}) == rules[:-1]
    # a VIP the model refuses elsewhere does not break the rule set
    assert firewall.vrrp_rules(DIRECTORS[:2], "lb1", {"vrrp_instances": [{"virtual_ipaddress": ["x"]}]}) == rules[:-1]


def test_a_bad_address_is_named():
    with pytest.raises(ValueError, match="lb2: lbha_director_address '1.1.1.300' is not an IP address"):
        firewall.peer_sources([{"name": "lb2", "address": "1.1.1.300"}], "lb1")
    with pytest.raises(ValueError, match="lb2: the address is not known"):
        firewall.peer_sources([{"name": "lb2", "address": None}], "lb1")
    with pytest.raises(AnsibleFilterError, match="vrrp_rules: lb2: the address is not known"):
        inventory.vrrp_rules([{"name": "lb2", "address": None}], "lb1")


def test_rules_of_former_peers_and_subnets_are_stale_others_are_left_alone():
    wanted = firewall.vrrp_rules(DIRECTORS[:2], "lb1")
    current = [
        'rule family="ipv4" source address="1.1.1.2" protocol value="vrrp" accept',
        'rule family="ipv4" source address="1.1.1.0/24" protocol value="vrrp" accept',
        'rule family="ipv4" source address="1.1.1.7" protocol value="vrrp" accept',
        'rule family="ipv4" source address="1.1.1.7" service name="ssh" accept',
        'rule family="ipv4" source address="1.1.1.7" protocol value="vrrp" drop',
    ]
    assert firewall.stale_vrrp_rules(current, wanted) == [current[1], current[2]]
    assert firewall.stale_vrrp_rules(current + current, wanted) == [current[1], current[2]]
    assert inventory.stale_vrrp_rules(current, wanted) == [current[1], current[2]]
    with pytest.raises(AnsibleFilterError, match="expected the zone's rich rules as a list"):
        inventory.stale_vrrp_rules("x", wanted)
