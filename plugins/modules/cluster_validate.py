#!/usr/bin/python
# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

DOCUMENTATION = r'''
---
module: cluster_validate
short_description: Validate an lbha cluster definition for every director at once
version_added: 0.1.0
description:
  - Validates the cluster definition and the per-host inputs of every director, and renders
    each director's C(keepalived.conf) in memory, so that a bad definition stops the play
    before any host changes.
  - "Fails with every error, each naming the director(s) and the field path, for example
    C(lb1, lb2: lbha_cluster.vrrp_instances[0].virtual_router_id: 300 is outside 1-255)."
  - Changes nothing; meant to run once, on the controller (C(run_once) and C(delegate_to=localhost)).
author:
  - lbha.cluster maintainers (@lbha)
extends_documentation_fragment:
  - lbha.cluster.cluster
attributes:
  action:
    support: full
    description:
      - An action plugin of the same name validates in the controller's own process (no module
        payload, no Python process); this module is the same code.
  check_mode:
    support: full
    description: The module never changes anything; it runs the same in check mode.
  diff_mode:
    support: none
    description: Nothing changes, so there is no diff.
  platform:
    support: full
    platforms: posix
    description: Runs on the controller (pure Python, in the controller's process).
options:
  directors:
    required: true
  dataplanes:
    description:
      - The plane each director will use, by director name (C(ipvs), C(nftables) or C(auto)), as the
        C(lbha.cluster.director_planes) filter returns it. A director not named uses O(dataplane).
      - With C(auto) the definition is validated for ipvs, and what only the nftables plane refuses
        is a warning (it is an error on a director whose kernel has no IPVS).
    type: dict
    default: {}
seealso:
  - module: lbha.cluster.keepalived_config
'''

EXAMPLES = r'''
- name: Validate lbha_cluster for every director
  lbha.cluster.cluster_validate:
    cluster: "{{ lbha_cluster }}"
    directors: "{{ groups['directors'] | lbha.cluster.director_hosts(hostvars) }}"
    dataplanes: "{{ groups['directors'] | lbha.cluster.director_planes(hostvars) }}"
    real_server_hosts: "{{ lbha_cluster | lbha.cluster.real_server_hosts(groups, hostvars) }}"
  run_once: true
  delegate_to: localhost
'''

RETURN = r'''
directors:
  description:
    - Per director, its initial VRRP state and its priority per instance (C(priorities)), and
      its per-host priority (C(priority), null when every instance sets its own).
  returned: success
  type: dict
  sample: {lb1: {priority: 100, priorities: {VI_1: 100}, router_id: master, state: {VI_1: MASTER}},
           lb2: {priority: 90, priorities: {VI_1: 90}, router_id: backup, state: {VI_1: BACKUP}}}
virtual_services:
  description: The virtual services, C({address, port, protocol, lb_kind, real_servers}) (real_servers is a count).
  returned: success
  type: list
  elements: dict
  sample: [{address: 1.1.1.111, port: 80, protocol: TCP, lb_kind: DR, real_servers: 2}]
vips:
  description: Every VIP address (without prefix length).
  returned: success
  type: list
  elements: str
  sample: [1.1.1.111]
errors:
  description: Every validation error (also joined in C(msg)).
  returned: failure
  type: list
  elements: str
  sample: ["lb1, lb2: lbha_cluster.virtual_servers[0].port: 70000 is outside 1-65535"]
'''


from ansible_collections.lbha.cluster.plugins.module_utils._args import (
    cluster_module, validate, validate_argument_spec)
from ansible_collections.lbha.cluster.plugins.module_utils.model import ValidationError


def main():
    module = cluster_module(argument_spec=validate_argument_spec(), supports_check_mode=True)
    try:
        result, warnings = validate(module.params)
    except ValidationError as e:
        for w in e.warnings:
            module.warn(w)
        module.fail_json(msg="The cluster definition is not valid:\n" + "\n".join(e.errors), errors=e.errors)
    for w in warnings:
        module.warn(w)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
