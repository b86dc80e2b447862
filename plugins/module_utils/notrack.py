# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The ipvs plane's conntrack exemption: an nftables table that marks the virtual services'
packets ``notrack`` before connection tracking sees them.

A director in direct routing sees one direction of every connection (client to VIP); the
replies go from the real server to the client. Connection tracking on the director therefore
never sees a handshake complete: it marks the client's FIN (and other packets) invalid, and a
firewall that drops invalid packets - firewalld does - drops them before IPVS forwards them.
The real server then never learns that the client closed: its sockets stay in FIN-WAIT-2 or
LAST-ACK, and a new connection that reuses the client's port meets the old socket and times
out. Exempting the VIPs' service ports from connection tracking (the classic LVS-DR advice)
lets every packet through to IPVS; firewalld's port rules accept untracked packets.

``render(model)`` returns the ruleset file (``""`` when there is nothing to exempt: another
plane, or only fwmark services, whose mark is set after the raw hook). The file replaces the
table atomically: ``nft -f`` runs it as one transaction.

Pure Python, standard library only.
"""
from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import ipaddress

TABLE = "lbha_ipvs"
FAMILY = "inet"
HEADER = "# Managed by lbha.cluster: the ipvs plane's conntrack exemption (see docs/dataplanes.md)\n"


def _rules(virtual_servers):
    rules = []
    for vs in virtual_servers:
        if vs.get("fwmark") is not None or not vs.get("address") or not vs.get("port"):
            continue
        ip = ipaddress.ip_address(vs["address"])
        match = "%s daddr %s %s dport %d" % ("ip" if ip.version == 4 else "ip6", ip,
                                             (vs.get("protocol") or "TCP").lower(), vs["port"])
        if match not in rules:
            rules.append(match)
    return rules


def render(model):
    """The nft file of the exemption for a normalised model (``""`` when there is none)."""
    if model.get("dataplane") != "ipvs":
        return ""
    rules = _rules(model.get("virtual_servers") or [])
    if not rules:
        return ""
    lines = [HEADER,
             "table %s %s" % (FAMILY, TABLE),
             "delete table %s %s" % (FAMILY, TABLE),
             "table %s %s {" % (FAMILY, TABLE),
             "\tchain prerouting {",
             "\t\ttype filter hook prerouting priority raw; policy accept;"]
    lines += ["\t\t%s notrack" % rule for rule in rules]
    lines += ["\t}", "}", ""]
    return "\n".join(lines)
