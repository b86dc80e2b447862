#!/usr/bin/python
# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

DOCUMENTATION = r'''
---
module: real_server_vips
short_description: Hold the VIPs of a direct-routing real server on its loopback, with stable labels
version_added: 0.2.0
description:
  - Puts the VIPs on O(interface) (IPv4 as C(/32) with a label C(<interface>:<n>), IPv6 as
    C(/128) with C(nodad)), now and at every boot through a systemd unit (O(unit_path)) whose
    C(ExecStart) lines are the record of the VIPs this module manages.
  - A VIP that stays keeps its address and its label - it is never deleted and added again, and
    adding or removing another VIP relabels nothing. A new VIP gets the lowest free label. A VIP
    that left the list is deleted, but only when this module put it there.
  - With O(sysctls), the kernel settings that keep the host from answering for the VIPs
    (C(arp_ignore), C(arp_announce), C(rp_filter), as the C(real_server) role passes them) are set
    first, live and in O(sysctl_file) (other lines of that file are kept), in the same call and
    before any VIP goes on the interface. Without it, this module does not touch them.
author:
  - lbha.cluster maintainers (@lbha)
attributes:
  check_mode:
    support: full
    description: Reports the settings it would set, the addresses it would add and remove and the files it would write; changes nothing.
  diff_mode:
    support: full
    description: Before and after of the unit file and of the sysctl file.
  platform:
    support: full
    platforms: posix
    description: Linux with iproute2 and systemd.
options:
  vips:
    description:
      - The VIPs, addresses without prefix (C(1.1.1.111), C(2001:db8::111)). An empty list removes
        every VIP this module put there, and the unit.
    type: list
    elements: str
    required: true
  interface:
    description: The interface that holds the VIPs.
    type: str
    default: lo
  unit_path:
    description: The systemd unit that restores the VIPs at boot.
    type: path
    default: /etc/systemd/system/lbha-vip.service
  sysctl_file:
    description: The file that holds the ARP sysctls (named in the unit's comment, written with O(sysctls)).
    type: path
    default: /etc/sysctl.d/90-lbha-real-server.conf
  sysctls:
    description:
      - Kernel settings (C(net.ipv4.conf.all.arp_ignore) and so on) to set now and keep in
        O(sysctl_file) before any VIP goes on; every key must exist. Not managed when not given.
    type: dict
  sysctl_header:
    description: The comment at the top of O(sysctl_file) when O(sysctls) writes it.
    type: str
    default: Managed by lbha.cluster
seealso:
  - name: The real_server role
    description: Puts the VIPs of C(lbha_cluster) on C(lo) with this module and sets the ARP sysctls.
    link: https://github.com/lbha/cluster/blob/main/roles/real_server/README.md
'''

EXAMPLES = r'''
- name: The cluster's VIPs on lo
  lbha.cluster.real_server_vips:
    vips: "{{ lbha_cluster | lbha.cluster.vips }}"
  register: vips

- name: Start the unit for the next boot when it changed
  ansible.builtin.systemd_service:
    name: lbha-vip.service
    enabled: true
    daemon_reload: "{{ vips.unit_changed }}"
'''

RETURN = r'''
vips:
  description: The VIPs with their labels (null for IPv6).
  returned: success
  type: list
  elements: dict
  sample: [{address: 1.1.1.111, label: "lo:1", version: 4}]
added:
  description: The addresses put on the interface by this run.
  returned: success
  type: list
  elements: str
  sample: [1.1.1.112]
removed:
  description: The addresses taken off the interface by this run.
  returned: success
  type: list
  elements: str
  sample: []
unit_changed:
  description: Whether the unit file was written (or deleted).
  returned: success
  type: bool
sysctls_set:
  description: The settings whose live value this run changed.
  returned: when O(sysctls) is given
  type: list
  elements: str
  sample: [net.ipv4.conf.lo.arp_ignore]
sysctl_file_changed:
  description: Whether O(sysctl_file) was written.
  returned: when O(sysctls) is given
  type: bool
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.lbha.cluster.plugins.module_utils._commands import run_or_fail
from ansible_collections.lbha.cluster.plugins.module_utils._files import read_text, replace_or_remove, text_diff
from ansible_collections.lbha.cluster.plugins.module_utils.sysctl import (
    SysctlError, live, merge, normalise, to_set, write_live)
from ansible_collections.lbha.cluster.plugins.module_utils.realserver import (
    VipError, ip_argv, parse_live, parse_record, plan, render_unit, vip_list)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            vips=dict(type="list", elements="str", required=True),
            interface=dict(type="str", default="lo"),
            unit_path=dict(type="path", default="/etc/systemd/system/lbha-vip.service"),
            sysctl_file=dict(type="path", default="/etc/sysctl.d/90-lbha-real-server.conf"),
            sysctls=dict(type="dict"),
            sysctl_header=dict(type="str", default="Managed by lbha.cluster"),
        ),
        supports_check_mode=True,
    )
    p = module.params
    try:
        wanted = vip_list(p["vips"], p["interface"])
    except VipError as exc:
        module.fail_json(msg=str(exc))
    sysctl = None
    if p["sysctls"] is not None:
        try:
            settings = normalise(p["sysctls"])
            keys, _absent = to_set(settings, live(settings))
        except SysctlError as exc:
            module.fail_json(msg=str(exc))
        old_file = read_text(p["sysctl_file"])
        new_file = merge(old_file, settings, p["sysctl_header"]) if settings or old_file is not None else None
        sysctl = dict(settings=settings, keys=keys, old=old_file, new=new_file)
    ip = module.get_bin_path("ip", required=True, opt_dirs=["/sbin", "/usr/sbin"])
    out = run_or_fail(module, [ip, "-j", "addr", "show", "dev", p["interface"]])
    old_unit = read_text(p["unit_path"])
    try:
        steps = plan(wanted, parse_live(out, p["interface"]), parse_record(old_unit), p["interface"])
    except VipError as exc:
        module.fail_json(msg=str(exc))
    unit = render_unit(steps["vips"], p["interface"], ip, p["sysctl_file"]) if wanted else None
    unit_changed = unit != old_unit
    result = dict(changed=bool(steps["add"] or steps["remove"] or unit_changed), vips=steps["vips"],
                  added=[v["address"] for v in steps["add"]], removed=steps["remove"], unit_changed=unit_changed)
    diffs = [text_diff(p["unit_path"], old_unit, unit)] if unit_changed else []
    if sysctl is not None:
        result.update(sysctls_set=sysctl["keys"], sysctl_file_changed=sysctl["new"] != sysctl["old"])
        result["changed"] = result["changed"] or bool(sysctl["keys"]) or result["sysctl_file_changed"]
        if result["sysctl_file_changed"]:
            diffs.insert(0, text_diff(p["sysctl_file"], sysctl["old"], sysctl["new"]))
    if module._diff and diffs:
        result["diff"] = diffs[0] if len(diffs) == 1 else diffs
    if module.check_mode:
        module.exit_json(**result)

    # the ARP settings before any VIP is on the interface
    if sysctl is not None:
        if result["sysctl_file_changed"]:
            replace_or_remove(p["sysctl_file"], sysctl["new"], 0o644)
        try:
            write_live(sysctl["keys"], sysctl["settings"])
        except (IOError, OSError) as exc:
            module.fail_json(msg="setting %s failed: %s" % (", ".join(sysctl["keys"]), exc), **result)

    # the unit first: a reboot halfway restores the new list
    if unit_changed:
        replace_or_remove(p["unit_path"], unit, 0o644)
    for address in steps["remove"]:
        vip = dict(address=address, label=None, version=6 if ":" in address else 4)
        run_or_fail(module, ip_argv(ip, "del", vip, p["interface"]), **result)
    for vip in steps["add"]:
        run_or_fail(module, ip_argv(ip, "add", vip, p["interface"]), **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
