# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""VRRP from the peer directors only: the firewalld rich rules a director needs, and the ones
it must drop, as pure functions.

The sources are bare addresses, resolved by the model's own address rule (a director's
``lbha_director_address`` may carry a prefix, ``1.1.1.1/24``: the rule admits ``1.1.1.1``, never
the subnet), plus the explicit ``unicast_peers`` of the definition. The director role owns every
rich rule of its zone that accepts VRRP: one whose source is not a peer any more (a removed
director, a subnet an earlier release wrote) is removed. The one subnet it admits is IPv6
link-local to the VRRP group, while an instance advertises over IPv6 multicast
(``LINK_LOCAL_VRRP_RULE``).
"""
from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import re

from .model import multicast_ipv6_instances, parse_address, parse_interface

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


# IPv6 multicast VRRP (VRRPv3) leaves from the sender's link-local address, which no inventory
# knows: the rule admits link-local sources to the VRRP group only. Link-local packets never
# cross a router, and keepalived drops an advert whose hop limit is not 255, so only hosts on
# the segment are admitted (pin the peers with unicast_peers where that is too wide).
LINK_LOCAL_VRRP_RULE = 'rule family="ipv6" source address="fe80::/10" destination address="ff02::12" protocol value="vrrp" accept'


def vrrp_rules(directors, host, cluster=None):
    """The rich rules ``host`` needs: one per peer source, and the link-local one when an
    instance advertises over IPv6 multicast."""
    rules = [vrrp_rule(a) for a in peer_sources(directors, host, cluster)]
    if multicast_ipv6_instances(cluster):
        rules.append(LINK_LOCAL_VRRP_RULE)
    return rules


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


def _rule_key(rule):
    return " ".join(str(rule).split())


def parse_list_all(text):
    """``firewall-cmd --list-all`` -> ``{"ports": [...], "rich_rules": [...]}`` (as firewalld lists them)."""
    ports, rules, in_rules = [], [], False
    for line in (text or "").splitlines():
        stripped = line.strip()
        if in_rules:
            if line.startswith(("\t", "        ")) and stripped:
                rules.append(_rule_key(stripped))
                continue
            in_rules = False
        if stripped.startswith("ports:"):
            ports = stripped[len("ports:"):].split()
        elif stripped.startswith("rich rules:"):
            in_rules = True
            rest = stripped[len("rich rules:"):].strip()
            if rest:
                rules.append(_rule_key(rest))
    return {"ports": ports, "rich_rules": rules}


def zone_state(ports, rich_rules):
    """A zone's ports (``(port, protocol)`` pairs or ``80/tcp`` texts) and rich rules as firewalld's
    D-Bus API gives them -> the same ``{"ports": [...], "rich_rules": [...]}`` as :func:`parse_list_all`."""
    return {"ports": [p if isinstance(p, str) else "%s/%s" % tuple(p) for p in ports],
            "rich_rules": [_rule_key(r) for r in rich_rules]}


def normalise_port(value):
    """``80``, ``80/TCP``, ``8000-8010/udp`` -> ``80/tcp`` ...; ValueError names a bad one."""
    text = str(value).strip().lower()
    port, _sep, proto = text.partition("/")
    proto = proto or "tcp"
    bounds = port.split("-")
    if proto not in ("tcp", "udp", "sctp", "dccp") or len(bounds) > 2 or not all(
            b.isdigit() and 1 <= int(b) <= 65535 for b in bounds) or (len(bounds) == 2 and int(bounds[0]) > int(bounds[1])):
        raise ValueError("%r is not a port (PORT[-PORT]/tcp|udp|sctp|dccp)" % (value,))
    return "%s/%s" % ("-".join(str(int(b)) for b in bounds), proto)


def zone_plan(current, ports, rich_rules, absent_rich_rules=(), purge_vrrp=False):
    """What one zone configuration (runtime or permanent) needs: ``add_ports``, ``add_rich_rules``
    and ``remove_rich_rules`` (a rule both wanted and absent is an error)."""
    wanted = [_rule_key(r) for r in rich_rules]
    unwanted = [_rule_key(r) for r in absent_rich_rules]
    both = sorted(set(wanted) & set(unwanted))
    if both:
        raise ValueError("a rich rule cannot be both present and absent: %s" % both[0])
    have_ports = set(current.get("ports", []))
    have_rules = [_rule_key(r) for r in current.get("rich_rules", [])]
    remove = [r for r in unwanted if r in have_rules]
    if purge_vrrp:
        remove += [r for r in stale_vrrp_rules(have_rules, wanted) if r not in remove]
    return {"add_ports": [p for p in _unique(normalise_port(p) for p in ports) if p not in have_ports],
            "add_rich_rules": [r for r in _unique(wanted) if r not in have_rules],
            "remove_rich_rules": remove}


def _unique(items):
    out = []
    for item in items:
        if item not in out:
            out.append(item)
    return out


def zone_commands(plan, zone=None, permanent=False):
    """The firewall-cmd argument lists that carry out ``plan`` (firewalld takes one kind of
    change per call: the ports, the new rules, the removed rules)."""
    base = ["firewall-cmd"] + (["--permanent"] if permanent else []) + (["--zone=%s" % zone] if zone else [])
    out = []
    for option, key in (("--add-port=%s", "add_ports"), ("--add-rich-rule=%s", "add_rich_rules"),
                        ("--remove-rich-rule=%s", "remove_rich_rules")):
        if plan[key]:
            out.append(base + [option % item for item in plan[key]])
    return out
