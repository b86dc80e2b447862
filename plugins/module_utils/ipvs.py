# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The live IPVS table against a desired one: normalise, diff, and the ``ipvsadm -R`` input.

Pure functions only: nothing here runs ``ipvsadm``. The ``ipvs`` module reads the kernel table
(``ipvsadm.py`` parses ``ipvsadm -S -n``), builds the desired table from its options or from
normalised virtual servers of the cluster model (:func:`desired_table`), computes the change set
(:func:`diff_tables`) and feeds :func:`restore_text` to ``ipvsadm -R``. Tables and services are
those of ``ipvsadm.py``.
"""
from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

from .ipvsadm import (DEFAULT_SCHEDULER, FORWARD_ALIASES, FORWARD_SWITCH, PROTOCOLS, SCHEDULERS, IpvsError,
                      _family, _fmt_addrport, _norm_address, _norm_granularity, _rs_sort_key, _sort_key,
                      _svc_switch, real_server_key, service_key, split_addrport)

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


# --------------------------------------------------------------------------------------------
# desired table

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
            # the cluster model's rule: DR and TUN cannot change the destination port (ipvsadm
            # would silently use the service's port instead)
            raise IpvsError("%s.port: %d differs from the service port %s; %s real servers take the "
                            "service port" % (rpath, port, svc["port"], fwd))
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
