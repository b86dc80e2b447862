# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The cluster model: normalisation of the seed, and one test per kind of bad input."""
from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import copy
import json
import os

import pytest
import yaml

from ansible_collections.lbha.cluster.plugins.module_utils import model
from ansible_collections.lbha.cluster.plugins.module_utils.model import ValidationError

SEED = os.path.join(os.path.dirname(__file__), "..", "..", "fixtures", "seed", "cluster.yml")


@pytest.fixture()
def seed():
    with open(SEED) as f:
        return yaml.safe_load(f)


def norm(seed, name="lb1", **kw):
    host = next((d for d in seed["directors"] if d["name"] == name),
                {"name": name, "address": "1.1.1.1", "priority": 100})
    return model.normalize(seed["cluster"], host, seed["directors"], seed["real_server_hosts"], **kw)


# ---------------------------------------------------------------------------------------------
# the good path


def test_seed_virtual_server_matches_internals_contract(seed):
    vs = norm(seed)["virtual_servers"][0]
    expected = {
        "address": "1.1.1.111", "port": 80, "protocol": "TCP", "lb_algo": "rr", "lb_kind": "DR",
        "delay_loop": 6, "persistence_timeout": None, "persistence_granularity": None,
        "quorum": 1, "hysteresis": 0, "sorry_server": None, "interface": "eth0",
    }
    for key, value in expected.items():
        assert vs[key] == value, key
    assert vs["real_servers"] == [
        {"address": "1.1.1.3", "port": 80, "weight": 1, "inhibit_on_failure": False, "name": "web1",
         "smtp_alert": None, "mail": True,
         "check": {"type": "TCP_CHECK", "connect_timeout": 1, "retry": 3, "delay_before_retry": 1,
                   "connect_port": 80, "connect_ip": None}},
        {"address": "1.1.1.4", "port": 80, "weight": 1, "inhibit_on_failure": False, "name": "web2",
         "smtp_alert": None, "mail": True,
         "check": {"type": "TCP_CHECK", "connect_timeout": 3, "retry": 3, "delay_before_retry": 3,
                   "connect_port": 80, "connect_ip": None}},
    ]
    # the seed sets notification mail and no smtp_alert: keepalived mails each real server's
    # failure and recovery, and no quorum change
    assert vs["smtp_alert"] is None and vs["mail"] is False
    json.dumps(vs)  # JSON-serialisable


def test_states_and_router_ids(seed):
    lb1, lb2 = norm(seed, "lb1"), norm(seed, "lb2")
    assert lb1["vrrp_instances"][0]["state"] == "MASTER" and lb2["vrrp_instances"][0]["state"] == "BACKUP"
    assert lb1["global_defs"]["router_id"] == "master" and lb2["global_defs"]["router_id"] == "backup"


def test_state_derived_from_priority(seed):
    for d in seed["directors"]:
        d.pop("state")
        d.pop("router_id")
    assert norm(seed, "lb1")["vrrp_instances"][0]["state"] == "MASTER"
    assert norm(seed, "lb2")["vrrp_instances"][0]["state"] == "BACKUP"
    assert norm(seed, "lb2")["global_defs"]["router_id"] == "lb2"


def test_nopreempt_renders_backup_everywhere(seed):
    for d in seed["directors"]:
        d.pop("state")
    seed["cluster"]["vrrp_instances"][0]["nopreempt"] = True
    assert norm(seed, "lb1")["vrrp_instances"][0]["state"] == "BACKUP"
    assert norm(seed, "lb2")["vrrp_instances"][0]["state"] == "BACKUP"


def test_unicast_peers_derived(seed):
    seed["cluster"]["vrrp_instances"][0]["unicast"] = True
    inst = norm(seed, "lb2")["vrrp_instances"][0]
    assert inst["unicast_src_ip"] == "1.1.1.2" and inst["unicast_peer"] == ["1.1.1.1"]


def test_persistence_and_seed_aliases(seed):
    vs = seed["cluster"]["virtual_servers"][0]
    vs["persistence_timeout"] = 120
    out = norm(seed)["virtual_servers"][0]
    assert out["persistence_timeout"] == 120 and out["persistence_granularity"] == "255.0.0.0"


def test_validate_cluster_merges_hosts(seed):
    seed["cluster"]["vrrp_instances"][0]["virtual_router_id"] = 300
    with pytest.raises(ValidationError) as e:
        model.validate_cluster(seed["cluster"], seed["directors"], seed["real_server_hosts"])
    assert "lb1, lb2: lbha_cluster.vrrp_instances[0].virtual_router_id: 300 is outside 1-255" in e.value.errors


def test_validate_cluster_without_directors(seed):
    with pytest.raises(ValidationError) as e:
        model.validate_cluster(seed["cluster"], [], seed["real_server_hosts"])
    assert e.value.errors == ["directors: no director is defined (is the directors inventory group empty?)"]


def test_validate_cluster_ok(seed):
    out = model.validate_cluster(seed["cluster"], seed["directors"], seed["real_server_hosts"])
    assert sorted(out["directors"]) == ["lb1", "lb2"] and out["warnings"] == []


def test_warnings_are_separate(seed):
    seed["cluster"]["global_defs"].pop("smtp_server")
    m = norm(seed)
    assert any("no smtp_server is set" in w for w in m["warnings"])


def test_virtual_services_and_vips_filters_helpers(seed):
    cluster = seed["cluster"]
    cluster["virtual_servers"].append({"address": "1.1.1.111", "port": 443, "protocol": "tcp"})
    cluster["virtual_servers"].append({"address": "1.1.1.111", "port": 80})  # duplicate
    cluster["vrrp_instances"][0]["virtual_ipaddress"].append({"address": "1.1.1.100/8"})
    assert model.virtual_services(cluster) == [
        {"address": "1.1.1.111", "port": 80, "protocol": "TCP"},
        {"address": "1.1.1.111", "port": 443, "protocol": "TCP"}]
    assert model.vips(cluster) == ["1.1.1.100", "1.1.1.111"]
    assert model.virtual_services(None) == [] and model.vips({}) == []


def test_secrets(seed):
    assert model.secrets(seed["cluster"]) == ["1111"]


# ---------------------------------------------------------------------------------------------
# bad inputs: each must fail and the message must name the host and the field


def _inst(s):
    return s["cluster"]["vrrp_instances"][0]


def _vs(s):
    return s["cluster"]["virtual_servers"][0]


def _set(getter, key, value):
    def mutate(s):
        getter(s)[key] = value
    return mutate


def _dup_instance(s):
    s["cluster"]["vrrp_instances"].append(dict(_inst(s), virtual_router_id=52,
                                               virtual_ipaddress=["1.1.1.112/8"]))


def _dup_vrid(s):
    s["cluster"]["vrrp_instances"].append(dict(_inst(s), name="VI_2", virtual_ipaddress=["1.1.1.112/8"]))


def _dup_rs(s):
    _vs(s)["real_servers"] = [{"address": "1.1.1.3"}]


def _equal_prio(s):
    s["directors"][1]["priority"] = 100


def _master_lower(s):
    s["directors"][0]["priority"] = 80


def _two_masters(s):
    s["directors"][1]["state"] = "MASTER"


def _dup_router_id(s):
    s["directors"][1]["router_id"] = "master"


def _self_peer(s):
    _inst(s)["unicast_peers"] = ["1.1.1.1", "1.1.1.2"]


def _rs_host_port(s):
    s["real_server_hosts"]["real_servers"][0]["port"] = 8080


def _rs_check_typo(s):
    s["real_server_hosts"]["real_servers"][1]["check"] = {"conect_timeout": 3}


BAD = [
    # (id, mutation, substrings the message must contain)
    ("priority-range", lambda s: s["directors"][0].update(priority=300),
     ["lb1: lb1: priority (lbha_director_priority): 300 is outside 1-255"]),
    ("priority-255-not-owner", lambda s: s["directors"][0].update(priority=255),
     ["lb1: priority (lbha_director_priority): 255 is reserved"]),
    ("priority-missing", lambda s: s["directors"][0].pop("priority"), ["lb1: priority", "is required"]),
    ("vrid-range", _set(_inst, "virtual_router_id", 300),
     ["lb1: lbha_cluster.vrrp_instances[0].virtual_router_id: 300 is outside 1-255"]),
    ("vrid-type", _set(_inst, "virtual_router_id", "fifty"),
     ["lbha_cluster.vrrp_instances[0].virtual_router_id: expected an integer"]),
    ("vrid-duplicate", _dup_vrid, ["lbha_cluster.vrrp_instances[1].virtual_router_id: 51 is also used on eth0"]),
    ("instance-name-duplicate", _dup_instance, ["lbha_cluster.vrrp_instances[1].name: VI_1 is also the name"]),
    ("auth-pass-long", lambda s: _inst(s)["authentication"].update(auth_pass="123456789"),
     ["lbha_cluster.vrrp_instances[0].authentication.auth_pass: is 9 bytes long"]),
    ("auth-type", lambda s: _inst(s)["authentication"].update(auth_type="HA"),
     ["lbha_cluster.vrrp_instances[0].authentication.auth_type: 'HA' is not one of PASS, AH"]),
    ("auth-version3", _set(_inst, "version", 3),
     ["lbha_cluster.vrrp_instances[0].authentication: VRRP version 3 has no authentication"]),
    ("vip-not-cidr", _set(_inst, "virtual_ipaddress", ["1.1.1.111"]),
     ["lbha_cluster.vrrp_instances[0].virtual_ipaddress[0]: '1.1.1.111' has no prefix length"]),
    ("vip-not-ip", _set(_inst, "virtual_ipaddress", ["1.1.1.300/8"]),
     ["lbha_cluster.vrrp_instances[0].virtual_ipaddress[0]: '1.1.1.300/8' is not an IP address"]),
    ("vs-not-a-vip", _set(_vs, "address", "1.1.1.112"),
     ["lbha_cluster.virtual_servers[0].address: 1.1.1.112 is not among the virtual_ipaddress"]),
    ("vs-port-range", _set(_vs, "port", 70000), ["lbha_cluster.virtual_servers[0].port: 70000 is outside 1-65535"]),
    ("vs-protocol", _set(_vs, "protocol", "ICMP"),
     ["lbha_cluster.virtual_servers[0].protocol: 'ICMP' is not one of TCP, UDP, SCTP"]),
    ("lb-algo", _set(_vs, "lb_algo", "roundrobin"), ["lbha_cluster.virtual_servers[0].lb_algo: 'roundrobin'"]),
    ("lb-kind", _set(_vs, "lb_kind", "FULLNAT"), ["lbha_cluster.virtual_servers[0].lb_kind: 'FULLNAT'"]),
    ("dr-port-remap", _rs_host_port,
     ["lbha_cluster.virtual_servers[0].real_servers_group[web1].port: 8080 differs from the virtual server port 80"]),
    ("rs-off-subnet", lambda s: s["real_server_hosts"]["real_servers"][0].update(address="10.9.9.9"),
     ["lbha_cluster.virtual_servers[0].real_servers_group[web1].address: 10.9.9.9 is not on the VIP's subnet 1.0.0.0/8"]),
    ("rs-duplicate", _dup_rs, ["lbha_cluster.virtual_servers[0].real_servers_group[web1].address: 1.1.1.3 port 80 is "
                               "already a real server"]),
    ("delay-loop", _set(_vs, "delay_loop", 0), ["lbha_cluster.virtual_servers[0].delay_loop: 0 is outside 0.000001-86400"]),
    ("connect-timeout", lambda s: _vs(s)["check"].update(connect_timeout=0),
     ["lbha_cluster.virtual_servers[0].check.connect_timeout: 0 is outside"]),
    ("retry", lambda s: _vs(s)["check"].update(nb_get_retry=0),
     ["lbha_cluster.virtual_servers[0].check.nb_get_retry: 0 is outside 1-4294967295"]),
    ("weight", lambda s: s["real_server_hosts"]["real_servers"][0].update(weight=2147483648),
     ["lbha_cluster.virtual_servers[0].real_servers_group[web1].weight: 2147483648 is outside 0-2147483647"]),
    ("equal-priorities", _equal_prio, ["directors: lb1 and lb2 both have priority 100"]),
    ("master-lower-than-backup", _master_lower,
     ["directors: lb1 is declared MASTER with priority 80 but lb2 has the higher priority 90"]),
    ("two-masters", _two_masters, ["directors: lb1, lb2 are all declared MASTER"]),
    ("no-director", lambda s: s.update(directors=[]), ["lb1: directors: no director is defined"]),
    ("host-not-a-director", lambda s: s.update(directors=s["directors"][1:]),
     ["directors: lb1 is not among the directors (lb2)"]),
    ("duplicate-router-id", _dup_router_id, ["directors: lb1 and lb2 have the same router_id master"]),
    ("nopreempt-master", _set(_inst, "nopreempt", True),
     ["lb1: state (lbha_director_state): MASTER cannot be combined with nopreempt"]),
    ("unicast-self-peer", _self_peer, ["lbha_cluster.vrrp_instances[0].unicast_peers: 1.1.1.1 is this director's own"]),
    ("unknown-key-top", lambda s: s["cluster"].update(vrrp_instance=[]),
     ["lbha_cluster.vrrp_instance: unknown key; accepted keys: global_defs, ipvs, virtual_servers, vrrp_instances"]),
    ("unknown-key-instance", _set(_inst, "advert_intervall", 1),
     ["lbha_cluster.vrrp_instances[0].advert_intervall: unknown key; accepted keys:", "advert_int"]),
    ("unknown-key-check", _rs_check_typo,
     ["lbha_cluster.virtual_servers[0].real_servers_group[web2].check.conect_timeout: unknown key", "connect_timeout"]),
    ("unknown-key-global", lambda s: s["cluster"]["global_defs"].update(smtp_serevr="x"),
     ["lbha_cluster.global_defs.smtp_serevr: unknown key"]),
    ("wrong-type-instances", lambda s: s["cluster"].update(vrrp_instances={"name": "VI_1"}),
     ["lbha_cluster.vrrp_instances: expected a list, got a mapping"]),
    ("wrong-type-bool", _set(_inst, "nopreempt", "maybe"),
     ["lbha_cluster.vrrp_instances[0].nopreempt: expected a boolean"]),
    ("check-type", lambda s: _vs(s)["check"].update(type="PING_CHECK"),
     ["lbha_cluster.virtual_servers[0].check.type: 'PING_CHECK' is not one of"]),
    ("misc-path-missing", _set(_vs, "check", {"type": "MISC_CHECK"}),
     ["lbha_cluster.virtual_servers[0].check.misc_path: is required for MISC_CHECK"]),
    ("http-status", _set(_vs, "check", {"type": "HTTP_GET", "url": [{"path": "/", "status_code": 999}]}),
     ["lbha_cluster.virtual_servers[0].check.url[0].status_code: 999 is outside 100-599"]),
    ("advert-int-fraction-v2", _set(_inst, "advert_int", 0.5),
     ["lbha_cluster.vrrp_instances[0].advert_int: 0.5 is outside 1-255"]),
    ("track-script-unknown", _set(_inst, "track_script", ["chk_nope"]),
     ["lbha_cluster.vrrp_instances[0].track_script[0]: 'chk_nope' is not a vrrp_scripts name"]),
    ("netmask-bad", _set(_vs, "netmask", "255.0.255.0"), ["lbha_cluster.virtual_servers[0].netmask: '255.0.255.0'"]),
    ("sorry-port-dr", _set(_vs, "sorry_server", {"address": "1.1.1.5", "port": 8080}),
     ["lbha_cluster.virtual_servers[0].sorry_server.port: 8080 differs"]),
    ("rs-address-unknown", lambda s: s["real_server_hosts"]["real_servers"][0].update(address=None),
     ["lbha_cluster.virtual_servers[0].real_servers_group[web1].address: the address of web1 is not known"]),
    ("notify-relative", _set(_inst, "notify_master", "notify.sh"),
     ["lbha_cluster.vrrp_instances[0].notify_master: 'notify.sh' must start with an absolute path"]),
    ("vip-label-dev", _set(_inst, "virtual_ipaddress", [{"address": "1.1.1.111/8", "label": "lo:1"}]),
     ["lbha_cluster.vrrp_instances[0].virtual_ipaddress[0].label: 'lo:1' must start with the device name"]),
    ("duplicate-vs", lambda s: s["cluster"]["virtual_servers"].append(dict(_vs(s))),
     ["lbha_cluster.virtual_servers[1]: TCP 1.1.1.111:80 is also virtual_servers[0]"]),
]


@pytest.mark.parametrize("mutate,expected", [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_input(seed, mutate, expected):
    mutate(seed)
    with pytest.raises(ValidationError) as e:
        norm(seed, "lb1")
    text = "\n".join(e.value.errors)
    for piece in expected:
        assert piece in text, "%r not in:\n%s" % (piece, text)
    for err in e.value.errors:
        assert err.startswith("lb1: "), err


def test_all_errors_collected(seed):
    _inst(seed)["virtual_router_id"] = 0
    _vs(seed)["port"] = 0
    _vs(seed)["lb_algo"] = "x"
    seed["directors"][0]["priority"] = 0
    with pytest.raises(ValidationError) as e:
        norm(seed)
    assert len(e.value.errors) >= 4
    assert str(e.value).startswith("%d error(s)" % len(e.value.errors))


def test_nftables_plane_restrictions(seed):
    _vs(seed)["lb_kind"] = "NAT"
    _vs(seed)["protocol"] = "SCTP"
    with pytest.raises(ValidationError) as e:
        norm(seed, dataplane="nftables")
    text = "\n".join(e.value.errors)
    assert "lbha_cluster.virtual_servers[0].lb_kind: NAT is not supported by the nftables plane" in text
    assert "lbha_cluster.virtual_servers[0].protocol: SCTP is not supported by the nftables plane" in text


def test_priority_255_allowed_for_owner(seed):
    seed["directors"][0]["priority"] = 255
    seed["directors"][0]["address"] = "1.1.1.111"
    assert norm(seed)["vrrp_instances"][0]["priority"] == 255


def test_string_numbers_from_templates_are_accepted(seed):
    seed["directors"][0]["priority"] = "100"
    _inst(seed)["virtual_router_id"] = "51"
    m = norm(seed)
    assert m["vrrp_instances"][0]["priority"] == 100 and m["vrrp_instances"][0]["virtual_router_id"] == 51


def test_director_subnet_check(seed):
    _inst(seed)["virtual_ipaddress"] = ["1.1.1.111/32"]
    seed["directors"][0]["address"] = "1.1.1.1/24"
    seed["real_server_hosts"]["real_servers"][0]["address"] = "1.1.2.3"
    with pytest.raises(ValidationError) as e:
        norm(seed)
    assert "1.1.2.3 is not on the director's subnet 1.1.1.0/24" in "\n".join(e.value.errors)


def test_input_is_not_modified(seed):
    before = copy.deepcopy(seed)
    norm(seed)
    assert seed == before
