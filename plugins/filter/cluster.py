# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters over the raw ``lbha_cluster`` definition (used where the model is not run)."""
from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

from ansible.errors import AnsibleFilterError

from ansible_collections.lbha.cluster.plugins.module_utils.model import vips as _vips
from ansible_collections.lbha.cluster.plugins.module_utils.model import virtual_services as _virtual_services


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


class FilterModule(object):
    def filters(self):
        return {"virtual_services": virtual_services, "vips": vips}
