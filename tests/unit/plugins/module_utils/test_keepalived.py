# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""keepalived.conf rendering: the seed's lb1/lb2 golden files, determinism, keepalived -t."""
from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import copy
import os
import pwd
import subprocess

import pytest
import yaml

from ansible_collections.lbha.cluster.plugins.module_utils import keepalived, model

SEED = os.path.join(os.path.dirname(__file__), "..", "..", "fixtures", "seed")


@pytest.fixture(scope="module")
def seed():
    with open(os.path.join(SEED, "cluster.yml")) as f:
        return yaml.safe_load(f)


def render_for(seed, name, **kw):
    host = [d for d in seed["directors"] if d["name"] == name][0]
    m = model.normalize(seed["cluster"], host, seed["directors"], seed["real_server_hosts"], **kw)
    return keepalived.render(m), m


def golden(name):
    with open(os.path.join(SEED, name)) as f:
        return f.read()


@pytest.mark.parametrize("director", ["lb1", "lb2"])
@pytest.mark.parametrize("dataplane,suffix", [("ipvs", ""), ("nftables", "-nftables")])
def test_seed_renders_golden(seed, director, dataplane, suffix):
    text, m = render_for(seed, director, dataplane=dataplane)
    assert text == golden("%s%s.conf" % (director, suffix))
    assert m["warnings"] == []


def test_seed_settings_preserved(seed):
    lb1 = golden("lb1.conf")
    for line in ("acassen@firewall.loc", "failover@firewall.loc", "sysadmin@firewall.loc",
                 "notification_email_from Alexandre.Cassen@firewall.loc", "smtp_server 192.168.200.1",
                 "smtp_connect_timeout 30", "router_id master", "state MASTER", "interface eth0",
                 "virtual_router_id 51", "priority 100", "advert_int 1", "auth_type PASS", "auth_pass 1111",
                 "1.1.1.111/8", "virtual_server 1.1.1.111 80 {", "delay_loop 6", "lb_algo rr", "lb_kind DR",
                 "protocol TCP", "real_server 1.1.1.3 80 {", "real_server 1.1.1.4 80 {", "weight 1",
                 "TCP_CHECK {", "connect_port 80", 'notify "/usr/lib/lbha-cluster/notify"'):
        assert line in lb1, line
    # keepalived 2.2 spellings of the seed's terms
    assert "nb_get_retry" not in lb1 and lb1.count(" retry 3\n") == 2
    assert "persistence_timeout" not in lb1 and "netmask" not in lb1
    # the per-real-server check of the seed: 1.1.1.4 has slower timers
    rs4 = lb1.split("real_server 1.1.1.4 80 {")[1]
    rs3 = lb1.split("real_server 1.1.1.3 80 {")[1].split("real_server 1.1.1.4")[0]
    assert "connect_timeout 3" in rs4 and "delay_before_retry 3" in rs4
    assert "connect_timeout 1" in rs3 and "delay_before_retry 1" in rs3
    lb2 = golden("lb2.conf")
    assert "router_id backup" in lb2 and "state BACKUP" in lb2 and "priority 90" in lb2


def test_render_is_deterministic_and_indented(seed):
    a, _unused = render_for(seed, "lb1")
    b, _unused = render_for(copy.deepcopy(seed), "lb1")
    assert a == b
    assert a.startswith("# Managed by lbha.cluster")
    for line in a.splitlines():
        stripped = line.lstrip(" ")
        assert "\t" not in line
        assert (len(line) - len(stripped)) % 4 == 0, line


def test_nftables_renders_no_virtual_server(seed):
    text, m = render_for(seed, "lb1", dataplane="nftables")
    assert "virtual_server" not in text.replace("# Virtual servers", "")
    assert "real_server" not in text
    assert len(m["virtual_servers"]) == 1


def test_mask_hides_auth_pass(seed):
    _text, m = render_for(seed, "lb1")
    masked = keepalived.render(m, mask=True)
    assert "auth_pass ********" in masked and "auth_pass 1111" not in masked


def test_notify_script_empty_renders_none(seed):
    text, _unused = render_for(seed, "lb1", notify_script="")
    assert "notify" not in text.replace("notification_email", "")


def test_persistence_renders_granularity(seed):
    cluster = copy.deepcopy(seed["cluster"])
    cluster["virtual_servers"][0]["persistence_timeout"] = 300
    m = model.normalize(cluster, seed["directors"][0], seed["directors"], seed["real_server_hosts"])
    text = keepalived.render(m)
    assert "    persistence_timeout 300\n    persistence_granularity 255.0.0.0\n" in text


def test_full_feature_render():
    cluster = {
        "global_defs": {"notification_email": "ops@example.com", "smtp_server": "mail.example.com",
                        "smtp_port": 2525, "script_user": "nobody"},
        "vrrp_scripts": [{"name": "chk_nginx", "script": "/usr/bin/pgrep nginx", "interval": 2,
                          "weight": -20, "fall": 2, "rise": 2}],
        "vrrp_instances": [
            {"name": "VI_1", "interface": "eth0", "virtual_router_id": 51,
             "authentication": {"auth_type": "PASS", "auth_pass": "secret1"}, "unicast": True,
             "virtual_ipaddress": [{"address": "10.0.0.100/24", "dev": "eth0", "label": "eth0:1"}],
             "track_script": ["chk_nginx"], "track_interface": ["eth1"], "garp_master_delay": 1,
             "notify_master": "/usr/local/bin/on-master --now"},
            {"name": "VI_2", "interface": "eth0", "virtual_router_id": 52, "version": 3, "advert_int": 0.5,
             "virtual_ipaddress": ["10.0.0.101/24"]},
            {"name": "VI_3", "interface": "eth0", "virtual_router_id": 53, "version": 3, "advert_int": 0.5,
             "virtual_ipaddress": ["10.0.0.102/24"]},
        ],
        "vrrp_sync_groups": [{"name": "G1", "group": ["VI_2", "VI_3"]}],
        "virtual_servers": [
            {"address": "10.0.0.100", "port": 443, "lb_algo": "wlc", "persistence_timeout": 60,
             "sorry_server": {"address": "10.0.0.50"}, "quorum": 2, "hysteresis": 1,
             "real_servers": [
                 {"address": "10.0.0.11", "weight": 2,
                  "check": {"type": "SSL_GET", "url": [{"path": "/health", "status_code": [200, 204]}]}},
                 {"address": "10.0.0.12", "inhibit_on_failure": True,
                  "check": {"type": "MISC_CHECK", "misc_path": "/usr/local/bin/check 10.0.0.12",
                            "misc_dynamic": True}},
             ]},
            {"address": "10.0.0.101", "port": 53, "protocol": "UDP", "lb_algo": "sh",
             "check": {"type": "HTTP_GET", "connect_port": 80,
                       "url": [{"path": "/", "digest": "D41D8CD98F00B204E9800998ECF8427E"}]},
             "real_servers": [{"address": "10.0.0.11"}, {"address": "10.0.0.12", "check": False}]},
        ],
    }
    directors = [{"name": "a", "address": "10.0.0.1", "priority": 150},
                 {"name": "b", "address": "10.0.0.2", "priority": 100}]
    m = model.normalize(cluster, directors[1], directors)
    text = keepalived.render(m)
    for piece in ("smtp_server mail.example.com 2525", "vrrp_script chk_nginx {", 'script "/usr/bin/pgrep nginx"',
                  "weight -20", "unicast_src_ip 10.0.0.2", "unicast_peer {\n        10.0.0.1\n    }",
                  "10.0.0.100/24 dev eth0 label eth0:1", "track_script {\n        chk_nginx\n    }",
                  'notify_master "/usr/local/bin/on-master --now"', "version 3", "advert_int 0.5",
                  "vrrp_sync_group G1 {\n    group {\n        VI_2\n        VI_3\n    }\n}",
                  "persistence_timeout 60", "sorry_server 10.0.0.50 443", "quorum 2", "hysteresis 1",
                  "SSL_GET {", "path /health", "status_code 200 204", "connect_port 443",
                  'misc_path "/usr/local/bin/check 10.0.0.12"', "misc_timeout 6", "misc_dynamic",
                  "inhibit_on_failure", "digest d41d8cd98f00b204e9800998ecf8427e", "state BACKUP",
                  "lb_algo sh", "protocol UDP"):
        assert piece in text, piece
    # the second real server of the UDP service has its check disabled
    tail = text.split("real_server 10.0.0.12 53 {")[1].split("}")[0]
    assert "HTTP_GET" not in tail


# ---------------------------------------------------------------------------------------------
# keepalived -t

def run_argv(argv):
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    return proc.returncode, proc.stdout, proc.stderr


def _testable(text):
    """The script user must exist on this machine: the director role creates keepalived_script;
    here the stock 'nobody' stands in for it. The nftables plane's health check is installed by
    the director role: /usr/bin/true stands in for it (keepalived disables a script it cannot find)."""
    pwd.getpwnam("nobody")
    assert "script_user keepalived_script\n" in text
    text = text.replace('script "%s ' % model.DEFAULT_PLANE_CHECK.split()[0], 'script "/usr/bin/true ')
    return text.replace("script_user keepalived_script\n", "script_user nobody\n")


@pytest.mark.parametrize("name", ["lb1.conf", "lb2.conf", "lb1-nftables.conf", "lb2-nftables.conf"])
def test_golden_passes_keepalived_config_test(tmp_path, eth0_keepalived, name):
    text = _testable(golden(name))
    path = tmp_path / name
    path.write_text(text)
    ok, messages, notes = keepalived.config_test(str(path), run_argv, eth0_keepalived)
    assert ok, messages


def test_keepalived_config_test_reports_errors(tmp_path, eth0_keepalived):
    text = _testable(golden("lb1.conf")).replace("advert_int 1", "advert_intx 1")
    path = tmp_path / "bad.conf"
    path.write_text(text)
    ok, messages, _unused = keepalived.config_test(str(path), run_argv, eth0_keepalived)
    assert not ok
    assert "advert_intx" in messages


def test_keepalived_config_test_large(tmp_path, eth0_keepalived):
    cluster = {"vrrp_instances": [{"name": "VI_1", "interface": "eth0", "virtual_router_id": 51,
                                   "virtual_ipaddress": ["10.1.0.1/16"]}],
               "virtual_servers": [{"address": "10.1.0.1", "port": 80,
                                    "check": {"type": "TCP_CHECK", "connect_timeout": 1},
                                    "real_servers": [{"address": "10.1.%d.%d" % (1 + i // 250, 1 + i % 250)}
                                                     for i in range(300)]}]}
    m = model.normalize(cluster, {"name": "lb1", "priority": 100})
    text = _testable(keepalived.render(m))
    path = tmp_path / "big.conf"
    path.write_text(text)
    ok, messages, _unused = keepalived.config_test(str(path), run_argv, eth0_keepalived)
    assert ok, messages


@pytest.mark.parametrize("dataplane", ["ipvs", "nftables"])
def test_an_ipv6_vip_is_deprecated_so_health_checks_never_leave_from_it(tmp_path, eth0_keepalived, dataplane):
    # a VIP in the director's subnet would otherwise be a preferred source address: the real
    # server, which holds the VIP on lo, answers a check sent from it to itself
    cluster = {"vrrp_instances": [{"name": "VI_6", "interface": "eth0", "virtual_router_id": 61,
                                   "virtual_ipaddress": ["fd6c:6268:6100::111/64", "fd6c:6268:6100::112/128"]},
                                  {"name": "VI_4", "interface": "eth0", "virtual_router_id": 41,
                                   "virtual_ipaddress": ["10.1.0.1/24"]}],
               "virtual_servers": [{"address": "fd6c:6268:6100::111", "port": 80,
                                    "check": {"type": "TCP_CHECK", "connect_timeout": 1},
                                    "real_servers": [{"address": "fd6c:6268:6100::3"},
                                                     {"address": "fd6c:6268:6100::4"}]}]}
    m = model.normalize(cluster, {"name": "lb1", "priority": 100}, dataplane=dataplane)
    text = keepalived.render(m)
    assert "fd6c:6268:6100::111/64 preferred_lft 0\n" in text
    assert "fd6c:6268:6100::112/128 preferred_lft 0\n" in text
    assert "10.1.0.1/24\n" in text and "10.1.0.1/24 preferred_lft" not in text
    path = tmp_path / "v6.conf"
    path.write_text(_testable(text))
    ok, messages, _unused = keepalived.config_test(str(path), run_argv, eth0_keepalived)
    assert ok, messages


def test_config_test_with_fake_binary(tmp_path):
    fake = tmp_path / "keepalived"
    fake.write_text("#!/bin/sh\necho \"(Line 3) Unknown keyword 'bogus'\" >&2\nexit 1\n")
    fake.chmod(0o755)
    conf = tmp_path / "k.conf"
    conf.write_text("global_defs {\n}\n")
    ok, messages, notes = keepalived.config_test(str(conf), run_argv, str(fake))
    assert not ok and "Unknown keyword 'bogus'" in messages and notes == []


def test_config_test_retries_after_self_termination(tmp_path):
    # keepalived < 2.2.8 kills itself in -t when script_user is not root: the test is repeated
    # with script_user root (and the fake here only accepts that copy).
    fake = tmp_path / "keepalived"
    fake.write_text('#!/bin/sh\nif grep -q "script_user root" "$3"; then exit 0; fi\nkill -TERM $$\n')
    fake.chmod(0o755)
    conf = tmp_path / "k.conf"
    conf.write_text("global_defs {\n    script_user keepalived_script\n}\n")
    ok, messages, notes = keepalived.config_test(str(conf), run_argv, str(fake))
    assert ok, messages
    assert notes and "2.2.8" in notes[0]
    assert "keepalived_script" in conf.read_text()  # the file itself is untouched


# ---------------------------------------------------------------------------------------------
# connection sync (ipvs plane)

def _sync_model(seed, sync, dataplane="ipvs", ipvs=None):
    cluster = copy.deepcopy(seed["cluster"])
    cluster.setdefault("global_defs", {})["lvs_sync_daemon"] = sync
    if ipvs is not None:
        cluster["ipvs"] = ipvs
    host = seed["directors"][0]
    return model.normalize(cluster, host, seed["directors"], seed["real_server_hosts"], dataplane=dataplane)


def test_the_sync_daemon_is_on_by_default_on_the_ipvs_plane(seed):
    text, m = render_for(seed, "lb1")
    assert "    lvs_sync_daemon eth0 VI_1 id 51\n" in text
    assert model.ipvs_sysctl(m) == {"net.ipv4.vs.sloppy_tcp": 1, "net.ipv4.vs.sloppy_sctp": 1,
                                    "net.ipv4.vs.conn_reuse_mode": 2, "net.ipv4.vs.expire_nodest_conn": 1}


def test_the_sync_daemon_off(seed):
    m = _sync_model(seed, False)
    assert "lvs_sync_daemon" not in keepalived.render(m)
    assert model.ipvs_sysctl(m) == {"net.ipv4.vs.sloppy_tcp": 0, "net.ipv4.vs.sloppy_sctp": 0,
                                    "net.ipv4.vs.conn_reuse_mode": 2, "net.ipv4.vs.expire_nodest_conn": 1}
    m = _sync_model(seed, False, ipvs={"sloppy_tcp": True, "conn_reuse_mode": 1, "expire_nodest_conn": "no"})
    assert model.ipvs_sysctl(m) == {"net.ipv4.vs.sloppy_tcp": 1, "net.ipv4.vs.sloppy_sctp": 0,
                                    "net.ipv4.vs.conn_reuse_mode": 1, "net.ipv4.vs.expire_nodest_conn": 0}


@pytest.mark.parametrize("ipvs,message", [
    ({"conn_reuse_mode": 4}, "lbha_cluster.ipvs.conn_reuse_mode: 4 is outside 0-3"),
    ({"sloppy_tcp": "maybe"}, "lbha_cluster.ipvs.sloppy_tcp: expected a boolean"),
    ({"sloppy_udp": True}, "lbha_cluster.ipvs.sloppy_udp: unknown key"),
])
def test_the_ipvs_settings_refuse(seed, ipvs, message):
    with pytest.raises(model.ValidationError) as err:
        _sync_model(seed, None, ipvs=ipvs)
    assert any(message in e for e in err.value.errors), err.value.errors


def test_the_nftables_plane_neither_renders_nor_sets_ipvs(seed):
    text, m = render_for(seed, "lb1", dataplane="nftables")
    assert "lvs_sync_daemon" not in text and model.ipvs_sysctl(m) == {} and m["warnings"] == []
    m = _sync_model(seed, {"port": 8849}, dataplane="nftables", ipvs={"sloppy_tcp": True})
    assert [w for w in m["warnings"] if "lvs_sync_daemon" in w and "ignored" in w]
    assert [w for w in m["warnings"] if "lbha_cluster.ipvs" in w and "ignored" in w]


@pytest.mark.parametrize("sync,message", [
    ({"instance": "VI_9"}, "lvs_sync_daemon.instance: VI_9 is not a vrrp_instance (VI_1)"),
    ({"id": 256}, "lvs_sync_daemon.id: 256 is outside 0-255"),
    ({"maxlen": 65508}, "lvs_sync_daemon.maxlen: 65508 is outside 1-65507"),
    ({"ttl": 0}, "lvs_sync_daemon.ttl: 0 is outside 1-255"),
    ({"group": "1.1.1.1"}, "lvs_sync_daemon.group: 1.1.1.1 is not a multicast address"),
    ({"group": "ff02::1%eth0"}, "lvs_sync_daemon.group: "),
    ({"interface": "eth0\n    vrrp_strict"}, "lvs_sync_daemon.interface: "),
    ({"interface": "lo"}, "lvs_sync_daemon.interface: the sync daemon cannot use the loopback interface"),
    ({"bogus": 1}, "lvs_sync_daemon.bogus: unknown key"),
    ("yes please", "lvs_sync_daemon: expected a boolean"),
])
def test_the_sync_daemon_refuses(seed, sync, message):
    with pytest.raises(model.ValidationError) as err:
        _sync_model(seed, sync)
    assert any(message in e for e in err.value.errors), err.value.errors


def test_every_sync_daemon_option_passes_keepalived_config_test(tmp_path, eth0_keepalived, seed):
    m = _sync_model(seed, {"instance": "VI_1", "interface": "eth0", "id": 7, "maxlen": 1400, "port": 8849,
                           "ttl": 2, "group": "224.0.0.82"})
    text = _testable(keepalived.render(m))
    assert "    lvs_sync_daemon eth0 VI_1 id 7 maxlen 1400 port 8849 ttl 2 group 224.0.0.82\n" in text
    path = tmp_path / "sync.conf"
    path.write_text(text)
    ok, messages, _unused = keepalived.config_test(str(path), run_argv, eth0_keepalived)
    assert ok, messages
