# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""VRRP from the peer directors only: the firewalld rich rules a director needs, and the ones
it must drop, as pure functions.

The sources are bare addresses, resolved by the model's own address rule (a director's
``lbha_director_address`` may carry a prefix, ``1.1.1.1/24``: the rule admits ``1.1.1.1``, never
the subnet), plus the explicit ``unicast_peers`` of the definition. The director role owns every
rich rule of its zone that accepts VRRP: one whose source is not a peer any more (a removed
director, a subnet an earlier release wrote) is removed.
"""
from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import re

from .model import parse_address, parse_interface

_VRRP_ACCEPT_RE = re.compile(r'^\s*rule\b.*\bprotocol value="vrrp"\s+accept\s*$')


def bare_address(value):
    """``1.1.1.1`` or ``1.1.1.1/24`` -> ``1.1.1.1`` (canonical); ValueError otherwise."""
    if not isinstance(value, str):
        raise ValueError("%r is not an IP address" % (value,))
    if "/" in value:
        return str(parse_interface(value).ip)
    return str(parse_address(value))


def peer_sources(directors, host, cluster=None):
    """The addresses VRRP may come from on ``host``: every other director's, and every explicit
    ``unicast_peers`` entry of the definition, bare and sorted; ValueError names a bad one."""
    out = set()
    mine = None
    for d in directors or []:
        if not isinstance(d, dict) or not d.get("name"):
            raise ValueError("a director entry without a name: %r" % (d,))
        if d.get("address") is None:
            raise ValueError("%s: the address is not known (set lbha_director_address)" % d["name"])
        try:
            address = bare_address(d["address"])
        except ValueError:
            raise ValueError("%s: lbha_director_address %r is not an IP address" % (d["name"], d["address"]))
        if d["name"] == host:
            mine = address
        else:
            out.add(address)
    instances = cluster.get("vrrp_instances") if isinstance(cluster, dict) else None
    for i, inst in enumerate(instances if isinstance(instances, list) else []):
        peers = inst.get("unicast_peers") if isinstance(inst, dict) else None
        for j, peer in enumerate([peers] if isinstance(peers, str) else peers if isinstance(peers, list) else []):
            try:
                out.add(bare_address(peer))
            except ValueError:
                raise ValueError("lbha_cluster.vrrp_instances[%d].unicast_peers[%d]: %r is not an IP address"
                                 % (i, j, peer))
    out.discard(mine)
    return sorted(out, key=lambda a: (":" in a, a))


def vrrp_rule(address):
    """The rich rule, as firewalld lists it, that accepts VRRP from ``address``."""
    family = "ipv6" if ":" in address else "ipv4"
    return 'rule family="%s" source address="%s" protocol value="vrrp" accept' % (family, address)


def vrrp_rules(directors, host, cluster=None):
    """The rich rules ``host`` needs: one per peer source."""
    return [vrrp_rule(a) for a in peer_sources(directors, host, cluster)]


def stale_vrrp_rules(current, wanted):
    """The rich rules of ``current`` (lines of ``firewall-cmd --list-rich-rules``) that accept VRRP
    and are not ``wanted``: a source that is no longer a peer, or a subnet."""
    wanted = set(" ".join(w.split()) for w in wanted)
    out = []
    for line in current or []:
        rule = " ".join(str(line).split())
        if _VRRP_ACCEPT_RE.match(rule) and rule not in wanted and rule not in out:
            out.append(rule)
    return out
