# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters over the raw ``lbha_cluster`` definition (used where the model is not run)."""
from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

from ansible.errors import AnsibleFilterError

from ansible_collections.lbha.cluster.plugins.module_utils.model import vips as _vips
from ansible_collections.lbha.cluster.plugins.module_utils.model import virtual_services as _virtual_services
from ansible_collections.lbha.cluster.plugins.module_utils.realserver import VipError, vip_list


def _check(cluster, name):
    if cluster is None:
        return {}
    if not isinstance(cluster, dict):
        raise AnsibleFilterError("%s: expected the lbha_cluster mapping, got %s" % (name, type(cluster).__name__))
    return cluster


def virtual_services(cluster):
    """``lbha_cluster | lbha.cluster.virtual_services`` -> sorted unique ``[{address, port, protocol}]``."""
    return _virtual_services(_check(cluster, "virtual_services"))


def vips(cluster):
    """``lbha_cluster | lbha.cluster.vips`` -> sorted unique VIP addresses, without prefix length."""
    return _vips(_check(cluster, "vips"))


def vip_problems(vips, interface, interfaces=None):
    """``lbha_real_server_vips | lbha.cluster.vip_problems(interface, ansible_facts.interfaces)`` ->
    what makes the VIP list or the interface unusable (the rules of lbha.cluster.real_server_vips),
    as messages; empty when they can be used. ``interfaces`` (the host's interface names, from its
    facts) is optional: without it the interface is checked by name only."""
    problems = []
    try:
        vip_list(vips, interface)
    except VipError as exc:
        problems.append(str(exc))
    if interfaces is not None and isinstance(interface, str) and interface not in interfaces:
        problems.append("interface: %s is not an interface of this host (it has %s)"
                        % (interface, ", ".join(sorted(str(i) for i in interfaces))))
    return problems


class FilterModule(object):
    def filters(self):
        return {"virtual_services": virtual_services, "vips": vips, "vip_problems": vip_problems}
