# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Differential test: the model against keepalived's and nft's own parsers.

Hypothesis generates cluster definitions over every field of docs/variables.md, valid and
invalid, with adversarial strings (newlines, braces, quotes, # ! $ %, very long values), NaN and
wrong types. For each one the model must either refuse it with a ValidationError, or accept it
and then every director's rendered keepalived.conf must pass ``keepalived -t`` of both versions
(keepalived 2.2.7 on this host, 2.3.3 in the Debian 13 chroot) without a word on stderr; with
``dataplane: nftables`` the nftables ruleset must pass ``nft -c -f`` too.

What the model cannot know about a director is kept out of the generated values: interface
names are eth0 and eth1 (which exist in the oracles' network namespace), lo, or invalid; scripts
are /usr/bin/true and /usr/bin/test (present on both systems, not behind a symlinked directory);
users are root, nobody and daemon; the only smtp_server host name is localhost.

Run it (root; the default 2500 examples take about 4 minutes on 2 cores):

    LBHA_DIFF_EXAMPLES=2500 pytest -q tests/differential --hypothesis-seed=0
"""
from __future__ import (absolute_import, division, print_function)
__metaclass__ = type


import pytest
from hypothesis import given, note
from hypothesis import strategies as st

import oracles
from ansible_collections.lbha.cluster.plugins.module_utils import hostdoc, keepalived, model, nft, probes

pytestmark = pytest.mark.skipif(oracles.missing() is not None, reason=str(oracles.missing()))

# ---------------------------------------------------------------------------------------------
# adversarial values

INJECTIONS = ["\n    vrrp_strict", "\n}\nvrrp_strict\n", "}", "{", '"', "'", "#", "!", "$_PWD", "${_INSTANCE}",
              "$X=1", "%eth0", "%eth0\n    vrrp_strict", "\\", "\t", "\r", "\x00", " ", "@lb1 ", "~SEQ(x,1,2)",
              u"\u00e9", "\n"]
WRONG_TYPES = st.sampled_from([None, True, False, 0, -1, 1.5, float("nan"), float("inf"), [], [1], {}, {"a": 1}, ["x", ["y"]]])


def adversarial(valid):
    """Strings that look like ``valid`` (a strategy of strings) with something keepalived reads."""
    return st.one_of(
        st.tuples(valid, st.sampled_from(INJECTIONS)).map(lambda t: t[0] + t[1]),
        st.tuples(st.sampled_from(INJECTIONS), valid).map(lambda t: t[0] + t[1]),
        st.tuples(valid, st.sampled_from(INJECTIONS), valid).map(lambda t: t[0] + t[1] + t[2]),
        st.tuples(valid, st.integers(900, 1100), st.sampled_from(["b", "x", "\u00e9"]), st.sampled_from(["", "vrrp_strict"]))
        .map(lambda t: t[0] + t[2] * t[1] + t[3]),
        st.text(min_size=0, max_size=12),
    )


# Half the definitions are drawn "clean": no adversarial value, no wrong type, and the options
# combined the way the model documents; the other half mixes in bad values. Both halves test the
# model: a clean definition it accepts must pass the oracles, a bad one must be refused.
CLEAN = [False]


def clean():
    return CLEAN[0]


def pick(clean_values, any_values):
    """``sampled_from`` of ``clean_values`` in a clean definition, of ``any_values`` otherwise."""
    return st.just(None).flatmap(lambda _n: st.sampled_from(clean_values if clean() else any_values))


def field(valid, bad=None, odds=25):
    """A field's value: mostly ``valid``, 1 in ``odds`` adversarial or of a wrong type (a definition
    has some 20 fields, so about half the definitions hold a bad value and half are valid)."""
    bad_values = [WRONG_TYPES]
    if bad is not None:
        bad_values.append(bad)
    # hypothesis favours the ends of a range: the bad branch is a value from its middle
    return st.integers(0, odds).flatmap(lambda n: st.one_of(*bad_values) if n == odds // 2 and not clean() else valid)


def numbers(lo, hi, places=0, edges=()):
    """Mostly a number in lo..hi; 1 in 10 an edge, a value just outside, a float oddity or a
    number written as a string."""
    good = [st.integers(lo, hi), st.sampled_from([lo, hi] + [e for e in edges if lo <= e <= hi])]
    if places:
        good.append(st.decimals(min_value=max(lo, 0), max_value=min(hi, 100), places=places, allow_nan=False).map(float))
    odd = st.sampled_from([lo - 1, hi + 1, str(lo), " %d " % lo, "%d\n" % lo, "1e3", "0x10", 2 ** 32, 2 ** 31, -2 ** 31,
                           0.5, 0.015, 0.000001, 0.0000001, 1.25, float("nan"), float("inf")] + list(edges))
    return st.integers(0, 10).flatmap(lambda n: odd if n == 5 and not clean() else st.one_of(*good))


BOOL = field(st.sampled_from([True, False, "yes", "no", 0, 1]), st.sampled_from([2, "maybe", "true\n"]))
NAME = st.from_regex(r"[A-Za-z_][A-Za-z0-9_.:-]{0,10}", fullmatch=True)
NAMES = ["VI_1", "VI_2", "VI_3"]
IFACE = st.sampled_from(["eth0", "eth1"])
IFACE_ANY = field(IFACE, st.one_of(st.just("lo"), st.just("eth0:1"), adversarial(IFACE)))
SCRIPT_PATH = st.sampled_from(["/usr/bin/true", "/usr/bin/test"])
SCRIPT = field(st.tuples(SCRIPT_PATH, st.sampled_from(["", " -n x", " a b", " #a !b", " {x}", " 5%"]))
               .map(lambda t: t[0] + t[1]), st.one_of(adversarial(SCRIPT_PATH), st.just("true"), st.just("")))
USER = st.sampled_from(["root", "nobody", "daemon", "nobody nogroup", "root root"])
IPV4_NET = st.integers(3, 250).map(lambda i: "10.0.0.%d" % i)
IPV6_LL = st.integers(2, 250).map(lambda i: "fe80::%x" % i)
IPV6_GLOBAL = st.integers(2, 250).map(lambda i: "2001:db8::%x" % i)
ADDRESS = st.one_of(IPV4_NET, IPV4_NET, IPV4_NET, IPV6_LL, IPV6_GLOBAL)
ADDRESS_ANY = field(ADDRESS, st.one_of(adversarial(ADDRESS), st.sampled_from(["300.1.1.1", "10.0.0.01", "::ffff:10.0.0.1"])))
HOSTNAME = st.sampled_from(["localhost", "www.example.com", "a-b.example", "x"])
EMAIL = st.sampled_from(["ops@example.com", "a.b+c@mail.example.org", "root@localhost"])


def vip_text(draw, version, serial):
    if version == 6:
        addr = draw(st.sampled_from(["fe80::", "2001:db8::"])) + "%x" % (0x100 + serial)
        return "%s/%d" % (addr, draw(st.sampled_from([64, 128, 10])))
    return "10.0.0.%d/%d" % (100 + serial, draw(st.sampled_from([24, 32, 8, 0])))


@st.composite
def check_def(draw, fwmark=False):
    ctype = draw(field(st.sampled_from(["TCP_CHECK", "HTTP_GET", "SSL_GET", "MISC_CHECK"]),
                       st.sampled_from(["PING_CHECK", "tcp_check"])))
    c = {"type": ctype}
    if ctype == "MISC_CHECK":
        c["misc_path"] = draw(SCRIPT)
        if draw(st.booleans()):
            c["misc_timeout"] = draw(numbers(1, 4294))
        if draw(st.booleans()):
            c["misc_dynamic"] = draw(BOOL)
    elif isinstance(ctype, str):
        if draw(st.booleans()):
            c["connect_timeout"] = draw(numbers(1, 4294, places=6))
        if draw(st.booleans()) or fwmark:
            c["connect_port"] = draw(numbers(1, 65535))
        if draw(st.integers(0, 4)) == 2:
            c["connect_ip"] = draw(ADDRESS_ANY)
        if ctype in ("HTTP_GET", "SSL_GET") and draw(st.booleans()):
            urls = []
            for _i in range(draw(st.integers(1 if clean() else 0, 2))):
                u = {"path": draw(field(st.sampled_from(["/", "/health", "/a/b?c=d&e=%20"]),
                                        adversarial(st.just("/"))))}
                if draw(st.booleans()):
                    u["status_code"] = draw(field(st.one_of(
                        st.integers(100, 599), st.lists(st.integers(100, 599), min_size=1, max_size=4),
                        st.sampled_from(["200-299", ["200-204", 301], "300-200", 99, 600, "200"]))))
                if draw(st.integers(0, 3)) == 1:
                    u["digest"] = draw(field(st.just("d41d8cd98f00b204e9800998ecf8427e"), adversarial(st.just("d41d8"))))
                urls.append(u)
            c["url"] = urls
        if ctype in ("HTTP_GET", "SSL_GET") and draw(st.integers(0, 4)) == 2:
            c["virtualhost"] = draw(field(HOSTNAME, adversarial(HOSTNAME)))
    if draw(st.booleans()):
        c[draw(st.sampled_from(["retry", "nb_get_retry"]))] = draw(numbers(1, 4294967295))
    if draw(st.booleans()):
        c["delay_before_retry"] = draw(numbers(1, 4294, places=6))
    return c


@st.composite
def checks(draw, fwmark=False):
    kind = draw(st.integers(0, 9))
    if kind == 3:
        return False
    if kind == 4:
        return [draw(check_def(fwmark)) for _i in range(draw(st.integers(1 if clean() else 0, 3)))]
    if kind == 5 and not clean():
        return draw(WRONG_TYPES)
    return draw(check_def(fwmark))


@st.composite
def clusters(draw):
    """``(definition, dataplane)``."""
    CLEAN[0] = draw(st.booleans())
    dataplane = draw(st.sampled_from(["ipvs", "nftables"]))
    gd = {}
    if draw(st.booleans()):
        gd["notification_email"] = draw(field(st.one_of(EMAIL, st.lists(EMAIL, max_size=3, unique=True)),
                                              st.lists(adversarial(EMAIL), min_size=1, max_size=2)))
    if draw(st.integers(0, 3)) == 1:
        gd["notification_email_from"] = draw(field(EMAIL, adversarial(EMAIL)))
    if draw(st.integers(0, 3)) == 1:
        gd["smtp_server"] = draw(field(st.sampled_from(["10.0.0.250", "::1", "localhost", "127.0.0.1"]),
                                       st.one_of(adversarial(st.just("fe80::1")), st.just("300.1.1.1"))))
        if draw(st.booleans()):
            gd["smtp_port"] = draw(numbers(1, 65535))
    if draw(st.integers(0, 4)) == 2:
        gd["smtp_helo_name"] = draw(field(HOSTNAME, adversarial(HOSTNAME)))
    if draw(st.integers(0, 4)) == 2:
        gd["smtp_connect_timeout"] = draw(numbers(1, 4294))
    if draw(st.integers(0, 5)) == 2:
        gd["enable_script_security"] = True if clean() else draw(BOOL)
    if draw(st.integers(0, 4)) == 2:
        gd["script_user"] = draw(field(st.sampled_from(["root", "nobody", "daemon"]), adversarial(st.just("nobody"))))
    if draw(st.integers(0, 4)) == 2 and not clean():
        gd["vrrp_strict"] = draw(BOOL)
    if draw(st.integers(0, 5)) == 2:
        gd["vrrp_skip_check_adv_addr"] = draw(BOOL)
    for key in ("vrrp_garp_interval", "vrrp_gna_interval"):
        if draw(st.integers(0, 5)) == 2:
            gd[key] = draw(numbers(1 if clean() else 0, 1000, places=6))
    for key in ("smtp_alert", "smtp_alert_vrrp", "smtp_alert_checker"):
        if draw(st.integers(0, 5)) == 2:
            gd[key] = draw(BOOL)

    scripts = []
    for i in range(draw(st.integers(0, 2))):
        s = {"name": draw(field(st.just("chk_%d" % i), adversarial(st.just("chk")))), "script": draw(SCRIPT)}
        for key, lo, hi in (("interval", 1, 4294), ("timeout", 1, 4294), ("weight", -253, 253), ("rise", 1, 2147483647),
                            ("fall", 1, 2147483647)):
            if draw(st.integers(0, 2)) == 1:
                s[key] = draw(numbers(lo, hi, edges=(0,) if key == "weight" else ()))
        if draw(st.integers(0, 3)) == 1:
            s["user"] = draw(field(USER, adversarial(st.just("nobody"))))
        if draw(st.integers(0, 4)) == 2:
            s["init_fail"] = draw(BOOL)
        scripts.append(s)

    instances = []
    used_vips = []
    for i in range(draw(st.integers(1, 2))):
        version = draw(st.sampled_from([4, 4, 4, 4, 6]))
        inst = {"name": draw(field(st.just(NAMES[i]), adversarial(st.just("VI")))), "interface": draw(IFACE_ANY),
                "virtual_router_id": draw(field(st.just(51 + i), st.sampled_from([0, 256, "51\n"])))}
        vips = []
        for _j in range(draw(st.integers(1, 3))):
            serial = len(used_vips) + len(vips) if clean() else draw(st.integers(0, 5))
            text = vip_text(draw, version if draw(st.integers(0, 15)) != 7 or clean() else 10 - version, serial)
            kind = draw(st.integers(0, 6))
            if kind == 0:
                vips.append({"address": text, "dev": draw(IFACE_ANY)})
            elif kind == 1:
                dev = draw(IFACE)
                vips.append({"address": text, "dev": dev, "label": draw(field(st.just(dev + ":1"), adversarial(st.just("eth0:"))))})
            elif kind == 2:
                vips.append(draw(field(st.just(text), adversarial(st.just(text)))))
            else:
                vips.append(text)
        inst["virtual_ipaddress"] = vips
        used_vips.extend(a for a in (v.get("address") if isinstance(v, dict) else v for v in vips) if isinstance(a, str))
        if draw(st.integers(0, 3)) == 1:
            inst["version"] = draw(field(st.sampled_from([3] if version == 6 and clean() else [2, 3]), st.just(4)))
        if draw(st.integers(0, 2)) == 1:
            if clean() and (inst.get("version") == 3 or version == 6):
                inst["advert_int"] = draw(st.sampled_from([0.01, 0.5, 1, 2.25, 40.95]))
            else:
                inst["advert_int"] = draw(numbers(1, 255, places=2, edges=(0.01, 40.95, 40.96, 0.015)))
        if draw(st.integers(0, 3)) == 1:
            inst["nopreempt"] = draw(BOOL)
        if draw(st.integers(0, 3)) == 1:
            inst["preempt_delay"] = draw(numbers(0, 1000))
        if draw(st.integers(0, 3)) == 1 and (version == 4 and inst.get("version") != 3 or not clean()):
            inst["authentication"] = {"auth_type": draw(field(st.sampled_from(["PASS", "AH", "pass"]))),
                                      "auth_pass": draw(field(st.sampled_from(["1111", "secret12", "x", 1234, u"\u00e9\u00e9\u00e9\u00e9a"]),
                                                              adversarial(st.just("ab"))))}
        if draw(st.integers(0, 5)) == 2:
            inst["unicast"] = draw(BOOL) if version == 4 or not clean() else False
        if draw(st.integers(0, 4)) == 2 and (version == 4 or not clean()):
            inst["unicast_peers"] = draw(field(st.one_of(IPV4_NET, st.lists(IPV4_NET, min_size=1, max_size=2), ADDRESS),
                                               st.lists(ADDRESS_ANY, min_size=1, max_size=2)))
        if draw(st.integers(0, 3)) == 1:
            inst["track_interface"] = draw(field(st.lists(IFACE, max_size=2, unique=True),
                                                 st.lists(IFACE_ANY, min_size=1, max_size=2)))
            if clean():
                inst["track_interface"] = [t for t in inst["track_interface"] if t != inst["interface"]]
        if scripts and draw(st.booleans()):
            names = [s["name"] for s in scripts if isinstance(s["name"], str)] or ["chk_0"]
            inst["track_script"] = draw(field(st.lists(st.sampled_from(names), max_size=2, unique=True),
                                              st.sampled_from([["nope"], names + names])))
        if draw(st.integers(0, 4)) == 2:
            inst["smtp_alert"] = draw(BOOL)
        if draw(st.integers(0, 3)) == 1:
            # active-active: the instance's own priorities (and states) over the directors'
            first, second = draw(pick([(100, 90), (90, 100), (254, 1)], [(100, 100), (255, 90), (0, 90)]))
            inst["priority"] = draw(field(st.just({"lb1": first, "lb2": second}),
                                          st.sampled_from([{"lb1": first}, {"lb3": 100}, [100, 90], 100])))
            if draw(st.integers(0, 3)) == 1:
                inst["state"] = {"lb1" if first > second else "lb2": draw(field(st.just("MASTER"), st.just("master")))}
        for key, lo in (("garp_master_delay", 0), ("garp_master_repeat", 1), ("garp_master_refresh", 0),
                        ("garp_master_refresh_repeat", 1)):
            if draw(st.integers(0, 5)) == 2:
                inst[key] = draw(numbers(lo, 4294, edges=(0, 4294967295, 4294967296)))
        for key in model.NOTIFY_KEYS:
            if draw(st.integers(0, 6 if key != "notify" else 30)) == 3 and not (clean() and key == "notify"):
                inst[key] = draw(SCRIPT)
        instances.append(inst)

    cluster = {"global_defs": gd, "vrrp_scripts": scripts, "vrrp_instances": instances}
    if draw(st.integers(0, 3)) == 1:
        # the connection sync daemon (on by default on the ipvs plane, ignored on nftables)
        options = {}
        if draw(st.booleans()):
            options["instance"] = draw(field(st.sampled_from(NAMES[:max(1, len(instances))]), st.just("VI_9")))
        if draw(st.integers(0, 3)) == 1:
            options["interface"] = draw(IFACE_ANY)
        for key, lo, hi in (("id", 0, 255), ("maxlen", 1, 65507), ("port", 1, 65535), ("ttl", 1, 255)):
            if draw(st.integers(0, 3)) == 1:
                options[key] = draw(numbers(lo, hi))
        if draw(st.integers(0, 3)) == 1:
            options["group"] = draw(field(st.sampled_from(["224.0.0.81", "239.1.2.3", "ff02::81"]),
                                          st.sampled_from(["10.0.0.1", "ff02::81%eth0"])))
        gd["lvs_sync_daemon"] = draw(st.sampled_from([options, options, True, False]))
    if draw(st.integers(0, 4)) == 2:
        cluster["ipvs"] = dict((key, draw(BOOL)) for key in model.IPVS_KEYS if draw(st.booleans()))
    if len(instances) > 1 and draw(st.integers(0, 3)) == 1:
        group = draw(pick([[NAMES[0], NAMES[1]]], [[NAMES[0], NAMES[1]], [NAMES[0]], [], [NAMES[0], NAMES[0]], [{"x": 1}]]))
        cluster["vrrp_sync_groups"] = [{"name": draw(field(st.just("G1"), adversarial(st.just("G")))), "group": group}]
        if draw(st.booleans()):
            cluster["vrrp_sync_groups"][0]["smtp_alert"] = draw(BOOL)

    vss = []
    for _i in range(draw(st.integers(0, 2))):
        vip = draw(st.sampled_from(used_vips)) if used_vips else "10.0.0.100/24"
        v6 = ":" in vip
        addr = vip.split("/", maxsplit=1)[0] if isinstance(vip, str) else vip
        fwmark = draw(st.integers(0, 6)) == 3
        vs = {}
        if fwmark:
            vs["fwmark"] = draw(numbers(1, 4294967295))
            if clean() and dataplane == "nftables":
                continue
            if draw(st.booleans()):
                vs["port"] = draw(numbers(1, 65535))
        else:
            vs["address"] = draw(field(st.just(addr), adversarial(st.just(str(addr)))))
            vs["port"] = draw(field(st.sampled_from([80, 443, 53]), st.sampled_from([0, 65536, "80\n"])))
            if draw(st.integers(0, 2)) == 1:
                vs["protocol"] = draw(field(pick(["TCP", "UDP", "tcp"] + (["SCTP"] if dataplane == "ipvs" else []),
                                                 ["TCP", "UDP", "SCTP", "tcp"]), st.just("ICMP")))
        if draw(st.integers(0, 2)) == 1:
            vs["lb_algo"] = draw(field(st.sampled_from(model.LB_ALGOS), st.just("roundrobin")))
        if draw(st.integers(0, 3)) == 1:
            vs["lb_kind"] = draw(field(pick(model.LB_KINDS if dataplane == "ipvs" else ["DR"], model.LB_KINDS), st.just("FULLNAT")))
        if draw(st.integers(0, 2)) == 1:
            vs["delay_loop"] = draw(numbers(1, 86400, places=6))
        if draw(st.integers(0, 3)) == 1:
            vs["persistence_timeout"] = draw(numbers(0, 2678400))
            if draw(st.booleans()):
                vs[draw(st.sampled_from(["persistence_granularity", "netmask"]))] = draw(field(
                    st.sampled_from([24, "255.255.255.0", "/16", 64, 128, 32, 0]), st.sampled_from(["255.0.255.0", 129])))
        if draw(st.integers(0, 3)) == 1:
            vs["quorum"] = draw(numbers(1, 4294967295, edges=(1, 2, 3)))
        if draw(st.integers(0, 3)) == 1:
            vs["hysteresis"] = 0 if clean() else draw(numbers(0, 4294967295, edges=(0, 1, 2)))
        if draw(st.integers(0, 4)) == 2:
            sorry = {"address": draw(ADDRESS_ANY)}
            if draw(st.booleans()):
                sorry["port"] = draw(numbers(1, 65535, edges=(80, 443, 53)))
            vs["sorry_server"] = sorry
        for key in ("alpha", "omega", "ha_suspend"):
            if draw(st.integers(0, 5)) == 2:
                vs[key] = draw(BOOL)
        if draw(st.integers(0, 5)) == 2:
            vs["virtualhost"] = draw(field(HOSTNAME, adversarial(HOSTNAME)))
        if draw(st.integers(0, 5)) == 2:
            vs["smtp_alert"] = draw(BOOL)
        if draw(st.integers(0, 2)) == 1:
            vs["check"] = draw(checks(fwmark))
            if vs["check"] is False and clean():
                del vs["check"]
        rss = []
        for _j in range(draw(st.integers(1 if clean() else 0, 3))):
            if clean():
                rs = {"address": draw(st.sampled_from(["fe80::", "2001:db8::"]) if v6 and not fwmark else st.just("10.0.0."))
                      + draw(st.integers(3, 99).map(lambda i: "%x" % i if v6 and not fwmark else "%d" % i))}
            else:
                rs = {"address": draw(field(IPV4_NET if draw(st.integers(0, 5)) else ADDRESS, adversarial(IPV4_NET)))}
            if draw(st.integers(0, 4)) == 2:
                rs["port"] = vs.get("port", 80) if clean() else draw(numbers(1, 65535, edges=(80, 443, 53)))
            if draw(st.integers(0, 2)) == 1:
                rs["weight"] = draw(numbers(0, 65535 if clean() and dataplane == "nftables" else 2147483647,
                                            edges=(0, 1, 2, 65535, 65536)))
            if draw(st.integers(0, 4)) == 2:
                rs["inhibit_on_failure"] = draw(BOOL)
            if draw(st.integers(0, 5)) == 2:
                rs["smtp_alert"] = draw(BOOL)
            if draw(st.integers(0, 2)) == 1:
                rs["check"] = draw(checks(fwmark))
                if clean() and dataplane == "nftables" and isinstance(rs["check"], list):
                    rs["check"] = rs["check"][0]
            if draw(st.integers(0, 3)) == 1:
                rs["name"] = draw(field(st.sampled_from(["web1", "web-2.example.com"]), adversarial(st.just("web"))))
            rss.append(rs)
        vs["real_servers"] = rss
        vss.append(vs)
    cluster["virtual_servers"] = vss
    return cluster, dataplane


@st.composite
def directors(draw):
    out = []
    for i, name in enumerate(("lb1", "lb2")):
        d = {"name": draw(field(st.just(name), adversarial(st.just(name)), 60)),
             "priority": draw(field(pick([100, 254], [100, 254, 255, 1]) if i == 0 else pick([90, 50], [90, 80, 100, 50])))}
        addr = draw(pick(["10.0.0.%d" % (1 + i), "10.0.0.%d/24" % (1 + i)],
                         ["10.0.0.%d" % (1 + i), "10.0.0.%d/24" % (1 + i), "fe80::%d" % (1 + i)]))
        d["address"] = draw(field(st.just(addr), adversarial(st.just(addr)), 60))
        if draw(st.integers(0, 6)) == 3:
            d["state"] = draw(field(pick(["MASTER"] if i == 0 else ["BACKUP"], ["MASTER", "BACKUP"])))
        if draw(st.integers(0, 4)) == 2:
            d["router_id"] = draw(field(st.sampled_from(["r%d" % i, "router-%d.example" % i]), adversarial(st.just("r"))))
        out.append(d)
    return out


def nft_ruleset(m):
    """The nftables plane's ruleset for model ``m``, built as the director and its checker build it:
    the host document, its nftables view, a probe for every check, the bucket tables."""
    doc = hostdoc.nft_document(hostdoc.build(m, "nftables")[0])
    tables = {}
    for vs in doc["virtual_servers"]:
        for rs in vs["real_servers"]:
            probes.make_probe(rs, rs.get("check"), misc_probe=lambda *a: None)
        members = [(rs["address"], rs["weight"], True) for rs in vs["real_servers"]]
        tables[nft.vs_key(vs)] = nft.vs_table(vs, members, size=doc["buckets"], seed=doc["seed"])
    return nft.render_ruleset(doc, tables)


@given(cluster=clusters(), dirs=directors())
def test_model_refuses_or_keepalived_accepts(cluster, dirs):
    cluster, dataplane = cluster
    oracles.STATS["examples"] += 1
    try:
        result = model.validate_cluster(cluster, dirs, dataplane=dataplane)
    except model.ValidationError as e:
        assert e.errors, "a ValidationError without errors"
        return
    oracles.STATS["accepted"] += 1
    problems = []
    for name, m in sorted(result["directors"].items()):
        text = keepalived.render(m)
        note("%s:\n%s" % (name, text))
        oracles.STATS["keepalived_runs"] += 1
        for version, ok, messages in oracles.keepalived_verdicts(text):
            if not ok:
                problems.append("%s, keepalived %s: %s" % (name, version, messages))
        if dataplane == "nftables" and m["virtual_servers"]:
            ruleset = nft_ruleset(m)
            oracles.STATS["nft_runs"] += 1
            oracles.STATS["nft_ipv6_runs"] += "fwd ip6 to" in ruleset
            ok, messages = oracles.nft_verdict(ruleset)
            if not ok:
                problems.append("%s, nft -c: %s" % (name, messages))
    if problems:
        oracles.STATS["disagreements"] += 1
    assert not problems, "the model accepted it, but:\n" + "\n".join(problems)
