# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The nftables direct-server-return (LVS-DR) data plane: bucket tables and ruleset text.

Pure functions only: nothing here runs ``nft`` or touches the system. The checker daemon
(``checker.py``) decides which real servers are healthy and hands the result to
:func:`vs_table`; the text from :func:`render_ruleset` / :func:`render_update` is fed to
``nft -f -`` as one transaction.

How a packet is forwarded (one ``netdev`` table, default name ``lbha``):

* ``chain ingress_<device>`` (hook ingress on the virtual server's interface) matches frames
  addressed to this host (``meta pkttype host``), to the VIP, protocol and port, and jumps to
  the virtual server's chain. Frames a peer director should handle are never touched.
* ``chain vs_<proto>_<vip>_<port>``, in order:

  0. TCP only: a SYN without ACK deletes the flow map's entry for its client address and
     port (the value in ``delete @flows_* { key : 0x0 }`` is required by the syntax and ignored
     by the kernel). A new connection on a reused client port is therefore decided afresh,
     never by an earlier connection's entry (an ``update`` never overwrites an existing entry).
     This is how a drained server takes no new connection while its old ones finish;
  1. established flow: ``flows_*`` (client address . port -> server id, ``flags dynamic``,
     idle ``timeout flow_timeout``) pins a flow to the server it started on, so removing or
     draining a server lets its flows finish (IPVS weight 0 semantics). When a server fails,
     the checker flushes the map in the same transaction that takes its buckets away, so no
     packet (UDP has no SYN) follows an old entry to a dead server; the flows of a failed
     server are lost anyway, and IPVS drops them too;
  2. with persistence: ``persist_*`` (client address masked by ``persistence_granularity`` ->
     server id, idle timeout ``persistence_timeout``) sends a known client to its server
     while that server is in the ``live_*`` set;
  3. new flow: ``jhash`` of the client address and port (address only for ``sh``/``mh``; the
     masked client address with persistence, so that a standby director without the
     persistence map still sends a client to the same server) with the document's fixed ``seed``, ``mod buckets``, looked up in ``buckets_*`` (bucket ->
     server id) and remembered in ``flows_*``; a second copy of the rule without ``update``
     keeps forwarding statelessly should the flow map ever be full;
  4. ``drop``: an empty bucket table (no healthy server, no sorry server) or a missing bucket
     never reaches the director's own stack (which would answer with a RST).

  Forwarding is ``fwd ip to <real-server address> device <interface>``: the kernel resolves
  the real server's MAC through the director's neighbour table and sends the frame out with
  the interface's own MAC as source. The maps hold real-server *addresses*, exactly what
  the user configured, so no MAC has to be discovered or kept up to date (a replaced NIC or
  a moved real server just works through ARP), and the source MAC is always the director's,
  which keeps the switch from learning the client's MAC on the director's port. The cost is
  a TTL decrement on the forwarded frame (64 -> 63), which LVS-DR real servers never look at.

Server ids are the real server's IPv4 address as a 32-bit integer (an IPv6 address: 32 bits of
a hash of it, checked for collisions within the virtual server): stable across reloads and
identical on every director, so a flow pinned before a reload still finds its server.

An IPv6 virtual server is the same chain with ``ip6`` matches, ``ipv6_addr`` map keys and
``fwd ip6 to``, which resolves the real server through neighbour discovery.

The table carries a ``comment`` with a fingerprint of its *structure* (everything but map and
set elements). When the fingerprint in the kernel matches, only the elements are replaced
(:func:`render_update`), which never touches the dynamic flow and persistence maps: a
checker restart or reload keeps every established flow.
"""
from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import hashlib
import ipaddress
import math
import re

DEFAULT_TABLE = "lbha"
DEFAULT_BUCKETS = 251
MAX_BUCKETS = 8192
FINGERPRINT_PREFIX = "lbha structure "

# IPVS schedulers and how this plane provides them (the model warns about the others, which
# need connection counting and are served as weighted hashing).
HASH_PORT_ALGOS = ("rr", "wrr")          # hash on client address and port
HASH_ADDR_ALGOS = ("sh", "mh")           # hash on client address only (source hashing)
_FINGERPRINT_RE = re.compile(r'comment\s+"' + re.escape(FINGERPRINT_PREFIX) + r'([0-9a-f]+)"')


# --------------------------------------------------------------------------------------------
# bucket table


def server_id(address):
    """The map value that stands for a real server (a packet mark, 32 bits): an IPv4 address as
    its integer; an IPv6 address as 32 bits of its BLAKE2b hash, never 0."""
    ip = ipaddress.ip_address(str(address))
    if ip.version == 4:
        return int(ip)
    return int.from_bytes(hashlib.blake2b(ip.packed, digest_size=4, person=b"lbha-sid").digest(), "big") or 1


def _v6(vs):
    return ":" in str(vs["address"])


def _family(vs):
    """The nft words of a virtual server's address family: its match (``ip``/``ip6``), address
    type, and the flow map's key with the key's type. IPv6 puts the port first: nft 1.0.6
    (Debian 12) aborts on an update of a map whose key starts with a 16-byte address and has
    more after it."""
    l4 = vs["protocol"].lower()
    if _v6(vs):
        return {"ip": "ip6", "addr": "ipv6_addr",
                "flow_key": "%s sport . ip6 saddr" % l4, "flow_type": "inet_service . ipv6_addr"}
    return {"ip": "ip", "addr": "ipv4_addr", "flow_key": "ip saddr . %s sport" % l4,
            "flow_type": "ipv4_addr . inet_service"}


def _hash64(*parts):
    data = "\x1f".join(str(p) for p in parts).encode("utf-8")
    return int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "big")


def _quotas(weights, size):
    """Largest-remainder apportionment of ``size`` buckets to ``{key: weight}`` (weights > 0).

    Every server gets floor or ceil of its exact share ``size * w / W``. Ties in the remainder
    go to the larger weight, then to the smaller key, so the result does not depend on order.
    """
    total = sum(weights.values())
    quotas = {}
    rema = []
    for key, w in weights.items():
        q, r = divmod(size * w, total)
        quotas[key] = q
        rema.append((-r, -w, key))
    left = size - sum(quotas.values())
    for _r, _w, key in sorted(rema)[:left]:
        quotas[key] += 1
    return quotas


def bucket_table(servers, size=DEFAULT_BUCKETS, seed=0):
    """Assign ``size`` buckets to servers; return a list of server keys (``None`` = empty).

    ``servers`` is an iterable of ``(key, weight, active)``: ``key`` a unique string (the real
    server address), ``weight`` the configured weight, ``active`` whether the server may take
    new flows now (healthy and not inhibited). Two stages:

    1. *Base table* over all servers with ``weight > 0``, healthy or not: each server gets
       exactly its largest-remainder quota of buckets (within one bucket of
       ``size * weight / total``), and which buckets it gets is decided by rendezvous
       (highest-random-weight) hashing with bounded loads: all (bucket, server) pairs are
       ranked by ``blake2b(seed, bucket, key)`` and taken greedily while the server has quota
       left. A server therefore keeps "its" preferred buckets when others come and go, so a
       change of configured weights or membership moves little more than the changed share
       (removing one of 2 to 100 equal servers moves its own buckets plus at most 16 of 251).
    2. *Failover* of inactive servers' buckets: each bucket whose base owner is inactive goes
       to the active server with the best weighted rendezvous score ``-ln(u) / weight``
       (``u`` from the same hash). This is exactly minimal: a server going down moves only its
       own buckets and nothing else, and its buckets spread over the others in proportion to
       their weights; when it comes back it takes exactly its buckets back.

    Why not Maglev: Maglev's population gives the same balance but moves a few percent of
    *other* servers' buckets on every change; why not plain weighted rendezvous per bucket: a
    251-bucket table would then be off by up to ~10 buckets per server from its share.
    Health changes are the frequent event and may coincide with a director failover (each
    director runs its own checker), so they get the strict guarantee; configuration changes
    are rarer and established flows are protected by the flow map anyway.

    The result depends only on the set of ``(key, weight, active)`` and ``seed``/``size``, not
    on input order, and uses only integer hashing plus one IEEE ``log`` per pair, so every
    director computes the same table.
    """
    size = int(size)
    if size < 1:
        raise ValueError("size must be at least 1")
    entries = {}
    for key, weight, active in servers:
        key = str(key)
        if key in entries:
            raise ValueError("server %s is listed twice" % key)
        if weight < 0:
            raise ValueError("server %s has a negative weight" % key)
        entries[key] = (int(weight), bool(active))
    members = {k: w for k, (w, _a) in entries.items() if w > 0}
    active = {k: w for k, (w, a) in entries.items() if w > 0 and a}
    table = [None] * size
    if not active:
        return table
    quotas = _quotas(members, size)
    pairs = sorted((_hash64(seed, b, key), b, key) for key in members for b in range(size))
    free = size
    for _score, b, key in pairs:
        if table[b] is None and quotas[key] > 0:
            table[b] = key
            quotas[key] -= 1
            free -= 1
            if not free:
                break
    order = sorted(active)
    for b in range(size):
        if table[b] in active:
            continue
        best, best_score = None, None
        for key in order:
            u = (_hash64(seed, "failover", b, key) + 0.5) / 18446744073709551616.0
            score = -math.log(u) / active[key]
            if best_score is None or score < best_score:
                best, best_score = key, score
        table[b] = best
    return table


def _servers(vs):
    servers = {}
    sorry = vs.get("sorry_server")
    for address in [rs["address"] for rs in vs["real_servers"]] + ([sorry["address"]] if sorry else []):
        sid = server_id(address)
        if servers.get(sid, address) != address:
            raise ValueError("real servers %s and %s of %s have the same server id %s: give one of them "
                             "another address" % (servers[sid], address, vs_key(vs), _hex(sid)))
        servers[sid] = address
    return servers


def vs_table(vs, members, use_sorry=False, size=DEFAULT_BUCKETS, seed=0):
    """The element sets for one virtual server.

    ``members`` is a list of ``(address, weight, active)`` (the checker's view). With
    ``use_sorry`` every bucket goes to the sorry server. ``rr`` ignores weights (any weight > 0
    counts as 1), like IPVS. Returns ``{"servers": {id: address}, "buckets": [id or None],
    "live": [id]}``.
    """
    rr = vs.get("lb_algo", "rr") == "rr"
    servers = _servers(vs)
    sorry = vs.get("sorry_server")
    if use_sorry and sorry:
        sid = server_id(sorry["address"])
        return {"servers": servers, "buckets": [sid] * size, "live": [sid]}
    if use_sorry:
        return {"servers": servers, "buckets": [None] * size, "live": []}
    norm = [(a, (1 if w > 0 else 0) if rr else w, act) for a, w, act in members]
    keys = bucket_table(norm, size=size, seed=seed)
    live = sorted({server_id(a) for a, w, act in norm if act and w > 0})
    return {"servers": servers,
            "buckets": [None if k is None else server_id(k) for k in keys],
            "live": live}


# --------------------------------------------------------------------------------------------
# ruleset text


def vs_key(vs):
    """The identity of a virtual server: ``TCP/1.1.1.111:80``."""
    return "%s/%s:%d" % (str(vs["protocol"]).upper(), vs["address"], int(vs["port"]))


def vs_name(vs):
    """The name suffix of a virtual server's chain and maps: ``tcp_1_1_1_111_80``."""
    return "%s_%s_%d" % (vs["protocol"].lower(), re.sub(r"[.:]", "_", vs["address"]), vs["port"])


def _ifchain(iface):
    return "ingress_" + re.sub(r"[^A-Za-z0-9_]", "_", iface)


def _hex(sid):
    return "0x%08x" % sid


def _vs_chain(doc, vs):
    name = vs_name(vs)
    l4 = vs["protocol"].lower()
    dev = vs["interface"]
    family = _family(vs)
    ipx, flow_key = family["ip"], family["flow_key"]
    fwd = 'fwd %s to meta mark map @servers_%s device "%s"' % (ipx, name, dev)
    flow_update = "update @flows_%s { %s : meta mark }" % (name, flow_key)
    persist = vs["persistence_timeout"] is not None
    mask = _client_mask(vs)
    client = "%s saddr & %s" % (ipx, mask) if mask else "%s saddr" % ipx
    if persist:
        # the client (network) alone decides, so a standby director picks the same server
        hash_expr = "jhash %s mod %d seed 0x%x" % (client, doc["buckets"], doc["seed"])
    elif vs["lb_algo"] in HASH_ADDR_ALGOS:
        hash_expr = "jhash %s saddr mod %d seed 0x%x" % (ipx, doc["buckets"], doc["seed"])
    else:
        hash_expr = "jhash %s mod %d seed 0x%x" % (flow_key, doc["buckets"], doc["seed"])
    persist_update = "update @persist_%s { %s : meta mark }" % (name, client)
    rules = []
    if l4 == "tcp":
        # A SYN opens a new connection: forget what an earlier connection from the same client
        # port was pinned to (like IPVS rescheduling a reused port), so a drained server takes
        # no new connection and the hash decides afresh. Retransmitted SYNs hash the same way.
        rules.append("# new connection on a reused client port: decide again")
        rules.append("tcp flags & (fin|syn|rst|ack) == syn delete @flows_%s { %s : 0x0 }"
                     % (name, flow_key))
    rules.append("# established flow: stay on its real server (also while it drains or is down)")
    rules.append("meta mark set %s map @flows_%s %s%s counter %s"
                 % (flow_key, name, flow_update, " " + persist_update if persist else "", fwd))
    if persist:
        rules.append("# persistence: a known client goes back to its real server while that one is live")
        rules.append("meta mark set %s map @persist_%s meta mark @live_%s %s %s counter %s"
                     % (client, name, name, persist_update, flow_update, fwd))
    rules.append("# new flow: fixed-seed hash -> bucket -> real server, remembered in the flow map")
    rules.append("meta mark set %s" % hash_expr)
    rules.append("meta mark set meta mark map @buckets_%s %s%s counter %s"
                 % (name, flow_update, " " + persist_update if persist else "", fwd))
    rules.append("# flow map full: keep forwarding by hash alone")
    rules.append("meta mark set %s" % hash_expr)
    rules.append("meta mark set meta mark map @buckets_%s counter %s" % (name, fwd))
    rules.append("# no real server for this bucket: never let the director's own stack answer")
    rules.append("counter drop")
    return rules


def _client_mask(vs):
    """The persistence mask as nft writes it: the dotted netmask (IPv4), or an IPv6 prefix
    length as the address of its netmask; None for the whole address."""
    mask = vs["persistence_granularity"]
    if mask is None or not _v6(vs):
        return mask
    return None if int(mask) == 128 else str(ipaddress.IPv6Network("::/%d" % int(mask)).netmask)


def render_structure(doc):
    """The table body without map/set elements (the part the fingerprint covers)."""
    lines = []
    name_t = doc["table"]
    body = []
    devices = {}
    for vs in doc["virtual_servers"]:
        devices.setdefault(vs["interface"], []).append(vs)
    for vs in doc["virtual_servers"]:
        name = vs_name(vs)
        family = _family(vs)
        body.append("")
        body.append("\t# virtual server %s" % vs_key(vs))
        body.append("\tmap servers_%s {" % name)
        body.append("\t\ttype mark : %s" % family["addr"])
        body.append("\t}")
        body.append("\tmap buckets_%s {" % name)
        body.append("\t\ttype mark : mark")
        body.append("\t}")
        body.append("\tmap flows_%s {" % name)
        body.append("\t\ttype %s : mark" % family["flow_type"])
        body.append("\t\tsize %d" % doc["flow_size"])
        body.append("\t\ttimeout %ds" % doc["flow_timeout"])
        body.append("\t\tflags dynamic")
        body.append("\t}")
        if vs["persistence_timeout"] is not None:
            body.append("\tmap persist_%s {" % name)
            body.append("\t\ttype %s : mark" % family["addr"])
            body.append("\t\tsize %d" % doc["flow_size"])
            body.append("\t\ttimeout %ds" % vs["persistence_timeout"])
            body.append("\t\tflags dynamic")
            body.append("\t}")
            body.append("\tset live_%s {" % name)
            body.append("\t\ttype mark")
            body.append("\t}")
    for dev in sorted(devices):
        body.append("")
        body.append("\tchain %s {" % _ifchain(dev))
        body.append('\t\ttype filter hook ingress device "%s" priority 0; policy accept;' % dev)
        for vs in sorted(devices[dev], key=lambda v: (v["address"], v["protocol"], v["port"])):
            body.append("\t\tmeta pkttype host %s daddr %s %s dport %d counter goto vs_%s"
                        % (_family(vs)["ip"], vs["address"], vs["protocol"].lower(), vs["port"], vs_name(vs)))
        body.append("\t}")
    for vs in doc["virtual_servers"]:
        body.append("")
        body.append("\tchain vs_%s {" % vs_name(vs))
        for rule in _vs_chain(doc, vs):
            body.append("\t\t" + rule)
        body.append("\t}")
    text = "\n".join(body)
    fp = hashlib.sha256(("%s\n%s" % (name_t, text)).encode("utf-8")).hexdigest()[:16]
    lines.append("table netdev %s {" % name_t)
    lines.append('\tcomment "%s%s"' % (FINGERPRINT_PREFIX, fp))
    lines.append(text.lstrip("\n"))
    lines.append("}")
    return "\n".join(lines) + "\n", fp


def structure_fingerprint(doc):
    """Fingerprint of the table structure; equal fingerprints allow an elements-only update."""
    return render_structure(doc)[1]


def parse_fingerprint(listing):
    """The structure fingerprint from ``nft -t list table netdev <table>`` output, or None."""
    m = _FINGERPRINT_RE.search(listing or "")
    return m.group(1) if m else None


def _elements(items, per_line):
    chunks = [", ".join(items[i:i + per_line]) for i in range(0, len(items), per_line)]
    return "{ " + ",\n\t".join(chunks) + " }"


def render_fill(doc, tables):
    """Statements that replace every map/set element (not the dynamic maps) of the table.

    ``tables`` maps :func:`vs_key` to the output of :func:`vs_table`. A virtual server missing
    from ``tables`` gets its servers map and an empty bucket table (no new flows).
    """
    t = doc["table"]
    out = []
    for vs in doc["virtual_servers"]:
        name = vs_name(vs)
        tab = tables.get(vs_key(vs))
        if tab is None:
            tab = {"servers": _servers(vs), "buckets": [None] * doc["buckets"], "live": []}
        out.append("flush map netdev %s servers_%s" % (t, name))
        servers = ["%s : %s" % (_hex(sid), addr) for sid, addr in sorted(tab["servers"].items())]
        if servers:
            out.append("add element netdev %s servers_%s %s" % (t, name, _elements(servers, 4)))
        out.append("flush map netdev %s buckets_%s" % (t, name))
        buckets = ["%d : %s" % (b, _hex(sid)) for b, sid in enumerate(tab["buckets"]) if sid is not None]
        if buckets:
            out.append("add element netdev %s buckets_%s %s" % (t, name, _elements(buckets, 6)))
        if vs["persistence_timeout"] is not None:
            out.append("flush set netdev %s live_%s" % (t, name))
            if tab["live"]:
                out.append("add element netdev %s live_%s %s"
                           % (t, name, _elements([_hex(s) for s in tab["live"]], 8)))
    return "\n".join(out) + "\n"


def render_ruleset(doc, tables):
    """The whole table as one ``nft -f`` transaction that replaces any earlier version atomically.

    Replacing the table drops the dynamic flow map, so it is used only when the structure
    changed (or the table is missing); see :func:`render_update` otherwise.
    """
    t = doc["table"]
    structure, _fp = render_structure(doc)
    head = ("# lbha.cluster nftables DR plane: generated, do not edit\n"
            "table netdev %s\ndelete table netdev %s\n" % (t, t))
    return head + structure + render_fill(doc, tables)


def render_update(doc, tables, flush_flows=()):
    """One ``nft -f`` transaction that replaces the servers, buckets (and live) elements only.

    The flow and persistence maps are not named, so established flows keep their real server;
    except the flow maps of the virtual servers in ``flush_flows`` (keys of :func:`vs_key`),
    flushed in the same transaction because one of their real servers failed.
    """
    text = render_fill(doc, tables)
    flush = ["flush map netdev %s flows_%s" % (doc["table"], vs_name(vs))
             for vs in doc["virtual_servers"] if vs_key(vs) in set(flush_flows)]
    return text + "".join(line + "\n" for line in flush)


def tables_summary(tables):
    """Bucket counts per server id, for logs and the state file."""
    counts = {}
    for sid in tables["buckets"]:
        if sid is not None:
            counts[sid] = counts.get(sid, 0) + 1
    return counts
