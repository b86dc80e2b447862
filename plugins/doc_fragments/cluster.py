# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import (absolute_import, division, print_function)
__metaclass__ = type


class ModuleDocFragment(object):
    # Options shared by keepalived_config and cluster_validate: the cluster model's inputs.
    DOCUMENTATION = r'''
options:
  cluster:
    description:
      - The cluster definition, normally the collection-wide variable C(lbha_cluster)
        (C(global_defs), C(vrrp_scripts), C(vrrp_sync_groups), C(vrrp_instances),
        C(virtual_servers)). The reference is docs/variables.md.
      - Unknown keys are refused with the list of accepted keys; every error names the field
        path and the director.
      - Every C(auth_pass) in it is masked in the module's output and logs.
    type: dict
    required: true
  directors:
    description:
      - All directors of the cluster, each C({name, address, priority, state, router_id}) as
        returned by the C(lbha.cluster.director_hosts) filter.
      - Used for the MASTER/BACKUP election checks, the derived state (the highest priority is
        MASTER when no state is set) and unicast peers. A director's C(priority) and C(state)
        are the defaults of every instance; an instance's own C(priority) and C(state) mappings
        (director name to value) win over them.
    type: list
    elements: dict
  real_server_hosts:
    description:
      - Inventory-derived real servers - a mapping of inventory group name to a list of
        C({name, address, weight, port, check, inhibit_on_failure, smtp_alert}) - as returned by the
        C(lbha.cluster.real_server_hosts) filter.
      - A host's C(port) and C(check) are merged over its virtual server's.
    type: dict
    default: {}
  dataplane:
    description:
      - C(ipvs) renders C(virtual_server) blocks so that keepalived drives IPVS.
      - C(nftables) renders VRRP only (keepalived exits on a kernel without IPVS when it sees a
        C(virtual_server)); the virtual servers go to the nftables plane's document instead, and
        only what that plane supports is accepted (DR, TCP or UDP, IPv4).
    type: str
    choices: [ipvs, nftables]
    default: ipvs
  notify_script:
    description:
      - Script every C(vrrp_instance) calls with keepalived's C(notify) (records the VRRP state
        for M(lbha.cluster.lbha_info)), in addition to the user's C(notify_*) scripts.
      - An empty string renders no C(notify) line.
    type: str
    default: /usr/lib/lbha-cluster/notify
  script_user:
    description:
      - keepalived's C(script_user) (the unprivileged user running scripts under
        C(enable_script_security)). Overrides C(cluster.global_defs.script_user) when set.
    type: str
'''
