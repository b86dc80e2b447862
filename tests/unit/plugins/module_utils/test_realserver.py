# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The VIPs of a real server: stable labels, no remove-and-re-add, the unit as the record."""
from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import json

import pytest

from ansible_collections.lbha.cluster.plugins.module_utils import realserver
from ansible_collections.lbha.cluster.plugins.module_utils.realserver import VipError


def live(*entries):
    """`ip -j addr show dev lo` with 127.0.0.1/8 and ::1 plus (address, label) entries."""
    infos = [{"family": "inet", "local": "127.0.0.1", "prefixlen": 8, "label": "lo"},
             {"family": "inet6", "local": "::1", "prefixlen": 128}]
    for address, label in entries:
        v6 = ":" in address
        info = {"family": "inet6" if v6 else "inet", "local": address, "prefixlen": 128 if v6 else 32}
        if label:
            info["label"] = label
        infos.append(info)
    return realserver.parse_live(json.dumps([{"ifname": "lo", "addr_info": infos}]), "lo")


def unit(vips):
    return realserver.render_unit(vips, "lo", "/usr/sbin/ip", "/etc/sysctl.d/90-lbha-real-server.conf")


def test_first_run_labels_in_order():
    steps = realserver.plan(["1.1.1.111", "1.1.1.112"], live(), {}, "lo")
    assert [(v["address"], v["label"]) for v in steps["vips"]] == [("1.1.1.111", "lo:1"), ("1.1.1.112", "lo:2")]
    assert [v["address"] for v in steps["add"]] == ["1.1.1.111", "1.1.1.112"] and steps["remove"] == []


def test_adding_a_lower_vip_relabels_nothing_and_touches_no_live_vip():
    record = realserver.parse_record(unit(realserver.plan(["1.1.1.111"], live(), {}, "lo")["vips"]))
    current = live(("1.1.1.111", "lo:1"))
    steps = realserver.plan(["1.1.1.100", "1.1.1.111"], current, record, "lo")
    assert [(v["address"], v["label"]) for v in steps["vips"]] == [("1.1.1.100", "lo:2"), ("1.1.1.111", "lo:1")]
    assert [v["address"] for v in steps["add"]] == ["1.1.1.100"], "the live VIP must not be added again"
    assert steps["remove"] == []


def test_removing_a_vip_frees_its_label_and_keeps_the_others():
    record = {"1.1.1.111": "lo:1", "1.1.1.112": "lo:2", "1.1.1.113": "lo:3"}
    current = live(("1.1.1.111", "lo:1"), ("1.1.1.112", "lo:2"), ("1.1.1.113", "lo:3"))
    steps = realserver.plan(["1.1.1.111", "1.1.1.113"], current, record, "lo")
    assert [(v["address"], v["label"]) for v in steps["vips"]] == [("1.1.1.111", "lo:1"), ("1.1.1.113", "lo:3")]
    assert steps["add"] == [] and steps["remove"] == ["1.1.1.112"]
    again = realserver.plan(["1.1.1.111", "1.1.1.113", "1.1.1.114"], live(("1.1.1.111", "lo:1"), ("1.1.1.113", "lo:3")),
                            {"1.1.1.111": "lo:1", "1.1.1.113": "lo:3"}, "lo")
    assert again["vips"][2]["label"] == "lo:2", "the lowest free label"


def test_only_the_records_addresses_are_removed():
    # an address someone else put on lo (not in the record) is left alone
    steps = realserver.plan([], live(("10.9.9.9", "lo:7"), ("1.1.1.111", "lo:1")), {"1.1.1.111": "lo:1"}, "lo")
    assert steps["remove"] == ["1.1.1.111"]
    # a label someone else uses is not given to a new VIP
    steps = realserver.plan(["1.1.1.111"], live(("10.9.9.9", "lo:1")), {}, "lo")
    assert steps["vips"][0]["label"] == "lo:2"


def test_a_vip_restored_after_a_reboot_keeps_the_recorded_label():
    steps = realserver.plan(["1.1.1.111", "1.1.1.112"], live(), {"1.1.1.112": "lo:1", "1.1.1.111": "lo:2"}, "lo")
    assert [(v["address"], v["label"]) for v in steps["vips"]] == [("1.1.1.111", "lo:2"), ("1.1.1.112", "lo:1")]


def test_ipv6_vips_are_128_nodad_without_label():
    steps = realserver.plan(["2001:db8::111", "1.1.1.111"], live(), {}, "lo")
    assert steps["vips"][0] == {"address": "2001:db8::111", "label": None, "version": 6}
    assert steps["vips"][1]["label"] == "lo:1"
    assert realserver.ip_argv("/sbin/ip", "add", steps["vips"][0], "lo") == [
        "/sbin/ip", "-6", "addr", "add", "2001:db8::111/128", "dev", "lo", "nodad"]
    text = unit(steps["vips"])
    assert "ExecStart=/usr/sbin/ip -6 addr replace 2001:db8::111/128 dev lo nodad" in text
    assert realserver.parse_record(text) == {"2001:db8::111": None, "1.1.1.111": "lo:1"}


def test_the_unit_is_its_own_record():
    vips = realserver.plan(["1.1.1.111", "1.1.1.112"], live(), {}, "lo")["vips"]
    text = unit(vips)
    assert "ExecStart=/usr/sbin/ip addr replace 1.1.1.111/32 dev lo label lo:1" in text
    assert "ExecStop=-/usr/sbin/ip addr del 1.1.1.112/32 dev lo" in text
    assert realserver.parse_record(text) == {"1.1.1.111": "lo:1", "1.1.1.112": "lo:2"}
    # an earlier release's unit (addr replace ... label lo:N) reads the same
    old = "ExecStart=/sbin/ip addr replace 1.1.1.111/32 dev lo label lo:1\n"
    assert realserver.parse_record(old) == {"1.1.1.111": "lo:1"}


@pytest.mark.parametrize("vips, message", [
    (["1.1.1.111/32"], r"vips\[0\]: '1.1.1.111/32' is not an IP address"),
    (["fe80::1%lo"], r"vips\[0\]"), (["1.1.1.111\n"], r"vips\[0\]"), ([5], r"vips\[0\]: 5"),
    (["300.1.1.1"], r"vips\[0\]"), ("1.1.1.111", r"vips: expected a list"),
])
def test_bad_vips_are_named(vips, message):
    with pytest.raises(VipError, match=message):
        realserver.vip_list(vips, "lo")


def test_bad_interface_and_duplicates():
    with pytest.raises(VipError, match="interface"):
        realserver.vip_list(["1.1.1.111"], "lo\nx")
    assert realserver.vip_list(["1.1.1.111", "1.1.1.111", "2001:DB8::1"], "lo") == ["1.1.1.111", "2001:db8::1"]


# -- the health path ------------------------------------------------------------------------------

def test_health_ruleset_sends_only_the_directors_checks_through_the_vip():
    text = realserver.health_ruleset("1.1.1.3", [{"address": "1.1.1.111", "port": 80, "protocol": "TCP"},
                                                 {"address": "1.1.1.112", "port": 80, "protocol": "TCP"},
                                                 {"address": "1.1.1.111", "port": 53, "protocol": "UDP"},
                                                 {"address": "2001:db8::111", "port": 80, "protocol": "TCP"}],
                                     ["1.1.1.2", "1.1.1.1", "2001:db8::1"])
    rules = [line.strip() for line in text.splitlines() if "dnat" in line or " drop" in line]
    assert rules == [
        "ip saddr { 1.1.1.1, 1.1.1.2 } ip daddr 1.1.1.3 udp dport 53 dnat ip to 1.1.1.111",
        "ip saddr { 1.1.1.1, 1.1.1.2 } ip daddr 1.1.1.3 tcp dport 80 dnat ip to 1.1.1.111",
        "ct status dnat ip saddr { 1.1.1.1, 1.1.1.2 } drop"]
    assert text.startswith("# Managed by lbha.cluster") and "delete table inet lbha_health" in text


def test_health_ruleset_without_directors_translates_nothing():
    text = realserver.health_ruleset("1.1.1.3", [{"address": "1.1.1.111", "port": 80}], [])
    assert "dnat" not in text and "drop" not in text


def test_health_ruleset_refuses_an_unknown_protocol():
    with pytest.raises(ValueError, match="protocol 'ICMP'"):
        realserver.health_ruleset("1.1.1.3", [{"address": "1.1.1.111", "port": 80, "protocol": "ICMP"}], ["1.1.1.1"])


def test_the_filter_takes_prefixed_director_addresses():
    from ansible_collections.lbha.cluster.plugins.filter import inventory
    text = inventory.health_ruleset([{"address": "1.1.1.111", "port": 80, "protocol": "TCP"}], "1.1.1.3",
                                    ["1.1.1.1/24", "1.1.1.2"])
    assert "ip saddr { 1.1.1.1, 1.1.1.2 }" in text
