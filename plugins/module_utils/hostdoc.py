# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The host document: one versioned JSON file per director that every reader reads.

``keepalived_config`` renders it from the validated model (``/etc/lbha/cluster.json``, mode
0600: it holds the VRRP password) beside keepalived.conf. It is the director's whole truth:

* ``plane`` - the forwarding plane in use (``ipvs`` or ``nftables``), never guessed;
* ``model`` - the normalised model of this director (what keepalived.conf is rendered from:
  instances, VIPs, virtual and real servers, checks);
* ``drained`` - the administrative state: real servers taken out of rotation (``address`` for
  every port, ``address:port``, ``[v6]:port``). It belongs to the host, not to the inventory:
  a converge keeps it, only the ``drain`` module changes it;
* ``nftables`` - the nftables plane's settings (table, hash seed, buckets, flow map);
* ``paths`` and ``services`` - where the other readers find keepalived.conf, the VRRP state
  files, the checker's state, and which units to reload.

Readers (the nftables checker, ``lbha_info``, the ``drain`` module and through them the
operations playbooks) check the shape and the version with :func:`check` and nothing more:
the rules are the model's, applied once, before the document was written.

Pure Python 3, standard library only.
"""
from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import copy
import ipaddress
import json
import re

from .alerts import settings as mail_settings
from .model import default_seed
from .nft import MAX_BUCKETS

FORMAT = "lbha.cluster/host"
VERSION = 1
PLANES = ("ipvs", "nftables")
DEFAULT_PATH = "/etc/lbha/cluster.json"
DEFAULT_PATHS = {
    "document": DEFAULT_PATH,
    "keepalived_conf": "/etc/keepalived/keepalived.conf",
    "vrrp_state_dir": "/run/lbha/vrrp",
    "checker_state": "/run/lbha/checker.json",
}
DEFAULT_SERVICES = {"keepalived": "keepalived", "checker": "lbha-checker"}
NFTABLES_DEFAULTS = {"table": "lbha", "buckets": 251, "flow_timeout": 300, "flow_size": 65536}


class HostDocumentError(ValueError):
    """The document cannot be used; the message names the file and the field."""


# --------------------------------------------------------------------------------------------
# real-server references (the drain list)


def server_ref(address, port=None):
    """The canonical text of a real server: ``1.1.1.3``, ``1.1.1.3:80``, ``[2001:db8::3]:80``."""
    ip = ipaddress.ip_address(str(address))
    if port is None:
        return str(ip)
    return ("[%s]:%d" if ip.version == 6 else "%s:%d") % (ip, int(port))


def parse_server_ref(text):
    """``(address, port or None)`` of ``addr``, ``addr:port`` or ``[v6]:port``; ValueError if not one."""
    if not isinstance(text, str) or not text or text != text.strip():
        raise ValueError("%r is not an address, address:port or [address]:port" % (text,))
    address, port = text, None
    if text.startswith("["):
        address, sep, rest = text[1:].partition("]")
        if not sep or (rest and not rest.startswith(":")):
            raise ValueError("%r is not [address]:port" % text)
        port = rest[1:] or None
    elif text.count(":") == 1:
        address, port = text.split(":")
    ip = ipaddress.ip_address(address)
    if "%" in address:
        raise ValueError("%r: a scope id is not a real-server address" % text)
    if port is not None:
        if not port.isdigit() or not 1 <= int(port) <= 65535:
            raise ValueError("%r: the port must be 1-65535" % text)
        port = int(port)
    return str(ip), port


def is_drained(drained, address, port):
    """Whether the real server ``address:port`` is in the drain list ``drained``."""
    return server_ref(address) in drained or server_ref(address, port) in drained


# --------------------------------------------------------------------------------------------
# building and checking


def build(model, plane, paths=None, services=None, nftables=None, drained=()):
    """The host document of one director.

    ``model`` is :func:`model.normalize`'s output for this director, ``plane`` the plane it
    uses, ``drained`` the current administrative state (kept across converges). Entries of
    ``drained`` that name no real server of the model any more are dropped; they are returned
    as the second value so the caller can say so.
    """
    if plane not in PLANES:
        raise HostDocumentError("plane: %r is not one of %s" % (plane, ", ".join(PLANES)))
    doc = {
        "format": FORMAT,
        "version": VERSION,
        "director": (model.get("host") or {}).get("name"),
        "plane": plane,
        "paths": dict(DEFAULT_PATHS, **(paths or {})),
        "services": dict(DEFAULT_SERVICES, **(services or {})),
        "nftables": None,
        "drained": [],
        "model": copy.deepcopy(model),
    }
    doc["model"].pop("warnings", None)
    if plane == "nftables":
        doc["nftables"] = nftables_settings(model, **(nftables or {}))
    known = set()
    for vs, rs in real_servers(doc):
        known.add(server_ref(rs["address"]))
        known.add(server_ref(rs["address"], rs["port"]))
    kept = sorted(set(d for d in drained if d in known))
    doc["drained"] = kept
    return doc, sorted(set(drained) - set(kept))


_KINDS = {dict: "a mapping", list: "a list", str: "a string"}


_TABLE_RE = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,31}")
NFTABLES_RANGES = {"buckets": (1, MAX_BUCKETS), "flow_timeout": (1, 86400 * 7), "flow_size": (1024, 1 << 24),
                   "seed": (0, 0xFFFFFFFF)}


def nftables_settings(model, table=None, buckets=None, flow_timeout=None, flow_size=None, seed=None):
    """The nftables plane's settings, defaults filled in (the seed is the same on every director)."""
    out = dict(NFTABLES_DEFAULTS)
    given = {"table": table, "buckets": buckets, "flow_timeout": flow_timeout, "flow_size": flow_size, "seed": seed}
    out.update((k, v) for k, v in given.items() if v is not None)
    if out.get("seed") is None:
        out["seed"] = default_seed(model)
    if not isinstance(out["table"], str) or not _TABLE_RE.fullmatch(out["table"]):
        raise HostDocumentError("nftables.table: %r is not a table name (a letter, then letters, digits, _; "
                                "at most 32)" % (out["table"],))
    for key, (lo, hi) in sorted(NFTABLES_RANGES.items()):
        value = out[key]
        if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
            raise HostDocumentError("nftables.%s: %r is not an integer %d-%d" % (key, value, lo, hi))
    return out


def _need(obj, key, kind, where):
    value = obj.get(key) if isinstance(obj, dict) else None
    if not isinstance(value, kind):
        raise HostDocumentError("%s: %s: expected %s" % (where, key, _KINDS[kind]))
    return value


def check(doc, where=DEFAULT_PATH):
    """The document if its shape and version are this code's; HostDocumentError otherwise.

    Only the shape: every rule about the content was applied by the model before it was written.
    """
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise HostDocumentError("%s: not an lbha.cluster host document (format %r)" % (
            where, doc.get("format") if isinstance(doc, dict) else None))
    if doc.get("version") != VERSION:
        raise HostDocumentError("%s: version %r; this code reads version %d (converge the director with "
                                "this release of lbha.cluster)" % (where, doc.get("version"), VERSION))
    plane = doc.get("plane")
    if plane not in PLANES:
        raise HostDocumentError("%s: plane: %r is not one of %s" % (where, plane, ", ".join(PLANES)))
    for key in ("paths", "services", "model"):
        _need(doc, key, dict, where)
    for key in DEFAULT_PATHS:
        _need(doc["paths"], key, str, where + ": paths")
    for key in DEFAULT_SERVICES:
        _need(doc["services"], key, str, where + ": services")
    drained = _need(doc, "drained", list, where)
    for i, entry in enumerate(drained):
        try:
            parse_server_ref(entry)
        except ValueError as exc:
            raise HostDocumentError("%s: drained[%d]: %s" % (where, i, exc))
    model = doc["model"]
    for key in ("vrrp_instances", "virtual_servers"):
        _need(model, key, list, where + ": model")
    for i, vs in enumerate(model["virtual_servers"]):
        vpath = "%s: model.virtual_servers[%d]" % (where, i)
        if not isinstance(vs, dict):
            raise HostDocumentError("%s: expected a mapping" % vpath)
        _need(vs, "real_servers", list, vpath)
        for j, rs in enumerate(vs["real_servers"]):
            if not isinstance(rs, dict) or not isinstance(rs.get("address"), str):
                raise HostDocumentError("%s.real_servers[%d]: expected a mapping with an address" % (vpath, j))
    if plane == "nftables":
        settings = _need(doc, "nftables", dict, where)
        for key in ("table", "seed", "buckets", "flow_timeout", "flow_size"):
            if key not in settings:
                raise HostDocumentError("%s: nftables.%s: required for the nftables plane" % (where, key))
    return doc


def loads(text, where=DEFAULT_PATH):
    try:
        doc = json.loads(text)
    except ValueError as exc:
        raise HostDocumentError("%s: not valid JSON: %s" % (where, exc))
    return check(doc, where)


def load(path):
    """Read and :func:`check` the document at ``path``."""
    try:
        with open(path) as fh:
            text = fh.read()
    except OSError as exc:
        raise HostDocumentError("%s: cannot read: %s" % (path, exc.strerror or exc))
    return loads(text, path)


def dumps(doc):
    """The document's file content (stable: sorted keys, so an unchanged document is unchanged text)."""
    return json.dumps(doc, indent=1, sort_keys=True) + "\n"


# --------------------------------------------------------------------------------------------
# views for the readers


def real_servers(doc):
    """``[(virtual server, real server)]`` of the document's model, in order."""
    return [(vs, rs) for vs in doc["model"]["virtual_servers"] for rs in vs["real_servers"]]


def render_model(doc):
    """The model keepalived.conf is rendered from: drained real servers at weight 0.

    A weight of 0 in keepalived.conf keeps a real server drained through reloads, restarts and
    health changes (keepalived restores the configured weight when a check recovers).
    """
    model = copy.deepcopy(doc["model"])
    drained = set(doc["drained"])
    for vs in model["virtual_servers"]:
        for rs in vs["real_servers"]:
            if is_drained(drained, rs["address"], rs["port"]):
                rs["weight"] = 0
    return model


def nft_document(doc):
    """What the nftables renderer (``nft.py``) and the checker take: settings, virtual servers and
    the notification mail settings (``mail``, None when the model sends none)."""
    if doc["plane"] != "nftables":
        raise HostDocumentError("%s: plane is %s, not nftables" % (doc["paths"]["document"], doc["plane"]))
    out = dict(doc["nftables"])
    out["plane"] = "nftables"
    out["virtual_servers"] = copy.deepcopy(doc["model"]["virtual_servers"])
    out["mail"] = mail_settings(doc["model"].get("global_defs") or {})
    return out


def instances(doc):
    """``[{name, interface, virtual_router_id, vips, state, priority, nopreempt}]``: the VRRP instances."""
    out = []
    for inst in doc["model"]["vrrp_instances"]:
        out.append({"name": inst.get("name"), "interface": inst.get("interface"),
                    "virtual_router_id": inst.get("virtual_router_id"),
                    "vips": [v["address"] for v in inst.get("virtual_ipaddress") or []],
                    "state": inst.get("state"), "priority": inst.get("priority"),
                    "nopreempt": bool(inst.get("nopreempt"))})
    return out


def vips(doc):
    """Every VIP of the document, in instance order."""
    return [v for inst in instances(doc) for v in inst["vips"]]


def set_drained(doc, servers, drained=True):
    """A copy of ``doc`` with ``servers`` (references) drained or undrained, and what changed.

    Every reference must name a real server of the document (``address`` drains it in every
    virtual server, ``address:port`` in those of that port); HostDocumentError names the ones
    that do not. Undraining an address also removes its ``address:port`` entries.
    """
    refs = []
    unknown = []
    present = real_servers(doc)
    for text in servers:
        try:
            address, port = parse_server_ref(text)
        except ValueError as exc:
            raise HostDocumentError(str(exc))
        if not any(rs["address"] == address and (port is None or rs["port"] == port) for _vs, rs in present):
            unknown.append(text)
        refs.append(server_ref(address, port))
    if unknown:
        raise HostDocumentError("not a real server of %s (%s): %s" % (
            doc.get("director") or "this director", doc["paths"]["document"], ", ".join(unknown)))
    current = set(doc["drained"])
    if drained:
        new = current | set(refs)
    else:
        gone = set(refs)
        for ref in refs:
            address, port = parse_server_ref(ref)
            if port is None:
                gone |= set(r for r in current if parse_server_ref(r)[0] == address)
        new = current - gone
    out = dict(doc)
    out["drained"] = sorted(new)
    return out, sorted(new ^ current)
