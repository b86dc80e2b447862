#!/usr/bin/python
# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

DOCUMENTATION = r"""
---
module: ipvs
short_description: Manage the live IPVS table (virtual services, real servers, weights, drain)
version_added: "0.1.0"
description:
  - Reads the kernel's IPVS table with C(ipvsadm -S -n), computes the exact difference to the
    desired table and applies only that difference in one C(ipvsadm -R) run (add, edit or
    delete services and real servers, change weights and forwarding methods).
  - A service is identified by protocol, address and port (or by its firewall mark). Its
    scheduler and persistence are edited in place (C(ipvsadm -E)); a real server whose
    forwarding method or weight changes is edited (C(ipvsadm -e)), so established
    connections are kept.
  - Accepts the normalised virtual servers of the cluster model as they are (C(lb_algo),
    C(lb_kind), health checks and other keepalived-only keys are ignored), so a role can pass
    the model's output.
  - On the C(ipvs) data plane keepalived owns the table and rewrites it when a health check
    changes state; use this module for tables keepalived does not manage, for drills, or to
    drain real servers for maintenance.
  - Fails with a clear message when C(ipvsadm) is not installed or the kernel has no IPVS
    (use the nftables data plane there).
author:
  - lbha.cluster maintainers (@lbha)
attributes:
  check_mode:
    support: full
    description: Computes the commands and the diff without running them.
  diff_mode:
    support: full
    description: Before and after are the table in C(ipvsadm -S -n) form, sorted.
  platform:
    support: full
    platforms: posix
    description: Linux with the C(ip_vs) kernel module and C(ipvsadm).
options:
  virtual_servers:
    description:
      - The virtual services to manage. Each item is a mapping with
        C(address) and C(port) (or C(fwmark), an integer firewall mark, with C(family) C(inet)
        or C(inet6)); C(protocol) (C(TCP), C(UDP) or C(SCTP), default C(TCP));
        C(scheduler) or C(lb_algo) (an IPVS scheduler such as C(rr), C(wrr), C(lc), C(wlc),
        C(sh), C(mh); default C(wlc) as in ipvsadm); C(persistence_timeout) (seconds, C(0) or
        null for none); C(persistence_granularity) (netmask such as C(255.255.255.0), or an
        IPv6 prefix length); C(lb_kind) or C(forward) (default forwarding method of its real
        servers, C(DR), C(NAT) or C(TUN), default C(DR)); and C(real_servers), a list of
        mappings with C(address), C(port) (default the service port), C(weight) (default
        C(1)) and C(forward) (C(DR), C(NAT) or C(TUN)).
      - With O(state=present) the listed real servers are exactly those of the service;
        others are removed. DR and TUN real servers must have the service port, as in the
        cluster model; another port is an error (ipvsadm would silently use the service port).
      - Other keys of the cluster model (C(delay_loop), C(quorum), C(check), C(name), ...)
        are ignored; unknown keys are an error.
      - When omitted, the module changes no service and only applies O(drain) to the live table.
    type: list
    elements: dict
  state:
    description:
      - V(present) creates or updates the listed services.
      - V(absent) removes the listed services; a listed service that has C(real_servers)
        only loses those real servers and is kept.
    type: str
    choices: [present, absent]
    default: present
  purge:
    description:
      - With O(state=present), remove every service of the live table that is not listed.
    type: bool
    default: false
  drain:
    description:
      - Real servers to drain, as an address (every port) or C(address:port)
        (C([address]:port) for IPv6). They are kept with weight C(0), so they take no new
        connections while established ones finish.
      - Applies to the listed services, or to the live table when O(virtual_servers) is
        omitted. An entry that names no real server gives a warning.
    type: list
    elements: str
    default: []
  ipvsadm:
    description:
      - Path of the C(ipvsadm) program. By default it is searched in C(PATH), C(/sbin) and
        C(/usr/sbin).
    type: path
notes:
  - The change is one C(ipvsadm -R) run; afterwards the table is read again and the module
    fails if the kernel does not hold exactly the expected table.
  - C(ipvsadm -R) is not a transaction; should a command fail half way, the error lists
    the commands and the table is read again on the next run.
seealso:
  - module: lbha.cluster.lbha_info
  - name: ipvsadm(8)
    description: The administration tool of the Linux Virtual Server.
    link: https://manpages.debian.org/bookworm/ipvsadm/ipvsadm.8.en.html
"""

EXAMPLES = r"""
- name: The seed's LVS-DR service, round robin over two real servers
  lbha.cluster.ipvs:
    virtual_servers:
      - address: 1.1.1.111
        port: 80
        protocol: TCP
        scheduler: rr
        real_servers:
          - {address: 1.1.1.3, weight: 1}
          - {address: 1.1.1.4, weight: 1}

- name: Drain web1 before maintenance (weight 0, connections finish)
  lbha.cluster.ipvs:
    drain: [1.1.1.3]

- name: Pass the normalised virtual servers of the cluster model, remove anything else
  lbha.cluster.ipvs:
    virtual_servers: "{{ lbha_model.virtual_servers }}"
    purge: true

- name: NAT service with persistence per /24
  lbha.cluster.ipvs:
    virtual_servers:
      - address: 10.0.0.10
        port: 443
        lb_algo: wlc
        lb_kind: NAT
        persistence_timeout: 300
        persistence_granularity: 255.255.255.0
        real_servers:
          - {address: 192.168.10.11, port: 8443, weight: 2}
          - {address: 192.168.10.12, port: 8443, weight: 1}

- name: Remove one real server from a service, keep the service
  lbha.cluster.ipvs:
    state: absent
    virtual_servers:
      - address: 1.1.1.111
        port: 80
        real_servers:
          - address: 1.1.1.4
"""

RETURN = r"""
commands:
  description: The ipvsadm commands run (or that would run in check mode), in order, as fed to C(ipvsadm -R).
  returned: always
  type: list
  elements: str
  sample: ["-A -t 1.1.1.111:80 -s rr", "-a -t 1.1.1.111:80 -r 1.1.1.3:80 -g -w 1"]
virtual_servers:
  description: The IPVS table after the change (in check mode, the expected table).
  returned: always
  type: list
  elements: dict
  contains:
    key:
      description: Identity of the service, C(TCP/1.1.1.111:80) or C(FWM/1).
      type: str
    address:
      description: Virtual address (null for a firewall-mark service).
      type: str
    port:
      description: Virtual port (null for a firewall-mark service).
      type: int
    protocol:
      description: C(TCP), C(UDP) or C(SCTP) (null for a firewall-mark service).
      type: str
    fwmark:
      description: Firewall mark, or null.
      type: int
    family:
      description: C(inet) or C(inet6).
      type: str
    scheduler:
      description: IPVS scheduler.
      type: str
    persistence_timeout:
      description: Persistence in seconds, null without persistence.
      type: int
    persistence_granularity:
      description: Persistence netmask (IPv4) or prefix length (IPv6), null for a single address.
      type: raw
    real_servers:
      description: Real servers with C(address), C(port), C(forward) (C(DR), C(NAT), C(TUN)) and C(weight).
      type: list
      elements: dict
  sample:
    - key: TCP/1.1.1.111:80
      address: 1.1.1.111
      port: 80
      protocol: TCP
      fwmark: null
      family: inet
      scheduler: rr
      persistence_timeout: null
      persistence_granularity: null
      real_servers:
        - {address: 1.1.1.3, port: 80, forward: DR, weight: 1}
        - {address: 1.1.1.4, port: 80, forward: DR, weight: 1}
"""

import os

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.lbha.cluster.plugins.module_utils.ipvs import (
    comparable, desired_table, diff_tables, normalize_drain, render_save, restore_text, table_to_list, target_table,
)
from ansible_collections.lbha.cluster.plugins.module_utils.ipvsadm import (
    NO_IPVS_MESSAGE, IpvsError, is_no_ipvs, parse_save,
)


def _find_ipvsadm(module):
    path = module.params["ipvsadm"]
    if path:
        if not (os.path.isfile(path) and os.access(path, os.X_OK)):
            module.fail_json(msg="ipvsadm not found at %s: install the ipvsadm package (or fix the ipvsadm option)"
                             % path)
        return path
    found = module.get_bin_path("ipvsadm", opt_dirs=["/sbin", "/usr/sbin"])
    if not found:
        module.fail_json(msg="ipvsadm not found: install the ipvsadm package (or set the ipvsadm option)")
    return found


def _run(module, args, data=None):
    try:
        rc, out, err = module.run_command(args, data=data, binary_data=data is not None)
    except OSError as exc:
        module.fail_json(msg="cannot run %s: %s" % (args[0], exc))
    return rc, out, err


def _read_table(module, ipvsadm):
    args = [ipvsadm, "-S", "-n"]
    rc, out, err = _run(module, args)
    if rc != 0:
        text = "%s\n%s" % (out, err)
        if is_no_ipvs(text):
            module.fail_json(msg=NO_IPVS_MESSAGE, rc=rc, stdout=out, stderr=err, cmd=" ".join(args))
        if rc == 127 or "not found" in err.lower() or "no such file" in err.lower():
            module.fail_json(msg="ipvsadm not found at %s: install the ipvsadm package" % ipvsadm,
                             rc=rc, stderr=err)
        module.fail_json(msg="ipvsadm -S -n failed: %s" % (err.strip() or out.strip()), rc=rc,
                         stdout=out, stderr=err, cmd=" ".join(args))
    try:
        return parse_save(out)
    except IpvsError as exc:
        module.fail_json(msg="cannot parse the output of ipvsadm -S -n: %s" % exc, stdout=out)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            virtual_servers=dict(type="list", elements="dict"),
            state=dict(type="str", default="present", choices=["present", "absent"]),
            purge=dict(type="bool", default=False),
            drain=dict(type="list", elements="str", default=[]),
            ipvsadm=dict(type="path"),
        ),
        supports_check_mode=True,
    )
    params = module.params
    try:
        desired, warnings = desired_table(params["virtual_servers"],
                                          real_servers_required=params["state"] == "present")
        drain = normalize_drain(params["drain"])
    except IpvsError as exc:
        module.fail_json(msg=str(exc))
    if params["purge"] and params["state"] != "present":
        module.fail_json(msg="purge applies to state=present only")
    if params["purge"] and params["virtual_servers"] is None:
        module.fail_json(msg="purge needs virtual_servers (an empty list removes every service)")

    ipvsadm = _find_ipvsadm(module)
    live = _read_table(module, ipvsadm)
    target, matched = target_table(live, desired, state=params["state"], purge=params["purge"],
                                   drain=drain, manage_services=params["virtual_servers"] is not None)
    for item in drain:
        if item not in matched:
            warnings.append("drain: %s is not a real server of any managed service" % item)
    commands = diff_tables(live, target)
    result = dict(changed=bool(commands), commands=commands, virtual_servers=table_to_list(target))
    if module._diff:
        result["diff"] = dict(before=render_save(live), after=render_save(target),
                              before_header="ipvsadm -S -n", after_header="ipvsadm -S -n")
    for w in warnings:
        module.warn(w)

    if commands and not module.check_mode:
        rc, out, err = _run(module, [ipvsadm, "-R"], data=restore_text(commands))
        if rc != 0:
            text = "%s\n%s" % (out, err)
            msg = NO_IPVS_MESSAGE if is_no_ipvs(text) else "ipvsadm -R failed: %s" % (err.strip() or out.strip())
            module.fail_json(msg=msg, rc=rc, stdout=out, stderr=err, commands=commands)
        after = _read_table(module, ipvsadm)
        if comparable(after) != comparable(target):
            module.fail_json(msg="the IPVS table differs from the expected one after ipvsadm -R "
                                 "(another process, e.g. keepalived, may be changing it)",
                             commands=commands, expected=render_save(target), actual=render_save(after))
        result["virtual_servers"] = table_to_list(after)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
