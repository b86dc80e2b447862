#!/usr/bin/python
# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

DOCUMENTATION = r'''
---
module: firewall_rules
short_description: Open ports and keep rich rules of a firewalld zone, runtime and permanent, in one call
version_added: 0.2.0
description:
  - Reads the zone's runtime and permanent configuration (over firewalld's D-Bus API when the
    module's Python has the C(firewall) package, as firewalld's own Python does; otherwise
    C(firewall-cmd --list-all)), then adds
    the missing O(ports) and O(rich_rules) and removes O(absent_rich_rules) in both, so the zone
    is right now and after a reload or a reboot. A zone that needs nothing costs two reads and
    runs no program; changes are made with C(firewall-cmd).
  - With O(purge_vrrp), every rich rule of the zone that accepts VRRP and is not in O(rich_rules)
    is removed too (a director that left the group, a subnet an earlier release admitted); the
    director role owns the zone's VRRP rules.
  - With O(start), firewalld is enabled and started first when it is not (the same C(systemctl)
    calls as M(lbha.cluster.services)); a director needs no separate task, and no round trip, for it.
  - Rich rules are compared as firewalld lists them (whitespace collapsed); write them in that form
    (C(rule family="ipv4" source address="1.1.1.2" protocol value="vrrp" accept)).
author:
  - lbha.cluster maintainers (@lbha)
attributes:
  check_mode:
    support: full
    description: Reports the changes it would make, per configuration; changes nothing.
  diff_mode:
    support: full
    description: The zone's ports and rich rules before and after, runtime and permanent.
  platform:
    support: full
    platforms: posix
    description: A running firewalld with C(firewall-cmd) (started by the module with O(start)), systemd with O(start).
options:
  start:
    description:
      - Enable and start C(firewalld.service) first when it is not enabled or not running.
      - In check mode a firewalld that is not running cannot be read; the module then reports the
        start as a change, warns, and reports no rule changes.
    type: bool
    default: false
  zone:
    description: The zone; the default zone when not given.
    type: str
  ports:
    description: Ports to open, C(PORT[-PORT]/PROTOCOL) (V(80/tcp)); a bare number is TCP.
    type: list
    elements: str
    default: []
  rich_rules:
    description: Rich rules the zone must have.
    type: list
    elements: str
    default: []
  absent_rich_rules:
    description: Rich rules the zone must not have.
    type: list
    elements: str
    default: []
  purge_vrrp:
    description: Remove every rich rule that accepts VRRP and is not in O(rich_rules).
    type: bool
    default: false
seealso:
  - module: ansible.posix.firewalld
    description: One port, service or rich rule per call, with every other firewalld setting.
'''

EXAMPLES = r'''
- name: VRRP from the peer only, the virtual service's port, no stale VRRP rule
  lbha.cluster.firewall_rules:
    ports: [80/tcp]
    rich_rules:
      - rule family="ipv4" source address="1.1.1.2" protocol value="vrrp" accept
    purge_vrrp: true
'''

RETURN = r'''
service:
  description: What O(start) did to C(firewalld.service) (or would do, in check mode).
  returned: when O(start) is set
  type: dict
  sample: {enabled: [firewalld.service], started: []}
runtime:
  description: The changes of the runtime configuration.
  returned: success
  type: dict
  sample: {add_ports: [80/tcp], add_rich_rules: [], remove_rich_rules: []}
permanent:
  description: The changes of the permanent configuration.
  returned: success
  type: dict
  sample: {add_ports: [80/tcp], add_rich_rules: [], remove_rich_rules: []}
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.lbha.cluster.plugins.module_utils._commands import run_or_fail
from ansible_collections.lbha.cluster.plugins.module_utils.firewall import (
    parse_list_all, zone_commands, zone_plan, zone_state)
from ansible_collections.lbha.cluster.plugins.module_utils.units import (
    UnitError, commands as unit_commands, parse_show, plan as unit_plan, show_argv)

FIREWALLD = "firewalld.service"


def _read_dbus(zone):
    """``{"runtime": state, "permanent": state}`` of the zone over firewalld's D-Bus API, or None when
    this Python has no firewall package or firewalld does not answer (firewall-cmd reads it then)."""
    try:
        from firewall.client import FirewallClient  # pylint: disable=import-outside-toplevel
        client = FirewallClient()
        if not client.connected:
            return None
        name = zone or client.getDefaultZone()
        runtime = client.getZoneSettings(name)
        permanent = client.config().getZoneByName(name).getSettings()
        return {"runtime": zone_state(runtime.getPorts(), runtime.getRichRules()),
                "permanent": zone_state(permanent.getPorts(), permanent.getRichRules())}
    except Exception:  # pylint: disable=broad-except
        return None


def _start(module, result):
    """Enable and start firewalld when it is not; False when check mode cannot go on (not running)."""
    systemctl = module.get_bin_path("systemctl", required=True)
    out = run_or_fail(module, show_argv(systemctl, [FIREWALLD]), "systemctl show")
    try:
        steps = unit_plan(parse_show(out, [FIREWALLD]))
    except UnitError as exc:
        module.fail_json(msg=str(exc))
    result["service"] = dict(enabled=steps["enable"], started=steps["start"])
    if steps["enable"] or steps["start"]:
        result["changed"] = True
    if module.check_mode:
        if steps["start"]:
            module.warn("check mode: firewalld is not running; it would be started, then the zone's rules set")
            return False
        return True
    for argv in unit_commands(systemctl, dict(steps, daemon_reload=False)):
        run_or_fail(module, argv, **result)
    return True


def _show(state):
    return "ports: %s\nrich rules:\n%s" % (" ".join(sorted(state["ports"])),
                                           "".join("  %s\n" % r for r in state["rich_rules"]))


def main():
    module = AnsibleModule(
        argument_spec=dict(
            zone=dict(type="str"),
            ports=dict(type="list", elements="str", default=[]),
            rich_rules=dict(type="list", elements="str", default=[]),
            absent_rich_rules=dict(type="list", elements="str", default=[]),
            purge_vrrp=dict(type="bool", default=False),
            start=dict(type="bool", default=False),
        ),
        supports_check_mode=True,
    )
    p = module.params
    firewall_cmd = module.get_bin_path("firewall-cmd", required=True, opt_dirs=["/usr/sbin", "/sbin"])
    zone_args = ["--zone=%s" % p["zone"]] if p["zone"] else []
    result = dict(changed=False, diff=[])
    if p["start"] and not _start(module, result):
        result.pop("diff")
        module.exit_json(**result)
    commands = []
    zones = _read_dbus(p["zone"])
    for config, permanent in (("runtime", False), ("permanent", True)):
        if zones is not None:
            current = zones[config]
        else:
            argv = [firewall_cmd] + (["--permanent"] if permanent else []) + zone_args + ["--list-all"]
            out = run_or_fail(module, argv, "%s (is firewalld running?)" % " ".join(argv[1:]))
            current = parse_list_all(out)
        try:
            plan = zone_plan(current, p["ports"], p["rich_rules"], p["absent_rich_rules"], p["purge_vrrp"])
        except ValueError as exc:
            module.fail_json(msg=str(exc))
        result[config] = plan
        if any(plan.values()):
            result["changed"] = True
            after = dict(ports=current["ports"] + plan["add_ports"],
                         rich_rules=[r for r in current["rich_rules"] if r not in plan["remove_rich_rules"]]
                         + plan["add_rich_rules"])
            result["diff"].append(dict(before_header="%s (%s)" % (p["zone"] or "default zone", config),
                                       after_header="%s (%s)" % (p["zone"] or "default zone", config),
                                       before=_show(current), after=_show(after)))
            commands += [[firewall_cmd] + c[1:] for c in zone_commands(plan, p["zone"], permanent)]
    if not module._diff:
        result.pop("diff")
    if module.check_mode:
        module.exit_json(**result)
    for argv in commands:
        run_or_fail(module, argv, **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
