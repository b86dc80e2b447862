# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a director is doing right now: VRRP state, VIP ownership, forwarding table and health.

Pure functions only: the ``lbha_info`` module runs the commands and reads the files, and
hands their text to the parsers here; :func:`build_report` merges everything into the
module's result.

Sources:

* the host document (``/etc/lbha/cluster.json``, ``hostdoc.py``): the plane, the instances and
  their VIPs, the drained real servers, and where everything else is - never guessed;
* ``<vrrp_state_dir>/<instance>.state``: one line ``MASTER|BACKUP|FAULT|STOP``, written by the
  keepalived ``notify`` hook (``/usr/lib/lbha-cluster/notify``) on every transition;
* ``ip -j addr show``: which VIPs this host holds, on which interface and label;
* the IPVS table (``ipvs.py`` parses ``ipvsadm``), or on the nftables plane the checker's
  state file and the counters of ``nft -j list table netdev <table>``.
"""
from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import ipaddress
import json
import re

from .checker import STALE_SECONDS
from .nft import vs_name

VRRP_STATES = ("MASTER", "BACKUP", "FAULT", "STOP")
# The checker rewrites its state file at least every checker.HEARTBEAT_SECONDS: older than
# checker.STALE_SECONDS, it is no longer looking after the table.
CHECKER_STALE_SECONDS = float(STALE_SECONDS)
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
                "weight": rs.get("weight"), "healthy": bool(rs.get("healthy")), "drained": bool(rs.get("drained")),
                "since": rs.get("since"), "last_error": rs.get("last_error"),
                "buckets": rs.get("buckets"),
                "active_conn": None, "inactive_conn": None, "conns": None,
                "in_packets": None, "out_packets": None, "in_bytes": None, "out_bytes": None})
        out.append(item)
    return out


# --------------------------------------------------------------------------------------------
# the report


def vrrp_instances(state_files, instances, vip_status):
    """The VRRP state of each instance of the host document.

    ``state_files``: ``{instance: state or None}`` from the state directory;
    ``instances``: ``hostdoc.instances(doc)`` (name, VIPs, VRID, configured priority);
    ``vip_status``: the output of :func:`vip_ownership`.

    An instance with a readable state file reports it (``state_source: file``). Otherwise its
    state is inferred from its VIPs (``state_source: vip``): all held -> MASTER, none ->
    BACKUP, some -> FAULT (a split that keepalived would not leave).
    """
    held = {v["address"]: v["held"] for v in vip_status}
    out = []
    for inst in instances:
        name, vips = inst["name"], list(inst["vips"])
        entry = {"name": name, "vips": vips, "virtual_router_id": inst.get("virtual_router_id"),
                 "priority": inst.get("priority"), "nopreempt": bool(inst.get("nopreempt"))}
        state = state_files.get(name)
        if state:
            entry.update(state=state, state_source="file")
        else:
            known = [held[v] for v in vips if v in held]
            if known and all(known):
                state = "MASTER"
            elif known and not any(known):
                state = "BACKUP"
            elif known:
                state = "FAULT"
            entry.update(state=state, state_source="vip" if known else "none")
        out.append(entry)
    return out


def mark_drained(virtual_servers, is_drained):
    """Set each real server's ``drained`` from the document's administrative state (ipvs plane)."""
    for vs in virtual_servers:
        for rs in vs.get("real_servers") or []:
            rs["drained"] = bool(rs.get("address") and rs.get("port") is not None
                                 and is_drained(rs["address"], rs["port"]))
    return virtual_servers


def checker_liveness(checker, now, pid_alive, table_loaded):
    """Whether the nftables checker looks after the table: ``{pid, updated, age, alive, table_loaded}``.

    ``alive`` needs a state file written less than CHECKER_STALE_SECONDS ago by a process that
    still exists (``pid_alive(pid)``).
    """
    pid = checker.get("pid") if checker else None
    updated = checker.get("updated") if checker else None
    age = round(now - updated, 1) if isinstance(updated, (int, float)) else None
    alive = bool(isinstance(pid, int) and pid_alive(pid) and age is not None and age < CHECKER_STALE_SECONDS)
    return {"pid": pid, "updated": updated, "age": age, "alive": alive, "table_loaded": bool(table_loaded)}


def build_report(document, vrrp, vips, virtual_servers, keepalived, checker=None):
    """The info module's result (everything but ``changed``).

    ``document``: the host document, or None on a host that has none (not a director of this
    collection, or not converged yet): then ``deployed`` is false and the plane ``none``.
    """
    masters = [i["name"] for i in vrrp if i["state"] == "MASTER"]
    return {
        "deployed": document is not None,
        "director": document.get("director") if document else None,
        "dataplane": document["plane"] if document else "none",
        "drained": list(document["drained"]) if document else [],
        "services": dict(document["services"]) if document else None,
        "vrrp_instances": vrrp,
        "vips": vips,
        "virtual_servers": virtual_servers,
        "keepalived": keepalived,
        "checker": checker,
        "master": bool(masters),
        "master_instances": masters,
        "holds_vips": [v["address"] for v in vips if v["held"]],
    }
