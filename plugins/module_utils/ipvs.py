# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The live IPVS table: parse ``ipvsadm`` output, diff it against a desired table, apply the diff.

Pure functions only: nothing here runs ``ipvsadm``. The ``ipvs`` module reads the kernel
table with ``ipvsadm -S -n`` (:func:`parse_save`), builds the desired table from its options
or from normalised virtual servers of the cluster model (:func:`desired_table`), computes the
change set (:func:`diff_tables`) and feeds :func:`restore_text` to ``ipvsadm -R``. The info
module merges ``ipvsadm -L -n`` (:func:`parse_list`) and ``ipvsadm -L -n --stats --exact``
(:func:`parse_stats`) into per-real-server health and counters (:func:`merge_list_stats`).

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

# Keys of a normalised virtual server (docs/internals.md) that this table does not manage.
_MODEL_ONLY_KEYS = frozenset(("delay_loop", "quorum", "hysteresis", "sorry_server", "interface",
                              "alpha", "omega", "quorum_up", "quorum_down", "ha_suspend",
                              "virtualhost", "name", "check", "inhibit_on_failure",
                              "lb_kind", "real_servers_group", "comment"))
_VS_KEYS = frozenset(("address", "port", "protocol", "fwmark", "family", "scheduler", "lb_algo",
                      "persistence_timeout", "persistence_granularity", "forward", "real_servers",
                      "ops", "pe"))
_RS_KEYS = frozenset(("address", "port", "weight", "forward", "lb_kind"))
_RS_MODEL_ONLY = frozenset(("name", "check", "inhibit_on_failure", "notify_up", "notify_down",
                            "uthreshold", "lthreshold", "comment"))


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
# desired table


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


def _int_field(obj, key, path, lo, hi, default=None):
    value = obj.get(key, default)
    if value is None:
        return None
    if isinstance(value, bool):
        raise IpvsError("%s.%s: expected an integer, got %r" % (path, key, value))
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise IpvsError("%s.%s: expected an integer, got %r" % (path, key, value))
    if str(number) != str(value).strip() and not isinstance(value, int):
        raise IpvsError("%s.%s: expected an integer, got %r" % (path, key, value))
    if number < lo or number > hi:
        raise IpvsError("%s.%s: %d is out of range %d-%d" % (path, key, number, lo, hi))
    return number


def _forward(value, path):
    name = FORWARD_ALIASES.get(str(value).strip().upper())
    if name is None:
        raise IpvsError("%s: %r is not a forwarding method (DR, NAT or TUN)" % (path, value))
    return name


def normalize_virtual_server(vs, path="virtual_servers[0]", real_servers_required=True):
    """One virtual server of the module's options (or of the cluster model) -> a service.

    Accepts ``scheduler`` or ``lb_algo``, ``forward`` or ``lb_kind`` (the default of every
    real server's ``forward``), ``persistence_timeout`` 0/None = no persistence. Keys of the
    cluster model that IPVS does not use (checks, quorum, ...) are ignored; any other key is
    an error, so a typo never passes silently.

    Returns ``(service, warnings)``.
    """
    if not isinstance(vs, dict):
        raise IpvsError("%s: expected a mapping, got %s" % (path, type(vs).__name__))
    unknown = sorted(set(vs) - _VS_KEYS - _MODEL_ONLY_KEYS)
    if unknown:
        raise IpvsError("%s: unknown option(s) %s" % (path, ", ".join(unknown)))
    warnings = []
    fwmark = _int_field(vs, "fwmark", path, 1, 0xFFFFFFFF)
    svc = {"fwmark": fwmark, "protocol": None, "address": None, "port": None, "family": "inet"}
    if fwmark:
        family = str(vs.get("family") or "inet")
        if vs.get("address"):
            family = _family(_norm_address(vs["address"], path + ".address"))
        if family not in ("inet", "inet6"):
            raise IpvsError("%s.family: %r is not inet or inet6" % (path, family))
        svc["family"] = family
    else:
        if vs.get("address") in (None, ""):
            raise IpvsError("%s.address: required (or fwmark)" % path)
        svc["address"] = _norm_address(vs["address"], path + ".address")
        svc["family"] = _family(svc["address"])
        svc["port"] = _int_field(vs, "port", path, 0, 65535)
        if svc["port"] is None:
            raise IpvsError("%s.port: required" % path)
        proto = str(vs.get("protocol") or "TCP").upper()
        if proto not in PROTOCOLS:
            raise IpvsError("%s.protocol: %r is not one of %s" % (path, vs.get("protocol"), ", ".join(PROTOCOLS)))
        svc["protocol"] = proto
    sched = vs.get("scheduler") or vs.get("lb_algo") or DEFAULT_SCHEDULER
    if vs.get("scheduler") and vs.get("lb_algo") and vs["scheduler"] != vs["lb_algo"]:
        raise IpvsError("%s: scheduler %r and lb_algo %r disagree" % (path, vs["scheduler"], vs["lb_algo"]))
    sched = str(sched).strip()
    if sched not in SCHEDULERS:
        raise IpvsError("%s.scheduler: %r is not an IPVS scheduler (%s)" % (path, sched, ", ".join(SCHEDULERS)))
    svc["scheduler"] = sched
    timeout = _int_field(vs, "persistence_timeout", path, 0, 0x7FFFFFFF)
    svc["persistence_timeout"] = timeout or None
    gran = vs.get("persistence_granularity")
    if gran is not None and svc["persistence_timeout"] is None:
        warnings.append("%s.persistence_granularity is ignored without persistence_timeout" % path)
        gran = None
    try:
        svc["persistence_granularity"] = _norm_granularity(gran, svc["family"])
    except IpvsError as exc:
        raise IpvsError("%s: %s" % (path, exc))
    svc["ops"] = bool(vs.get("ops", False))
    svc["pe"] = vs.get("pe") or None
    default_fwd = _forward(vs.get("forward") or vs.get("lb_kind") or "DR", path + ".lb_kind")
    rss = vs.get("real_servers")
    if rss is None:
        if real_servers_required:
            rss = []
        else:
            svc["real_servers"] = None
            return svc, warnings
    if not isinstance(rss, list):
        raise IpvsError("%s.real_servers: expected a list" % path)
    svc["real_servers"] = {}
    for j, rs in enumerate(rss):
        rpath = "%s.real_servers[%d]" % (path, j)
        if not isinstance(rs, dict):
            raise IpvsError("%s: expected a mapping, got %s" % (rpath, type(rs).__name__))
        unknown = sorted(set(rs) - _RS_KEYS - _RS_MODEL_ONLY)
        if unknown:
            raise IpvsError("%s: unknown option(s) %s" % (rpath, ", ".join(unknown)))
        if rs.get("address") in (None, ""):
            raise IpvsError("%s.address: required" % rpath)
        address = _norm_address(rs["address"], rpath + ".address")
        if _family(address) != svc["family"]:
            raise IpvsError("%s.address: %s is not of the service's address family (%s)"
                            % (rpath, address, svc["family"]))
        fwd = _forward(rs.get("forward") or rs.get("lb_kind") or default_fwd, rpath + ".forward")
        default_port = svc["port"] if svc["port"] is not None else 0
        port = _int_field(rs, "port", rpath, 0, 65535, default_port)
        if port is None:
            port = default_port
        if fwd in ("DR", "TUN") and not fwmark and port != svc["port"]:
            # ipvsadm sets the port of a DR/TUN real server to the service's port.
            warnings.append("%s.port: %d ignored, %s real servers take the service port %s"
                            % (rpath, port, fwd, svc["port"]))
            port = svc["port"]
        weight = _int_field(rs, "weight", rpath, 0, 0x7FFFFFFF, 1)
        item = {"address": address, "port": port, "forward": fwd, "weight": 1 if weight is None else weight}
        key = real_server_key(item)
        if key in svc["real_servers"]:
            raise IpvsError("%s: real server %s is listed twice" % (rpath, key))
        svc["real_servers"][key] = item
    return svc, warnings


def desired_table(virtual_servers, real_servers_required=True):
    """A list of virtual servers -> (table, warnings); duplicate services are an error."""
    if virtual_servers is None:
        return {}, []
    if not isinstance(virtual_servers, list):
        raise IpvsError("virtual_servers: expected a list")
    table = {}
    warnings = []
    seen = {}
    for i, vs in enumerate(virtual_servers):
        path = "virtual_servers[%d]" % i
        svc, w = normalize_virtual_server(vs, path, real_servers_required)
        warnings.extend(w)
        key = service_key(svc)
        if key in seen:
            raise IpvsError("%s: %s is also defined at %s" % (path, key, seen[key]))
        seen[key] = path
        table[key] = svc
    return table, warnings


def _match_drain(rs, item):
    """Does a ``drain`` entry (``1.1.1.3`` or ``1.1.1.3:80`` / ``[::3]:80``) name this server?"""
    if item == rs["address"]:
        return True
    return item == real_server_key(rs)


def normalize_drain(items):
    out = []
    for i, item in enumerate(items or []):
        text = str(item).strip()
        try:
            if text.startswith("[") or text.count(":") == 1:
                addr, port = split_addrport(text)
                out.append(_fmt_addrport(addr, port))
            else:
                out.append(_norm_address(text, "drain[%d]" % i))
        except IpvsError as exc:
            raise IpvsError("drain[%d]: %s" % (i, exc))
    return out


def apply_drain(table, drain):
    """Copy of ``table`` with every real server named in ``drain`` at weight 0.

    Returns ``(table, matched)`` where ``matched`` is the set of drain entries that named at
    least one real server.
    """
    out = {}
    matched = set()
    for key, svc in table.items():
        new = dict(svc)
        new["real_servers"] = {}
        for rkey, rs in svc["real_servers"].items():
            rs = dict(rs)
            for item in drain:
                if _match_drain(rs, item):
                    rs["weight"] = 0
                    matched.add(item)
            new["real_servers"][rkey] = rs
        out[key] = new
    return out, matched


def target_table(live, desired, state="present", purge=False, drain=None, manage_services=True):
    """The table the kernel should hold after the module runs.

    * ``state=present``: every desired service exists with exactly its real servers; with
      ``purge`` every other service is removed; without it other services stay as they are.
    * ``state=absent``: a desired service with ``real_servers`` loses those real servers; one
      without (None or empty) is removed; services that do not exist are ignored.
    * ``manage_services=False`` (no virtual_servers given): the live table is the target
      (``drain`` alone edits weights).
    * ``drain``: listed real servers get weight 0 in the target, wherever they are.
    """
    if not manage_services:
        target = {k: _copy_svc(v) for k, v in live.items()}
    elif state == "present":
        target = {} if purge else {k: _copy_svc(v) for k, v in live.items()}
        for key, svc in desired.items():
            target[key] = _copy_svc(svc)
            if target[key]["real_servers"] is None:
                target[key]["real_servers"] = {}
    elif state == "absent":
        target = {k: _copy_svc(v) for k, v in live.items()}
        for key, svc in desired.items():
            if key not in target:
                continue
            if svc.get("real_servers"):
                for rkey in svc["real_servers"]:
                    target[key]["real_servers"].pop(rkey, None)
            else:
                del target[key]
    else:
        raise IpvsError("state: %r is not present or absent" % (state,))
    matched = set()
    if drain:
        target, matched = apply_drain(target, drain)
    return target, matched


def _copy_svc(svc):
    out = dict(svc)
    if svc.get("real_servers") is not None:
        out["real_servers"] = {k: dict(v) for k, v in svc["real_servers"].items()}
    return out


# --------------------------------------------------------------------------------------------
# diff and apply

_SVC_FIELDS = ("scheduler", "persistence_timeout", "persistence_granularity", "ops", "pe")
_RS_FIELDS = ("forward", "weight")


def _svc_options(svc):
    parts = ["-s", svc["scheduler"]]
    if svc.get("persistence_timeout"):
        parts += ["-p", str(svc["persistence_timeout"])]
        if svc.get("persistence_granularity") is not None:
            parts += ["-M", str(svc["persistence_granularity"])]
    if svc.get("pe"):
        parts += ["--pe", svc["pe"]]
    if svc.get("ops"):
        parts.append("-o")
    return " ".join(parts)


def _rs_options(rs):
    return "%s -w %d" % (FORWARD_SWITCH[rs["forward"]], rs["weight"])


def service_command(op, svc):
    """``-A``/``-E`` (with options) or ``-D`` (without) for a service."""
    if op == "-D":
        return "-D %s" % _svc_switch(svc)
    return "%s %s %s" % (op, _svc_switch(svc), _svc_options(svc))


def real_server_command(op, svc, rs):
    """``-a``/``-e`` (with forward and weight) or ``-d`` for a real server."""
    head = "%s %s -r %s" % (op, _svc_switch(svc), real_server_key(rs))
    if op == "-d":
        return head
    return "%s %s" % (head, _rs_options(rs))


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


def _svc_differs(a, b):
    return [f for f in _SVC_FIELDS if (a.get(f) or None) != (b.get(f) or None)]


def diff_tables(live, target):
    """The ordered ipvsadm commands that turn ``live`` into ``target``.

    Order: services to remove, then per kept service its edits and real server removals,
    edits and additions, then new services with their real servers. Returns a list of
    command strings (without the program name), each a valid line for ``ipvsadm -R``.
    """
    cmds = []
    for key in sorted(live, key=_sort_key(live)):
        if key not in target:
            cmds.append(service_command("-D", live[key]))
    for key in sorted(target, key=_sort_key(target)):
        want = target[key]
        have = live.get(key)
        if have is None:
            cmds.append(service_command("-A", want))
            for rkey in sorted(want["real_servers"], key=_rs_sort_key(want["real_servers"])):
                cmds.append(real_server_command("-a", want, want["real_servers"][rkey]))
            continue
        if _svc_differs(have, want):
            cmds.append(service_command("-E", want))
        hrs, wrs = have["real_servers"], want["real_servers"]
        for rkey in sorted(hrs, key=_rs_sort_key(hrs)):
            if rkey not in wrs:
                cmds.append(real_server_command("-d", want, hrs[rkey]))
        for rkey in sorted(wrs, key=_rs_sort_key(wrs)):
            w = wrs[rkey]
            h = hrs.get(rkey)
            if h is None:
                cmds.append(real_server_command("-a", want, w))
            elif any(h.get(f) != w.get(f) for f in _RS_FIELDS):
                cmds.append(real_server_command("-e", want, w))
    return cmds


def restore_text(commands):
    """Input for ``ipvsadm -R``: one command per line."""
    return "".join(c + "\n" for c in commands)


def render_save(table):
    """A table in ``ipvsadm -S -n`` form, sorted: the before/after text of the module's diff."""
    lines = []
    for key in sorted(table, key=_sort_key(table)):
        svc = table[key]
        lines.append(service_command("-A", svc))
        rss = svc.get("real_servers") or {}
        for rkey in sorted(rss, key=_rs_sort_key(rss)):
            lines.append(real_server_command("-a", svc, rss[rkey]))
    return "".join(line + "\n" for line in lines)


def comparable(table):
    """The managed fields of a table, for comparing the kernel with the expected result."""
    out = {}
    for key, svc in table.items():
        out[key] = (tuple((f, svc.get(f) or None) for f in _SVC_FIELDS),
                    tuple(sorted((rk, rs["forward"], rs["weight"])
                                 for rk, rs in (svc.get("real_servers") or {}).items())))
    return out


def table_to_list(table):
    """A table as a sorted list of plain dicts (real servers as lists) for module results."""
    result = []
    for key in sorted(table, key=_sort_key(table)):
        svc = table[key]
        item = {k: svc.get(k) for k in ("address", "port", "protocol", "fwmark", "family", "scheduler",
                                        "persistence_timeout", "persistence_granularity")}
        item["key"] = key
        rss = svc.get("real_servers") or {}
        item["real_servers"] = [
            {"address": rss[r]["address"], "port": rss[r]["port"], "forward": rss[r]["forward"],
             "weight": rss[r]["weight"]}
            for r in sorted(rss, key=_rs_sort_key(rss))]
        result.append(item)
    return result
