# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The VIPs a direct-routing real server holds on its loopback, as pure planning functions.

The ``real_server_vips`` module reads the live addresses (``ip -j addr show dev lo``) and the
record of what it put there before (the ``ExecStart`` lines of ``lbha-vip.service``, which puts
the VIPs back at boot), and :func:`plan` says what to do:

* a VIP that stays keeps its address *and its label*: it is never deleted and added again, and
  adding or removing another VIP relabels nothing;
* a new VIP gets the lowest free label ``<dev>:<n>`` (IPv4; the kernel has no labels for IPv6);
* a VIP that left the list is deleted, but only if this role put it there (it is in the record);
* the unit is rendered from the result, so a reboot restores exactly the same addresses.

Addresses are checked by the same code as the model's (``ipaddress``, no scope ids, canonical
text). IPv4 VIPs are /32, IPv6 VIPs /128 with ``nodad`` (the VIP is on every real server and on
the MASTER director: duplicate address detection would disable it).
"""
from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import ipaddress
import json
import re

_IFNAME_RE = re.compile(r"[A-Za-z0-9_.-]{1,15}")
_EXECSTART_RE = re.compile(r"^ExecStart=\S+ (?:-6 )?addr (?:replace|add) (\S+)/(?:32|128) dev (\S+)(?: label (\S+))?",
                           re.MULTILINE)
_LABEL_RE = re.compile(r"^(?P<dev>[A-Za-z0-9_.-]+):(?P<n>\d+)$")


class VipError(ValueError):
    """The VIP list or the interface cannot be used; the message names the entry."""


def vip_list(vips, interface):
    """The VIPs as canonical address texts, in order, duplicates dropped; VipError on a bad entry."""
    if not isinstance(interface, str) or not _IFNAME_RE.fullmatch(interface):
        raise VipError("interface: %r is not an interface name" % (interface,))
    if not isinstance(vips, (list, tuple)):
        raise VipError("vips: expected a list of addresses, got %s" % type(vips).__name__)
    out = []
    for i, vip in enumerate(vips):
        text = vip if isinstance(vip, str) else None
        try:
            if text is None or "%" in text or "/" in text or text != text.strip():
                raise ValueError
            address = str(ipaddress.ip_address(text))
        except ValueError:
            raise VipError("vips[%d]: %r is not an IP address without prefix or scope" % (i, vip))
        if address not in out:
            out.append(address)
    return out


def parse_live(ip_json, interface):
    """``{address: label or None}`` of the host addresses on ``interface`` (``ip -j addr show``)."""
    try:
        links = json.loads(ip_json or "[]")
    except ValueError as exc:
        raise VipError("ip -j addr: not JSON: %s" % exc)
    out = {}
    for link in links if isinstance(links, list) else []:
        if not isinstance(link, dict) or link.get("ifname") != interface:
            continue
        for info in link.get("addr_info") or []:
            if not isinstance(info, dict) or "local" not in info:
                continue
            full = 32 if info.get("family") == "inet" else 128
            if info.get("prefixlen") == full:
                out[str(ipaddress.ip_address(info["local"]))] = info.get("label") if info.get("family") == "inet" else None
    return out


def parse_record(unit_text):
    """``{address: label or None}`` the previous run put on the interface (its unit's ExecStart lines)."""
    out = {}
    for address, _dev, label in _EXECSTART_RE.findall(unit_text or ""):
        out[str(ipaddress.ip_address(address))] = label or None
    return out


def _index(label, interface):
    match = _LABEL_RE.match(label or "")
    return int(match.group("n")) if match and match.group("dev") == interface else None


def plan(wanted, live, record, interface):
    """What to do: ``{"vips": [{address, label, version}], "add": [...], "remove": [...]}``.

    ``vips`` is the wanted list with stable labels (what the unit renders), ``add`` the entries to
    put on the interface now, ``remove`` the addresses to delete (previously ours, no longer
    wanted, still on the interface).
    """
    used = set()
    labels = {}
    for address in wanted:
        if ipaddress.ip_address(address).version != 4:
            labels[address] = None
            continue
        for source in (live, record):
            label = source.get(address)
            if _index(label, interface) is not None and label not in used:
                labels[address] = label
                used.add(label)
                break
    taken = set(_index(label, interface) for label in list(live.values()) + list(used)) - {None}
    for address in wanted:
        if address in labels:
            continue
        n = 1
        while n in taken:
            n += 1
        taken.add(n)
        labels[address] = "%s:%d" % (interface, n)
    vips = [{"address": a, "label": labels[a], "version": ipaddress.ip_address(a).version} for a in wanted]
    add = [v for v in vips if v["address"] not in live]
    remove = sorted(a for a in record if a not in wanted and a in live)
    return {"vips": vips, "add": add, "remove": remove}


def ip_argv(ip, action, vip, interface):
    """The ``ip`` command that adds or deletes one VIP."""
    if vip["version"] == 6:
        argv = [ip, "-6", "addr", action, "%s/128" % vip["address"], "dev", interface]
        return argv + (["nodad"] if action != "del" else [])
    argv = [ip, "addr", action, "%s/32" % vip["address"], "dev", interface]
    return argv + (["label", vip["label"]] if action != "del" else [])


def render_unit(vips, interface, ip, sysctl_file, managed="Managed by lbha.cluster"):
    """``lbha-vip.service``: puts the VIPs on the interface at boot, takes them off at stop."""
    lines = [
        "# %s" % managed,
        "# Direct-routing VIPs of lbha.cluster on %s. The host accepts traffic for them; the ARP" % interface,
        "# sysctls in %s keep it from answering ARP. Its ExecStart lines are the record of the" % sysctl_file,
        "# VIPs lbha.cluster manages here (labels are kept across changes).",
        "[Unit]",
        "Description=lbha.cluster direct-routing VIPs on %s" % interface,
        "Documentation=https://github.com/lbha/cluster/blob/main/docs/real-servers.md",
        "# the ARP sysctls are in place before the first VIP appears",
        "After=systemd-sysctl.service",
        "Wants=network-pre.target",
        "Before=network-pre.target",
        "",
        "[Service]",
        "Type=oneshot",
        "RemainAfterExit=yes",
    ]
    for vip in vips:
        argv = ip_argv(ip, "replace", vip, interface)
        lines.append("ExecStart=" + " ".join(argv))
    for vip in vips:
        lines.append("ExecStop=-" + " ".join(ip_argv(ip, "del", vip, interface)))
    lines += ["", "[Install]", "WantedBy=multi-user.target", ""]
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# the health path: the directors' checks reach the service through the VIP

HEALTH_TABLE = "lbha_health"
_PROTOCOLS = ("tcp", "udp", "sctp")


def health_ruleset(address, services, sources, table=HEALTH_TABLE):
    """The nftables ruleset (``nft -f`` input) that sends the directors' health checks through the VIP.

    A director checks a real server at its own address (``address``:port). Here, a packet from a
    director (``sources``) to ``address`` on a service's port is translated to the service's VIP
    (same port) before routing: while the VIP is on this host the check reaches the service as
    the clients' traffic does; once the VIP is gone the packet is not for this host any more and
    is dropped, the check fails and the director takes this server out of the pool. Nothing else
    (clients, administrators, other ports) is touched. A port shared by several VIPs is checked
    through the first of them (by address).

    ``services``: ``[{address, port, protocol}]`` (virtual_services); ``sources``: the directors'
    bare addresses. The text replaces the table atomically.
    """
    import ipaddress
    rip = ipaddress.ip_address(str(address))
    family = "ip" if rip.version == 4 else "ip6"
    srcs = sorted(set(str(ipaddress.ip_address(str(s))) for s in sources
                      if ipaddress.ip_address(str(s)).version == rip.version))
    rules = []
    seen = set()
    for svc in sorted(services or [], key=lambda s: (ipaddress.ip_address(str(s["address"])).version,
                                                     ipaddress.ip_address(str(s["address"])), int(s["port"]))):
        vip = ipaddress.ip_address(str(svc["address"]))
        proto = str(svc.get("protocol") or "tcp").lower()
        if proto not in _PROTOCOLS:
            raise ValueError("%s: protocol %r is not one of %s" % (vip, svc.get("protocol"), ", ".join(_PROTOCOLS)))
        port = int(svc["port"])
        if vip.version != rip.version or (proto, port) in seen or not srcs:
            continue
        seen.add((proto, port))
        rules.append("%s saddr { %s } %s daddr %s %s dport %d dnat %s to %s"
                     % (family, ", ".join(srcs), family, rip, proto, port, family, vip))
    lines = ["# Managed by lbha.cluster: the directors' health checks of this real server go through its VIP,",
             "# so a real server that lost its VIP fails them and leaves the pool.",
             "table inet %s {}" % table,
             "delete table inet %s" % table,
             "table inet %s {" % table,
             "    chain prerouting {",
             "        type nat hook prerouting priority dstnat; policy accept;"]
    lines += ["        " + r for r in rules]
    lines += ["    }",
              "    chain forward {",
              "        type filter hook forward priority filter; policy accept;",
              "        # a translated check whose VIP is not here must not be forwarded to whoever holds it"]
    if srcs:
        lines.append("        ct status dnat %s saddr { %s } drop" % (family, ", ".join(srcs)))
    lines += ["    }", "}"]
    return "\n".join(lines) + "\n"
