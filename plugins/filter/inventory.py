# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Turn inventory groups and host variables into the model's per-host inputs.

The cluster model (``plugins/module_utils/model.py``) takes plain lists of directors and
real servers. These filters read them from the inventory so that adding a host to the
``real_servers`` group is all it takes for it to join the pool on the next run.
"""
from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import ipaddress

from ansible.errors import AnsibleFilterError

from ansible_collections.lbha.cluster.plugins.module_utils import firewall, realserver

_MISSING = object()


def _get(hostvars, host, key, default=_MISSING):
    try:
        hv = hostvars[host]
    except KeyError:
        raise AnsibleFilterError("host %r is in the group but not in the inventory" % host)
    try:
        value = hv[key]
    except (KeyError, AttributeError):
        return default
    # Undefined values come back as AnsibleUndefined in some versions: treat them as missing.
    if value is None or type(value).__name__.endswith("Undefined"):
        return default
    return value


def _is_ip(value):
    try:
        ipaddress.ip_address(str(value))
        return True
    except ValueError:
        return False


def host_address(hostvars, host, var):
    """The address a host is known by in the cluster.

    Order: the explicit variable ``var``; ``ansible_host`` when it is an IP address; the
    default IPv4 address from gathered facts. ``None`` when none is known (the model then
    reports an error that names the host and the variable to set).
    """
    explicit = _get(hostvars, host, var, None)
    if explicit:
        return str(explicit)
    ansible_host = _get(hostvars, host, "ansible_host", None)
    if ansible_host and _is_ip(ansible_host):
        return str(ansible_host)
    facts = _get(hostvars, host, "ansible_default_ipv4", None)
    if isinstance(facts, dict) and facts.get("address"):
        return str(facts["address"])
    return None


ADDRESS_VARS = {"director": "lbha_director_address", "real_server": "lbha_real_server_address"}


def host_addresses(hostnames, hostvars, role):
    """``hosts | lbha.cluster.host_addresses(hostvars, 'real_server')``: the addresses the model knows them by.

    The one address rule of the collection (:func:`host_address`); a host whose address is not
    known is an error that names it and the variable to set.
    """
    if role not in ADDRESS_VARS:
        raise AnsibleFilterError("host_addresses: role must be one of %s, not %r" % (", ".join(sorted(ADDRESS_VARS)), role))
    if isinstance(hostnames, str) or not isinstance(hostnames, (list, tuple)):
        raise AnsibleFilterError("host_addresses: expected a list of inventory host names, got %s" % type(hostnames).__name__)
    out = []
    for host in hostnames:
        address = host_address(hostvars, host, ADDRESS_VARS[role])
        if address is None:
            raise AnsibleFilterError("host_addresses: the address of %s is not known; set %s or ansible_host to an "
                                     "IP address" % (host, ADDRESS_VARS[role]))
        out.append(address)
    return out


def director_planes(hostnames, hostvars):
    """``groups['directors'] | lbha.cluster.director_planes(hostvars)``: ``{host: plane}``.

    The plane each director will use: ``lbha_director_detected_plane`` (set by the director
    role's detect_plane.yml, which site.yml runs first), else ``lbha_director_dataplane``
    (``auto`` when unset: the model then checks both planes).
    """
    if isinstance(hostnames, str) or not isinstance(hostnames, (list, tuple)):
        raise AnsibleFilterError("director_planes: expected a list of inventory host names, got %s"
                                 % type(hostnames).__name__)
    out = {}
    for host in hostnames:
        plane = _get(hostvars, host, "lbha_director_detected_plane", None) or \
            _get(hostvars, host, "lbha_director_dataplane", None) or "auto"
        if plane not in ("auto", "ipvs", "nftables"):
            raise AnsibleFilterError("director_planes: %s: lbha_director_dataplane %r is not auto, ipvs or nftables"
                                     % (host, plane))
        out[str(host)] = plane
    return out


def director_hosts(hostnames, hostvars):
    """``groups['directors'] | lbha.cluster.director_hosts(hostvars)``."""
    result = []
    for host in hostnames or []:
        entry = {
            "name": host,
            "address": host_address(hostvars, host, "lbha_director_address"),
            "priority": _get(hostvars, host, "lbha_director_priority", None),
        }
        state = _get(hostvars, host, "lbha_director_state", None)
        if state:
            entry["state"] = state
        router_id = _get(hostvars, host, "lbha_director_router_id", None)
        if router_id:
            entry["router_id"] = router_id
        result.append(entry)
    return result


def _group_names(cluster):
    names = set()
    for vs in (cluster or {}).get("virtual_servers") or []:
        if isinstance(vs, dict) and vs.get("real_servers_group"):
            names.add(vs["real_servers_group"])
    return sorted(names)


def real_server_hosts(cluster, groups, hostvars):
    """``lbha_cluster | lbha.cluster.real_server_hosts(groups, hostvars)``.

    Returns ``{group: [{name, address, weight?, port?, check?, inhibit_on_failure?, smtp_alert?}]}``
    for every group named by a
    virtual server's ``real_servers_group``. A group missing from the inventory yields an
    empty list; the model then says which virtual server has no real server.
    """
    result = {}
    for group in _group_names(cluster):
        members = []
        for host in groups.get(group, []) or []:
            entry = {"name": host, "address": host_address(hostvars, host, "lbha_real_server_address")}
            for key in ("weight", "port", "check", "inhibit_on_failure", "smtp_alert"):
                value = _get(hostvars, host, "lbha_real_server_" + key, None)
                if value is not None:
                    entry[key] = value
            members.append(entry)
        result[group] = members
    return result


def vrrp_rules(directors, host, cluster=None):
    """``directors | lbha.cluster.vrrp_rules(inventory_hostname, lbha_cluster)``: the firewalld rich
    rules that accept VRRP from this director's peers (bare addresses)."""
    if isinstance(directors, str) or not isinstance(directors, (list, tuple)):
        raise AnsibleFilterError("vrrp_rules: expected the director entries (director_hosts), got %s"
                                 % type(directors).__name__)
    try:
        return firewall.vrrp_rules(list(directors), str(host), cluster)
    except ValueError as exc:
        raise AnsibleFilterError("vrrp_rules: %s" % exc)


def stale_vrrp_rules(current, wanted):
    """``rich_rules | lbha.cluster.stale_vrrp_rules(wanted)``: VRRP rules to remove."""
    for value, what in ((current, "the zone's rich rules"), (wanted, "the wanted rules")):
        if isinstance(value, str) or not isinstance(value, (list, tuple)):
            raise AnsibleFilterError("stale_vrrp_rules: expected %s as a list, got %s" % (what, type(value).__name__))
    return firewall.stale_vrrp_rules(list(current), list(wanted))


def health_ruleset(services, address, directors):
    """``lbha_real_server_ports | lbha.cluster.health_ruleset(address, director_addresses)``."""
    if isinstance(services, str) or not isinstance(services, (list, tuple)):
        raise AnsibleFilterError("health_ruleset: expected the services (virtual_services) as a list, got %s"
                                 % type(services).__name__)
    try:
        sources = [firewall.bare_address(str(d)) for d in directors or []]
        return realserver.health_ruleset(address, list(services), sources)
    except (ValueError, KeyError, TypeError) as exc:
        raise AnsibleFilterError("health_ruleset: %s" % exc)


class FilterModule(object):
    def filters(self):
        return {
            "director_hosts": director_hosts,
            "director_planes": director_planes,
            "host_addresses": host_addresses,
            "real_server_hosts": real_server_hosts,
            "vrrp_rules": vrrp_rules,
            "health_ruleset": health_ruleset,
            "stale_vrrp_rules": stale_vrrp_rules,
        }
