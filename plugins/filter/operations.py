# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters for the operations playbooks: the day-2 decisions of module_utils/operations.py."""
from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

from ansible.errors import AnsibleFilterError

from ansible_collections.lbha.cluster.plugins.module_utils import operations


def _mapping(value, name, what):
    if not isinstance(value, dict):
        raise AnsibleFilterError("%s: expected %s, got %s" % (name, what, type(value).__name__))
    return value


def _names(value, name, what):
    if isinstance(value, str) or not isinstance(value, (list, tuple)):
        raise AnsibleFilterError("%s: expected %s (a list), got %s" % (name, what, type(value).__name__))
    return [str(v) for v in value]


def director_reports(hosts, hostvars, register):
    """``hosts | lbha.cluster.director_reports(hostvars, 'name')``: ``{host: lbha_info result or None}``."""
    out = {}
    for host in _names(hosts, "director_reports", "inventory host names"):
        try:
            result = hostvars[host].get(register) if hasattr(hostvars[host], "get") else None
        except KeyError:
            raise AnsibleFilterError("director_reports: host %r is not in the inventory" % host)
        bad = not isinstance(result, dict) or result.get("failed") or result.get("unreachable") \
            or result.get("skipped")
        out[host] = None if bad else dict(result)
    return out


def cluster_status(reports):
    return operations.cluster_status(_mapping(reports, "cluster_status", "director reports"))


def switchover_plan(reports, peer=None, source=None, restore=False):
    return operations.switchover_plan(_mapping(reports, "switchover_plan", "director reports"),
                                      peer if peer not in ("", None) else None,
                                      source if source not in ("", None) else None, bool(restore))


def upgrade_plan(reports):
    return operations.upgrade_plan(_mapping(reports, "upgrade_plan", "director reports"))


def peer_problems(master, peer):
    return operations.peer_problems(_mapping(master, "peer_problems", "the MASTER's report"),
                                    _mapping(peer, "peer_problems", "the peer's report"))


def restore_report(master_before, master_after, peer, failed_task=None, error=None):
    return operations.restore_report(_mapping(master_before, "restore_report", "the old MASTER's report"),
                                     master_after if isinstance(master_after, dict) else None,
                                     str(peer), failed_task, error if error is None else str(error))


def drain_problems(reports, addresses, force=False):
    return operations.drain_problems(_mapping(reports, "drain_problems", "director reports"),
                                     _names(addresses, "drain_problems", "real-server addresses"), bool(force))


def real_servers_settled(report, addresses, state):
    if state not in ("drained", "undrained"):
        raise AnsibleFilterError("real_servers_settled: state must be drained or undrained, not %r" % (state,))
    return operations.real_servers_settled(_mapping(report, "real_servers_settled", "a director report"),
                                           _names(addresses, "real_servers_settled", "real-server addresses"), state)


class FilterModule(object):
    def filters(self):
        return {
            "director_reports": director_reports,
            "cluster_status": cluster_status,
            "switchover_plan": switchover_plan,
            "upgrade_plan": upgrade_plan,
            "peer_problems": peer_problems,
            "restore_report": restore_report,
            "drain_problems": drain_problems,
            "real_servers_settled": real_servers_settled,
        }
