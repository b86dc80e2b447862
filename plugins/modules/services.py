#!/usr/bin/python
# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

DOCUMENTATION = r'''
---
module: services
short_description: Enable and start several systemd units in one call
version_added: 0.2.0
description:
  - Reads the state of every unit of O(names) with one C(systemctl show), reloads systemd's
    configuration when one of them changed on disk (or O(daemon_reload) asks for it), enables the
    ones that are not and starts the ones that are not running. Units that are enabled and running
    cost that one read.
  - A unit systemd does not know yet (its file written since the last C(daemon-reload)) makes it
    reload and look again; a unit that still does not exist, or is masked, is an error before
    anything else changes.
  - It never restarts or reloads a running unit; that is the roles' handlers' work.
author:
  - lbha.cluster maintainers (@lbha)
attributes:
  check_mode:
    support: full
    description: Reports what it would reload, enable and start; changes nothing.
  diff_mode:
    support: none
    description: Nothing to show beyond RV(enabled) and RV(started).
  platform:
    support: full
    platforms: posix
    description: systemd.
options:
  names:
    description: The units (a name without a suffix is a C(.service)), started in one transaction.
    type: list
    elements: str
    required: true
  daemon_reload:
    description: Run C(systemctl daemon-reload) first even when no listed unit needs it.
    type: bool
    default: false
seealso:
  - module: ansible.builtin.systemd_service
    description: One unit per call, with every state and option.
'''

EXAMPLES = r'''
- name: The health path and firewalld, enabled and running
  lbha.cluster.services:
    names: [lbha-health.service, firewalld]
'''

RETURN = r'''
daemon_reload:
  description:
    - Whether systemd's configuration was (or would be) reloaded. A reload for a unit changed on
      disk is a change; one only asked for by O(daemon_reload) is not.
  returned: success
  type: bool
enabled:
  description: The units enabled by this run.
  returned: success
  type: list
  elements: str
  sample: [lbha-vip.service]
started:
  description: The units started by this run.
  returned: success
  type: list
  elements: str
  sample: [lbha-vip.service]
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.lbha.cluster.plugins.module_utils._commands import run_or_fail
from ansible_collections.lbha.cluster.plugins.module_utils.units import (
    UnitError, commands, missing, parse_show, plan, show_argv, unit_name)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            names=dict(type="list", elements="str", required=True),
            daemon_reload=dict(type="bool", default=False),
        ),
        supports_check_mode=True,
    )
    systemctl = module.get_bin_path("systemctl", required=True)
    try:
        names = []
        for name in module.params["names"]:
            name = unit_name(name)
            if name not in names:
                names.append(name)
    except UnitError as exc:
        module.fail_json(msg=str(exc))
    if not names:
        module.exit_json(changed=False, daemon_reload=False, enabled=[], started=[])

    def show():
        out = run_or_fail(module, show_argv(systemctl, names), "systemctl show")
        try:
            return parse_show(out, names)
        except UnitError as exc:
            module.fail_json(msg=str(exc))

    states = show()
    reloaded = False
    unknown = missing(states)
    if unknown and module.check_mode:
        # the unit file this run would write is not there in check mode
        module.warn("check mode: %s not known to systemd (yet); it would be enabled and started" % ", ".join(unknown))
        for name in unknown:
            states[name] = dict(LoadState="loaded", ActiveState="inactive", UnitFileState="disabled")
    elif unknown:
        # a unit file written since systemd last looked: read the configuration again, then look again
        run_or_fail(module, [systemctl, "daemon-reload"])
        reloaded = True
        states = show()
    try:
        steps = plan(states, module.params["daemon_reload"] and not reloaded)
    except UnitError as exc:
        module.fail_json(msg=str(exc))
    if reloaded:
        steps["daemon_reload"] = True
        steps["stale"] = unknown + steps["stale"]
    result = dict(changed=bool(steps["stale"] or steps["enable"] or steps["start"]),
                  daemon_reload=steps["daemon_reload"], enabled=steps["enable"], started=steps["start"])
    if module.check_mode:
        module.exit_json(**result)
    for argv in commands(systemctl, dict(steps, daemon_reload=steps["daemon_reload"] and not reloaded)):
        run_or_fail(module, argv, **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
