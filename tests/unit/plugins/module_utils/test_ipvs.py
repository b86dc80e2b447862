# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Parsers, desired-table normalisation, diff and restore text of module_utils/ipvs.py."""
from __future__ import (absolute_import, division, print_function)
from __future__ import annotations
__metaclass__ = type

import os

import pytest

from ansible_collections.lbha.cluster.plugins.module_utils import ipvs, ipvsadm

FIXTURES = os.path.join(os.path.dirname(__file__), "..", "..", "fixtures", "ipvs")


def fixture(name):
    with open(os.path.join(FIXTURES, name)) as f:
        return f.read()


SEED_VS = {"address": "1.1.1.111", "port": 80, "protocol": "TCP", "lb_algo": "rr", "lb_kind": "DR",
           "real_servers": [{"address": "1.1.1.3", "port": 80, "weight": 1},
                            {"address": "1.1.1.4", "port": 80, "weight": 1}]}

# A normalised virtual server as model.normalize returns it (docs/internals.md).
MODEL_VS = {
    "address": "1.1.1.111", "port": 80, "protocol": "TCP",
    "lb_algo": "rr", "lb_kind": "DR", "delay_loop": 6,
    "persistence_timeout": None, "persistence_granularity": None,
    "quorum": 1, "hysteresis": 0, "sorry_server": None, "interface": "eth0",
    "real_servers": [
        {"address": "1.1.1.3", "port": 80, "weight": 1, "inhibit_on_failure": False, "name": "web1",
         "check": {"type": "TCP_CHECK", "connect_timeout": 1, "retry": 3, "delay_before_retry": 1,
                   "connect_port": 80, "connect_ip": None}},
        {"address": "1.1.1.4", "port": 80, "weight": 1, "inhibit_on_failure": False, "name": "web2",
         "check": None},
    ],
}


# ---------------------------------------------------------------------------- ipvsadm -S -n

def test_parse_save_seed():
    table = ipvsadm.parse_save(fixture("save-seed.txt"))
    assert list(table) == ["TCP/1.1.1.111:80"]
    svc = table["TCP/1.1.1.111:80"]
    assert svc["scheduler"] == "rr"
    assert svc["persistence_timeout"] is None
    assert svc["real_servers"] == {
        "1.1.1.3:80": {"address": "1.1.1.3", "port": 80, "forward": "DR", "weight": 1},
        "1.1.1.4:80": {"address": "1.1.1.4", "port": 80, "forward": "DR", "weight": 1},
    }


def test_parse_save_mixed_protocols_families_and_methods():
    table = ipvsadm.parse_save(fixture("save-mixed.txt"))
    assert sorted(table) == sorted([
        "TCP/1.1.1.111:80", "TCP/1.1.1.111:443", "TCP/10.0.0.10:8080", "UDP/1.1.1.111:53",
        "SCTP/1.1.1.111:3868", "TCP/[2001:db8::111]:80", "FWM/1", "FWM6/2"])
    https = table["TCP/1.1.1.111:443"]
    assert (https["scheduler"], https["persistence_timeout"], https["persistence_granularity"]) == \
        ("wlc", 300, "255.255.255.0")
    assert table["TCP/1.1.1.111:80"]["real_servers"]["1.1.1.4:80"]["weight"] == 0
    assert table["TCP/10.0.0.10:8080"]["real_servers"]["10.1.0.5:8080"]["forward"] == "TUN"
    dns = table["UDP/1.1.1.111:53"]
    assert dns["real_servers"]["192.168.10.11:5353"] == \
        {"address": "192.168.10.11", "port": 5353, "forward": "NAT", "weight": 1}
    v6 = table["TCP/[2001:db8::111]:80"]
    assert v6["family"] == "inet6" and v6["persistence_granularity"] == 64
    assert v6["real_servers"]["[2001:db8::3]:80"]["weight"] == 5
    assert table["FWM/1"]["fwmark"] == 1 and table["FWM/1"]["persistence_timeout"] == 360
    assert table["FWM/1"]["real_servers"]["1.1.1.3:0"]["port"] == 0
    assert table["FWM6/2"]["family"] == "inet6"
    assert list(table["FWM6/2"]["real_servers"]) == ["[2001:db8::4]:0"]


def test_render_save_round_trips_the_mixed_table():
    text = fixture("save-mixed.txt")
    table = ipvsadm.parse_save(text)
    rendered = ipvs.render_save(table)
    assert ipvsadm.parse_save(rendered) == table
    # the fixture is in ipvsadm's own order, which render_save reproduces line for line
    assert rendered == text


def test_parse_save_empty_and_errors():
    assert ipvsadm.parse_save("") == {}
    with pytest.raises(ipvsadm.IpvsError, match="unknown service"):
        ipvsadm.parse_save("-a -t 1.1.1.111:80 -r 1.1.1.3:80 -g -w 1\n")
    with pytest.raises(ipvsadm.IpvsError, match="line 1"):
        ipvsadm.parse_save("-A -t 1.1.1.999:80 -s rr\n")


def test_parse_save_keeps_unmanaged_options():
    table = ipvsadm.parse_save("-A -t 1.1.1.111:80 -s mh -b mh-port\n"
                               "-a -t 1.1.1.111:80 -r 1.1.1.3:80 -i -w 1 --tun-type gue --tun-port 6080\n")
    svc = table["TCP/1.1.1.111:80"]
    assert svc["options"] == ["-b", "mh-port"]
    assert svc["real_servers"]["1.1.1.3:80"]["options"] == ["--tun-type", "gue", "--tun-port", "6080"]


# ---------------------------------------------------------------------------- ipvsadm -L -n

def test_parse_list():
    table = ipvsadm.parse_list(fixture("list-seed.txt"))
    web = table["TCP/1.1.1.111:80"]
    assert web["scheduler"] == "rr"
    assert web["real_servers"]["1.1.1.3:80"] == {"address": "1.1.1.3", "port": 80, "forward": "DR", "weight": 1,
                                                 "active_conn": 2, "inactive_conn": 4}
    assert web["real_servers"]["1.1.1.4:80"]["weight"] == 0
    https = table["TCP/1.1.1.111:443"]
    assert (https["persistence_timeout"], https["persistence_granularity"]) == (300, "255.255.255.0")
    assert table["UDP/1.1.1.111:53"]["real_servers"]["192.168.10.11:5353"]["forward"] == "NAT"
    assert table["TCP/[2001:db8::111]:80"]["persistence_granularity"] == 64
    assert table["FWM/1"]["persistence_timeout"] == 360


def test_parse_stats_with_and_without_exact():
    stats = ipvsadm.parse_stats(fixture("stats-seed.txt"))
    assert stats["TCP/1.1.1.111:80"]["counters"] == {"conns": 11, "in_packets": 66, "out_packets": 0,
                                                     "in_bytes": 4116, "out_bytes": 0}
    assert stats["TCP/1.1.1.111:80"]["real_servers"]["1.1.1.4:80"]["in_bytes"] == 1872
    # without --exact ipvsadm abbreviates large numbers
    assert stats["UDP/1.1.1.111:53"]["counters"]["out_bytes"] == 432109000
    assert stats["TCP/[2001:db8::111]:80"]["real_servers"]["[2001:db8::3]:80"]["in_packets"] == 6


def test_parse_rate():
    rate = ipvsadm.parse_stats(fixture("rate-seed.txt"), rate=True)
    assert rate["TCP/1.1.1.111:80"]["counters"] == {"cps": 2, "in_pps": 12, "out_pps": 0, "in_bps": 748,
                                                    "out_bps": 0}
    assert rate["TCP/1.1.1.111:80"]["real_servers"]["1.1.1.3:80"]["in_bps"] == 374


def test_parse_list_rejects_garbage():
    with pytest.raises(ipvsadm.IpvsError):
        ipvsadm.parse_list("IP Virtual Server version 1.2.1 (size=4096)\nsomething else\n")


def test_merge_list_stats():
    merged = ipvsadm.merge_list_stats(ipvsadm.parse_list(fixture("list-seed.txt")),
                                      ipvsadm.parse_stats(fixture("stats-seed.txt")))
    web = [v for v in merged if v["key"] == "TCP/1.1.1.111:80"][0]
    assert web["conns"] == 11
    rs3, rs4 = web["real_servers"]
    assert (rs3["address"], rs3["healthy"], rs3["active_conn"], rs3["inactive_conn"], rs3["conns"],
            rs3["in_packets"], rs3["out_packets"]) == ("1.1.1.3", True, 2, 4, 6, 36, 0)
    assert (rs4["address"], rs4["healthy"], rs4["weight"], rs4["in_bytes"]) == ("1.1.1.4", False, 0, 1872)
    # without stats the counters are None, never invented
    bare = ipvsadm.merge_list_stats(ipvsadm.parse_list(fixture("list-seed.txt")))
    assert bare[0]["real_servers"][0]["conns"] is None


def test_no_ipvs_detection_uses_real_ipvsadm_text():
    text = fixture("no-ipvs.stderr") + fixture("no-ipvs.stdout")
    assert ipvsadm.is_no_ipvs(text)
    assert not ipvsadm.is_no_ipvs("Service already exists\n")
    assert "CONFIG_IP_VS" in ipvsadm.NO_IPVS_MESSAGE and "nftables" in ipvsadm.NO_IPVS_MESSAGE


# ---------------------------------------------------------------------------- desired table

def test_model_virtual_server_is_accepted_as_is():
    table, warnings = ipvs.desired_table([MODEL_VS])
    assert warnings == []
    assert table == ipvsadm.parse_save(fixture("save-seed.txt"))


def test_module_style_defaults():
    table = ipvs.desired_table([{"address": "1.1.1.111", "port": 80,
                                 "real_servers": [{"address": "1.1.1.3"}]}])[0]
    svc = table["TCP/1.1.1.111:80"]
    assert svc["scheduler"] == "wlc"
    assert svc["real_servers"]["1.1.1.3:80"] == {"address": "1.1.1.3", "port": 80, "forward": "DR", "weight": 1}


def test_a_dr_real_server_on_another_port_is_refused_as_the_model_does():
    with pytest.raises(ipvsadm.IpvsError, match=r"real_servers\[0\]\.port: 8080 differs from the service port 80"):
        ipvs.desired_table([{"address": "1.1.1.111", "port": 80, "lb_kind": "DR",
                             "real_servers": [{"address": "1.1.1.3", "port": 8080}]}])


def test_nat_keeps_its_port_and_persistence_normalises():
    table = ipvs.desired_table([{"address": "10.0.0.10", "port": 443, "lb_kind": "NAT",
                                 "persistence_timeout": 300, "persistence_granularity": 24,
                                 "real_servers": [{"address": "192.168.10.11", "port": 8443}]}])[0]
    svc = table["TCP/10.0.0.10:443"]
    assert svc["persistence_granularity"] == "255.255.255.0"
    assert svc["real_servers"]["192.168.10.11:8443"]["forward"] == "NAT"
    table = ipvs.desired_table([{"address": "1.1.1.111", "port": 80, "persistence_timeout": 0,
                                 "persistence_granularity": "255.255.255.255"}])[0]
    assert table["TCP/1.1.1.111:80"]["persistence_timeout"] is None
    assert table["TCP/1.1.1.111:80"]["persistence_granularity"] is None


@pytest.mark.parametrize("vs, message", [
    ({"address": "1.1.1.111", "port": 80, "lb_algo": "roundrobin"}, r"virtual_servers\[0\]\.scheduler"),
    ({"address": "1.1.1.111", "port": 80, "protocol": "ICMP"}, r"virtual_servers\[0\]\.protocol"),
    ({"address": "1.1.1.111", "port": 70000}, r"virtual_servers\[0\]\.port: 70000 is out of range"),
    ({"address": "1.1.1.1111", "port": 80}, r"virtual_servers\[0\]\.address"),
    ({"port": 80}, r"virtual_servers\[0\]\.address: required"),
    ({"address": "1.1.1.111", "port": 80, "schedular": "rr"}, r"unknown option\(s\) schedular"),
    ({"address": "1.1.1.111", "port": 80, "real_servers": [{"address": "1.1.1.3", "forward": "BRIDGE"}]},
     r"real_servers\[0\]\.forward"),
    ({"address": "1.1.1.111", "port": 80, "real_servers": [{"address": "2001:db8::3"}]},
     r"real_servers\[0\]\.address: 2001:db8::3 is not of the service's address family"),
    ({"address": "1.1.1.111", "port": 80, "real_servers": [{"address": "1.1.1.3"}, {"address": "1.1.1.3"}]},
     r"real_servers\[1\]: real server 1\.1\.1\.3:80 is listed twice"),
    ({"address": "1.1.1.111", "port": 80, "real_servers": [{"address": "1.1.1.3", "weight": -1}]},
     r"weight: -1 is out of range"),
    ({"address": "1.1.1.111", "port": 80, "persistence_timeout": 60, "persistence_granularity": "255.0.255.0"},
     r"persistence_granularity"),
])
def test_invalid_virtual_servers_name_the_field(vs, message):
    with pytest.raises(ipvsadm.IpvsError, match=message):
        ipvs.desired_table([vs])


def test_duplicate_service_is_an_error():
    with pytest.raises(ipvsadm.IpvsError, match=r"virtual_servers\[1\]: TCP/1.1.1.111:80 is also defined"):
        ipvs.desired_table([SEED_VS, dict(SEED_VS, lb_algo="wrr")])


# ---------------------------------------------------------------------------- diff

def _target(live_text, vss, **kw):
    live = ipvsadm.parse_save(live_text)
    desired, _warnings = ipvs.desired_table(vss, real_servers_required=kw.get("state", "present") == "present")
    drain = ipvs.normalize_drain(kw.pop("drain", []))
    target, matched = ipvs.target_table(live, desired, drain=drain, **kw)
    return live, target, matched


def test_empty_table_gets_the_seed_service():
    live, target, _matched = _target("", [SEED_VS])
    assert ipvs.diff_tables(live, target) == [
        "-A -t 1.1.1.111:80 -s rr",
        "-a -t 1.1.1.111:80 -r 1.1.1.3:80 -g -w 1",
        "-a -t 1.1.1.111:80 -r 1.1.1.4:80 -g -w 1",
    ]


def test_identical_table_needs_no_command():
    live, target, _matched = _target(fixture("save-seed.txt"), [SEED_VS])
    assert ipvs.diff_tables(live, target) == []


def test_edits_scheduler_persistence_weight_and_forward_in_place():
    want = dict(SEED_VS, lb_algo="wrr", persistence_timeout=300, persistence_granularity="255.255.255.0",
                real_servers=[{"address": "1.1.1.3", "weight": 3}, {"address": "1.1.1.4", "forward": "TUN"}])
    live, target, _matched = _target(fixture("save-seed.txt"), [want])
    assert ipvs.diff_tables(live, target) == [
        "-E -t 1.1.1.111:80 -s wrr -p 300 -M 255.255.255.0",
        "-e -t 1.1.1.111:80 -r 1.1.1.3:80 -g -w 3",
        "-e -t 1.1.1.111:80 -r 1.1.1.4:80 -i -w 1",
    ]


def test_removing_persistence_is_an_edit():
    live, target, _matched = _target("-A -t 1.1.1.111:80 -s rr -p 300\n", [dict(SEED_VS, real_servers=[])])
    assert ipvs.diff_tables(live, target) == ["-E -t 1.1.1.111:80 -s rr"]


def test_real_servers_added_and_removed():
    want = dict(SEED_VS, real_servers=[{"address": "1.1.1.4"}, {"address": "1.1.1.5"}])
    live, target, _matched = _target(fixture("save-seed.txt"), [want])
    assert ipvs.diff_tables(live, target) == [
        "-d -t 1.1.1.111:80 -r 1.1.1.3:80",
        "-a -t 1.1.1.111:80 -r 1.1.1.5:80 -g -w 1",
    ]


def test_other_services_stay_unless_purge():
    live_text = fixture("save-mixed.txt")
    live, target, _matched = _target(live_text, [SEED_VS])
    cmds = ipvs.diff_tables(live, target)
    assert cmds == ["-e -t 1.1.1.111:80 -r 1.1.1.4:80 -g -w 1"]
    live, target, _matched = _target(live_text, [SEED_VS], purge=True)
    cmds = ipvs.diff_tables(live, target)
    assert cmds == [
        "-D -t 1.1.1.111:443",
        "-D -t 10.0.0.10:8080",
        "-D -u 1.1.1.111:53",
        "-D --sctp-service 1.1.1.111:3868",
        "-D -t [2001:db8::111]:80",
        "-D -f 1",
        "-D -f 2 -6",
        "-e -t 1.1.1.111:80 -r 1.1.1.4:80 -g -w 1",
    ]


def test_purge_with_nothing_listed_clears_the_table():
    live, target, _matched = _target(fixture("save-seed.txt"), [], purge=True)
    assert ipvs.diff_tables(live, target) == ["-D -t 1.1.1.111:80"]


def test_absent_removes_a_service_or_only_its_listed_real_servers():
    gone = [{"address": "1.1.1.111", "port": 443}, {"address": "10.9.9.9", "port": 80}]
    live, target, _matched = _target(fixture("save-mixed.txt"), gone, state="absent")
    assert ipvs.diff_tables(live, target) == ["-D -t 1.1.1.111:443"]
    one = [{"address": "1.1.1.111", "port": 80, "real_servers": [{"address": "1.1.1.4"}]}]
    live, target, _matched = _target(fixture("save-seed.txt"), one, state="absent")
    assert ipvs.diff_tables(live, target) == ["-d -t 1.1.1.111:80 -r 1.1.1.4:80"]


def test_drain_sets_weight_zero_and_keeps_the_server():
    live, target, matched = _target(fixture("save-seed.txt"), None, manage_services=False, drain=["1.1.1.3"])
    assert matched == {"1.1.1.3"}
    assert ipvs.diff_tables(live, target) == ["-e -t 1.1.1.111:80 -r 1.1.1.3:80 -g -w 0"]
    assert "1.1.1.3:80" in target["TCP/1.1.1.111:80"]["real_servers"]
    # by address:port, and an entry that names nothing is reported as unmatched
    live, target, matched = _target(fixture("save-mixed.txt"), None, manage_services=False,
                                    drain=["1.1.1.3:443", "[2001:db8::3]:80", "9.9.9.9"])
    assert matched == {"1.1.1.3:443", "[2001:db8::3]:80"}
    assert ipvs.diff_tables(live, target) == [
        "-e -t 1.1.1.111:443 -r 1.1.1.3:443 -g -w 0",
        "-e -t [2001:db8::111]:80 -r [2001:db8::3]:80 -g -w 0",
    ]


def test_drain_with_the_desired_table_overrides_its_weight():
    live, target, _matched = _target("", [SEED_VS], drain=["1.1.1.4"])
    assert ipvs.diff_tables(live, target)[-1] == "-a -t 1.1.1.111:80 -r 1.1.1.4:80 -g -w 0"


def test_applying_the_diff_reaches_the_target():
    """Replay the commands on the parsed live table: the result equals the target."""
    live = ipvsadm.parse_save(fixture("save-mixed.txt"))
    want = [dict(SEED_VS, lb_algo="sh", real_servers=[{"address": "1.1.1.5", "weight": 2}]),
            {"fwmark": 3, "lb_algo": "rr", "real_servers": [{"address": "1.1.1.3"}]}]
    desired = ipvs.desired_table(want)[0]
    target = ipvs.target_table(live, desired, purge=True)[0]
    cmds = ipvs.diff_tables(live, target)
    table = {k: dict(v, real_servers=dict(v["real_servers"])) for k, v in live.items()}
    for cmd in cmds:
        op, svc, rs = ipvsadm._parse_rule(cmd)
        key = ipvsadm.service_key(svc)
        if op == "-D":
            del table[key]
        elif op in ("-A", "-E"):
            svc["real_servers"] = table.get(key, {}).get("real_servers", {})
            table[key] = svc
        elif op == "-d":
            del table[key]["real_servers"][ipvsadm.real_server_key(rs)]
        else:
            table[key]["real_servers"][ipvsadm.real_server_key(rs)] = rs
    assert ipvs.comparable(table) == ipvs.comparable(target)
    assert ipvs.diff_tables(table, target) == []


def test_restore_text_is_one_line_per_command():
    assert ipvs.restore_text(["-A -t 1.1.1.111:80 -s rr", "-D -f 1"]) == "-A -t 1.1.1.111:80 -s rr\n-D -f 1\n"
    assert ipvs.restore_text([]) == ""


def test_split_addrport():
    assert ipvsadm.split_addrport("1.1.1.3:80") == ("1.1.1.3", 80)
    assert ipvsadm.split_addrport("[2001:DB8::3]:443") == ("2001:db8::3", 443)
    assert ipvsadm.split_addrport("1.1.1.3", 80) == ("1.1.1.3", 80)
    with pytest.raises(ipvsadm.IpvsError):
        ipvsadm.split_addrport("1.1.1.3")
    with pytest.raises(ipvsadm.IpvsError):
        ipvsadm.split_addrport("1.1.1.3:99999")


def test_table_to_list():
    out = ipvs.table_to_list(ipvsadm.parse_save(fixture("save-seed.txt")))
    assert out == [{"key": "TCP/1.1.1.111:80", "address": "1.1.1.111", "port": 80, "protocol": "TCP",
                    "fwmark": None, "family": "inet", "scheduler": "rr", "persistence_timeout": None,
                    "persistence_granularity": None,
                    "real_servers": [{"address": "1.1.1.3", "port": 80, "forward": "DR", "weight": 1},
                                     {"address": "1.1.1.4", "port": 80, "forward": "DR", "weight": 1}]}]
