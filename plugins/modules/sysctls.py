#!/usr/bin/python
# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

DOCUMENTATION = r'''
---
module: sysctls
short_description: Keep a set of kernel settings in one sysctl.d file and live, in one call
version_added: 0.2.0
description:
  - Writes O(settings) to O(file), which systemd-sysctl applies at boot, and sets every value that
    differs under C(/proc/sys) now.
  - The lines of the keys of O(settings) are changed in place and missing keys are appended; every
    other line of O(file) stays. With O(exclusive) the file is this module's own and is rewritten
    whole (C(key=value) lines, sorted, under O(header)).
  - A key the kernel does not have is an error, before anything is written (in check mode a
    warning, since the kernel module that provides it may be one the run would load).
  - With O(exclusive) and an empty O(settings) the file is removed; live values are left as they are.
author:
  - lbha.cluster maintainers (@lbha)
attributes:
  check_mode:
    support: full
    description: Reports the keys it would set and the file it would write; changes nothing.
  diff_mode:
    support: full
    description: Before and after of the file.
  platform:
    support: full
    platforms: posix
    description: Linux.
options:
  settings:
    description:
      - Dotted names and values (V(net.ipv4.conf.lo.arp_ignore=1)). An interface whose name holds
        a dot is written with C(/) separators (V(net/ipv4/conf/eth0.100/arp_ignore)).
    type: dict
    required: true
  file:
    description: The file under C(/etc/sysctl.d) that holds them.
    type: path
    required: true
  header:
    description: Comment lines at the top of O(file), when this module creates it (or rewrites it, with O(exclusive)).
    type: str
    default: Managed by lbha.cluster
  exclusive:
    description: O(file) holds these settings only; rewrite it whole (and remove it when O(settings) is empty).
    type: bool
    default: false
'''

EXAMPLES = r'''
- name: The ARP settings of a direct-routing real server, now and at boot
  lbha.cluster.sysctls:
    file: /etc/sysctl.d/90-lbha-real-server.conf
    settings:
      net.ipv4.conf.all.arp_ignore: 1
      net.ipv4.conf.all.arp_announce: 2
'''

RETURN = r'''
set:
  description: The keys whose live value was (or, in check mode, would be) set.
  returned: success
  type: list
  elements: str
  sample: [net.ipv4.conf.all.arp_ignore]
file_changed:
  description: Whether O(file) was (or would be) written or removed.
  returned: success
  type: bool
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.lbha.cluster.plugins.module_utils._files import read_text, replace_or_remove, text_diff
from ansible_collections.lbha.cluster.plugins.module_utils.sysctl import (
    SysctlError, live, merge, normalise, render, to_set, write_live)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            settings=dict(type="dict", required=True),
            file=dict(type="path", required=True),
            header=dict(type="str", default="Managed by lbha.cluster"),
            exclusive=dict(type="bool", default=False),
        ),
        supports_check_mode=True,
    )
    p = module.params
    try:
        settings = normalise(p["settings"])
        # in check mode, a key of a kernel module this run would load (ip_vs) is not there yet
        keys, absent = to_set(settings, live(settings), allow_missing=module.check_mode)
        if absent:
            module.warn("check mode: the kernel has no %s (yet); it would be set" % ", ".join(absent))
    except SysctlError as exc:
        module.fail_json(msg=str(exc))
    old = read_text(p["file"])
    if p["exclusive"]:
        new = render(settings, p["header"]) if settings else None
    else:
        new = merge(old, settings, p["header"]) if settings or old is not None else None
    file_changed = new != old
    result = dict(changed=bool(keys or file_changed), set=keys, file_changed=file_changed)
    if module._diff and file_changed:
        result["diff"] = text_diff(p["file"], old, new)
    if module.check_mode:
        module.exit_json(**result)
    if file_changed:
        replace_or_remove(p["file"], new, 0o644)
    try:
        write_live(keys, settings)
    except (IOError, OSError) as exc:
        module.fail_json(msg="setting %s failed: %s" % (", ".join(keys), exc), **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
