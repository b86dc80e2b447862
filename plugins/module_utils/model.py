# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The cluster model: parse, validate and normalise the ``lbha_cluster`` definition.

Pure Python 3 (standard library only, no Ansible imports): the modules import it by its
FQCN, the director role ships it to ``/usr/lib/lbha-cluster/lbha_cluster/`` for the checker
daemon of the nftables plane.

Entry points:

* :func:`normalize` - one director's view of the cluster (what ``keepalived_config`` renders);
* :func:`validate_cluster` - every director at once (what ``cluster_validate`` checks);
* :func:`virtual_services` / :func:`vips` - light helpers over the *raw* definition.

Every problem is collected (not only the first) and reported by :class:`ValidationError` as
``<host>: <field path>: <what is wrong>``; warnings are returned separately and never fail.
The field names are keepalived's wherever keepalived has one; docs/variables.md is the
reference of the input and docs/internals.md of the normalised output.
"""
from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import ipaddress
import math
import re
import zlib

DEFAULT_NOTIFY_SCRIPT = "/usr/lib/lbha-cluster/notify"
# The nftables plane's health as keepalived sees it: a vrrp_script of weight 0 (a failure puts the
# instance in FAULT, so a director that cannot forward gives up its VIPs), tracked by every
# instance that holds a virtual server's VIP. Its arguments are the checker's liveness file and
# how old it may be (checker.liveness_path(checker.DEFAULT_STATE), checker.STALE_SECONDS).
DEFAULT_PLANE_CHECK = "/usr/lib/lbha-cluster/plane-check /run/lbha/checker.alive 10"
PLANE_SCRIPT = "lbha_plane"
PLANE_SCRIPT_TIMERS = {"interval": 1, "timeout": 2, "rise": 2, "fall": 3}
DEFAULT_SCRIPT_USER = "keepalived_script"
DATAPLANES = ("ipvs", "nftables")

LB_ALGOS = ("rr", "wrr", "lc", "wlc", "lblc", "lblcr", "dh", "sh", "sed", "nq", "mh", "fo", "ovf", "twos")
# schedulers the nftables plane serves as weighted hashing (it has no connection counts)
NFT_APPROXIMATED_ALGOS = ("lc", "wlc", "lblc", "lblcr", "dh", "sed", "nq", "fo", "ovf", "twos")
LB_KINDS = ("DR", "NAT", "TUN")
PROTOCOLS = ("TCP", "UDP", "SCTP")
AUTH_TYPES = ("PASS", "AH")
CHECK_TYPES = ("TCP_CHECK", "HTTP_GET", "SSL_GET", "MISC_CHECK")
STATES = ("MASTER", "BACKUP")
MAX_AUTH_PASS = 8

# keepalived's own defaults for a checker, made explicit in the normalised model.
CHECK_DEFAULTS = {"connect_timeout": 5, "retry": 1, "delay_before_retry": 1}
DEFAULT_DELAY_LOOP = 6
MAX_DELAY_LOOP = 86400

# ---------------------------------------------------------------------------------------------
# accepted keys (typo protection: anything else is refused with this list)

GLOBAL_DEFS_KEYS = (
    "notification_email", "notification_email_from", "smtp_server", "smtp_port", "smtp_helo_name",
    "smtp_connect_timeout", "enable_script_security", "script_user", "vrrp_strict",
    "vrrp_skip_check_adv_addr", "vrrp_garp_interval", "vrrp_gna_interval", "lvs_sync_daemon",
    "smtp_alert", "smtp_alert_vrrp", "smtp_alert_checker",
)
# keepalived's global switches for notification mail: smtp_alert is the default of both
# kinds, smtp_alert_vrrp (instances, sync groups) and smtp_alert_checker (virtual and real
# servers) override it for their kind.
SMTP_ALERT_KEYS = ("smtp_alert", "smtp_alert_vrrp", "smtp_alert_checker")
CLUSTER_KEYS = ("global_defs", "vrrp_scripts", "vrrp_sync_groups", "vrrp_instances", "virtual_servers", "ipvs")
SYNC_DAEMON_KEYS = ("interface", "instance", "id", "maxlen", "port", "ttl", "group")
IPVS_KEYS = ("sloppy_tcp", "sloppy_sctp", "conn_reuse_mode", "expire_nodest_conn")
IPVS_BOOL_KEYS = ("sloppy_tcp", "sloppy_sctp", "expire_nodest_conn")
VRRP_SCRIPT_KEYS = ("name", "script", "interval", "timeout", "weight", "rise", "fall", "user", "init_fail")
SYNC_GROUP_KEYS = ("name", "group", "smtp_alert")
NOTIFY_KEYS = ("notify_master", "notify_backup", "notify_fault", "notify_stop", "notify")
GARP_KEYS = ("garp_master_delay", "garp_master_repeat", "garp_master_refresh", "garp_master_refresh_repeat")
INSTANCE_KEYS = (
    "name", "interface", "virtual_router_id", "advert_int", "version", "nopreempt", "preempt_delay",
    "authentication", "virtual_ipaddress", "unicast", "unicast_peers", "track_interface",
    "track_script", "smtp_alert", "priority", "state",
) + GARP_KEYS + NOTIFY_KEYS
AUTH_KEYS = ("auth_type", "auth_pass")
VIP_KEYS = ("address", "dev", "label")
VS_KEYS = (
    "address", "fwmark", "port", "protocol", "lb_algo", "lb_kind", "delay_loop", "persistence_timeout",
    "persistence_granularity", "netmask", "quorum", "hysteresis", "sorry_server", "alpha", "omega",
    "ha_suspend", "virtualhost", "real_servers_group", "real_servers", "check", "smtp_alert",
)
SORRY_KEYS = ("address", "port")
RS_KEYS = ("address", "port", "weight", "inhibit_on_failure", "check", "name", "smtp_alert")
RS_HOST_KEYS = ("name", "address", "port", "weight", "inhibit_on_failure", "check", "smtp_alert")
HOST_KEYS = ("name", "address", "priority", "state", "router_id")
NET_CHECK_KEYS = ("type", "connect_timeout", "retry", "nb_get_retry", "delay_before_retry",
                  "connect_port", "connect_ip")
CHECK_KEYS = {
    "TCP_CHECK": NET_CHECK_KEYS,
    "HTTP_GET": NET_CHECK_KEYS + ("url", "virtualhost"),
    "SSL_GET": NET_CHECK_KEYS + ("url", "virtualhost"),
    "MISC_CHECK": ("type", "misc_path", "misc_timeout", "misc_dynamic", "retry", "nb_get_retry",
                   "delay_before_retry"),
}
URL_KEYS = ("path", "status_code", "digest")

# keepalived reads its configuration a line at a time into a 1024-byte buffer (fgets): a line of
# more than 1022 bytes (plus the newline) is cut, and the rest becomes a line of its own. Every
# text field has a byte limit that keeps its rendered line below that.
KEEPALIVED_MAX_LINE = 1022
MAX_NAME = 128          # instance, script and sync group names
MAX_HOST_NAME = 255     # director and real server names, router_id
MAX_EMAIL = 254
MAX_COMMAND = 960       # scripts and command lines, URL paths
MAX_TIMER = 4294        # keepalived keeps most timers in microseconds in 32 bits: 4294.967295 s
MAX_U32 = 4294967295
MAX_WEIGHT = 2147483647  # IPVS_WEIGHT_LIMIT (INT_MAX)
MAX_PERSISTENCE = 2678400  # LVS_MAX_TIMEOUT: 31 days
MAX_PREEMPT_DELAY = 1000   # TIMER_MAX_SEC
# VIPs an advertisement can carry on a 1500-byte link (keepalived moves the rest to
# excluded addresses and says so): 255 IPv4 addresses (the count field), 89 IPv6 ones.
MAX_VIPS = {4: 255, 6: 89}

# Characters keepalived's parser gives a meaning to anywhere in a line: quotes, braces (blocks),
# '#' and '!' (comments), '$' (definitions and their expansion, e.g. $_PWD), '\' (escapes and
# line continuation). Control characters (a newline above all) end or split a line.
_SPECIAL = "\"'{}#!$\\"
_TOKEN_RE = re.compile(r"[A-Za-z0-9%&()*+,./:;<=>?@\[\]^_`|~-]+")
_NAME_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.:-]{0,127}")
_HOST_NAME_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.:@+-]{0,254}")
_IFNAME_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,14}")
_LABEL_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.:-]{0,14}")
_HOSTNAME_RE = re.compile(r"(?=.{1,253}\Z)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
                          r"(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*", re.A)
_EMAIL_RE = re.compile(r"(?=.{3,254}\Z)[A-Za-z0-9_+=%-][A-Za-z0-9._+=%-]{0,63}@"
                       r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*",
                       re.A)
_USER_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,31}\$?")
_DIGEST_RE = re.compile(r"[0-9A-Fa-f]{32}")
_URL_PATH_RE = re.compile(r"/[A-Za-z0-9%&()*+,./:;<=>?@\[\]^_`|~-]{0,959}")
_ADDRESS_RE = re.compile(r"[0-9A-Fa-f:.]{2,45}")
_DIGITS_RE = re.compile(r"[0-9]{1,3}")
_INT_RE = re.compile(r"\s*-?[0-9]+\s*")
_DECIMAL_RE = re.compile(r"\s*-?[0-9]+(\.[0-9]+)?\s*")
_TRUE = ("true", "yes", "on", "1")
_FALSE = ("false", "no", "off", "0")
_WORD = "a single word of letters, digits and punctuation (no spaces, quotes, braces, # ! $ or \\)"
_NAME_WHAT = "a name (letters, digits, _ . : -; at most %d bytes)" % MAX_NAME


class ValidationError(ValueError):
    """The definition cannot be used. ``errors`` lists every problem, ``warnings`` the rest."""

    def __init__(self, errors, warnings=None):
        self.errors = list(errors)
        self.warnings = list(warnings or [])
        super(ValidationError, self).__init__(
            "%d error(s) in the cluster definition:\n%s" % (len(self.errors), "\n".join(self.errors)))


class _Ctx(object):
    """Collects errors and warnings as (path, message)."""

    def __init__(self):
        self.errors = []
        self.warnings = []

    def error(self, path, message):
        self.errors.append("%s: %s" % (path, message))

    def warn(self, path, message):
        self.warnings.append("%s: %s" % (path, message))


def _unique(seq):
    seen = set()
    out = []
    for item in seq:
        if item not in seen:
            seen.add(item)
            out.append(item)
    return out


def _tname(value):
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, (list, tuple)):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


def _short(value, limit=80):
    """``repr`` of a value, cut for an error message (a rejected value may be very long)."""
    text = repr(value)
    if len(text) > limit:
        text = text[:limit - 5] + "...%s" % text[-1]
    return text


def _nbytes(text):
    return len(text.encode("utf-8", "surrogatepass"))


def _hashable(value):
    try:
        hash(value)
    except TypeError:
        return False
    return True


# ---------------------------------------------------------------------------------------------
# typed readers: each returns the converted value, or None after recording an error


def _mapping(ctx, obj, path, accepted, required=()):
    """Check that ``obj`` is a mapping with only ``accepted`` keys and all ``required`` ones."""
    if not isinstance(obj, dict):
        ctx.error(path, "expected a mapping, got %s" % _tname(obj))
        return False
    for key in obj:
        if key not in accepted:
            ctx.error("%s.%s" % (path, _short(key, 60) if not isinstance(key, str) else key[:60]),
                      "unknown key; accepted keys: %s" % ", ".join(sorted(accepted)))
    for key in required:
        if obj.get(key) is None:
            ctx.error("%s.%s" % (path, key), "is required")
    return True


def _num_text(value):
    if isinstance(value, float):
        return ("%.6f" % value).rstrip("0").rstrip(".")
    return str(value)


def _range_error(ctx, path, value, lo, hi):
    value, lo, hi = _num_text(value), _num_text(lo), hi if hi is None else _num_text(hi)
    if hi is None:
        ctx.error(path, "%s is below the minimum %s" % (value, lo))
    elif lo is None:
        ctx.error(path, "%s is above the maximum %s" % (value, hi))
    else:
        ctx.error(path, "%s is outside %s-%s" % (value, lo, hi))


def _int(ctx, value, path, lo=None, hi=None):
    if isinstance(value, bool):
        ctx.error(path, "expected an integer, got %s" % _tname(value))
        return None
    if isinstance(value, str) and _INT_RE.fullmatch(value):
        value = int(value)
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        value = int(value)
    if not isinstance(value, int):
        ctx.error(path, "expected an integer, got %s %s" % (_tname(value), _short(value)))
        return None
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        _range_error(ctx, path, value, lo, hi)
        return None
    return value


def _number(ctx, value, path, lo=None, hi=None, places=6):
    """A finite number with at most ``places`` decimals (keepalived counts in microseconds)."""
    if isinstance(value, bool):
        ctx.error(path, "expected a number, got %s" % _tname(value))
        return None
    if isinstance(value, str) and _DECIMAL_RE.fullmatch(value):
        value = float(value) if "." in value else int(value)
    if not isinstance(value, (int, float)):
        ctx.error(path, "expected a number, got %s %s" % (_tname(value), _short(value)))
        return None
    if isinstance(value, float):
        if not math.isfinite(value):
            ctx.error(path, "%s is not a finite number" % value)
            return None
        if value.is_integer():
            value = int(value)
        elif round(value, places) != value:
            ctx.error(path, "%s has more than %d decimal places" % (value, places))
            return None
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        _range_error(ctx, path, value, lo, hi)
        return None
    return value


def _bool(ctx, value, path):
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in _TRUE + _FALSE:
        return value.strip().lower() in _TRUE
    ctx.error(path, "expected a boolean, got %s %s" % (_tname(value), _short(value)))
    return None


def _str(ctx, value, path, pattern=_TOKEN_RE, what=_WORD, limit=MAX_HOST_NAME):
    if not isinstance(value, str):
        ctx.error(path, "expected a string, got %s %s" % (_tname(value), _short(value)))
        return None
    if _nbytes(value) > limit:
        ctx.error(path, "%s is %d bytes long; at most %d fit on one keepalived.conf line"
                  % (_short(value), _nbytes(value), limit))
        return None
    if pattern is not None and not pattern.fullmatch(value):
        ctx.error(path, "%s is not %s" % (_short(value), what))
        return None
    return value


def _name(ctx, value, path):
    return _str(ctx, value, path, _NAME_RE, _NAME_WHAT, MAX_NAME)


def _host_name(ctx, value, path):
    """An inventory name (director, real server) or a router_id: rendered in keepalived.conf."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    return _str(ctx, value, path, _HOST_NAME_RE,
                "a name of letters, digits and _ . : @ + - (at most %d bytes)" % MAX_HOST_NAME)


def _list(ctx, value, path, allow_scalar=False):
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return list(value)
    if allow_scalar and isinstance(value, (str, int)) and not isinstance(value, bool):
        return [value]
    ctx.error(path, "expected a list, got %s" % _tname(value))
    return []


def parse_address(text):
    """An IP address from its text: only hex digits, ':' and '.', so no IPv6 scope id (``%eth0``)
    and nothing else ipaddress would carry along. Raises ValueError."""
    if not isinstance(text, str):
        raise ValueError("not a string")
    text = text.strip(" ")
    if not _ADDRESS_RE.fullmatch(text):
        raise ValueError("not an address")
    return ipaddress.ip_address(text)


def parse_interface(text):
    """``ADDRESS/PREFIX`` (prefix required) as an ipaddress interface. Raises ValueError."""
    if not isinstance(text, str):
        raise ValueError("not a string")
    addr, sep, prefix = text.strip(" ").partition("/")
    if not sep or not _DIGITS_RE.fullmatch(prefix):
        raise ValueError("no prefix")
    ip = parse_address(addr)
    return ipaddress.ip_interface("%s/%d" % (ip, int(prefix)))


def _ip(ctx, value, path, version=None):
    if not isinstance(value, str):
        ctx.error(path, "expected an IP address as a string, got %s %s" % (_tname(value), _short(value)))
        return None
    try:
        ip = parse_address(value)
    except ValueError:
        ctx.error(path, "%s is not an IP address (only digits, a-f, ':' and '.': no scope id, no "
                  "spaces)" % _short(value))
        return None
    if version is not None and ip.version != version:
        ctx.error(path, "%s is an IPv%d address; this one must be IPv%d like the others it goes with"
                  % (ip, ip.version, version))
        return None
    return ip


def _script(ctx, value, path):
    """A command line for keepalived: absolute path first, one line, none of keepalived's
    special characters, short enough for one keepalived.conf line."""
    if not isinstance(value, str) or not value.strip():
        ctx.error(path, "expected a command line as a string, got %s %s" % (_tname(value), _short(value)))
        return None
    bad = sorted(set(c for c in value if c in "\"'\\$" or ord(c) < 32 or ord(c) == 127))
    if bad:
        ctx.error(path, "%s must not contain %s: keepalived gives quotes, backslashes and $ a meaning of "
                  "its own, and a control character ends the line; put the command in a script"
                  % (_short(value), " ".join(repr(c) for c in bad)))
        return None
    value = value.strip(" ")
    if _nbytes(value) > MAX_COMMAND:
        ctx.error(path, "is %d bytes long; at most %d fit on one keepalived.conf line"
                  % (_nbytes(value), MAX_COMMAND))
        return None
    if not value.startswith("/"):
        ctx.error(path, "%s must start with an absolute path (keepalived does not search PATH)" % _short(value))
        return None
    return value


def _opt(ctx, obj, key, path, reader, default=None, **kw):
    value = obj.get(key) if isinstance(obj, dict) else None
    if value is None:
        return default
    return reader(ctx, value, "%s.%s" % (path, key), **kw)


# ---------------------------------------------------------------------------------------------
# per-host inputs


def _host_entry(ctx, raw, path, hint=True):
    """Normalise one director ``{name, address, priority, state, router_id}``."""
    if not _mapping(ctx, raw, path, HOST_KEYS, required=("name",)):
        return None
    name = raw.get("name")
    if name is not None:
        name = _host_name(ctx, name, path + ".name")
    label = name or path
    out = {"name": name, "address": None, "network": None, "priority": None, "state": None,
           "router_id": None}
    addr = raw.get("address")
    if addr is not None:
        apath = "%s: address (lbha_director_address)" % label
        if not isinstance(addr, str):
            ctx.error(apath, "expected an IP address, got %s %s" % (_tname(addr), _short(addr)))
        else:
            try:
                if "/" in addr:
                    iface = parse_interface(addr)
                    out["network"] = iface.network
                    out["address"] = str(iface.ip)
                else:
                    out["address"] = str(parse_address(addr))
            except ValueError:
                ctx.error(apath, "%s is not an IP address (optionally with /PREFIX; no scope id)" % _short(addr))
    prio = raw.get("priority")
    if prio is not None:      # required unless every instance sets it (_election)
        out["priority"] = _int(ctx, prio, "%s: priority (lbha_director_priority)" % label, 1, 255)
    state = raw.get("state")
    if state is not None:
        if isinstance(state, str) and state.upper() in STATES:
            out["state"] = state.upper()
        else:
            ctx.error("%s: state (lbha_director_state)" % label,
                      "%s is not one of %s" % (_short(state), ", ".join(STATES)))
    rid = raw.get("router_id")
    if rid is not None:
        out["router_id"] = _host_name(ctx, rid, "%s: router_id (lbha_director_router_id)" % label)
    elif name:
        out["router_id"] = name
    return out


def _directors(ctx, host, directors):
    """Normalise the directors and check that they can elect one MASTER."""
    out = []
    for i, raw in enumerate(directors):
        entry = _host_entry(ctx, raw, "directors[%d]" % i)
        if entry is not None:
            out.append(entry)
    if not out and not ctx.errors:
        ctx.error("directors", "no director is defined (is the directors inventory group empty?)")
        return out
    for field, what in (("name", "name"), ("address", "address"), ("router_id", "router_id")):
        seen = {}
        for d in out:
            value = d.get(field)
            if value is None:
                continue
            if value in seen:
                ctx.error("directors", "%s and %s have the same %s %s" % (seen[value], d["name"], what, value))
            else:
                seen[value] = d["name"]
    if host is not None and host.get("name") not in [d["name"] for d in out]:
        ctx.error("directors", "%s is not among the directors (%s)" % (
            host.get("name"), ", ".join(str(d["name"]) for d in out)))
    return out


def _electorate(directors, priorities, states):
    """The directors as one instance sees them: its own priority and state of a director
    (``priorities``, ``states``: what the instance sets) over the director's."""
    return [dict(d, priority=priorities.get(d["name"], d["priority"]), state=states.get(d["name"], d["state"]))
            for d in directors]


def _election(ctx, label, electorate):
    """Every director has a priority, the priorities differ, at most one is declared MASTER
    and it has the highest priority: the instance elects one MASTER predictably. ``label`` is
    where a problem is reported: ``directors`` for the per-host values, the instance's field
    when it sets its own."""
    prios = {}
    for d in electorate:
        if d["priority"] is None:
            ctx.error("%s: priority (lbha_director_priority)" % d["name"], "is required (1-254; the highest is "
                      "MASTER), per host or per instance (vrrp_instances[].priority.%s)" % d["name"])
        elif d["priority"] in prios:
            ctx.error(label, "%s and %s both have priority %d; VRRP needs distinct priorities to "
                      "elect one MASTER predictably" % (prios[d["priority"]], d["name"], d["priority"]))
        else:
            prios[d["priority"]] = d["name"]
    masters = [d for d in electorate if d["state"] == "MASTER"]
    if len(masters) > 1:
        ctx.error(label, "%s are all declared MASTER; at most one director may be"
                  % ", ".join(str(d["name"]) for d in masters))
    for m in masters:
        for d in electorate:
            if d is not m and d["priority"] is not None and m["priority"] is not None \
                    and d["priority"] > m["priority"]:
                ctx.error(label, "%s is declared MASTER with priority %d but %s has the higher "
                          "priority %d and would take over"
                          % (m["name"], m["priority"], d["name"], d["priority"]))


def _per_director(ctx, raw, key, path, directors, reader, what):
    """An instance's ``{director name: value}`` (``priority``, ``state``)."""
    value = raw.get(key)
    if value is None:
        return {}
    kpath = "%s.%s" % (path, key)
    if not isinstance(value, dict):
        ctx.error(kpath, "expected a mapping of director names to %s (the per-host form is "
                  "lbha_director_%s), got %s %s" % (what, key, _tname(value), _short(value)))
        return {}
    names = [d["name"] for d in directors]
    out = {}
    for name, v in value.items():
        if name not in names:
            ctx.error(kpath, "%s is not a director (%s)" % (_short(name), ", ".join(str(n) for n in names)))
            continue
        v = reader(ctx, v, "%s.%s" % (kpath, name))
        if v is not None:
            out[name] = v
    return out


def _state_value(ctx, value, path):
    if isinstance(value, str) and value.upper() in STATES:
        return value.upper()
    ctx.error(path, "%s is not one of %s" % (_short(value), ", ".join(STATES)))
    return None


def _derived_state(host, directors):
    """MASTER for the highest priority when no state is declared, else the declared one."""
    if host.get("state"):
        return host["state"]
    prios = [d["priority"] for d in directors if d.get("priority") is not None]
    if host.get("priority") is not None and prios and host["priority"] >= max(prios):
        return "MASTER"
    return "BACKUP"


# ---------------------------------------------------------------------------------------------
# global_defs, vrrp_script, vrrp_sync_group


def _smtp_server(ctx, smtp, spath):
    if not isinstance(smtp, str):
        ctx.error(spath, "expected an address or host name, got %s %s" % (_tname(smtp), _short(smtp)))
        return None
    try:
        return str(parse_address(smtp))
    except ValueError:
        pass
    # keepalived resolves anything that is not an address; a name whose last label is all digits
    # (300.1.1.1) is neither.
    if _HOSTNAME_RE.fullmatch(smtp) and not smtp.rsplit(".", 1)[-1].isdigit():
        return smtp
    ctx.error(spath, "%s is neither an IP address nor a host name" % _short(smtp))
    return None


def _global_defs(ctx, raw, script_user_override):
    path = "lbha_cluster.global_defs"
    out = {
        "notification_email": [], "notification_email_from": None, "smtp_server": None,
        "smtp_port": None, "smtp_helo_name": None, "smtp_connect_timeout": None,
        "enable_script_security": True, "script_user": DEFAULT_SCRIPT_USER, "vrrp_strict": False,
        "vrrp_skip_check_adv_addr": False, "vrrp_garp_interval": None, "vrrp_gna_interval": None,
        "lvs_sync_daemon": None, "smtp_alert": None, "smtp_alert_vrrp": None, "smtp_alert_checker": None,
    }
    if raw is None:
        raw = {}
    if not _mapping(ctx, raw, path, GLOBAL_DEFS_KEYS):
        return out
    email_what = "an e-mail address (letters, digits and . _ + = % - before the @, a host name after it)"
    emails = _list(ctx, raw.get("notification_email"), path + ".notification_email", allow_scalar=True)
    for i, e in enumerate(emails):
        v = _str(ctx, e, "%s.notification_email[%d]" % (path, i), _EMAIL_RE, email_what, MAX_EMAIL)
        if v:
            if v in out["notification_email"]:
                ctx.error("%s.notification_email[%d]" % (path, i), "%s is listed twice" % v)
            else:
                out["notification_email"].append(v)
    out["notification_email_from"] = _opt(ctx, raw, "notification_email_from", path, _str,
                                          pattern=_EMAIL_RE, what=email_what, limit=MAX_EMAIL)
    smtp = raw.get("smtp_server")
    if smtp is not None:
        out["smtp_server"] = _smtp_server(ctx, smtp, path + ".smtp_server")
    out["smtp_port"] = _opt(ctx, raw, "smtp_port", path, _int, lo=1, hi=65535)
    out["smtp_helo_name"] = _opt(ctx, raw, "smtp_helo_name", path, _str, pattern=_HOSTNAME_RE,
                                 what="a host name")
    out["smtp_connect_timeout"] = _opt(ctx, raw, "smtp_connect_timeout", path, _int, lo=1, hi=MAX_TIMER)
    out["enable_script_security"] = _opt(ctx, raw, "enable_script_security", path, _bool, default=True)
    out["script_user"] = _opt(ctx, raw, "script_user", path, _str, default=DEFAULT_SCRIPT_USER,
                              pattern=_USER_RE, what="a user name")
    if script_user_override:
        out["script_user"] = _str(ctx, script_user_override, "script_user", _USER_RE, "a user name")
    out["vrrp_strict"] = _opt(ctx, raw, "vrrp_strict", path, _bool, default=False)
    out["vrrp_skip_check_adv_addr"] = _opt(ctx, raw, "vrrp_skip_check_adv_addr", path, _bool, default=False)
    out["vrrp_garp_interval"] = _opt(ctx, raw, "vrrp_garp_interval", path, _number, lo=0.000001, hi=1000)
    out["vrrp_gna_interval"] = _opt(ctx, raw, "vrrp_gna_interval", path, _number, lo=0.000001, hi=1000)
    out["lvs_sync_daemon"] = raw.get("lvs_sync_daemon")     # checked with the instances (_sync_daemon)
    for key in SMTP_ALERT_KEYS:
        out[key] = _opt(ctx, raw, key, path, _bool)
        if out[key] and (not out["notification_email"] or out["smtp_server"] is None):
            ctx.warn(path + "." + key, "needs notification_email and smtp_server to send anything")
    if out["smtp_port"] is not None and out["smtp_server"] is None and smtp is None:
        ctx.error(path + ".smtp_port", "is set but smtp_server is not")
    if out["notification_email"] and out["smtp_server"] is None:
        ctx.warn(path + ".notification_email", "no smtp_server is set, so no e-mail can be sent")
    return out


def _sync_daemon(ctx, raw, instances, dataplane):
    """keepalived's ``lvs_sync_daemon``: the MASTER's IPVS sends its connections to the BACKUP,
    so established connections survive a failover. On by default on the ipvs plane (bound to the
    first instance); ``false`` turns it off; a mapping sets keepalived's options. The nftables
    plane keeps connections through a failover without it: there it is never rendered."""
    path = "lbha_cluster.global_defs.lvs_sync_daemon"
    if raw is None or raw is True:
        raw = {}
    elif raw is False:
        return None
    elif not isinstance(raw, dict):
        _bool(ctx, raw, path)       # the error: neither a boolean nor a mapping
        return None
    if not _mapping(ctx, raw, path, SYNC_DAEMON_KEYS):
        return None
    if dataplane != "ipvs":
        if raw:
            ctx.warn(path, "is for the ipvs plane; the nftables plane keeps connections through a failover "
                     "without it (ignored)")
        return None
    by_name = dict((inst["name"], inst) for inst in instances if inst.get("name"))
    name = _opt(ctx, raw, "instance", path, _name)
    if name is None and raw.get("instance") is None:
        if not instances:
            return None
        inst = instances[0]
    elif name not in by_name:
        if name is not None:
            ctx.error(path + ".instance", "%s is not a vrrp_instance (%s)" % (name, ", ".join(sorted(by_name)) or "none"))
        return None
    else:
        inst = by_name[name]
    out = {"instance": inst["name"],
           "interface": _opt(ctx, raw, "interface", path, _str, default=inst["interface"], pattern=_IFNAME_RE,
                             what="an interface name (letters, digits, _ . -; at most 15; no alias)"),
           "id": _opt(ctx, raw, "id", path, _int, default=inst["virtual_router_id"], lo=0, hi=255),
           "maxlen": _opt(ctx, raw, "maxlen", path, _int, lo=1, hi=65507),
           "port": _opt(ctx, raw, "port", path, _int, lo=1, hi=65535),
           "ttl": _opt(ctx, raw, "ttl", path, _int, lo=1, hi=255),
           "group": None}
    if out["interface"] == "lo":
        ctx.error(path + ".interface", "the sync daemon cannot use the loopback interface")
    group = _opt(ctx, raw, "group", path, _ip)
    if group is not None:
        if not group.is_multicast:
            ctx.error(path + ".group", "%s is not a multicast address" % group)
        else:
            out["group"] = str(group)
    if out["interface"] is None or out["id"] is None or out["instance"] is None:
        return None
    return out


def _ipvs_settings(ctx, raw, sync, dataplane):
    """The kernel's IPVS settings on every ipvs-plane director (``net.ipv4.vs.*``):

    * ``sloppy_tcp``/``sloppy_sctp``: a director creates a connection from any packet of a flow,
      not only from its first, so flows it did not learn from the sync daemon go on after a
      failover. On by default where the sync daemon runs.
    * ``conn_reuse_mode`` 2: a new connection that reuses the client port of one the director last
      saw in FIN_WAIT (the last state a director in direct routing sees) is scheduled afresh, not
      sent to the old connection's server (which may be drained or gone). The kernel's default is 1.
    * ``expire_nodest_conn``: a packet of a connection whose real server has left the table
      expires it (the client learns at once), and a new connection on its port is scheduled
      afresh; the kernel's default drops such packets silently, so the client times out.
    """
    path = "lbha_cluster.ipvs"
    out = {"sloppy_tcp": sync is not None, "sloppy_sctp": sync is not None, "conn_reuse_mode": 2,
           "expire_nodest_conn": True}
    if raw is None:
        raw = {}
    if not _mapping(ctx, raw, path, IPVS_KEYS):
        return out
    for key in IPVS_BOOL_KEYS:
        out[key] = _opt(ctx, raw, key, path, _bool, default=out[key])
    out["conn_reuse_mode"] = _opt(ctx, raw, "conn_reuse_mode", path, _int, default=2, lo=0, hi=3)
    if dataplane != "ipvs" and raw:
        ctx.warn(path, "sets the kernel's IPVS, which the nftables plane does not use (ignored)")
    return out


def ipvs_sysctl(model):
    """The sysctl settings (``{name: value}``) an ipvs-plane director applies; {} on nftables."""
    if model.get("dataplane") != "ipvs":
        return {}
    settings = model.get("ipvs") or {}
    out = dict(("net.ipv4.vs.%s" % key, 1 if settings.get(key) else 0) for key in IPVS_BOOL_KEYS)
    out["net.ipv4.vs.conn_reuse_mode"] = settings.get("conn_reuse_mode", 2)
    return out


def _vrrp_scripts(ctx, raw, gd):
    out = []
    names = set()
    for i, s in enumerate(_list(ctx, raw, "lbha_cluster.vrrp_scripts")):
        path = "lbha_cluster.vrrp_scripts[%d]" % i
        if not _mapping(ctx, s, path, VRRP_SCRIPT_KEYS, required=("name", "script")):
            continue
        name = _opt(ctx, s, "name", path, _name)
        if name == PLANE_SCRIPT:
            ctx.error(path + ".name", "%s is the name of the collection's own vrrp_script (the nftables plane's "
                      "health); choose another name" % PLANE_SCRIPT)
            name = None
        if name in names:
            ctx.error(path + ".name", "vrrp_script %s is defined twice" % name)
        names.add(name)
        entry = {
            "name": name,
            "script": _opt(ctx, s, "script", path, _script),
            "interval": _opt(ctx, s, "interval", path, _int, default=1, lo=1, hi=MAX_TIMER),
            "timeout": _opt(ctx, s, "timeout", path, _int, lo=1, hi=MAX_TIMER),
            "weight": _opt(ctx, s, "weight", path, _int, lo=-253, hi=253),
            "rise": _opt(ctx, s, "rise", path, _int, lo=1, hi=2147483647),
            "fall": _opt(ctx, s, "fall", path, _int, lo=1, hi=2147483647),
            "user": None,
            "init_fail": _opt(ctx, s, "init_fail", path, _bool, default=False),
        }
        user = s.get("user")
        if user is not None:
            parts = user.split(" ") if isinstance(user, str) else None
            if not parts or len(parts) > 2 or not all(_USER_RE.fullmatch(p) for p in parts):
                ctx.error(path + ".user", "%s is not 'user' or 'user group'" % _short(user))
            else:
                entry["user"] = " ".join(parts)
        if name is not None:
            out.append(entry)
    return out


def _sync_groups(ctx, raw, instances, scripts):
    """``instances`` maps an instance name to its normalised instance, ``scripts`` a vrrp_script
    name to its entry."""
    out = []
    member_of = {}
    names = set()
    for i, g in enumerate(_list(ctx, raw, "lbha_cluster.vrrp_sync_groups")):
        path = "lbha_cluster.vrrp_sync_groups[%d]" % i
        if not _mapping(ctx, g, path, SYNC_GROUP_KEYS, required=("name", "group")):
            continue
        name = _opt(ctx, g, "name", path, _name)
        if name in names:
            ctx.error(path + ".name", "vrrp_sync_group %s is defined twice" % name)
        names.add(name)
        members = []
        raw_members = _list(ctx, g.get("group"), path + ".group")
        for j, m in enumerate(raw_members):
            mpath = "%s.group[%d]" % (path, j)
            if not isinstance(m, str) or m not in instances:
                ctx.error(mpath, "%s is not a vrrp_instance name (%s)" % (_short(m), ", ".join(sorted(instances))))
            elif m in member_of:
                ctx.error(mpath, "%s is already in vrrp_sync_group %s" % (m, member_of[m]))
            else:
                member_of[m] = name
                members.append(m)
        if len(raw_members) < 2 and isinstance(g.get("group"), (list, tuple, str)):
            ctx.error(path + ".group", "a sync group needs at least two instances (keepalived drops an empty "
                      "one and complains about a single one)")
        for m in members:
            for t in instances[m]["track_script"]:
                if scripts[t].get("weight"):
                    ctx.error(path + ".group", "instance %s tracks vrrp_script %s with weight %d; keepalived "
                              "ignores weighted scripts in a sync group (set the script's weight to 0 or "
                              "leave it out)" % (m, t, scripts[t]["weight"]))
        out.append({"name": name, "group": members,
                    "smtp_alert": _opt(ctx, g, "smtp_alert", path, _bool)})
    return out


# ---------------------------------------------------------------------------------------------
# vrrp_instance


def _vip(ctx, raw, path, interface):
    if isinstance(raw, dict):
        if not _mapping(ctx, raw, path, VIP_KEYS, required=("address",)):
            return None
        addr = raw.get("address")
        dev = _opt(ctx, raw, "dev", path, _str, pattern=_IFNAME_RE, what="an interface name")
        label = _opt(ctx, raw, "label", path, _str, pattern=_LABEL_RE, what="an address label (max 15 chars)")
        apath = path + ".address"
    else:
        addr, dev, label, apath = raw, None, None, path
    if addr is None:
        return None
    if not isinstance(addr, str):
        ctx.error(apath, "expected ADDRESS/PREFIX as a string, got %s %s" % (_tname(addr), _short(addr)))
        return None
    if "/" not in addr:
        ctx.error(apath, "%s has no prefix length; write it in CIDR form, e.g. %s/24" % (_short(addr), _short(addr)))
        return None
    try:
        iface = parse_interface(addr)
    except ValueError:
        ctx.error(apath, "%s is not an IP address in CIDR form (ADDRESS/PREFIX; no scope id)" % _short(addr))
        return None
    the_dev = dev or interface
    if label is not None and iface.version == 6:
        ctx.error(path + ".label", "IPv6 addresses have no label (keepalived ignores it)")
    elif label is not None and the_dev and not label.startswith(the_dev + ":"):
        ctx.error(path + ".label", "%r must start with the device name and a colon (%s:...)" % (label, the_dev))
    # An IPv6 VIP is added deprecated (preferred_lft 0), never picked as the source address of
    # the director's own connections: a health check from the VIP is answered by the real
    # server to itself (it holds the VIP on lo) and always fails. keepalived does this by
    # itself for a /128 only; a VIP in the director's subnet (/64) would be preferred.
    return {"address": str(iface.ip), "prefix": iface.network.prefixlen, "cidr": str(iface),
            "network": str(iface.network), "dev": dev, "label": label, "version": iface.version,
            "preferred_lft": 0 if iface.version == 6 else None}


def _instance(ctx, raw, idx, host, directors, gd, scripts, notify_script):
    """One vrrp_instance; ``scripts`` maps a vrrp_script name to its normalised entry."""
    path = "lbha_cluster.vrrp_instances[%d]" % idx
    if not _mapping(ctx, raw, path, INSTANCE_KEYS,
                    required=("name", "interface", "virtual_router_id", "virtual_ipaddress")):
        return None
    strict = gd["vrrp_strict"]
    out = {"name": _opt(ctx, raw, "name", path, _name),
           "interface": _opt(ctx, raw, "interface", path, _str, pattern=_IFNAME_RE,
                             what="an interface name (letters, digits, _ . -; at most 15; no alias such as eth0:1)"),
           "virtual_router_id": _opt(ctx, raw, "virtual_router_id", path, _int, lo=1, hi=255),
           "version": None, "advert_int": None}
    if out["interface"] == "lo":
        ctx.error(path + ".interface", "keepalived cannot run VRRP on the loopback interface")
        out["interface"] = None

    vips = []
    raw_vips = _list(ctx, raw.get("virtual_ipaddress"), path + ".virtual_ipaddress")
    if raw.get("virtual_ipaddress") is not None and not raw_vips and isinstance(raw.get("virtual_ipaddress"), (list, tuple)):
        ctx.error(path + ".virtual_ipaddress", "must hold at least one address")
    for j, v in enumerate(raw_vips):
        vpath = "%s.virtual_ipaddress[%d]" % (path, j)
        vip = _vip(ctx, v, vpath, out["interface"])
        if vip is None:
            continue
        if vip["address"] in [x["address"] for x in vips]:
            ctx.error(vpath, "%s is listed twice" % vip["address"])
        elif vips and vip["version"] != vips[0]["version"]:
            ctx.error(vpath, "%s is IPv%d but %s is IPv%d; one instance holds addresses of one family "
                      "(use an instance per family)" % (vip["address"], vip["version"], vips[0]["address"],
                                                        vips[0]["version"]))
        else:
            vips.append(vip)
    family = vips[0]["version"] if vips else None
    if family and len(vips) > MAX_VIPS[family]:
        ctx.error(path + ".virtual_ipaddress", "%d IPv%s addresses are more than one advertisement carries (%d); "
                  "use another instance" % (len(vips), family, MAX_VIPS[family]))
    out["virtual_ipaddress"] = vips

    version = _opt(ctx, raw, "version", path, _int)
    if version not in (2, 3, None):
        ctx.error(path + ".version", "%r is not 2 or 3" % (version,))
        version = None
    elif version == 2 and family == 6:
        ctx.error(path + ".version", "VRRP version 2 is IPv4 only; IPv6 addresses need version 3")
        version = None
    elif version is None and raw.get("version") is None:
        version = 3 if family == 6 else 2
    out["version"] = version
    advert = raw.get("advert_int")
    if advert is None:
        out["advert_int"] = 1
    elif version == 3:
        out["advert_int"] = _number(ctx, advert, path + ".advert_int", 0.01, 40.95, places=2)
    else:
        value = _number(ctx, advert, path + ".advert_int", 1, 255)
        if isinstance(value, float):
            ctx.error(path + ".advert_int", "%s is not a whole number of seconds; sub-second "
                      "advertisements need version: 3" % value)
            value = None
        out["advert_int"] = value
    out["nopreempt"] = _opt(ctx, raw, "nopreempt", path, _bool, default=False)
    out["preempt_delay"] = _opt(ctx, raw, "preempt_delay", path, _int, lo=0, hi=MAX_PREEMPT_DELAY)
    if out["preempt_delay"]:
        if out["nopreempt"]:
            ctx.error(path + ".preempt_delay", "cannot be combined with nopreempt (keepalived resets it)")
        if strict:
            ctx.error(path + ".preempt_delay", "cannot be combined with vrrp_strict (keepalived resets it)")

    auth = raw.get("authentication")
    out["authentication"] = None
    if auth is not None:
        apath = path + ".authentication"
        if _mapping(ctx, auth, apath, AUTH_KEYS, required=("auth_type", "auth_pass")):
            atype = auth.get("auth_type")
            if atype is not None and (not isinstance(atype, str) or atype.upper() not in AUTH_TYPES):
                ctx.error(apath + ".auth_type", "%s is not one of %s" % (_short(atype), ", ".join(AUTH_TYPES)))
                atype = None
            apass = auth.get("auth_pass")
            if isinstance(apass, int) and not isinstance(apass, bool):
                apass = str(apass)
            if apass is not None:
                if not isinstance(apass, str) or not apass:
                    ctx.error(apath + ".auth_pass", "expected a non-empty string")
                    apass = None
                elif _nbytes(apass) > MAX_AUTH_PASS:
                    ctx.error(apath + ".auth_pass", "is %d bytes long; keepalived uses only the first "
                              "%d (and its config test fails), so use at most %d"
                              % (_nbytes(apass), MAX_AUTH_PASS, MAX_AUTH_PASS))
                    apass = None
                elif not _TOKEN_RE.fullmatch(apass):
                    ctx.error(apath + ".auth_pass", "must be ASCII letters, digits and punctuation without "
                              "spaces, quotes, braces, # ! $ or \\")
                    apass = None
            if family == 6:
                ctx.error(apath, "IPv6 instances use VRRP version 3, which has no authentication")
            elif version == 3:
                ctx.error(apath, "VRRP version 3 has no authentication; remove it or use version: 2")
            if strict:
                ctx.error(apath, "vrrp_strict (global_defs) forbids authentication")
            if atype and apass:
                out["authentication"] = {"auth_type": atype.upper(), "auth_pass": apass}

    out["track_interface"] = []
    for j, t in enumerate(_list(ctx, raw.get("track_interface"), path + ".track_interface", allow_scalar=True)):
        tpath = "%s.track_interface[%d]" % (path, j)
        v = _str(ctx, t, tpath, _IFNAME_RE, "an interface name")
        if not v:
            continue
        if v == out["interface"]:
            ctx.error(tpath, "%s is the instance's own interface, which keepalived always tracks" % v)
        elif v in out["track_interface"]:
            ctx.error(tpath, "%s is listed twice" % v)
        else:
            out["track_interface"].append(v)
    out["track_script"] = []
    for j, t in enumerate(_list(ctx, raw.get("track_script"), path + ".track_script", allow_scalar=True)):
        tpath = "%s.track_script[%d]" % (path, j)
        if not isinstance(t, str) or t not in scripts:
            ctx.error(tpath, "%s is not a vrrp_scripts name (%s)"
                      % (_short(t), ", ".join(sorted(scripts)) or "none defined"))
        elif t in out["track_script"]:
            ctx.error(tpath, "%s is listed twice" % t)
        else:
            out["track_script"].append(t)
    out["smtp_alert"] = _opt(ctx, raw, "smtp_alert", path, _bool)
    if out["smtp_alert"] and (not gd["notification_email"] or not gd["smtp_server"]):
        ctx.warn(path + ".smtp_alert", "needs global_defs.notification_email and smtp_server to send anything")
    out["garp_master_delay"] = _opt(ctx, raw, "garp_master_delay", path, _int, lo=0, hi=MAX_TIMER)
    out["garp_master_repeat"] = _opt(ctx, raw, "garp_master_repeat", path, _int, lo=1, hi=MAX_U32)
    out["garp_master_refresh"] = _opt(ctx, raw, "garp_master_refresh", path, _int, lo=0, hi=MAX_U32)
    out["garp_master_refresh_repeat"] = _opt(ctx, raw, "garp_master_refresh_repeat", path, _int, lo=1, hi=MAX_U32)
    for key in NOTIFY_KEYS:
        out[key] = _opt(ctx, raw, key, path, _script)
    if out["notify"] and notify_script:
        ctx.error(path + ".notify", "keepalived takes one notify script per instance and the collection's "
                  "own hook (%s) is it; use notify_master, notify_backup, notify_fault or notify_stop"
                  % notify_script)

    # who elects whom: the instance's own priorities and states over the directors'
    priorities = _per_director(ctx, raw, "priority", path, directors,
                               lambda c, v, p: _int(c, v, p, 1, 255), "priorities (1-255)")
    states = _per_director(ctx, raw, "state", path, directors, _state_value, "MASTER or BACKUP")
    out["_electorate"] = (_electorate(directors, priorities, states), bool(priorities or states))

    # this director's view
    out["state"] = None
    out["priority"] = None
    out["unicast_src_ip"] = None
    out["unicast_peer"] = []
    unicast = _opt(ctx, raw, "unicast", path, _bool, default=False)
    explicit = raw.get("unicast_peers")
    peers = []
    if explicit is not None:
        for j, p in enumerate(_list(ctx, explicit, path + ".unicast_peers", allow_scalar=True)):
            ip = _ip(ctx, p, "%s.unicast_peers[%d]" % (path, j), version=family)
            if ip is not None:
                peers.append(str(ip))
    if (explicit is not None or unicast) and strict:
        ctx.error(path + ".unicast", "keepalived refuses unicast peers with vrrp_strict (global_defs)")
    if host is None:
        return out

    me = [d for d in out["_electorate"][0] if d["name"] == host["name"]]
    me = me[0] if me else dict(host, priority=priorities.get(host["name"], host.get("priority")),
                               state=states.get(host["name"], host.get("state")))
    prio = me["priority"]
    prio_label = ("%s.priority.%s" % (path, host["name"]) if host["name"] in priorities
                  else "%s: priority (lbha_director_priority)" % host["name"])
    state_label = ("%s.state.%s" % (path, host["name"]) if host["name"] in states
                   else "%s: state (lbha_director_state)" % host["name"])
    owner = prio == 255
    reasons = []
    if out["nopreempt"]:
        reasons.append("nopreempt (%s.nopreempt)" % path)
    if out["preempt_delay"]:
        reasons.append("preempt_delay (%s.preempt_delay)" % path)
    if out["authentication"] and out["authentication"]["auth_type"] == "AH" and not owner:
        reasons.append("AH authentication (%s.authentication)" % path)
    if strict and not owner:
        reasons.append("vrrp_strict (lbha_cluster.global_defs.vrrp_strict) below priority 255")
    state = _derived_state(me, out["_electorate"][0])
    if me["state"] == "MASTER" and reasons:
        ctx.error(state_label,
                  "MASTER cannot be combined with %s; keepalived needs every director to start as BACKUP "
                  "then - leave the state unset" % " or ".join(reasons))
    if reasons:
        state = "BACKUP"
    if owner:
        if strict and state != "MASTER":
            ctx.error(state_label,
                      "BACKUP with priority 255 and vrrp_strict: keepalived makes the address owner MASTER")
        if out["nopreempt"]:
            ctx.error(prio_label,
                      "255 cannot be combined with nopreempt (%s.nopreempt); keepalived resets it" % path)
        if out["preempt_delay"]:
            ctx.error(prio_label,
                      "255 cannot be combined with preempt_delay (%s.preempt_delay); the owner starts MASTER "
                      "and keepalived clears it" % path)
        for t in out["track_script"]:
            if scripts[t].get("weight"):
                ctx.error(prio_label,
                          "255 cannot be combined with the weighted vrrp_script %s (%s.track_script): "
                          "keepalived ignores weights on the address owner" % (t, path))
    if state == "MASTER" and out["preempt_delay"]:
        ctx.error(path + ".preempt_delay", "%s starts MASTER, where keepalived clears preempt_delay"
                  % host["name"])
    out["state"] = state
    out["priority"] = prio
    if owner and host.get("address") not in [v["address"] for v in vips]:
        ctx.error(prio_label,
                  "255 is reserved for the owner of the virtual addresses of %s (a director whose own "
                  "address is the VIP); use 1-254" % out["name"])
    if explicit is not None or unicast:
        src = host.get("address")
        if src is None:
            ctx.error("%s: address (lbha_director_address)" % host["name"],
                      "is needed for unicast VRRP (%s) but is not known" % path)
        elif family and parse_address(src).version != family:
            ctx.error("%s: address (lbha_director_address)" % host["name"],
                      "%s is the unicast source of %s but its addresses are IPv%s" % (src, out["name"], family))
        else:
            out["unicast_src_ip"] = src
        if explicit is None:
            for d in directors:
                if d["name"] == host["name"]:
                    continue
                if d.get("address") is None:
                    ctx.error("%s: address (lbha_director_address)" % d["name"],
                              "is needed as a unicast peer of %s but is not known" % out["name"])
                elif family and parse_address(d["address"]).version != family:
                    ctx.error("%s: address (lbha_director_address)" % d["name"],
                              "%s is a unicast peer of %s but its addresses are IPv%s"
                              % (d["address"], out["name"], family))
                else:
                    peers.append(d["address"])
        for p in peers:
            if p == host.get("address"):
                ctx.error(path + ".unicast_peers", "%s is this director's own address (%s)"
                          % (p, host["name"]))
        peers = [p for p in _unique(peers) if p != host.get("address")]
        if not peers:
            ctx.error(path + ".unicast_peers", "unicast VRRP without any peer (keepalived falls back to "
                      "multicast and says the usage is deprecated)")
        out["unicast_peer"] = peers
    if strict and family == 6 and not out["unicast_peer"] and vips and \
            not ipaddress.ip_address(vips[0]["address"]).is_link_local:
        ctx.error(path + ".virtual_ipaddress[0]", "with vrrp_strict the first IPv6 address must be link-local "
                  "(fe80::/10)")
    return out


# ---------------------------------------------------------------------------------------------
# virtual_server / real_server / checks


def _status_codes(ctx, value, path):
    """HTTP status codes: integers and ``"FIRST-LAST"`` ranges, 100-599. Returns the sorted
    unique codes (a range expanded), or None after an error."""
    if value is None:
        return [200]
    codes = set()
    ok = True
    items = _list(ctx, value, path, allow_scalar=True)
    if not items:
        ctx.error(path, "must hold at least one status code")
        return None
    for j, code in enumerate(items):
        cpath = "%s[%d]" % (path, j) if isinstance(value, (list, tuple)) else path
        if isinstance(code, str) and "-" in code.strip().lstrip("-"):
            first, _sep, last = code.strip().partition("-")
            lo = _int(ctx, first, cpath + " (first)", 100, 599)
            hi = _int(ctx, last, cpath + " (last)", 100, 599)
            if lo is None or hi is None:
                ok = False
            elif lo > hi:
                ctx.error(cpath, "%s is an empty range" % _short(code))
                ok = False
            else:
                codes.update(range(lo, hi + 1))
            continue
        c = _int(ctx, code, cpath, 100, 599)
        if c is None:
            ok = False
        else:
            codes.add(c)
    return sorted(codes) if ok else None


def _merge_check(ctx, base, override, path):
    """The raw checks of one real server: the virtual server's ``base`` with the real server's
    ``override`` merged over it. Returns a list of raw mappings (empty: no check) or None."""
    if override is False:
        return []
    if override is not None and not isinstance(override, (dict, list, tuple)):
        ctx.error(path, "expected a mapping, a list of mappings or false, got %s" % _tname(override))
        return None
    if isinstance(override, (list, tuple)):
        return list(override)
    if isinstance(base, (list, tuple)):
        if override is not None:
            ctx.error(path, "the virtual server has a list of checks: give a list here to replace it "
                      "(a mapping cannot be merged over a list)")
            return None
        return list(base)
    raw = dict(base) if isinstance(base, dict) else None
    if override is not None:
        if raw is None or (override.get("type") and str(override.get("type")).upper()
                           != str(raw.get("type", "")).upper()):
            raw = {}
        raw.update(override)
    return [raw] if raw is not None else []


def _check(ctx, raw, path, port, delay_loop):
    """Normalise one raw check; ``port`` is the real server's port (None: fwmark without port)."""
    if not isinstance(raw, dict):
        ctx.error(path, "expected a mapping, got %s" % _tname(raw))
        return None
    ctype = raw.get("type")
    if not isinstance(ctype, str) or ctype.upper() not in CHECK_TYPES:
        ctx.error(path + ".type", "%s is not one of %s" % (_short(ctype), ", ".join(CHECK_TYPES)))
        return None
    ctype = ctype.upper()
    if not _mapping(ctx, raw, path, CHECK_KEYS[ctype]):
        return None
    if raw.get("retry") is not None and raw.get("nb_get_retry") is not None:
        ctx.error(path + ".nb_get_retry", "is the old name of retry; set only one of them")
    retry = raw.get("retry") if raw.get("retry") is not None else raw.get("nb_get_retry")
    rkey = "retry" if raw.get("retry") is not None else "nb_get_retry"
    out = {"type": ctype}
    if ctype == "MISC_CHECK":
        out["misc_path"] = _opt(ctx, raw, "misc_path", path, _script)
        if raw.get("misc_path") is None:
            ctx.error(path + ".misc_path", "is required for MISC_CHECK")
        default_timeout = None
        if delay_loop is not None:
            default_timeout = max(1, min(int(math.ceil(delay_loop)), MAX_TIMER))
        out["misc_timeout"] = _opt(ctx, raw, "misc_timeout", path, _int, default=default_timeout, lo=1, hi=MAX_TIMER)
        out["misc_dynamic"] = _opt(ctx, raw, "misc_dynamic", path, _bool, default=False)
    else:
        out["connect_timeout"] = _opt(ctx, raw, "connect_timeout", path, _number,
                                      default=CHECK_DEFAULTS["connect_timeout"], lo=0.000001, hi=MAX_TIMER)
    out["retry"] = CHECK_DEFAULTS["retry"] if retry is None else _int(ctx, retry, "%s.%s" % (path, rkey), 1, MAX_U32)
    out["delay_before_retry"] = _opt(ctx, raw, "delay_before_retry", path, _number,
                                     default=CHECK_DEFAULTS["delay_before_retry"], lo=0.000001, hi=MAX_TIMER)
    if ctype != "MISC_CHECK":
        out["connect_port"] = _opt(ctx, raw, "connect_port", path, _int, default=port, lo=1, hi=65535)
        if raw.get("connect_port") is None and port is None:
            ctx.error(path + ".connect_port", "is required: a fwmark service without a port gives the check "
                      "no port to connect to")
        ip = raw.get("connect_ip")
        out["connect_ip"] = None
        if ip is not None:
            v = _ip(ctx, ip, path + ".connect_ip")
            if v is not None and v.version == 6 and v.is_link_local:
                ctx.error(path + ".connect_ip", "%s is link-local: keepalived's checker needs an interface "
                          "(bind_if) for it, which the model does not set" % v)
            else:
                out["connect_ip"] = str(v) if v is not None else None
    if ctype in ("HTTP_GET", "SSL_GET"):
        urls = raw.get("url")
        if urls is None:
            urls = [{"path": "/"}]
        out["url"] = []
        for j, u in enumerate(_list(ctx, urls, path + ".url")):
            upath = "%s.url[%d]" % (path, j)
            if not _mapping(ctx, u, upath, URL_KEYS, required=("path",)):
                continue
            p = _opt(ctx, u, "path", upath, _str, pattern=_URL_PATH_RE, limit=MAX_COMMAND,
                     what="a URL path starting with / (ASCII; no spaces, quotes, braces, # ! $ or \\)")
            digest = _opt(ctx, u, "digest", upath, _str, pattern=_DIGEST_RE, what="an MD5 hex digest")
            out["url"].append({"path": p, "status_code": _status_codes(ctx, u.get("status_code"),
                                                                       upath + ".status_code"),
                               "digest": digest.lower() if digest else None})
        if not out["url"] and isinstance(urls, (list, tuple)):
            ctx.error(path + ".url", "must hold at least one URL")
        out["virtualhost"] = _opt(ctx, raw, "virtualhost", path, _str, pattern=_HOSTNAME_RE, what="a host name")
    return out


def _checks(ctx, base, override, path, port, delay_loop):
    """The normalised check of a real server: a mapping, None, or a list of two or more."""
    raws = _merge_check(ctx, base, override, path)
    if raws is None:
        return None
    if not raws and isinstance(override, (list, tuple)):
        ctx.error(path, "an empty list; write false for no check")
        return None
    several = len(raws) > 1 or isinstance(override, (list, tuple)) or isinstance(base, (list, tuple))
    out = []
    for k, raw in enumerate(raws):
        c = _check(ctx, raw, "%s[%d]" % (path, k) if several else path, port, delay_loop)
        if c is not None:
            out.append(c)
    if not out:
        return None
    return out[0] if len(out) == 1 else out


def _real_server(ctx, raw, path, vs, base_check, name=None, keys=RS_KEYS):
    if not _mapping(ctx, raw, path, keys, required=("address",)):
        return None
    ip = _ip(ctx, raw.get("address"), path + ".address", version=vs["family"]) \
        if raw.get("address") is not None else None
    rs_name = name
    if raw.get("name") is not None:
        rs_name = _host_name(ctx, raw["name"], path + ".name")
    elif name is not None:
        rs_name = _host_name(ctx, name, path + ".name")
    if vs["fwmark"] is not None and raw.get("port") is not None:
        ctx.error(path + ".port", "a fwmark service forwards to any port; set connect_port in the check instead")
        port = vs["port"]
    else:
        port = _opt(ctx, raw, "port", path, _int, default=vs["port"], lo=1, hi=65535)
    out = {
        "address": str(ip) if ip is not None else None,
        "port": port,
        "weight": _opt(ctx, raw, "weight", path, _int, default=1, lo=0, hi=MAX_WEIGHT),
        "inhibit_on_failure": _opt(ctx, raw, "inhibit_on_failure", path, _bool, default=False),
        "smtp_alert": _opt(ctx, raw, "smtp_alert", path, _bool),
        "name": rs_name,
        "check": _checks(ctx, base_check, raw.get("check"), path + ".check", port, vs["delay_loop"]),
    }
    if ip is None:
        return None
    if ip.version == 6 and ip.is_link_local:
        for c in check_list(out):
            if c["type"] != "MISC_CHECK" and not c.get("connect_ip"):
                ctx.error(path + ".check", "%s is link-local: keepalived's %s needs an interface (bind_if) "
                          "for it; set a connect_ip that is not link-local" % (ip, c["type"]))
    return out


def _granularity(ctx, gran, gpath, family):
    """The persistence granularity: a dotted netmask for IPv4, a prefix length for IPv6."""
    if isinstance(gran, bool) or not isinstance(gran, (int, str)):
        ctx.error(gpath, "expected a netmask or a prefix length, got %s" % _tname(gran))
        return None
    text = str(gran).strip().lstrip("/")
    if family == 6:
        if _DIGITS_RE.fullmatch(text) and 1 <= int(text) <= 128:
            return int(text)
        ctx.error(gpath, "%s is not a prefix length 1-128 (an IPv6 service takes no dotted netmask)" % _short(gran))
        return None
    try:
        if not (_DIGITS_RE.fullmatch(text) or _ADDRESS_RE.fullmatch(text)):
            raise ValueError(text)
        return str(ipaddress.IPv4Network("0.0.0.0/%s" % text).netmask)
    except ValueError:
        ctx.error(gpath, "%s is not a netmask (e.g. 255.255.255.0 or 24)" % _short(gran))
        return None


def _virtual_server(ctx, raw, idx, vip_index, real_server_hosts, dataplane, director_networks):
    path = "lbha_cluster.virtual_servers[%d]" % idx
    if not _mapping(ctx, raw, path, VS_KEYS):
        return None
    fwmark = _opt(ctx, raw, "fwmark", path, _int, lo=1, hi=MAX_U32)
    ip = None
    if raw.get("fwmark") is not None:
        if raw.get("address") is not None:
            ctx.error(path + ".address", "a fwmark service has no address: set address and port, or fwmark")
        if raw.get("protocol") is not None:
            ctx.error(path + ".protocol", "a fwmark service matches the marked packets of every protocol")
        if dataplane == "nftables":
            ctx.error(path + ".fwmark", "fwmark services need the ipvs plane (the nftables plane forwards "
                      "by address and port)")
    elif raw.get("address") is None:
        ctx.error(path + ".address", "is required (or fwmark)")
        return None
    else:
        ip = _ip(ctx, raw.get("address"), path + ".address")
    if raw.get("port") is None and raw.get("fwmark") is None:
        ctx.error(path + ".port", "is required")
    out = {"address": str(ip) if ip is not None else None,
           "port": _opt(ctx, raw, "port", path, _int, lo=1, hi=65535),
           "fwmark": fwmark}
    proto = raw.get("protocol", "TCP" if raw.get("fwmark") is None else None)
    if proto is not None and (not isinstance(proto, str) or proto.upper() not in PROTOCOLS):
        ctx.error(path + ".protocol", "%s is not one of %s" % (_short(proto), ", ".join(PROTOCOLS)))
        proto = None
    out["protocol"] = proto.upper() if proto and raw.get("fwmark") is None else None
    algo = raw.get("lb_algo", "rr")
    if not isinstance(algo, str) or algo.lower() not in LB_ALGOS:
        ctx.error(path + ".lb_algo", "%s is not one of %s" % (_short(algo), ", ".join(LB_ALGOS)))
        algo = None
    out["lb_algo"] = algo.lower() if algo else None
    kind = raw.get("lb_kind", "DR")
    if not isinstance(kind, str) or kind.upper() not in LB_KINDS:
        ctx.error(path + ".lb_kind", "%s is not one of %s" % (_short(kind), ", ".join(LB_KINDS)))
        kind = None
    out["lb_kind"] = kind.upper() if kind else None
    out["delay_loop"] = _opt(ctx, raw, "delay_loop", path, _number, default=DEFAULT_DELAY_LOOP,
                             lo=0.000001, hi=MAX_DELAY_LOOP)
    pt = _opt(ctx, raw, "persistence_timeout", path, _int, lo=0, hi=MAX_PERSISTENCE)
    out["persistence_timeout"] = pt or None

    # the address family: the service address's, or for fwmark the real servers'
    family = ip.version if ip is not None else None
    if family is None:
        for item in _list(_Ctx(), raw.get("real_servers"), "") + [raw.get("sorry_server")]:
            a = item.get("address") if isinstance(item, dict) else None
            try:
                family = parse_address(a).version
                break
            except ValueError:
                continue
    if family is None and isinstance(raw.get("real_servers_group"), str):
        for m in (real_server_hosts or {}).get(raw["real_servers_group"]) or []:
            try:
                family = parse_address(m.get("address")).version
                break
            except (ValueError, AttributeError):
                continue
    out["family"] = "inet6" if family == 6 else "inet"

    if raw.get("netmask") is not None and raw.get("persistence_granularity") is not None:
        ctx.error(path + ".netmask", "is the seed's name of persistence_granularity; set only one of them")
    gkey = "persistence_granularity" if raw.get("persistence_granularity") is not None else "netmask"
    gran = raw.get(gkey)
    out["persistence_granularity"] = None
    if gran is not None:
        g = _granularity(ctx, gran, "%s.%s" % (path, gkey), family or 4)
        if out["persistence_timeout"]:
            out["persistence_granularity"] = g
    out["quorum"] = _opt(ctx, raw, "quorum", path, _int, default=1, lo=1, hi=MAX_U32)
    out["hysteresis"] = _opt(ctx, raw, "hysteresis", path, _int, default=0, lo=0, hi=MAX_U32)
    if out["quorum"] is not None and out["hysteresis"] is not None and out["hysteresis"] >= out["quorum"]:
        ctx.error(path + ".hysteresis", "%d is not below the quorum %d (keepalived lowers it)"
                  % (out["hysteresis"], out["quorum"]))
    for key in ("alpha", "omega", "ha_suspend"):
        out[key] = _opt(ctx, raw, key, path, _bool, default=False)
    if fwmark is not None and out["ha_suspend"]:
        ctx.error(path + ".ha_suspend", "keepalived cannot suspend a fwmark service (it clears ha_suspend)")
    out["virtualhost"] = _opt(ctx, raw, "virtualhost", path, _str, pattern=_HOSTNAME_RE, what="a host name")
    out["smtp_alert"] = _opt(ctx, raw, "smtp_alert", path, _bool)

    # the VIP this service lives on
    out["interface"] = None
    networks = []
    if out["address"] is not None:
        owner = vip_index.get(out["address"])
        if owner is None:
            msg = "%s is not among the virtual_ipaddress of any vrrp_instance (%s)" % (
                out["address"], ", ".join(sorted(vip_index)) or "none")
            if out["lb_kind"] in ("DR", None):
                ctx.error(path + ".address", msg + "; with lb_kind DR the service address must be a VIP")
            else:
                ctx.warn(path + ".address", msg)
        else:
            inst, vip = owner
            out["interface"] = vip["dev"] or inst["interface"]
            net = ipaddress.ip_network(vip["network"])
            if net.num_addresses > 1:
                networks.append(("the VIP's subnet", net))
    for dnet in director_networks:
        networks.append(("the director's subnet", dnet))

    if dataplane == "nftables":
        if out["lb_kind"] not in ("DR", None):
            ctx.error(path + ".lb_kind", "%s is not supported by the nftables plane (DR only; use the "
                      "ipvs plane for NAT or TUN)" % out["lb_kind"])
        if out["protocol"] == "SCTP":
            ctx.error(path + ".protocol", "SCTP is not supported by the nftables plane (TCP or UDP)")
        if out["lb_algo"] in NFT_APPROXIMATED_ALGOS:
            ctx.warn(path + ".lb_algo", "%s needs connection counting, which the nftables plane does not have; "
                     "it is served as weighted hashing (wrr)" % out["lb_algo"])

    sorry = raw.get("sorry_server")
    out["sorry_server"] = None
    if sorry is not None and _mapping(ctx, sorry, path + ".sorry_server", SORRY_KEYS, required=("address",)):
        sip = _ip(ctx, sorry.get("address"), path + ".sorry_server.address", version=family) \
            if sorry.get("address") is not None else None
        if fwmark is not None and sorry.get("port") is not None:
            ctx.error(path + ".sorry_server.port", "a fwmark service forwards to any port")
        sport = _opt(ctx, sorry, "port", path + ".sorry_server", _int, default=out["port"], lo=1, hi=65535)
        if sip is not None:
            out["sorry_server"] = {"address": str(sip), "port": sport}
            if out["lb_kind"] in ("DR", "TUN") and sport != out["port"] and out["port"] is not None:
                ctx.error(path + ".sorry_server.port", "%s differs from the virtual server port %s; lb_kind %s "
                          "cannot change the port" % (sport, out["port"], out["lb_kind"]))
            if sip == ip:
                ctx.error(path + ".sorry_server.address", "%s is the virtual server's own address" % sip)

    if (out["port"] is None and fwmark is None) or out["delay_loop"] is None:
        return None  # the rest depends on them; errors are already recorded

    base_check = raw.get("check")
    if base_check is not None and not isinstance(base_check, (dict, list, tuple)):
        ctx.error(path + ".check", "expected a mapping or a list of mappings, got %s" % _tname(base_check))
        base_check = None
    # Validate the base check once on its own so its errors name the virtual server's field.
    base_errors = len(ctx.errors)
    if base_check is not None:
        _checks(ctx, None, base_check, path + ".check", out["port"], out["delay_loop"])
    base_ok = len(ctx.errors) == base_errors
    vs_view = dict(out, family=family)

    rs_errors = len(ctx.errors)
    candidates = []
    for j, rs in enumerate(_list(ctx, raw.get("real_servers"), path + ".real_servers")):
        rpath = "%s.real_servers[%d]" % (path, j)
        sub = _Ctx()
        entry = _real_server(sub, rs, rpath, vs_view, base_check if base_ok else None)
        ctx.errors.extend(sub.errors)
        ctx.warnings.extend(sub.warnings)
        if entry is not None:
            candidates.append((rpath, entry))
    group = raw.get("real_servers_group")
    if group is not None:
        gpath = path + ".real_servers_group"
        if not isinstance(group, str) or not group:
            ctx.error(gpath, "expected an inventory group name, got %s %s" % (_tname(group), _short(group)))
        else:
            members = (real_server_hosts or {}).get(group)
            if members is None:
                ctx.warn(gpath, "inventory group %s was not resolved (no real_server_hosts for it)" % _short(group))
                members = []
            for j, m in enumerate(_list(ctx, members, "real_server_hosts.%s" % group)):
                hname = m.get("name") if isinstance(m, dict) else None
                label = hname if isinstance(hname, str) and _HOST_NAME_RE.fullmatch(hname) else j
                rpath = "%s[%s]" % (gpath, label)
                if isinstance(m, dict) and m.get("address") is None:
                    ctx.error(rpath + ".address", "the address of %s is not known; set "
                              "lbha_real_server_address or ansible_host to an IP address" % label)
                    continue
                sub = _Ctx()
                entry = _real_server(sub, m, rpath, vs_view, base_check if base_ok else None,
                                     name=hname, keys=RS_HOST_KEYS)
                ctx.errors.extend(sub.errors)
                ctx.warnings.extend(sub.warnings)
                if entry is not None:
                    candidates.append((rpath, entry))

    seen = {}
    rss = []
    for rpath, rs in candidates:
        key = (rs["address"], rs["port"])
        if key in seen:
            ctx.error(rpath + ".address", "%s port %s is already a real server of this virtual server (%s)"
                      % (rs["address"], rs["port"], seen[key]))
            continue
        seen[key] = rpath
        if fwmark is not None and rs["address"] in [r["address"] for r in rss]:
            ctx.error(rpath + ".address", "%s is already a real server of this fwmark service" % rs["address"])
            continue
        if out["lb_kind"] in ("DR", "TUN") and rs["port"] != out["port"]:
            ctx.error(rpath + ".port", "%s differs from the virtual server port %s; lb_kind %s cannot change "
                      "the destination port" % (rs["port"], out["port"], out["lb_kind"]))
        if rs["address"] == out["address"]:
            ctx.error(rpath + ".address", "%s is the virtual server's own address" % rs["address"])
        elif out["lb_kind"] == "DR" and networks:
            addr = ipaddress.ip_address(rs["address"])
            if not any(addr.version == n.version and addr in n for _what, n in networks):
                ctx.error(rpath + ".address", "%s is not on %s; lb_kind DR forwards frames on the "
                          "director's link, so a real server must be on that subnet" % (
                              rs["address"], " or ".join("%s %s" % (w, n) for w, n in networks)))
        if dataplane == "nftables" and isinstance(rs["check"], list):
            ctx.error(rpath + ".check", "the nftables plane's checker runs one check per real server")
        rss.append(rs)
    out["real_servers"] = rss
    sorry = out["sorry_server"]
    for rs in rss:
        if sorry and rs["inhibit_on_failure"] and rs["address"] == sorry["address"] and \
                (fwmark is not None or rs["port"] == sorry["port"]):
            ctx.error(path + ".sorry_server", "%s is also a real server with inhibit_on_failure; keepalived "
                      "then changes the sorry server's inhibit setting" % sorry["address"])
    if not rss and len(ctx.errors) == rs_errors:
        ctx.error(path, "%s has no real server%s; keepalived ignores a virtual server without one" % (
            _service_name(out), " (group %s is empty)" % group if isinstance(group, str) else ""))
    total = sum(r["weight"] or 0 for r in rss)
    if out["quorum"] and rss and out["quorum"] > total:
        ctx.error(path + ".quorum", "%d is more than the total weight %d of the real servers; keepalived "
                  "lowers it to %d" % (out["quorum"], total, total))
    return out


def _resolve_alerts(ctx, gd, vss):
    """Whether a virtual server mails its quorum changes and a real server its health changes
    (``mail``), by keepalived's rule: the server's own smtp_alert, else global_defs
    smtp_alert_checker, else smtp_alert, else off for a virtual server and ON for a real server
    (keepalived keeps that default for compatibility); and mail goes out only when
    notification_email and smtp_server are set. The nftables plane's checker mails by it."""
    can_mail = bool(gd["notification_email"]) and gd["smtp_server"] is not None
    default = gd["smtp_alert_checker"] if gd["smtp_alert_checker"] is not None else gd["smtp_alert"]
    for i, vs in enumerate(vss):
        explicit = [("virtual_servers[%d].smtp_alert" % i, vs.get("smtp_alert"))]
        vs["mail"] = can_mail and bool(vs["smtp_alert"] if vs.get("smtp_alert") is not None else default)
        for rs in vs["real_servers"]:
            explicit.append(("virtual_servers[%d] real server %s" % (i, rs.get("name") or rs["address"]),
                             rs.get("smtp_alert")))
            own = rs.get("smtp_alert")
            rs["mail"] = can_mail and bool(own if own is not None else (default if default is not None else True))
        if not can_mail:
            wanted = [where for where, value in explicit if value]
            if wanted:
                ctx.warn("lbha_cluster." + wanted[0], "smtp_alert needs global_defs.notification_email and "
                         "smtp_server to send anything")


def check_list(rs):
    """The checks of a normalised real server as a list (its ``check`` is a mapping, None, or a
    list of two or more)."""
    check = rs.get("check")
    if not check:
        return []
    return list(check) if isinstance(check, list) else [check]


def _service_name(vs):
    if vs.get("fwmark") is not None:
        return "fwmark %d" % vs["fwmark"]
    return "%s:%s" % (vs["address"], vs["port"])


# ---------------------------------------------------------------------------------------------
# entry points


def _normalize(cluster, host=None, directors=None, real_server_hosts=None, dataplane="ipvs",
               notify_script=DEFAULT_NOTIFY_SCRIPT, script_user=None, plane_check=DEFAULT_PLANE_CHECK):
    """Return ``(model, errors, warnings)`` with messages not yet prefixed by the host."""
    ctx = _Ctx()
    if dataplane not in DATAPLANES:
        ctx.error("dataplane", "%r is not one of %s" % (dataplane, ", ".join(DATAPLANES)))
    if notify_script:
        notify_script = _script(ctx, notify_script, "notify_script")
    if cluster is None or not _mapping(ctx, cluster, "lbha_cluster", CLUSTER_KEYS):
        if cluster is None:
            ctx.error("lbha_cluster", "is not defined")
        return None, ctx.errors, ctx.warnings

    h = None
    if host is not None:
        h = _host_entry(ctx, host, "host")
    if directors is None:
        raw_directors = [host] if host is not None else []
    else:
        raw_directors = _list(ctx, directors, "directors")
    dirs = _directors(ctx, h, raw_directors)
    if h is not None:
        for d in dirs:
            if d["name"] == h["name"]:
                for key in ("address", "network", "priority", "router_id"):
                    if h.get(key) is None and d.get(key) is not None:
                        h[key] = d[key]

    gd = _global_defs(ctx, cluster.get("global_defs"), script_user)
    scripts = _vrrp_scripts(ctx, cluster.get("vrrp_scripts"), gd)
    scripts_by_name = dict((s["name"], s) for s in scripts)

    raw_instances = _list(ctx, cluster.get("vrrp_instances"), "lbha_cluster.vrrp_instances")
    if not raw_instances and cluster.get("vrrp_instances") is None:
        ctx.error("lbha_cluster.vrrp_instances", "is required (at least one vrrp_instance)")
    instances = []
    for i, raw in enumerate(raw_instances):
        inst = _instance(ctx, raw, i, h, dirs, gd, scripts_by_name, notify_script)
        if inst is not None:
            instances.append((i, inst))
    for i, inst in instances:
        electorate, own = inst.pop("_electorate")
        path = "lbha_cluster.vrrp_instances[%d]" % i
        _election(ctx, path + ".priority" if own else "directors", electorate)
    names = {}
    vrids = {}
    vip_index = {}
    for i, inst in instances:
        path = "lbha_cluster.vrrp_instances[%d]" % i
        if inst["name"] is not None:
            if inst["name"] in names:
                ctx.error(path + ".name", "%s is also the name of vrrp_instances[%d]" % (inst["name"], names[inst["name"]]))
            else:
                names[inst["name"]] = i
        if inst["virtual_router_id"] is not None and inst["interface"] is not None:
            key = (inst["interface"], inst["virtual_router_id"])
            if key in vrids:
                ctx.error(path + ".virtual_router_id", "%d is also used on %s by vrrp_instances[%d]; a VRID "
                          "must be unique per interface" % (key[1], key[0], vrids[key]))
            else:
                vrids[key] = i
        for vip in inst["virtual_ipaddress"]:
            if vip["address"] in vip_index:
                ctx.error(path + ".virtual_ipaddress", "%s is also a VIP of %s" % (
                    vip["address"], vip_index[vip["address"]][0]["name"]))
            else:
                vip_index[vip["address"]] = (inst, vip)
    used = set(t for _idx, inst in instances for t in inst["track_script"])
    for s in scripts:
        if s["name"] not in used:
            ctx.warn("lbha_cluster.vrrp_scripts", "vrrp_script %s is not tracked by any instance" % s["name"])
    groups = _sync_groups(ctx, cluster.get("vrrp_sync_groups"),
                          dict((inst["name"], inst) for _idx, inst in instances if inst["name"] is not None),
                          scripts_by_name)

    gd["lvs_sync_daemon"] = _sync_daemon(ctx, gd["lvs_sync_daemon"], [inst for _idx, inst in instances], dataplane)
    ipvs_settings = _ipvs_settings(ctx, cluster.get("ipvs"), gd["lvs_sync_daemon"], dataplane)

    director_networks = [h["network"]] if h is not None and h.get("network") is not None else []
    vss = []
    seen = {}
    for i, raw in enumerate(_list(ctx, cluster.get("virtual_servers"), "lbha_cluster.virtual_servers")):
        vs = _virtual_server(ctx, raw, i, vip_index, real_server_hosts, dataplane, director_networks)
        if vs is None:
            continue
        key = ("fwmark", vs["fwmark"]) if vs["fwmark"] is not None else (vs["address"], vs["port"], vs["protocol"])
        if key in seen:
            what = "fwmark %d" % vs["fwmark"] if vs["fwmark"] is not None else "%s %s:%s" % (key[2], key[0], key[1])
            ctx.error("lbha_cluster.virtual_servers[%d]" % i, "%s is also virtual_servers[%d]" % (what, seen[key]))
            continue
        seen[key] = i
        vss.append(vs)

    _resolve_alerts(ctx, gd, vss)

    if dataplane == "nftables" and plane_check:
        plane_check = _script(ctx, plane_check, "plane_check")
        tracking = _unique(vip_index[vs["address"]][0]["name"] for vs in vss
                           if vs.get("address") in vip_index and vip_index[vs["address"]][0]["name"] is not None)
        if plane_check and tracking:
            entry = {"name": PLANE_SCRIPT, "script": plane_check, "weight": None, "user": None, "init_fail": False}
            entry.update(PLANE_SCRIPT_TIMERS)
            scripts.append(entry)
            for _idx, inst in instances:
                if inst["name"] in tracking and PLANE_SCRIPT not in inst["track_script"]:
                    inst["track_script"].append(PLANE_SCRIPT)

    if (notify_script or any(inst[k] for _idx, inst in instances for k in NOTIFY_KEYS) or scripts
            or any(c["type"] == "MISC_CHECK" for vs in vss for rs in vs["real_servers"] for c in check_list(rs))) \
            and not gd["enable_script_security"]:
        ctx.error("lbha_cluster.global_defs.enable_script_security",
                  "is off while scripts are configured (the notify hook, vrrp_scripts, notify_* or "
                  "MISC_CHECK): keepalived reports a SECURITY VIOLATION and fails its config test")

    if h is not None:
        gd["router_id"] = h.get("router_id") or h.get("name")
    model = {
        "dataplane": dataplane,
        "notify_script": notify_script or None,
        "host": _public_host(h) if h is not None else None,
        "directors": [_public_host(d) for d in dirs],
        "global_defs": gd,
        "vrrp_scripts": scripts,
        "vrrp_sync_groups": groups,
        "vrrp_instances": [inst for _idx, inst in instances],
        "virtual_servers": vss,
        "ipvs": ipvs_settings,
    }
    return model, ctx.errors, ctx.warnings


def _public_host(h):
    out = dict(h)
    out["network"] = str(h["network"]) if h.get("network") is not None else None
    return out


def _prefix(name, messages):
    return ["%s: %s" % (name, m) if name else m for m in messages]


def normalize(cluster, host=None, directors=None, real_server_hosts=None, dataplane="ipvs",
              notify_script=DEFAULT_NOTIFY_SCRIPT, script_user=None, plane_check=DEFAULT_PLANE_CHECK):
    """Validate and normalise the cluster for one director.

    ``host`` is the director being rendered (``{name, address, priority, state, router_id}``),
    ``directors`` all directors (defaults to ``[host]``), ``real_server_hosts``
    ``{group: [{name, address, weight?, port?, check?, inhibit_on_failure?}]}``.

    Returns the normalised model (a JSON-serialisable dict, ``warnings`` included); raises
    :class:`ValidationError` with every problem, each prefixed by the host name.
    """
    name = host.get("name") if isinstance(host, dict) else None
    model, errors, warnings = _normalize(cluster, host, directors, real_server_hosts, dataplane,
                                         notify_script, script_user, plane_check)
    if errors:
        raise ValidationError(_prefix(name, _unique(errors)), _prefix(name, _unique(warnings)))
    model["warnings"] = _prefix(name, _unique(warnings))
    return model


def validate_cluster(cluster, directors, real_server_hosts=None, dataplane="ipvs",
                     notify_script=DEFAULT_NOTIFY_SCRIPT, script_user=None, dataplanes=None,
                     plane_check=DEFAULT_PLANE_CHECK):
    """Validate the cluster for every director at once.

    ``dataplanes`` maps a director's name to the plane it will use (``ipvs``, ``nftables`` or
    ``auto``); a director it does not name uses ``dataplane``. With ``auto`` (the plane is chosen
    on the director by its kernel) the definition is validated for ipvs, and what only the
    nftables plane refuses is a warning: it becomes an error where the kernel has no IPVS.

    Returns ``{"directors": {name: model}, "warnings": [...]}``. Raises
    :class:`ValidationError` with the errors of all directors; a message that is the same for
    several directors is reported once, prefixed by all their names (``lb1, lb2: ...``).
    """
    raw = _list(_Ctx(), directors, "directors") if directors is not None else []
    if not raw:
        _model, errors, warnings = _normalize(cluster, None, [], real_server_hosts, dataplane,
                                              notify_script, script_user)
        errors = _unique(errors) or ["directors: no director is defined (is the directors inventory group empty?)"]
        raise ValidationError(errors, _unique(warnings))
    planes = dataplanes if isinstance(dataplanes, dict) else {}
    by_message = {}
    order = []
    wby = {}
    worder = []
    models = {}

    def collect(messages, name, into, seen_order):
        for m in _unique(messages):
            if m not in into:
                into[m] = []
                seen_order.append(m)
            into[m].append(str(name))

    for i, d in enumerate(raw):
        name = d.get("name") if isinstance(d, dict) and d.get("name") else "directors[%d]" % i
        plane = planes.get(str(name), dataplane)
        if plane not in DATAPLANES + ("auto",):
            collect(["dataplane: %r is not one of %s" % (plane, ", ".join(DATAPLANES + ("auto",)))],
                    name, by_message, order)
            continue
        model, errors, warnings = _normalize(cluster, d, raw, real_server_hosts,
                                             "ipvs" if plane == "auto" else plane, notify_script, script_user,
                                             plane_check)
        if plane == "auto" and not errors:
            _m, nft_errors, _w = _normalize(cluster, d, raw, real_server_hosts, "nftables", notify_script, script_user,
                                            plane_check)
            warnings = list(warnings) + ["%s (refused by the nftables plane, which this director uses when its "
                                         "kernel has no IPVS)" % e for e in _unique(nft_errors) if e not in errors]
        collect(errors, name, by_message, order)
        collect(warnings, name, wby, worder)
        if not errors:
            models[str(name)] = model
    merged_w = ["%s: %s" % (", ".join(_unique(wby[m])), m) for m in worder]
    if order:
        raise ValidationError(["%s: %s" % (", ".join(_unique(by_message[m])), m) for m in order], merged_w)
    for model in models.values():
        model["warnings"] = merged_w
    return {"directors": models, "warnings": merged_w}


def default_seed(model):
    """The nftables hash seed: crc32 of the sorted VRRP instance names (same on all directors)."""
    names = sorted(inst["name"] for inst in model.get("vrrp_instances") or [])
    return zlib.crc32(("lbha:" + ",".join(names)).encode("utf-8")) & 0xFFFFFFFF


def secrets(model_or_cluster):
    """Every secret value (auth_pass) of a normalised model or a raw definition, for masking.

    It runs before validation, so it takes any input without failing."""
    out = []
    instances = model_or_cluster.get("vrrp_instances") if isinstance(model_or_cluster, dict) else None
    for inst in instances if isinstance(instances, (list, tuple)) else []:
        auth = inst.get("authentication") if isinstance(inst, dict) else None
        if isinstance(auth, dict) and auth.get("auth_pass") not in (None, ""):
            out.append(str(auth["auth_pass"]))
    return _unique(out)


# ---------------------------------------------------------------------------------------------
# helpers over the raw definition (used by filters; tolerant of partial input)


def _raw_list(cluster, key):
    value = cluster.get(key) if isinstance(cluster, dict) else None
    return value if isinstance(value, (list, tuple)) else []


def virtual_services(cluster):
    """Sorted unique ``[{address, port, protocol}]`` of the raw ``lbha_cluster``."""
    found = set()
    for vs in _raw_list(cluster, "virtual_servers"):
        if not isinstance(vs, dict) or vs.get("address") is None or vs.get("port") is None:
            continue
        try:
            addr = str(parse_address(vs["address"]))
            port = vs["port"]
            if isinstance(port, bool) or not isinstance(port, (int, str)) or not _INT_RE.fullmatch(str(port)):
                continue
            port = int(port)
        except ValueError:
            continue
        proto = vs.get("protocol") or "TCP"
        if not isinstance(proto, str) or proto.upper() not in PROTOCOLS:
            continue
        found.add((addr, port, proto.upper()))

    def key(t):
        ip = ipaddress.ip_address(t[0])
        return (ip.version, ip, t[1], t[2])
    return [{"address": a, "port": p, "protocol": pr} for a, p, pr in sorted(found, key=key)]


def vips(cluster):
    """Sorted unique VIP addresses (no prefix) of every vrrp_instance of the raw definition."""
    found = set()
    for inst in _raw_list(cluster, "vrrp_instances"):
        if not isinstance(inst, dict):
            continue
        raw_vips = inst.get("virtual_ipaddress")
        for v in raw_vips if isinstance(raw_vips, (list, tuple)) else []:
            addr = v.get("address") if isinstance(v, dict) else v
            try:
                found.add(parse_interface(addr).ip)
            except ValueError:
                continue
    return [str(a) for a in sorted(found, key=lambda a: (a.version, a))]


def multicast_ipv6_instances(cluster):
    """Names of the raw definition's instances that advertise over IPv6 multicast: an IPv6 first
    VIP and neither ``unicast`` nor ``unicast_peers``. Their adverts leave from the sender's
    link-local address (RFC 5798), never from its configured one."""
    out = []
    for inst in _raw_list(cluster, "vrrp_instances"):
        if not isinstance(inst, dict) or inst.get("unicast") or inst.get("unicast_peers"):
            continue
        raw_vips = inst.get("virtual_ipaddress")
        first = raw_vips[0] if isinstance(raw_vips, (list, tuple)) and raw_vips else None
        try:
            ip = parse_interface(first.get("address") if isinstance(first, dict) else first).ip
        except (ValueError, TypeError, AttributeError):
            continue
        if ip.version == 6:
            out.append(str(inst.get("name")))
    return out
