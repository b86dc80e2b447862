# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Day-2 decisions over what the directors report (``lbha_info`` results), as pure functions.

The operations playbooks (status, failover, drain, maintenance, upgrade_directors) read every
director with ``lbha_info`` and hand the results to these functions through the filters of
``plugins/filter/operations.py``: who is MASTER of each instance, split brain, which VIPs no
director holds, whether a peer can take over, whether a batch of real servers can be drained.
Jinja in the playbooks only wires the answers into tasks.

A *report* is an ``lbha_info`` result; ``reports`` maps a director's inventory name to its
report, or to None when it could not be read (unreachable, failed).
"""
from __future__ import (absolute_import, division, print_function)
__metaclass__ = type


def _readable(reports):
    return dict((host, rep) for host, rep in reports.items() if isinstance(rep, dict) and "vrrp_instances" in rep)


def _vs_name(vs):
    return "%s/%s:%s" % (vs.get("protocol") or "TCP", vs.get("address") or "fwmark", vs.get("port"))


def _serving(rs):
    """A real server that takes new connections: healthy, weight above 0, not drained."""
    return bool(rs.get("healthy")) and (rs.get("weight") or 0) > 0 and not rs.get("drained")


def cluster_status(reports):
    """The cluster as one picture.

    Returns ``{"masters": {instance: [hosts]}, "holders": {vip: [hosts]}, "unread": [hosts],
    "problems": [text], "table": [lines]}``. A problem is a split brain (an instance MASTER on
    two directors, or a VIP held by two), a VIP no reachable director holds, a director whose
    state could not be read while others could, and on the nftables plane a director whose
    checker is dead or whose table is not loaded (it would drop the VIPs' traffic).
    """
    read = _readable(reports)
    unread = sorted(h for h in reports if h not in read)
    masters, holders, vrids = {}, {}, {}
    for host in sorted(read):
        rep = read[host]
        for inst in rep.get("vrrp_instances") or []:
            masters.setdefault(inst["name"], [])
            vrids.setdefault(inst["name"], inst.get("virtual_router_id"))
            if inst.get("state") == "MASTER":
                masters[inst["name"]].append(host)
        for vip in rep.get("vips") or []:
            holders.setdefault(vip["address"], [])
            if vip.get("held"):
                holders[vip["address"]].append(host)
    problems = []
    if not read:
        problems.append("the state of no director could be read (%s); see the errors above" % ", ".join(unread))
    for name in sorted(masters):
        if len(masters[name]) > 1:
            problems.append("SPLIT BRAIN: VRRP instance %s (VRID %s) is MASTER on %s"
                            % (name, vrids.get(name) or "?", " and ".join(masters[name])))
    for vip in sorted(holders):
        if len(holders[vip]) > 1:
            problems.append("SPLIT BRAIN: VIP %s is held by %s" % (vip, " and ".join(holders[vip])))
        elif not holders[vip]:
            problems.append("VIP %s is held by no director" % vip if not unread else
                            "VIP %s is held by no reachable director (unreachable: %s)" % (vip, ", ".join(unread)))
    for host in sorted(read):
        checker = read[host].get("checker")
        if read[host].get("dataplane") == "nftables" and checker is not None:
            if not checker.get("alive"):
                problems.append("%s: the nftables checker is not running (state file %s s old, pid %s): health "
                                "checks and the table are not looked after" % (host, checker.get("age"), checker.get("pid")))
            if not checker.get("table_loaded"):
                problems.append("%s: the nftables table is not loaded: this director drops the VIPs' traffic" % host)
    return {"masters": masters, "holders": holders, "unread": unread, "problems": problems,
            "table": status_table(reports)}


def status_table(reports):
    """The status playbook's table: one line per director and instance, then per real server."""
    read = _readable(reports)
    row = "%-10s %-10s %-9s %-10s %-8s %s"
    lines = [row % ("DIRECTOR", "KEEPALIVED", "PLANE", "INSTANCE", "STATE", "VIPS (* = held here)")]
    for host in sorted(reports):
        rep = read.get(host)
        if rep is None:
            lines.append("%-10s %s" % (host, "UNREACHABLE or failed: state unknown"))
            continue
        ka = "running" if (rep.get("keepalived") or {}).get("running") else "STOPPED"
        held = set(rep.get("holds_vips") or [])
        for inst in rep.get("vrrp_instances") or []:
            vips = " ".join(v + ("*" if v in held else "") for v in inst.get("vips") or [])
            lines.append(row % (host, ka, rep.get("dataplane"), inst["name"], inst.get("state") or "?", vips))
        if not rep.get("vrrp_instances"):
            lines.append(row % (host, ka, rep.get("dataplane"), "-", "-", " ".join(sorted(held))))
    servers_row = "%-10s %-22s %-18s %-8s %6s %6s %6s"
    lines.append("")
    lines.append(servers_row % ("DIRECTOR", "VIRTUAL SERVER", "REAL SERVER", "HEALTH", "WEIGHT", "ACTIVE", "INACT"))
    for host in sorted(read):
        for vs in read[host].get("virtual_servers") or []:
            servers = vs.get("real_servers") or []
            if not servers:
                lines.append("%-10s %-22s %s" % (host, _vs_name(vs), "(no real server)"))
            for rs in servers:
                health = "DRAINED" if rs.get("drained") else "healthy" if rs.get("healthy") else "DOWN"
                lines.append(servers_row % (
                    host, _vs_name(vs), "%s:%s" % (rs.get("address"), rs.get("port")), health,
                    "-" if rs.get("weight") is None else rs["weight"],
                    "-" if rs.get("active_conn") is None else rs["active_conn"],
                    "-" if rs.get("inactive_conn") is None else rs["inactive_conn"]))
    return lines


def _priority(report):
    prios = [i.get("priority") for i in report.get("vrrp_instances") or [] if i.get("priority") is not None]
    return max(prios) if prios else 0


def switchover_plan(reports, peer=None, source=None, restore=False):
    """Who hands over to whom: ``{"master", "peer", "problems"}``.

    ``source`` is the director to empty: it must be MASTER of at least one instance. Without it,
    exactly one director must be MASTER, and it is the source (in an active-active cluster,
    where each director is MASTER of other instances, the source must be named). The peer is
    ``peer`` when given, else the reachable director with the highest configured priority among
    the others. ``problems`` is empty when the switchover may start (the peer's own readiness is
    :func:`peer_problems`). With ``restore`` (give the VIPs back afterwards) a ``nopreempt``
    instance is refused when the peer is MASTER of instances of its own: handing back restarts
    the peer's keepalived, which would move those too.
    """
    read = _readable(reports)
    masters = sorted(h for h, rep in read.items() if rep.get("master"))
    problems = []
    held = dict((h, set(i["name"] for i in read[h].get("vrrp_instances") or [] if i.get("state") == "MASTER"))
                for h in masters)
    shared = set.intersection(*held.values()) if len(masters) > 1 else set()
    master = None
    if source is not None:
        if source not in read:
            problems.append("%s is not a reachable director (%s)" % (source, ", ".join(sorted(read)) or "none"))
        elif source not in masters:
            problems.append("%s is MASTER of no instance: nothing to hand over" % source)
        elif shared:
            problems.append("MASTER of %s on %s (split brain)" % (", ".join(sorted(shared)), ", ".join(masters)))
        else:
            master = source
    elif len(masters) > 1 and not shared:
        problems.append("%s are each MASTER of other instances (active-active), so there is no one MASTER "
                        "to hand over from: lbha.cluster.failover takes the director to empty as "
                        "lbha_failover_from" % " and ".join(masters))
    elif len(masters) != 1:
        problems.append("MASTER on %s (exactly one expected)" % (", ".join(masters) or "no director"))
    else:
        master = masters[0]
    me = master or source
    others = sorted((h for h in read if h != me), key=lambda h: (-_priority(read[h]), h))
    if peer is None:
        peer = others[0] if others else None
    if peer is None:
        problems.append("no reachable director other than the MASTER to take over")
    elif peer == me:
        problems.append("%s is the MASTER itself" % peer)
    elif peer not in read:
        problems.append("%s is not a reachable director (%s)" % (peer, ", ".join(sorted(read)) or "none"))
    elif restore and master and held.get(peer):
        nopreempt = sorted(i["name"] for i in read[master].get("vrrp_instances") or [] if i.get("nopreempt"))
        if nopreempt:
            problems.append("giving the VIPs back to %s restarts keepalived on %s, which is MASTER of %s: "
                            "with nopreempt (%s) those would move too (lbha.cluster.failover without "
                            "lbha_failover_restore leaves the VIPs on the peer)" % (
                                master, peer, ", ".join(sorted(held[peer])), ", ".join(nopreempt)))
    return {"master": master, "peer": peer, "problems": problems}


def upgrade_plan(reports):
    """The order of a rolling upgrade: ``{"backups", "masters", "peer", "problems"}``.

    ``backups`` (MASTER of no instance) are upgraded first, one at a time, in place; then each
    of ``masters`` (MASTER of at least one instance: one director, or every director of an
    active-active cluster), one at a time, behind a switchover to ``peer[master]`` and back.
    Each master's switchover is planned as :func:`switchover_plan` with ``restore``, so a split
    brain, no MASTER at all, no peer, or ``nopreempt`` with a peer that holds instances of its
    own is a problem, and nothing starts.
    """
    read = _readable(reports)
    masters = sorted(h for h, rep in read.items() if rep.get("master"))
    problems, peers = [], {}
    if not masters:
        problems.append("MASTER on no director")
    for master in masters:
        plan = switchover_plan(reports, source=master, restore=True)
        peers[master] = plan["peer"]
        problems.extend(p for p in plan["problems"] if p not in problems)
    return {"backups": sorted(h for h in read if h not in masters), "masters": masters, "peer": peers,
            "problems": problems}


def peer_problems(master, peer):
    """Why ``peer`` (a report) cannot take over from ``master`` (a report); [] when it can.

    The peer must be readable (a report, not an unreachable or failed result), run keepalived,
    have every VRRP instance the MASTER has (whatever its state there: after a switchover the
    peer is all the cluster has), be BACKUP of every instance the MASTER holds (none FAULT), have
    a real server that takes new connections for every virtual server the MASTER forwards, and on
    the nftables plane a live checker with its table loaded.
    """
    if not isinstance(peer, dict) or "vrrp_instances" not in peer or peer.get("failed") or peer.get("unreachable"):
        reason = (peer or {}).get("msg") if isinstance(peer, dict) else None
        return ["its state could not be read%s" % (": %s" % reason if reason else "")]
    out = []
    if not (peer.get("keepalived") or {}).get("running"):
        out.append("keepalived is not running")
    states = dict((i["name"], i.get("state")) for i in peer.get("vrrp_instances") or [])
    mine = [i["name"] for i in master.get("vrrp_instances") or [] if i.get("state") == "MASTER"]
    missing = [i["name"] for i in master.get("vrrp_instances") or [] if i["name"] not in states]
    if missing:
        out.append("it has no instance %s" % ", ".join(missing))
    not_backup = ["%s is %s" % (n, states[n]) for n in mine if n in states and states[n] != "BACKUP"]
    if not_backup:
        out.append("every instance must be BACKUP (%s)" % ", ".join(not_backup))
    serving = set(_vs_name(vs) for vs in peer.get("virtual_servers") or []
                  if any(_serving(rs) for rs in vs.get("real_servers") or []))
    empty = [_vs_name(vs) for vs in master.get("virtual_servers") or [] if _vs_name(vs) not in serving]
    if empty:
        out.append("no real server takes new connections for %s" % ", ".join(empty))
    checker = peer.get("checker")
    if peer.get("dataplane") == "nftables" and checker is not None and not (checker.get("alive") and checker.get("table_loaded")):
        out.append("its nftables checker is not running or its table is not loaded")
    return out


def restore_report(master_before, master_after, peer_name, failed_task, error):
    """What a switchover that failed says, once keepalived runs again on the old MASTER.

    ``master_before`` is the old MASTER's report before the switchover, ``master_after`` its
    report after keepalived was started again (None or an unreadable result when that could not
    be read). Returns ``{"restored": bool, "msg": text}``: restored when it holds every VIP it held.
    """
    held = list(master_before.get("holds_vips") or [])
    readable = isinstance(master_after, dict) and "holds_vips" in master_after and not master_after.get("failed")
    now = set(master_after.get("holds_vips") or []) if readable else set()
    missing = [v for v in held if v not in now]
    name = master_before.get("director") or "the old MASTER"
    msg = "The switchover from %s to %s failed at '%s': %s. keepalived was started again on %s, which " % (
        name, peer_name, failed_task or "?", (error or "no message").strip().rstrip("."), name)
    if readable and not missing:
        msg += "holds its VIPs again (%s)." % ", ".join(held)
    else:
        msg += "does NOT hold %s: run lbha.cluster.status now." % ", ".join(missing or held)
    return {"restored": readable and not missing, "msg": msg}


def drain_problems(reports, addresses, force=False):
    """Why the real servers ``addresses`` cannot be drained now; [] when they can.

    Every address must be a real server on some director; unless ``force``, no virtual server
    may be left without a real server that takes new connections.
    """
    read = _readable(reports)
    known = set(rs.get("address") for rep in read.values() for vs in rep.get("virtual_servers") or []
                for rs in vs.get("real_servers") or [])
    out = []
    unknown = [a for a in addresses if a not in known]
    if unknown:
        out.append("not a real server on any director: %s (set lbha_real_server_address)" % ", ".join(unknown))
    if not force:
        stranded = []
        for host in sorted(read):
            for vs in read[host].get("virtual_servers") or []:
                rss = vs.get("real_servers") or []
                if any(rs.get("address") in addresses for rs in rss) and \
                        not any(_serving(rs) for rs in rss if rs.get("address") not in addresses):
                    stranded.append("%s %s" % (host, _vs_name(vs)))
        if stranded:
            out.append("no real server would take new connections for %s (lbha_drain_force=true drains anyway)"
                       % ", ".join(stranded))
    return out


def real_servers_settled(report, addresses, state):
    """Whether one director applies ``state`` to every real server of ``addresses``.

    ``drained``: each has weight 0 in the live table (the document says drained at once; the
    kernel only once keepalived or the checker applied it), or is gone from it. ``undrained``:
    each is healthy, not drained and has a weight above 0.
    """
    rss = [rs for vs in report.get("virtual_servers") or [] for rs in vs.get("real_servers") or []
           if rs.get("address") in addresses]
    if state == "drained":
        return all(not rs.get("weight") for rs in rss)
    return bool(rss) and all(_serving(rs) for rs in rss)
