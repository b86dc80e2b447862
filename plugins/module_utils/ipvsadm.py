# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What ``ipvsadm`` prints, parsed: ``-S -n`` (the table as rules), ``-L -n`` and ``--stats``.

Pure functions only: nothing here runs ``ipvsadm``. The ``ipvs`` module parses ``ipvsadm -S -n``
(:func:`parse_save`) before it diffs (``ipvs.py``); the info module merges ``ipvsadm -L -n``
(:func:`parse_list`) and ``ipvsadm -L -n --stats --exact`` (:func:`parse_stats`) into
per-real-server health and counters (:func:`merge_list_stats`).

A table is a dict ``{service key: service}`` (see :func:`service_key`), a service::

    {"protocol": "TCP", "address": "1.1.1.111", "port": 80, "fwmark": None, "family": "inet",
     "scheduler": "rr", "persistence_timeout": None, "persistence_granularity": None,
     "ops": False, "pe": None,
     "real_servers": {"1.1.1.3:80": {"address": "1.1.1.3", "port": 80, "forward": "DR",
                                      "weight": 1}}}

Formats are those of ipvsadm 1.31 (``-S`` prints ``-A -t 1.1.1.111:80 -s rr`` and
``-a -t 1.1.1.111:80 -r 1.1.1.3:80 -g -w 1``; IPv6 addresses in brackets; ``-f 1`` for a
firewall mark, ``-f 1 -6`` for an IPv6 one; ``--sctp-service`` for SCTP).
"""
from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import ipaddress
import re
import shlex

PROTOCOLS = ("TCP", "UDP", "SCTP")
FORWARDS = ("DR", "NAT", "TUN")
# ipvsadm switch and ``-L`` column name of each forwarding method.
FORWARD_SWITCH = {"DR": "-g", "NAT": "-m", "TUN": "-i"}
SWITCH_FORWARD = {"-g": "DR", "--gatewaying": "DR", "-m": "NAT", "--masquerading": "NAT",
                  "-i": "TUN", "--ipip": "TUN"}
LIST_FORWARD = {"Route": "DR", "Masq": "NAT", "Tunnel": "TUN", "Local": "LOCAL", "Bypass": "BYPASS"}
# keepalived's lb_kind spellings (``TUN`` and the older ``TUNNEL``) and the ipvsadm names.
FORWARD_ALIASES = {"DR": "DR", "ROUTE": "DR", "GATEWAYING": "DR", "NAT": "NAT", "MASQ": "NAT",
                   "MASQUERADING": "NAT", "TUN": "TUN", "TUNNEL": "TUN", "IPIP": "TUN"}
PROTO_SWITCH = {"TCP": "-t", "UDP": "-u", "SCTP": "--sctp-service"}
SWITCH_PROTO = {"-t": "TCP", "--tcp-service": "TCP", "-u": "UDP", "--udp-service": "UDP",
                "--sctp-service": "SCTP"}
# Schedulers of the Linux kernel (ip_vs_*.c), as ipvsadm names them.
SCHEDULERS = ("rr", "wrr", "lc", "wlc", "lblc", "lblcr", "dh", "sh", "sed", "nq", "fo", "ovf",
              "mh", "twos")
DEFAULT_SCHEDULER = "wlc"   # ipvsadm's default when -s is not given

# Messages by which ipvsadm (libipvs) says the kernel has no IPVS.
_NO_IPVS_PATTERNS = (
    "can't initialize ipvs",
    "protocol not available",
    "are you sure that ip virtual server is built in the kernel",
    "modprobe ip_vs",
)
NO_IPVS_MESSAGE = "this kernel has no IPVS (CONFIG_IP_VS); use the nftables data plane"


class IpvsError(ValueError):
    """Invalid input (desired table) or unparseable ipvsadm output."""


def is_no_ipvs(text):
    """True when ipvsadm's output says the kernel has no IPVS."""
    low = (text or "").lower()
    return any(p in low for p in _NO_IPVS_PATTERNS)


# --------------------------------------------------------------------------------------------
# addresses and keys


def _family(address):
    return "inet6" if ipaddress.ip_address(address).version == 6 else "inet"


def _norm_address(value, path):
    try:
        return str(ipaddress.ip_address(str(value).strip().strip("[]")))
    except ValueError:
        raise IpvsError("%s: %r is not an IP address" % (path, value))


def _fmt_addrport(address, port):
    if ":" in address:
        return "[%s]:%d" % (address, port)
    return "%s:%d" % (address, port)


def split_addrport(text, default_port=None):
    """``1.1.1.3:80`` / ``[2001:db8::3]:80`` / ``1.1.1.3`` -> (address, port)."""
    text = text.strip()
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            raise IpvsError("bad address %r" % text)
        addr, rest = text[1:end], text[end + 1:]
        if rest.startswith(":"):
            port = rest[1:]
        elif rest == "":
            port = None
        else:
            raise IpvsError("bad address %r" % text)
    elif text.count(":") == 1:
        addr, port = text.split(":")
    elif ":" in text:            # bare IPv6 address without port
        addr, port = text, None
    else:
        addr, port = text, None
    address = _norm_address(addr, "address")
    if port is None or port == "":
        if default_port is None:
            raise IpvsError("%r has no port" % text)
        return address, int(default_port)
    if not port.isdigit() or int(port) > 65535:
        raise IpvsError("bad port in %r" % text)
    return address, int(port)


def service_key(svc):
    """Identity of a service: ``TCP/1.1.1.111:80``, ``UDP/[2001:db8::1]:53``, ``FWM/1``, ``FWM6/1``."""
    if svc.get("fwmark"):
        return "FWM%s/%d" % ("6" if svc.get("family") == "inet6" else "", svc["fwmark"])
    return "%s/%s" % (svc["protocol"], _fmt_addrport(svc["address"], svc["port"]))


def real_server_key(rs):
    return _fmt_addrport(rs["address"], rs["port"])


def _svc_switch(svc):
    """The service part of an ipvsadm command line: ``-t 1.1.1.111:80`` / ``-f 1 -6``."""
    if svc.get("fwmark"):
        return "-f %d%s" % (svc["fwmark"], " -6" if svc.get("family") == "inet6" else "")
    return "%s %s" % (PROTO_SWITCH[svc["protocol"]], _fmt_addrport(svc["address"], svc["port"]))


def delete_commands(virtual_servers):
    """``ipvsadm -D ...`` for each service of a normalised model (``[text]``, in model order):
    what a director removes itself once keepalived, which leaves its IPVS services in place while
    it stops (``--dont-release-ipvs``), has exited."""
    out = []
    for vs in virtual_servers:
        command = "ipvsadm -D %s" % _svc_switch(vs)
        if command not in out:
            out.append(command)
    return out


# --------------------------------------------------------------------------------------------
# ipvsadm -S -n


def _take(tokens, i, opt):
    if i + 1 >= len(tokens):
        raise IpvsError("option %s needs a value" % opt)
    return tokens[i + 1]


def _parse_rule(line):
    """One ``ipvsadm`` rule line -> (command, service, real server or None)."""
    tokens = shlex.split(line)
    if not tokens:
        return None
    cmd = tokens[0]
    svc = {"protocol": None, "address": None, "port": None, "fwmark": None, "family": "inet",
           "scheduler": None, "persistence_timeout": None, "persistence_granularity": None,
           "ops": False, "pe": None}
    rs = None
    extra = []
    i = 1
    while i < len(tokens):
        tok = tokens[i]
        if tok in SWITCH_PROTO:
            svc["protocol"] = SWITCH_PROTO[tok]
            addr, port = split_addrport(_take(tokens, i, tok))
            svc["address"], svc["port"], svc["family"] = addr, port, _family(addr)
            i += 2
        elif tok in ("-f", "--fwmark-service"):
            svc["fwmark"] = int(_take(tokens, i, tok), 0)
            i += 2
        elif tok in ("-6", "--ipv6"):
            svc["family"] = "inet6"
            i += 1
        elif tok in ("-s", "--scheduler"):
            svc["scheduler"] = _take(tokens, i, tok)
            i += 2
        elif tok in ("-p", "--persistent"):
            # -p takes an optional value; ipvsadm -S always prints it.
            nxt = tokens[i + 1] if i + 1 < len(tokens) else None
            if nxt is not None and nxt.isdigit():
                svc["persistence_timeout"] = int(nxt)
                i += 2
            else:
                svc["persistence_timeout"] = 360
                i += 1
        elif tok in ("-M", "--netmask"):
            svc["persistence_granularity"] = _norm_granularity(_take(tokens, i, tok), svc["family"])
            i += 2
        elif tok in ("-o", "--ops", "ops"):
            svc["ops"] = True
            i += 1
        elif tok in ("--pe", "pe"):
            svc["pe"] = _take(tokens, i, tok)
            i += 2
        elif tok in ("-r", "--real-server"):
            rs = rs or {}
            rs["_target"] = _take(tokens, i, tok)
            i += 2
        elif tok in SWITCH_FORWARD:
            rs = rs or {}
            rs["forward"] = SWITCH_FORWARD[tok]
            i += 1
        elif tok in ("-w", "--weight"):
            rs = rs or {}
            rs["weight"] = int(_take(tokens, i, tok))
            i += 2
        elif tok in ("-x", "--u-threshold", "-y", "--l-threshold", "-b", "--sched-flags",
                     "--tun-type", "--tun-port"):
            extra.extend([tok, _take(tokens, i, tok)])
            i += 2
        else:
            extra.append(tok)
            i += 1
    if svc["protocol"] is None and not svc["fwmark"]:
        raise IpvsError("no service in %r" % line)
    if rs is not None:
        target = rs.pop("_target", None)
        if target is None:
            raise IpvsError("no real server in %r" % line)
        default_port = svc["port"] if svc["port"] is not None else 0
        rs["address"], rs["port"] = split_addrport(target, default_port)
        rs.setdefault("forward", "DR")
        rs.setdefault("weight", 1)
    if extra:
        (rs if rs is not None else svc)["options"] = extra
    return cmd, svc, rs


def parse_save(text):
    """Parse ``ipvsadm -S -n`` (also ``ipvsadm-save -n``) into a table."""
    table = {}
    for lineno, raw in enumerate((text or "").splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        try:
            parsed = _parse_rule(line)
        except (IpvsError, ValueError) as exc:
            raise IpvsError("ipvsadm -S line %d %r: %s" % (lineno, line, exc))
        cmd, svc, rs = parsed
        key = service_key(svc)
        if cmd in ("-A", "--add-service"):
            svc["scheduler"] = svc["scheduler"] or DEFAULT_SCHEDULER
            svc["real_servers"] = {}
            table[key] = svc
        elif cmd in ("-a", "--add-server"):
            if key not in table:
                raise IpvsError("ipvsadm -S line %d: real server of unknown service %s" % (lineno, key))
            table[key]["real_servers"][real_server_key(rs)] = rs
        else:
            raise IpvsError("ipvsadm -S line %d: unexpected command %r" % (lineno, cmd))
    return table


# --------------------------------------------------------------------------------------------
# ipvsadm -L -n [--stats|--rate]

_LIST_SVC_RE = re.compile(r"^(TCP|UDP|SCTP|FWM)\s+(\S+)(?:\s+(IPv6))?\s*(.*)$")
_SUFFIX = {"K": 1000, "M": 1000000, "G": 1000000000, "T": 1000000000000}


def _num(text):
    """ipvsadm's large numbers: ``12345``, ``123K`` (without --exact)."""
    text = text.strip()
    if text and text[-1] in _SUFFIX:
        return int(text[:-1]) * _SUFFIX[text[-1]]
    return int(text)


def _list_service(m):
    proto, target, v6, _rest = m.groups()
    if proto == "FWM":
        svc = {"protocol": None, "address": None, "port": None, "fwmark": int(target),
               "family": "inet6" if v6 else "inet"}
    else:
        addr, port = split_addrport(target)
        svc = {"protocol": proto, "address": addr, "port": port, "fwmark": None,
               "family": _family(addr)}
    return svc


def _list_lines(text):
    """Yield (kind, match or fields) for the body of an ``ipvsadm -L`` listing."""
    for raw in (text or "").splitlines():
        line = raw.rstrip()
        if not line.strip():
            continue
        if line.startswith("IP Virtual Server version") or line.startswith("Prot LocalAddress"):
            continue
        stripped = line.strip()
        if stripped.startswith("-> RemoteAddress"):
            continue
        if stripped.startswith("->"):
            yield "rs", stripped[2:].split()
            continue
        m = _LIST_SVC_RE.match(stripped)
        if not m:
            raise IpvsError("unexpected ipvsadm line %r" % line)
        yield "svc", m


def parse_list(text):
    """Parse ``ipvsadm -L -n``: scheduler, persistence, forward, weight and connection counts."""
    table = {}
    cur = None
    for kind, item in _list_lines(text):
        if kind == "svc":
            svc = _list_service(item)
            rest = item.group(4).split()
            svc["scheduler"] = rest[0] if rest else None
            svc["persistence_timeout"] = None
            svc["persistence_granularity"] = None
            svc["ops"] = "ops" in rest
            svc["pe"] = None
            for j, tok in enumerate(rest):
                if tok == "persistent" and j + 1 < len(rest):
                    svc["persistence_timeout"] = int(rest[j + 1])
                elif tok == "mask" and j + 1 < len(rest):
                    svc["persistence_granularity"] = _norm_granularity(rest[j + 1], svc["family"])
                elif tok == "pe" and j + 1 < len(rest):
                    svc["pe"] = rest[j + 1]
            svc["real_servers"] = {}
            cur = svc
            table[service_key(svc)] = svc
        else:
            if cur is None or len(item) < 5:
                raise IpvsError("unexpected real server line %r" % " ".join(item))
            default_port = cur["port"] if cur["port"] is not None else 0
            addr, port = split_addrport(item[0], default_port)
            rs = {"address": addr, "port": port, "forward": LIST_FORWARD.get(item[1], item[1]),
                  "weight": int(item[2]), "active_conn": int(item[3]), "inactive_conn": int(item[4])}
            cur["real_servers"][real_server_key(rs)] = rs
    return table


def parse_stats(text, rate=False):
    """Parse ``ipvsadm -L -n --stats`` (or ``--rate`` with ``rate=True``) counters.

    Returns ``{service key: {"counters": {...}, "real_servers": {rs key: {...}}}}`` with
    ``conns, in_packets, out_packets, in_bytes, out_bytes`` (``cps, in_pps, out_pps, in_bps,
    out_bps`` for rates).
    """
    names = (("cps", "in_pps", "out_pps", "in_bps", "out_bps") if rate else
             ("conns", "in_packets", "out_packets", "in_bytes", "out_bytes"))
    out = {}
    cur = None
    for kind, item in _list_lines(text):
        if kind == "svc":
            svc = _list_service(item)
            nums = item.group(4).split()
            if len(nums) < 5:
                raise IpvsError("expected 5 counters after %s" % service_key(svc))
            cur = {"counters": dict(zip(names, (_num(n) for n in nums[:5]))), "real_servers": {}}
            out[service_key(svc)] = cur
            cur["_svc"] = svc
        else:
            if cur is None or len(item) < 6:
                raise IpvsError("unexpected real server line %r" % " ".join(item))
            svc = cur["_svc"]
            default_port = svc["port"] if svc["port"] is not None else 0
            addr, port = split_addrport(item[0], default_port)
            cur["real_servers"][_fmt_addrport(addr, port)] = dict(zip(names, (_num(n) for n in item[1:6])))
    for entry in out.values():
        entry.pop("_svc", None)
    return out


def merge_list_stats(listing, stats=None):
    """``parse_list`` + ``parse_stats`` -> a list of virtual servers for reports.

    Every real server gets ``weight, forward, healthy (weight > 0), active_conn,
    inactive_conn, conns, in_packets, out_packets, in_bytes, out_bytes`` (counters are None
    when ``stats`` lacks them).
    """
    stats = stats or {}
    counter_names = ("conns", "in_packets", "out_packets", "in_bytes", "out_bytes")
    result = []
    for key in sorted(listing, key=_sort_key(listing)):
        svc = listing[key]
        st = stats.get(key, {})
        vs = {"key": key, "address": svc["address"], "port": svc["port"], "protocol": svc["protocol"],
              "fwmark": svc["fwmark"], "scheduler": svc["scheduler"],
              "persistence_timeout": svc["persistence_timeout"],
              "persistence_granularity": svc["persistence_granularity"], "real_servers": []}
        for name in counter_names:
            vs[name] = st.get("counters", {}).get(name)
        for rkey in sorted(svc["real_servers"], key=_rs_sort_key(svc["real_servers"])):
            rs = svc["real_servers"][rkey]
            rst = st.get("real_servers", {}).get(rkey, {})
            item = {"address": rs["address"], "port": rs["port"], "forward": rs["forward"],
                    "weight": rs["weight"], "healthy": rs["weight"] > 0,
                    "active_conn": rs.get("active_conn"), "inactive_conn": rs.get("inactive_conn")}
            for name in counter_names:
                item[name] = rst.get(name)
            vs["real_servers"].append(item)
        result.append(vs)
    return result


# --------------------------------------------------------------------------------------------
# helpers shared with ipvs.py


def _norm_granularity(value, family):
    """Persistence granularity: an IPv4 netmask (``255.255.255.0``) or an IPv6 prefix length.

    The host mask (``255.255.255.255`` / ``128``) is the kernel default and normalises to None.
    """
    if value is None or value == "":
        return None
    text = str(value).strip()
    if family == "inet6":
        if not text.isdigit() or not 1 <= int(text) <= 128:
            raise IpvsError("persistence_granularity %r: expected an IPv6 prefix length 1-128" % (value,))
        return None if int(text) == 128 else int(text)
    if text.isdigit() and 0 <= int(text) <= 32:
        text = str(ipaddress.IPv4Network("0.0.0.0/%s" % text).netmask)
    try:
        net = ipaddress.IPv4Network("0.0.0.0/%s" % text)
    except ValueError:
        raise IpvsError("persistence_granularity %r: expected a netmask such as 255.255.255.0" % (value,))
    mask = str(net.netmask)
    return None if mask == "255.255.255.255" else mask


_PROTO_NUMBER = {"TCP": 6, "UDP": 17, "SCTP": 132}


def _sort_key(table):
    """ipvsadm's order of services: fwmark, address family, protocol number, address, port."""
    def key(k):
        svc = table[k]
        family = 6 if svc.get("family") == "inet6" else 4
        if svc.get("fwmark"):
            return (svc["fwmark"], family, 0, 0, 0)
        return (0, family, _PROTO_NUMBER.get(svc["protocol"], 255), int(ipaddress.ip_address(svc["address"])),
                svc["port"])
    return key


def _rs_sort_key(servers):
    def key(k):
        rs = servers[k]
        addr = ipaddress.ip_address(rs["address"])
        return (addr.version, int(addr), rs["port"])
    return key
