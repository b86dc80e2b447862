# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a director is doing right now: VRRP state, VIP ownership, forwarding table and health.

Pure functions only: the ``lbha_info`` module runs the commands and reads the files, and
hands their text to the parsers here; :func:`build_report` merges everything into the
module's result.

Sources:

* ``/run/lbha/vrrp/<instance>.state``: one line ``MASTER|BACKUP|FAULT|STOP``, written by the
  keepalived ``notify`` hook (``/usr/lib/lbha-cluster/notify``) on every transition;
* ``ip -j addr show``: which VIPs this host holds, on which interface and label;
* ``/etc/keepalived/keepalived.conf``: the instances and their ``virtual_ipaddress`` blocks,
  when the VIPs are not given explicitly;
* the IPVS table (``ipvs.py`` parses ``ipvsadm``), or on the nftables plane the checker's
  state file ``/run/lbha/checker.json`` and the counters of ``nft -j list table netdev lbha``.
"""
from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import ipaddress
import json
import re

from .nft import vs_name

VRRP_STATES = ("MASTER", "BACKUP", "FAULT", "STOP")
DEFAULT_STATE_DIR = "/run/lbha/vrrp"
DEFAULT_CHECKER_STATE = "/run/lbha/checker.json"
DEFAULT_KEEPALIVED_CONF = "/etc/keepalived/keepalived.conf"
DEFAULT_NFT_TABLE = "lbha"
# notify passes keepalived's instance name; the file name keeps it readable but safe.
_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9_.@-]")


def state_file_name(instance):
    """File name of an instance's state file (same rule as the notify hook)."""
    return _UNSAFE_NAME.sub("_", instance) + ".state"


def parse_state_file(text):
    """Contents of a state file -> ``MASTER``/``BACKUP``/``FAULT``/``STOP``, or None if unreadable."""
    first = (text or "").strip().split()
    if not first:
        return None
    state = first[0].upper()
    return state if state in VRRP_STATES else None


# --------------------------------------------------------------------------------------------
# ip -j addr


def parse_ip_addr(text):
    """``ip -j addr show`` -> list of ``{address, prefixlen, family, interface, label}``."""
    try:
        links = json.loads(text or "[]")
    except ValueError as exc:
        raise ValueError("ip -j addr: not JSON: %s" % exc)
    out = []
    for link in links if isinstance(links, list) else []:
        if not isinstance(link, dict):
            continue
        ifname = link.get("ifname")
        for info in link.get("addr_info") or []:
            if not isinstance(info, dict) or "local" not in info:
                continue
            out.append({"address": str(info["local"]), "prefixlen": info.get("prefixlen"),
                        "family": info.get("family"), "interface": ifname,
                        "label": info.get("label") or ifname})
    return out


def _addr_only(vip):
    """``1.1.1.111/24`` or ``1.1.1.111`` -> normalised ``1.1.1.111``."""
    text = str(vip).strip().split()[0].split("/")[0]
    return str(ipaddress.ip_address(text))


def vip_ownership(vips, addresses):
    """For each VIP: ``{address, held, interface, label, prefixlen}`` from :func:`parse_ip_addr`."""
    out = []
    seen = set()
    for vip in vips:
        addr = _addr_only(vip)
        if addr in seen:
            continue
        seen.add(addr)
        hits = [a for a in addresses if _same_address(a["address"], addr)]
        if hits:
            # A VIP on a real interface wins over the copy on lo of a node that is both.
            hit = sorted(hits, key=lambda a: a["interface"] == "lo")[0]
            out.append({"address": addr, "held": True, "interface": hit["interface"],
                        "label": hit["label"], "prefixlen": hit["prefixlen"]})
        else:
            out.append({"address": addr, "held": False, "interface": None, "label": None,
                        "prefixlen": None})
    return out


def _same_address(a, b):
    try:
        return ipaddress.ip_address(a) == ipaddress.ip_address(b)
    except ValueError:
        return False


# --------------------------------------------------------------------------------------------
# keepalived.conf (tolerant: only vrrp_instance names and virtual_ipaddress blocks)

_TOKEN_RE = re.compile(r'"[^"]*"|\{|\}|[^\s{}"]+')


def _tokens(text):
    lines = []
    for raw in (text or "").splitlines():
        line = raw.split("#", 1)[0].split("!", 1)[0]
        toks = _TOKEN_RE.findall(line)
        if toks:
            lines.append(toks)
    return lines


def parse_keepalived_vips(text):
    """``{instance: [vip, ...]}`` from the ``vrrp_instance`` blocks of keepalived.conf.

    ``virtual_ipaddress`` and ``virtual_ipaddress_excluded`` both count; per entry only the
    address is kept (``1.1.1.111/24 dev eth0 label eth0:1`` -> ``1.1.1.111``). Unparseable
    entries are skipped, never fatal.
    """
    result = {}
    stack = []          # block names, "vrrp_instance" for an instance
    instance = None
    for toks in _tokens(text):
        entry_start = True
        for i, tok in enumerate(toks):
            if tok == "{":
                name = toks[i - 1] if i > 0 else ""
                if not stack and i >= 2 and toks[i - 2] == "vrrp_instance":
                    instance = toks[i - 1].strip('"')
                    result.setdefault(instance, [])
                    name = "vrrp_instance"
                stack.append(name)
                entry_start = True
                continue
            if tok == "}":
                if stack:
                    stack.pop()
                if not stack:
                    instance = None
                entry_start = True
                continue
            in_vips = (instance is not None and len(stack) == 2
                       and stack[1] in ("virtual_ipaddress", "virtual_ipaddress_excluded"))
            if in_vips and entry_start:
                try:
                    addr = _addr_only(tok)
                except ValueError:
                    addr = None
                if addr and addr not in result[instance]:
                    result[instance].append(addr)
            entry_start = False
    return result


# --------------------------------------------------------------------------------------------
# checker state and nft counters


def parse_checker_state(text):
    """``/run/lbha/checker.json`` -> dict (``virtual_servers`` always a list), None if unusable."""
    try:
        doc = json.loads(text)
    except (TypeError, ValueError):
        return None
    if not isinstance(doc, dict):
        return None
    vss = doc.get("virtual_servers")
    doc["virtual_servers"] = [v for v in vss if isinstance(v, dict)] if isinstance(vss, list) else []
    return doc


def parse_nft_counters(text):
    """``nft -j list table netdev <t>`` -> ``{"chains": {chain: {packets, bytes, drop_packets,
    drop_bytes}}, "gotos": {chain: {packets, bytes}}}``.

    ``chains`` sums every counter of a chain (``drop_*`` the counters of rules that drop);
    ``gotos`` sums the counters of rules that jump or go to a chain (the ingress rules that
    hand a virtual server's packets to its chain). Anything unexpected is skipped.
    """
    chains = {}
    gotos = {}
    try:
        doc = json.loads(text or "{}")
    except ValueError:
        return {"chains": chains, "gotos": gotos}
    items = doc.get("nftables") if isinstance(doc, dict) else None
    for item in items if isinstance(items, list) else []:
        if not isinstance(item, dict):
            continue
        if isinstance(item.get("chain"), dict) and item["chain"].get("name"):
            chains.setdefault(item["chain"]["name"], {"packets": 0, "bytes": 0, "drop_packets": 0, "drop_bytes": 0})
            continue
        rule = item.get("rule")
        if not isinstance(rule, dict) or not rule.get("chain"):
            continue
        exprs = rule.get("expr") if isinstance(rule.get("expr"), list) else []
        packets = byts = 0
        has_counter = False
        target = None
        drop = False
        for e in exprs:
            if not isinstance(e, dict):
                continue
            counter = e.get("counter")
            if isinstance(counter, dict):
                has_counter = True
                packets += int(counter.get("packets") or 0)
                byts += int(counter.get("bytes") or 0)
            for verb in ("goto", "jump"):
                if isinstance(e.get(verb), dict) and e[verb].get("target"):
                    target = e[verb]["target"]
            if "drop" in e:
                drop = True
        if not has_counter:
            continue
        c = chains.setdefault(rule["chain"], {"packets": 0, "bytes": 0, "drop_packets": 0, "drop_bytes": 0})
        c["packets"] += packets
        c["bytes"] += byts
        if drop:
            c["drop_packets"] += packets
            c["drop_bytes"] += byts
        if target:
            g = gotos.setdefault(target, {"packets": 0, "bytes": 0})
            g["packets"] += packets
            g["bytes"] += byts
    return {"chains": chains, "gotos": gotos}


def checker_virtual_servers(checker, counters=None):
    """The checker's virtual servers in the info module's shape, with nft counters per VS.

    Per real server there are no kernel counters on this plane (``conns``, packets, bytes and
    connection counts are None); per virtual server ``in_packets``/``in_bytes`` count what the
    ingress rule handed to it and ``dropped_packets`` what it dropped for want of a server.
    """
    counters = counters or {"chains": {}, "gotos": {}}
    out = []
    for vs in (checker or {}).get("virtual_servers", []):
        try:
            chain = "vs_" + vs_name({"protocol": str(vs["protocol"]), "address": str(vs["address"]),
                                     "port": int(vs["port"])})
        except (KeyError, TypeError, ValueError):
            chain = None
        goto = counters["gotos"].get(chain) if chain else None
        chain_c = counters["chains"].get(chain) if chain else None
        item = {"address": vs.get("address"), "port": vs.get("port"), "protocol": vs.get("protocol"),
                "fwmark": None, "scheduler": vs.get("lb_algo") or vs.get("scheduler"),
                "quorum_up": vs.get("quorum_up"),
                "conns": None, "in_packets": goto["packets"] if goto else None,
                "out_packets": None, "in_bytes": goto["bytes"] if goto else None, "out_bytes": None,
                "dropped_packets": chain_c["drop_packets"] if chain_c else None,
                "real_servers": []}
        if isinstance(vs.get("sorry_server"), dict):
            item["sorry_server"] = vs["sorry_server"]
        for rs in vs.get("real_servers") or []:
            if not isinstance(rs, dict):
                continue
            item["real_servers"].append({
                "address": rs.get("address"), "port": rs.get("port"), "forward": "DR",
                "weight": rs.get("weight"), "healthy": bool(rs.get("healthy")),
                "since": rs.get("since"), "last_error": rs.get("last_error"),
                "buckets": rs.get("buckets"),
                "active_conn": None, "inactive_conn": None, "conns": None,
                "in_packets": None, "out_packets": None, "in_bytes": None, "out_bytes": None})
        out.append(item)
    return out


# --------------------------------------------------------------------------------------------
# the report


def vrrp_instances(state_files, instance_vips, vip_status):
    """Merge state files with VIP ownership.

    ``state_files``: ``{instance: state or None}`` from the state directory;
    ``instance_vips``: ``{instance: [vip]}`` from keepalived.conf (may be empty);
    ``vip_status``: the output of :func:`vip_ownership`.

    An instance with a readable state file reports it (``state_source: file``). Otherwise its
    state is inferred from its VIPs (``state_source: vip``): all held -> MASTER, none ->
    BACKUP, some -> FAULT (a split that keepalived would not leave). Without state file and
    known VIPs the state is None (``state_source: none``).
    """
    held = {v["address"]: v["held"] for v in vip_status}
    names = sorted(set(state_files) | set(instance_vips))
    out = []
    for name in names:
        state = state_files.get(name)
        vips = instance_vips.get(name) or []
        if state:
            out.append({"name": name, "state": state, "state_source": "file", "vips": vips})
            continue
        known = [held[v] for v in vips if v in held]
        if known:
            if all(known):
                state = "MASTER"
            elif not any(known):
                state = "BACKUP"
            else:
                state = "FAULT"
            out.append({"name": name, "state": state, "state_source": "vip", "vips": vips})
        else:
            out.append({"name": name, "state": None, "state_source": "none", "vips": vips})
    return out


def choose_dataplane(ipvs_services, proc_ip_vs, nft_table_exists, checker_state_exists):
    """``ipvs`` when the kernel has IPVS and it lists services; else ``nftables`` when the
    lbha netdev table or the checker state exists; else ``none``."""
    if proc_ip_vs and ipvs_services:
        return "ipvs"
    if nft_table_exists or checker_state_exists:
        return "nftables"
    return "none"


def build_report(dataplane, vrrp, vips, virtual_servers, keepalived):
    """The info module's result (everything but ``changed``)."""
    masters = [i["name"] for i in vrrp if i["state"] == "MASTER"]
    return {
        "dataplane": dataplane,
        "vrrp_instances": vrrp,
        "vips": vips,
        "virtual_servers": virtual_servers,
        "keepalived": keepalived,
        "master": bool(masters),
        "master_instances": masters,
        "holds_vips": [v["address"] for v in vips if v["held"]],
    }
