# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The model fails closed: what it accepts, keepalived accepts unchanged.

Each case here was found against keepalived 2.2.7 and 2.3.3 (``keepalived -t``; see
tests/differential/): input the model accepted but keepalived refused, ignored, rewrote or read
as something else (an injected keyword), input that crashed the model, and input keepalived
takes that the model refused.
"""
from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import copy

import pytest

from ansible_collections.lbha.cluster.plugins.module_utils import keepalived, model
from ansible_collections.lbha.cluster.plugins.module_utils.model import ValidationError

DIRECTORS = [{"name": "lb1", "address": "10.0.0.1", "priority": 100},
             {"name": "lb2", "address": "10.0.0.2", "priority": 90}]


def base():
    return {
        "global_defs": {},
        "vrrp_scripts": [{"name": "chk", "script": "/usr/bin/true"}],
        "vrrp_instances": [{"name": "VI_1", "interface": "eth0", "virtual_router_id": 51,
                            "virtual_ipaddress": ["10.0.0.100/24"]}],
        "virtual_servers": [{"address": "10.0.0.100", "port": 80,
                             "real_servers": [{"address": "10.0.0.11"}]}],
    }


def validate(cluster, directors=None, **kw):
    return model.validate_cluster(cluster, copy.deepcopy(directors or DIRECTORS), **kw)


def refused(cluster, directors=None, **kw):
    with pytest.raises(ValidationError) as e:
        validate(cluster, directors, **kw)
    return "\n".join(e.value.errors)


def _inst(c):
    return c["vrrp_instances"][0]


def _vs(c):
    return c["virtual_servers"][0]


def _rs(c):
    return _vs(c)["real_servers"][0]


def _gd(c):
    return c["global_defs"]


def _set(getter, key, value):
    def mutate(c):
        getter(c)[key] = value
    return mutate


def _strict(c):
    _gd(c)["vrrp_strict"] = True


def _both(*mutations):
    def mutate(c):
        for m in mutations:
            m(c)
    return mutate


def _v6(c):
    _inst(c)["virtual_ipaddress"] = ["fe80::100/64"]
    c["virtual_servers"] = []


def _add_instance(c, name="VI_2", vrid=52, vip="10.0.0.101/24", **kw):
    inst = {"name": name, "interface": "eth0", "virtual_router_id": vrid, "virtual_ipaddress": [vip]}
    inst.update(kw)
    c["vrrp_instances"].append(inst)


def _weighted_sync_group(c):
    c["vrrp_scripts"][0]["weight"] = -20
    _inst(c)["track_script"] = ["chk"]
    _add_instance(c)
    c["vrrp_sync_groups"] = [{"name": "G1", "group": ["VI_1", "VI_2"]}]


# ---------------------------------------------------------------------------------------------
# injection: nothing in a value may become keepalived syntax

INJECTION = [
    ("smtp-scope-id", _set(_gd, "smtp_server", "fe80::1%eth0\n    vrrp_strict"),
     "global_defs.smtp_server: 'fe80::1%eth0\\n    vrrp_strict' is neither an IP address nor a host name"),
    ("peer-scope-id", _set(_inst, "unicast_peers", ["fe80::2%eth0\n    vrrp_strict"]),
     "unicast_peers[0]: 'fe80::2%eth0\\n    vrrp_strict' is not an IP address"),
    ("vip-scope-id", _set(_inst, "virtual_ipaddress", ["fe80::1%eth0}\n/64"]),
     "virtual_ipaddress[0]: 'fe80::1%eth0}\\n/64' is not an IP address in CIDR form"),
    ("vs-scope-id", _set(_vs, "address", "fe80::1%x"), "virtual_servers[0].address: 'fe80::1%x' is not an IP address"),
    ("rs-scope-id", _set(_rs, "address", "fe80::1%x"), "real_servers[0].address: 'fe80::1%x' is not an IP address"),
    ("sorry-scope-id", _set(_vs, "sorry_server", {"address": "fe80::1%x"}),
     "sorry_server.address: 'fe80::1%x' is not an IP address"),
    ("connect-ip-scope-id", _set(_vs, "check", {"type": "TCP_CHECK", "connect_ip": "fe80::1%x"}),
     "check.connect_ip: 'fe80::1%x' is not an IP address"),
    ("director-address-scope-id", lambda c: None, None),  # see test_director_address_scope_id
    ("interface-trailing-newline", _set(_inst, "interface", "eth0\n"), "interface: 'eth0\\n' is not an interface name"),
    ("helo-trailing-newline", _set(_gd, "smtp_helo_name", "localhost\n"), "smtp_helo_name: 'localhost\\n' is not a host name"),
    ("smtp-trailing-newline", _set(_gd, "smtp_server", "localhost\n"), "smtp_server: 'localhost\\n' is neither"),
    ("name-trailing-newline", _set(_inst, "name", "VI_1\n"), "vrrp_instances[0].name: 'VI_1\\n' is not a name"),
    ("digest-trailing-newline", _set(_vs, "check", {"type": "HTTP_GET", "url": [
        {"path": "/", "digest": "d41d8cd98f00b204e9800998ecf8427e\n"}]}), "digest: 'd41d8cd98f00b204e9800998ecf8427e\\n'"),
    ("user-trailing-newline", _set(_gd, "script_user", "nobody\n"), "script_user: 'nobody\\n' is not a user name"),
    ("email-definition", _set(_gd, "notification_email", ["$X=ops@example.com"]),
     "notification_email[0]: '$X=ops@example.com' is not an e-mail address"),
    ("email-from-expansion", _set(_gd, "notification_email_from", "a$_PWD@example.com"), "is not an e-mail address"),
    ("email-tilde", _set(_gd, "notification_email", ["~SEQ@example.com"]), "is not an e-mail address"),
    ("script-expansion", lambda c: c["vrrp_scripts"][0].update(script="/usr/bin/test $_PWD"),
     "vrrp_scripts[0].script: '/usr/bin/test $_PWD' must not contain '$'"),
    ("script-apostrophe", lambda c: c["vrrp_scripts"][0].update(script="/usr/bin/test it's"), "must not contain \"'\""),
    ("script-trailing-backslash", lambda c: c["vrrp_scripts"][0].update(script="/usr/bin/test a\\"),
     "must not contain '\\\\'"),
    ("script-control", lambda c: c["vrrp_scripts"][0].update(script="/usr/bin/test\tx"), "must not contain '\\t'"),
    ("auth-pass-dollar", _set(_inst, "authentication", {"auth_type": "PASS", "auth_pass": "$_PWD"}),
     "auth_pass: must be ASCII letters"),
    ("url-dollar", _set(_vs, "check", {"type": "HTTP_GET", "url": [{"path": "/$_PWD"}]}), "is not a URL path"),
    ("rs-name-dollar", _set(_rs, "name", "web$_PWD"), "real_servers[0].name: 'web$_PWD' is not a name"),
    ("track-interface-at", _set(_inst, "track_interface", ["@lb1"]), "track_interface[0]: '@lb1' is not an interface name"),
]

LONG = [
    # keepalived's line buffer is 1024 bytes: a longer line's rest is read as a line of its own
    ("router-id", lambda c: None, None),  # see test_long_router_id_cannot_inject
    ("email", _set(_gd, "notification_email", ["a" * 64 + "@" + ".".join(["b" * 60] * 4)]), "is 308 bytes long"),
    ("rs-name", _set(_rs, "name", "w" * 256), "real_servers[0].name: 'wwww"),
    ("url-path", _set(_vs, "check", {"type": "HTTP_GET", "url": [{"path": "/" + "p" * 1000}]}), "bytes long"),
    ("script", lambda c: c["vrrp_scripts"][0].update(script="/usr/bin/test " + "x" * 1000), "bytes long"),
    ("misc-path", _set(_vs, "check", {"type": "MISC_CHECK", "misc_path": "/usr/bin/test " + "x" * 1000}), "bytes long"),
    ("notify", _set(_inst, "notify_master", "/usr/bin/test " + "x" * 1000), "bytes long"),
]


@pytest.mark.parametrize("mutate,expected", [c[1:] for c in INJECTION + LONG if c[2]],
                         ids=[c[0] for c in INJECTION + LONG if c[2]])
def test_injection_refused(mutate, expected):
    c = base()
    mutate(c)
    assert expected in refused(c)


def test_smtp_scope_id_does_not_turn_strict_mode_on():
    c = base()
    _gd(c)["smtp_server"] = "fe80::1%eth0\n    vrrp_strict"
    with pytest.raises(ValidationError):
        model.normalize(c, DIRECTORS[0], DIRECTORS)


def test_director_address_scope_id():
    directors = copy.deepcopy(DIRECTORS)
    directors[0]["address"] = "10.0.0.1%eth0"
    assert "lb1: address (lbha_director_address): '10.0.0.1%eth0' is not an IP address" in refused(base(), directors)
    directors[0]["address"] = "fe80::1%eth0/64"
    assert "'fe80::1%eth0/64' is not an IP address" in refused(base(), directors)


def test_long_router_id_cannot_inject():
    directors = copy.deepcopy(DIRECTORS)
    directors[0]["router_id"] = "b" * 1009 + "vrrp_strict"
    assert "router_id (lbha_director_router_id): 'bbbb" in refused(base(), directors)
    directors[0]["router_id"] = "b" * 255
    validate(base(), directors)


def test_long_director_name_refused():
    directors = copy.deepcopy(DIRECTORS)
    directors[0]["name"] = "d" * 256
    assert "directors[0].name" in refused(base(), directors)


def test_every_rendered_line_fits_keepalived_buffer():
    c = base()
    c["vrrp_scripts"][0]["script"] = "/usr/bin/test " + "x" * (model.MAX_COMMAND - 14)
    _inst(c)["track_script"] = ["chk"]
    _inst(c)["notify_master"] = "/usr/bin/test " + "x" * (model.MAX_COMMAND - 14)
    _vs(c)["check"] = {"type": "HTTP_GET", "url": [{"path": "/" + "p" * (model.MAX_COMMAND - 1)}]}
    _rs(c)["name"] = "w" * model.MAX_HOST_NAME
    _gd(c)["notification_email"] = ["a" * 64 + "@" + ".".join(["b" * 61] * 3)]
    directors = copy.deepcopy(DIRECTORS)
    directors[0]["router_id"] = "r" * model.MAX_HOST_NAME
    directors[0]["name"] = "n" * model.MAX_HOST_NAME
    for m in validate(c, directors)["directors"].values():
        for line in keepalived.render(m).splitlines():
            assert len(line.encode()) <= keepalived.MAX_LINE < 1023


def test_render_refuses_an_overlong_line():
    m = model.normalize(base(), DIRECTORS[0], DIRECTORS)
    m["global_defs"]["router_id"] = "b" * 1009 + "vrrp_strict"
    with pytest.raises(ValueError, match="would not be read as one line"):
        keepalived.render(m)


def test_every_regex_is_matched_in_full():
    # $ matches before a trailing newline: only fullmatch refuses "eth0\n"
    for value in ("eth0\n", "localhost\n"):
        c = base()
        _inst(c)["interface"] = value
        _gd(c)["smtp_helo_name"] = value
        text = refused(c)
        assert "interface" in text and "smtp_helo_name" in text


# ---------------------------------------------------------------------------------------------
# accepted by the model, refused or rewritten by keepalived

KEEPALIVED_DISAGREES = [
    ("user-notify-beside-hook", _set(_inst, "notify", "/usr/bin/true"),
     "vrrp_instances[0].notify: keepalived takes one notify script per instance"),
    ("preempt-delay-nopreempt", _both(_set(_inst, "preempt_delay", 5), _set(_inst, "nopreempt", True)),
     "preempt_delay: cannot be combined with nopreempt"),
    ("preempt-delay-strict", _both(_set(_inst, "preempt_delay", 5), _strict),
     "preempt_delay: cannot be combined with vrrp_strict"),
    ("strict-unicast", _both(_strict, _set(_inst, "unicast", True)), "unicast: keepalived refuses unicast peers with vrrp_strict"),
    ("strict-ipv6-not-link-local", _both(_strict, _set(_inst, "virtual_ipaddress", ["2001:db8::1/64"]),
                                         lambda c: c.update(virtual_servers=[])),
     "virtual_ipaddress[0]: with vrrp_strict the first IPv6 address must be link-local"),
    ("weighted-script-in-sync-group", _weighted_sync_group,
     "vrrp_sync_groups[0].group: instance VI_1 tracks vrrp_script chk with weight -20"),
    ("track-own-interface", _set(_inst, "track_interface", ["eth0"]), "track_interface[0]: eth0 is the instance's own interface"),
    ("track-interface-twice", _set(_inst, "track_interface", ["eth1", "eth1"]), "track_interface[1]: eth1 is listed twice"),
    ("track-script-twice", _set(_inst, "track_script", ["chk", "chk"]), "track_script[1]: chk is listed twice"),
    ("empty-sync-group", lambda c: c.update(vrrp_sync_groups=[{"name": "G", "group": []}]),
     "vrrp_sync_groups[0].group: a sync group needs at least two instances"),
    ("single-sync-group", lambda c: c.update(vrrp_sync_groups=[{"name": "G", "group": ["VI_1"]}]),
     "vrrp_sync_groups[0].group: a sync group needs at least two instances"),
    ("mixed-vip-families", _set(_inst, "virtual_ipaddress", ["10.0.0.100/24", "2001:db8::1/64"]),
     "virtual_ipaddress[1]: 2001:db8::1 is IPv6 but 10.0.0.100 is IPv4"),
    ("ipv6-peer-ipv4-instance", _set(_inst, "unicast_peers", ["2001:db8::2"]),
     "unicast_peers[0]: 2001:db8::2 is an IPv6 address; this one must be IPv4"),
    ("ipv6-rs-ipv4-service", _set(_rs, "address", "2001:db8::11"),
     "real_servers[0].address: 2001:db8::11 is an IPv6 address; this one must be IPv4"),
    ("ipv6-sorry-ipv4-service", _set(_vs, "sorry_server", {"address": "2001:db8::5"}),
     "sorry_server.address: 2001:db8::5 is an IPv6 address"),
    ("ipv6-vip-authentication", _both(_v6, _set(_inst, "authentication", {"auth_type": "PASS", "auth_pass": "1111"})),
     "authentication: IPv6 instances use VRRP version 3"),
    ("ipv6-version-2", _both(_v6, _set(_inst, "version", 2)), "version: VRRP version 2 is IPv4 only"),
    ("ipv6-netmask-granularity", lambda c: c.update(
        vrrp_instances=[dict(_inst(c), virtual_ipaddress=["2001:db8::100/64"])],
        virtual_servers=[{"address": "2001:db8::100", "port": 80, "persistence_timeout": 30,
                          "persistence_granularity": "255.255.255.0", "real_servers": [{"address": "2001:db8::11"}]}]),
     "persistence_granularity: '255.255.255.0' is not a prefix length 1-128"),
    ("ah-on-master", lambda c: (_inst(c).update(authentication={"auth_type": "AH", "auth_pass": "1111"})), None),
    ("auth-pass-9-bytes", _set(_inst, "authentication", {"auth_type": "PASS", "auth_pass": u"\u00e9\u00e9\u00e9\u00e9a"}),
     "auth_pass: is 9 bytes long"),
    ("timeout-above-4294", lambda c: c["vrrp_scripts"][0].update(timeout=4295), "vrrp_scripts[0].timeout: 4295 is outside 1-4294"),
    ("interval-above-4294", lambda c: c["vrrp_scripts"][0].update(interval=4295), "interval: 4295 is outside 1-4294"),
    ("connect-timeout-above-4294", _set(_vs, "check", {"type": "TCP_CHECK", "connect_timeout": 4295}),
     "check.connect_timeout: 4295 is outside 0.000001-4294"),
    ("smtp-timeout-above-4294", _set(_gd, "smtp_connect_timeout", 4295), "smtp_connect_timeout: 4295 is outside 1-4294"),
    ("misc-timeout-above-4294", _set(_vs, "check", {"type": "MISC_CHECK", "misc_path": "/usr/bin/true", "misc_timeout": 4295}),
     "misc_timeout: 4295 is outside 1-4294"),
    ("persistence-above-31-days", _set(_vs, "persistence_timeout", 2678401), "persistence_timeout: 2678401 is outside 0-2678400"),
    ("retry-2-32", _set(_vs, "check", {"type": "TCP_CHECK", "retry": 2 ** 32}), "retry: 4294967296 is outside 1-4294967295"),
    ("quorum-2-32", _set(_vs, "quorum", 2 ** 32), "quorum: 4294967296 is outside 1-4294967295"),
    ("weight-2-31", _set(_rs, "weight", 2 ** 31), "weight: 2147483648 is outside 0-2147483647"),
    ("garp-repeat-0", _set(_inst, "garp_master_repeat", 0), "garp_master_repeat: 0 is outside 1-4294967295"),
    ("garp-refresh-repeat-0", _set(_inst, "garp_master_refresh_repeat", 0), "garp_master_refresh_repeat: 0 is outside"),
    ("garp-interval-0", _set(_gd, "vrrp_garp_interval", 0), "vrrp_garp_interval: 0 is outside 0.000001-1000"),
    ("v3-advert-not-10ms", _both(_set(_inst, "version", 3), _set(_inst, "advert_int", 0.015)),
     "advert_int: 0.015 has more than 2 decimal places"),
    ("nan-advert", _both(_set(_inst, "version", 3), _set(_inst, "advert_int", float("nan"))), "advert_int: nan is not a finite number"),
    ("inf-delay-loop", _set(_vs, "delay_loop", float("inf")), "delay_loop: inf is not a finite number"),
    ("nan-connect-timeout", _set(_vs, "check", {"type": "TCP_CHECK", "connect_timeout": float("nan")}), "nan is not a finite"),
    ("nan-garp-interval", _set(_gd, "vrrp_gna_interval", float("nan")), "vrrp_gna_interval: nan is not a finite number"),
    ("delay-loop-7-decimals", _set(_vs, "delay_loop", 0.0000001), "delay_loop: 1e-07 has more than 6 decimal places"),
    ("quorum-above-weight", _set(_vs, "quorum", 5), "quorum: 5 is more than the total weight 1"),
    ("all-weights-zero", _set(_rs, "weight", 0), "quorum: 1 is more than the total weight 0"),
    ("hysteresis-not-below-quorum", _set(_vs, "hysteresis", 1), "hysteresis: 1 is not below the quorum 1"),
    ("no-real-server", _set(_vs, "real_servers", []), "10.0.0.100:80 has no real server"),
    ("empty-unicast-peers", _set(_inst, "unicast_peers", []), "unicast_peers: unicast VRRP without any peer"),
    ("interface-lo", _set(_inst, "interface", "lo"), "interface: keepalived cannot run VRRP on the loopback interface"),
    ("interface-alias", _set(_inst, "interface", "eth0:1"), "interface: 'eth0:1' is not an interface name"),
    ("smtp-not-an-address", _set(_gd, "smtp_server", "300.1.1.1"), "smtp_server: '300.1.1.1' is neither"),
    ("too-many-ipv6-vips", lambda c: c.update(
        vrrp_instances=[dict(_inst(c), virtual_ipaddress=["fe80::%x/64" % i for i in range(1, 91)])], virtual_servers=[]),
     "90 IPv6 addresses are more than one advertisement carries (89)"),
    ("nftables-fwmark", None, None),  # see test_fwmark_refused_on_nftables
    # found by tests/differential
    ("script-security-off", _set(_gd, "enable_script_security", False),
     "global_defs.enable_script_security: is off while scripts are configured"),
    ("ipv6-vip-label", lambda c: c.update(
        vrrp_instances=[dict(_inst(c), virtual_ipaddress=[{"address": "fe80::100/64", "dev": "eth0", "label": "eth0:1"}])],
        virtual_servers=[]), "virtual_ipaddress[0].label: IPv6 addresses have no label"),
    ("link-local-connect-ip", _set(_vs, "check", {"type": "TCP_CHECK", "connect_ip": "fe80::2"}),
     "check.connect_ip: fe80::2 is link-local: keepalived's checker needs an interface"),
    ("link-local-checked-real-server", lambda c: c.update(
        vrrp_instances=[dict(_inst(c), virtual_ipaddress=["fe80::100/64"])],
        virtual_servers=[{"address": "fe80::100", "port": 80, "check": {"type": "HTTP_GET"},
                          "real_servers": [{"address": "fe80::11"}]}]),
     "real_servers[0].check: fe80::11 is link-local: keepalived's HTTP_GET needs an interface"),
    ("fwmark-ha-suspend", lambda c: c.update(virtual_servers=[
        {"fwmark": 1, "ha_suspend": True, "real_servers": [{"address": "10.0.0.11"}]}]),
     "virtual_servers[0].ha_suspend: keepalived cannot suspend a fwmark service"),
    ("sorry-is-inhibited-real-server",
     _both(_set(_vs, "sorry_server", {"address": "10.0.0.11"}), _set(_rs, "inhibit_on_failure", True)),
     "sorry_server: 10.0.0.11 is also a real server with inhibit_on_failure"),
]


@pytest.mark.parametrize("mutate,expected", [c[1:] for c in KEEPALIVED_DISAGREES if c[2]],
                         ids=[c[0] for c in KEEPALIVED_DISAGREES if c[2]])
def test_keepalived_would_disagree(mutate, expected):
    c = base()
    mutate(c)
    assert expected in refused(c)


def test_ah_authentication_starts_every_director_backup():
    c = base()
    _inst(c)["authentication"] = {"auth_type": "AH", "auth_pass": "1111"}
    states = [m["vrrp_instances"][0]["state"] for m in validate(c)["directors"].values()]
    assert states == ["BACKUP", "BACKUP"]
    directors = copy.deepcopy(DIRECTORS)
    directors[0]["state"] = "MASTER"
    assert "MASTER cannot be combined with AH authentication" in refused(c, directors)


def test_strict_mode_starts_every_director_backup():
    c = base()
    _strict(c)
    for m in validate(c)["directors"].values():
        assert m["vrrp_instances"][0]["state"] == "BACKUP"
    directors = copy.deepcopy(DIRECTORS)
    directors[0]["state"] = "MASTER"
    assert "MASTER cannot be combined with vrrp_strict" in refused(c, directors)


def test_preempt_delay_starts_every_director_backup():
    # keepalived clears preempt_delay on a director that starts MASTER
    c = base()
    _inst(c)["preempt_delay"] = 5
    for m in validate(c)["directors"].values():
        assert m["vrrp_instances"][0]["state"] == "BACKUP"
        assert "preempt_delay 5" in keepalived.render(m)
    directors = copy.deepcopy(DIRECTORS)
    directors[0]["state"] = "MASTER"
    assert "MASTER cannot be combined with preempt_delay" in refused(c, directors)


def test_address_owner_rules():
    c = base()
    directors = copy.deepcopy(DIRECTORS)
    directors[0].update(priority=255, address="10.0.0.100")
    c["virtual_servers"] = []
    validate(c, directors)
    _inst(c)["nopreempt"] = True
    assert "255 cannot be combined with nopreempt" in refused(c, directors)
    _inst(c)["nopreempt"] = False
    c["vrrp_scripts"][0]["weight"] = 10
    _inst(c)["track_script"] = ["chk"]
    assert "255 cannot be combined with the weighted vrrp_script chk" in refused(c, directors)


def test_ipv6_instance_renders_version_3():
    c = base()
    _v6(c)
    m = model.normalize(c, DIRECTORS[0], DIRECTORS)
    assert m["vrrp_instances"][0]["version"] == 3 and "version 3" in keepalived.render(m)


def test_fwmark_refused_on_nftables():
    c = base()
    c["virtual_servers"] = [{"fwmark": 7, "real_servers": [{"address": "10.0.0.11"}]}]
    assert "virtual_servers[0].fwmark: fwmark services need the ipvs plane" in refused(c, dataplane="nftables")


def test_nftables_plane_limits():
    c = base()
    _rs(c)["check"] = [{"type": "TCP_CHECK"}, {"type": "HTTP_GET"}]
    text = refused(c, dataplane="nftables")
    assert "check: the nftables plane's checker runs one check per real server" in text


def test_nftables_plane_takes_fractional_delay_loops_and_large_weights():
    # the checker sleeps float seconds; weights are relative shares of the bucket table
    c = base()
    _vs(c)["delay_loop"] = 2.5
    _rs(c)["weight"] = 65536
    m = model.normalize(c, {"name": "lb1", "address": "10.0.0.1", "priority": 100}, dataplane="nftables")
    assert m["virtual_servers"][0]["delay_loop"] == 2.5 and m["virtual_servers"][0]["real_servers"][0]["weight"] == 65536


# ---------------------------------------------------------------------------------------------
# wrong types: a field-named error, never a crash

WRONG_TYPES = [
    ("list-in-track-script", _set(_inst, "track_script", [["chk"]]), "track_script[0]: ['chk'] is not a vrrp_scripts name"),
    ("mapping-as-sync-member", lambda c: c.update(vrrp_sync_groups=[{"name": "G", "group": [{"a": 1}, "VI_1"]}]),
     "vrrp_sync_groups[0].group[0]: {'a': 1} is not a vrrp_instance name"),
    ("instances-an-integer", lambda c: c.update(vrrp_instances=5), "lbha_cluster.vrrp_instances: expected a list"),
    ("check-a-string", _set(_vs, "check", "TCP_CHECK"), "virtual_servers[0].check: expected a mapping or a list"),
    ("url-a-string", _set(_vs, "check", {"type": "HTTP_GET", "url": "/"}), "check.url: expected a list"),
    ("status-code-a-mapping", _set(_vs, "check", {"type": "HTTP_GET", "url": [{"path": "/", "status_code": {"a": 1}}]}),
     "status_code: expected a list"),
    ("unhashable-key", lambda c: _inst(c).update({(1, 2): 3}), "unknown key"),
    ("vip-a-list", _set(_inst, "virtual_ipaddress", [["10.0.0.100/24"]]), "virtual_ipaddress[0]: expected ADDRESS/PREFIX"),
    ("granularity-a-list", lambda c: _vs(c).update(persistence_timeout=5, persistence_granularity=[24]),
     "persistence_granularity: expected a netmask or a prefix length"),
    ("group-member-not-mapping", None, None),  # see test_real_server_hosts_wrong_types
]


@pytest.mark.parametrize("mutate,expected", [c[1:] for c in WRONG_TYPES if c[2]], ids=[c[0] for c in WRONG_TYPES if c[2]])
def test_wrong_type_is_an_error_not_a_crash(mutate, expected):
    c = base()
    mutate(c)
    assert expected in refused(c)


def test_two_masters_one_without_a_name():
    # found by tests/differential: a director without a name crashed the MASTER check
    directors = copy.deepcopy(DIRECTORS)
    for d in directors:
        d["state"] = "MASTER"
    directors[1]["name"] = None
    text = refused(base(), directors)
    assert "directors[1].name: is required" in text and "lb1, None are all declared MASTER" in text


def test_script_security_off_without_scripts():
    c = base()
    c["vrrp_scripts"] = []
    _gd(c)["enable_script_security"] = False
    validate(c, notify_script="")


def test_secrets_before_validation_never_crash():
    for cluster in (5, [], {"vrrp_instances": 5}, {"vrrp_instances": [5, {"authentication": [1]}]},
                    {"vrrp_instances": [{"authentication": {"auth_pass": ["x"]}}]}):
        model.secrets(cluster)
    assert model.vips({"vrrp_instances": 5}) == [] and model.virtual_services([]) == []
    assert model.vips({"vrrp_instances": [{"virtual_ipaddress": ["fe80::1%eth0/64"]}]}) == []
    assert model.virtual_services({"virtual_servers": [{"address": "10.0.0.1", "port": float("inf")}]}) == []


def test_real_server_hosts_wrong_types():
    c = base()
    _vs(c)["real_servers_group"] = "web"
    text = refused(c, real_server_hosts={"web": [5, {"name": ["x"], "address": "10.0.0.12"}]})
    assert "real_servers_group[0]: expected a mapping" in text
    assert "real_servers_group[1].name: expected a string, got a list ['x']" in text


# ---------------------------------------------------------------------------------------------
# accepted by keepalived, so accepted by the model


def render_all(c, **kw):
    return [keepalived.render(m) for m in validate(c, **kw)["directors"].values()]


def test_fwmark_virtual_server():
    c = base()
    c["virtual_servers"] = [{"fwmark": 7, "port": 80, "sorry_server": {"address": "10.0.0.50"},
                             "check": {"type": "TCP_CHECK"},
                             "real_servers": [{"address": "10.0.0.11"}, {"address": "10.0.0.12", "weight": 2}]}]
    text = render_all(c)[0]
    assert "virtual_server fwmark 7 {\n    delay_loop 6\n    lb_algo rr\n    lb_kind DR\n" in text
    assert "protocol" not in text.split("virtual_server fwmark")[1]
    assert "real_server 10.0.0.11 {" in text and "sorry_server 10.0.0.50\n" in text and "connect_port 80" in text
    vs = validate(c)["directors"]["lb1"]["virtual_servers"][0]
    assert vs["fwmark"] == 7 and vs["address"] is None and vs["family"] == "inet"


def test_fwmark_rules():
    c = base()
    c["virtual_servers"] = [{"fwmark": 7, "address": "10.0.0.100", "protocol": "TCP",
                             "check": {"type": "TCP_CHECK"}, "real_servers": [{"address": "10.0.0.11", "port": 81}]}]
    text = refused(c)
    assert "virtual_servers[0].address: a fwmark service has no address" in text
    assert "virtual_servers[0].protocol: a fwmark service matches" in text
    assert "real_servers[0].port: a fwmark service forwards to any port" in text
    assert "check.connect_port: is required" in text


def test_status_code_ranges():
    c = base()
    _vs(c)["check"] = {"type": "HTTP_GET", "url": [{"path": "/", "status_code": ["200-299", 304]}]}
    m = model.normalize(c, DIRECTORS[0], DIRECTORS)
    assert m["virtual_servers"][0]["real_servers"][0]["check"]["url"][0]["status_code"] == list(range(200, 300)) + [304]
    assert "status_code 200-299 304\n" in keepalived.render(m)
    _vs(c)["check"]["url"][0]["status_code"] = "300-200"
    assert "status_code: '300-200' is an empty range" in refused(c)


def test_booleans_as_0_and_1():
    c = base()
    _vs(c)["alpha"] = 1
    _vs(c)["omega"] = 0
    _inst(c)["nopreempt"] = 1
    m = model.normalize(c, DIRECTORS[0], DIRECTORS)
    assert m["virtual_servers"][0]["alpha"] is True and m["virtual_servers"][0]["omega"] is False
    _vs(c)["alpha"] = 2
    assert "alpha: expected a boolean, got an integer 2" in refused(c)


def test_single_string_unicast_peers_and_track_lists():
    c = base()
    _inst(c)["unicast_peers"] = "10.0.0.2"
    _inst(c)["track_script"] = "chk"
    m = model.normalize(c, DIRECTORS[0], DIRECTORS)
    assert m["vrrp_instances"][0]["unicast_peer"] == ["10.0.0.2"] and m["vrrp_instances"][0]["track_script"] == ["chk"]


def test_fractional_delay_loop():
    c = base()
    _vs(c)["delay_loop"] = 2.5
    _vs(c)["check"] = {"type": "MISC_CHECK", "misc_path": "/usr/bin/true"}
    text = render_all(c)[0]
    assert "delay_loop 2.5\n" in text and "misc_timeout 3\n" in text


def test_microsecond_timers_render_exactly():
    c = base()
    _vs(c)["delay_loop"] = 0.000001
    _vs(c)["check"] = {"type": "TCP_CHECK", "connect_timeout": 0.250001}
    text = render_all(c)[0]
    assert "delay_loop 0.000001\n" in text and "connect_timeout 0.250001\n" in text


def test_weight_up_to_keepalived_maximum():
    c = base()
    _rs(c)["weight"] = 2147483647
    assert "weight 2147483647\n" in render_all(c)[0]


def test_two_checkers_on_one_real_server():
    c = base()
    _rs(c)["check"] = [{"type": "TCP_CHECK", "connect_port": 81},
                       {"type": "HTTP_GET", "url": [{"path": "/health"}]}]
    text = render_all(c)[0]
    rs = text.split("real_server 10.0.0.11 80 {")[1]
    assert "TCP_CHECK {" in rs and "HTTP_GET {" in rs and "connect_port 81" in rs
    # a list of checks on the virtual server is every real server's default, replaced by a list
    c = base()
    _vs(c)["check"] = [{"type": "TCP_CHECK"}, {"type": "MISC_CHECK", "misc_path": "/usr/bin/true"}]
    _vs(c)["real_servers"].append({"address": "10.0.0.12", "check": [{"type": "TCP_CHECK"}]})
    _vs(c)["real_servers"].append({"address": "10.0.0.13", "check": {"connect_timeout": 2}})
    assert "real_servers[2].check: the virtual server has a list of checks" in refused(c)
