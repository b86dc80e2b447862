#!/usr/bin/python
# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

DOCUMENTATION = r"""
---
module: lbha_info
short_description: Report a director's VRRP state, VIP ownership, forwarding table and real-server health
version_added: "0.1.0"
description:
  - Read-only. Reports, for the host it runs on,
    the data plane in use (C(ipvs), C(nftables) or C(none)),
    the VRRP state of each keepalived instance,
    whether the host holds each VIP (and on which interface and label),
    the forwarding table with real-server health and counters,
    and whether keepalived runs.
  - VRRP states come from C(/run/lbha/vrrp/<instance>.state), written by the notify hook the
    director role installs. Without a state file the state is inferred from VIP ownership
    (all VIPs of the instance held = C(MASTER), none = C(BACKUP)) and C(state_source) says so.
  - On the C(ipvs) plane the table comes from C(ipvsadm -L -n) and C(ipvsadm -L -n --stats
    --exact); a real server keepalived took out is absent or has weight C(0). On the
    C(nftables) plane health comes from the checker's state file and packet counters per
    virtual server from C(nft -j list table netdev lbha).
author:
  - lbha.cluster maintainers (@lbha)
attributes:
  check_mode:
    support: full
    description: The module never changes anything.
  diff_mode:
    support: none
    description: Nothing changes, so there is nothing to show.
  platform:
    support: full
    platforms: posix
    description: Linux with iproute2.
options:
  vips:
    description:
      - The VIPs to report on (C(1.1.1.111) or C(1.1.1.111/24)).
      - By default, every address of the C(virtual_ipaddress) and C(virtual_ipaddress_excluded)
        blocks of O(keepalived_conf).
    type: list
    elements: str
  keepalived_conf:
    description: keepalived's configuration, read for the instances and their VIPs.
    type: path
    default: /etc/keepalived/keepalived.conf
  state_dir:
    description: Directory of the VRRP state files written by the notify hook.
    type: path
    default: /run/lbha/vrrp
  checker_state:
    description: State file of the nftables plane's checker daemon.
    type: path
    default: /run/lbha/checker.json
  nft_table:
    description: Name of the C(netdev) table of the nftables plane.
    type: str
    default: lbha
  keepalived_pidfile:
    description: keepalived's pid file; when it is missing or stale, C(pidof keepalived) is asked.
    type: path
    default: /run/keepalived.pid
notes:
  - Run it with C(become), as C(ipvsadm) and C(nft) need root to read the kernel tables.
seealso:
  - module: lbha.cluster.ipvs
"""

EXAMPLES = r"""
# Run on the directors with become: ipvsadm and nft need root.
- name: Status of this director
  lbha.cluster.lbha_info:
    vips: [1.1.1.111]
  register: lb

- name: Show the VRRP state of each instance
  ansible.builtin.debug:
    msg: "{{ inventory_hostname }}: {{ lb.vrrp_instances | map(attribute='state') | join(',') }}"

- name: Exactly one director is MASTER
  ansible.builtin.assert:
    that:
      - masters | length == 1
    fail_msg: "MASTER on {{ masters }}"
  vars:
    masters: "{{ ansible_play_hosts | select('extract', hostvars, ['lb', 'master']) | list }}"
  run_once: true

- name: Real servers that are down
  ansible.builtin.debug:
    msg: "{{ lb.virtual_servers | map(attribute='real_servers') | flatten | rejectattr('healthy') | map(attribute='address') }}"
"""

RETURN = r"""
dataplane:
  description: C(ipvs) when the kernel has IPVS and it lists services; C(nftables) when the lbha netdev table or the checker state exists; else C(none).
  returned: always
  type: str
  sample: ipvs
master:
  description: True when at least one VRRP instance is MASTER on this host.
  returned: always
  type: bool
master_instances:
  description: Names of the instances that are MASTER here.
  returned: always
  type: list
  elements: str
holds_vips:
  description: The reported VIPs this host holds.
  returned: always
  type: list
  elements: str
  sample: [1.1.1.111]
vrrp_instances:
  description: One entry per instance found in the state directory or in keepalived.conf.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: Instance name.
      type: str
    state:
      description: C(MASTER), C(BACKUP), C(FAULT), C(STOP), or null when unknown.
      type: str
    state_source:
      description: C(file) (the notify hook's state file), C(vip) (inferred from VIP ownership) or C(none).
      type: str
    vips:
      description: The instance's VIPs from keepalived.conf.
      type: list
      elements: str
  sample:
    - {name: VI_1, state: MASTER, state_source: file, vips: [1.1.1.111]}
vips:
  description: Ownership of each VIP on this host.
  returned: always
  type: list
  elements: dict
  contains:
    address:
      description: The VIP.
      type: str
    held:
      description: Whether an interface of this host holds it.
      type: bool
    interface:
      description: The interface that holds it, or null.
      type: str
    label:
      description: The address label (C(eth0), C(lo:1)), or null.
      type: str
    prefixlen:
      description: Prefix length of the address, or null.
      type: int
  sample:
    - {address: 1.1.1.111, held: true, interface: eth0, label: eth0, prefixlen: 24}
virtual_servers:
  description: The forwarding table of the data plane in use.
  returned: always
  type: list
  elements: dict
  contains:
    address:
      description: Virtual address.
      type: str
    port:
      description: Virtual port.
      type: int
    protocol:
      description: C(TCP), C(UDP) or C(SCTP).
      type: str
    scheduler:
      description: Scheduler (C(lb_algo)).
      type: str
    real_servers:
      description:
        - C(address), C(port), C(forward), C(weight), C(healthy), C(active_conn), C(inactive_conn),
          C(conns), C(in_packets), C(out_packets), C(in_bytes), C(out_bytes).
        - Counters the data plane does not keep are null (per-real-server counters on the nftables plane).
      type: list
      elements: dict
  sample:
    - address: 1.1.1.111
      port: 80
      protocol: TCP
      scheduler: rr
      real_servers:
        - {address: 1.1.1.3, port: 80, forward: DR, weight: 1, healthy: true, active_conn: 0,
           inactive_conn: 6, conns: 6, in_packets: 36, out_packets: 0, in_bytes: 2244, out_bytes: 0}
keepalived:
  description: Whether keepalived runs, and its pid.
  returned: always
  type: dict
  contains:
    running:
      description: True when the keepalived process exists.
      type: bool
    pid:
      description: Its pid, or null.
      type: int
  sample: {running: true, pid: 812}
"""

import glob
import os

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.lbha.cluster.plugins.module_utils.ipvs import (
    IpvsError, merge_list_stats, parse_list, parse_stats,
)
from ansible_collections.lbha.cluster.plugins.module_utils.status import (
    build_report, checker_virtual_servers, choose_dataplane, parse_checker_state, parse_ip_addr,
    parse_keepalived_vips, parse_nft_counters, parse_state_file, vip_ownership, vrrp_instances,
)

PROC_IP_VS = "/proc/net/ip_vs"
PROC = "/proc"


def _read(path):
    try:
        with open(path, "r") as f:
            return f.read()
    except (IOError, OSError):
        return None


def _keepalived(module, pidfile):
    text = _read(pidfile)
    if text and text.strip().isdigit():
        pid = int(text.strip())
        comm = _read(os.path.join(PROC, str(pid), "comm"))
        if comm is not None and comm.strip().startswith("keepalived"):
            return {"running": True, "pid": pid}
    pidof = module.get_bin_path("pidof", opt_dirs=["/sbin", "/usr/sbin", "/bin"])
    if pidof:
        rc, out, _err = module.run_command([pidof, "keepalived"])
        pids = sorted(int(p) for p in out.split() if p.isdigit()) if rc == 0 else []
        if pids:
            return {"running": True, "pid": pids[0]}
    return {"running": False, "pid": None}


def _state_files(state_dir):
    states = {}
    for path in sorted(glob.glob(os.path.join(state_dir, "*.state"))):
        name = os.path.basename(path)[:-len(".state")]
        states[name] = parse_state_file(_read(path))
    return states


def _ipvs(module, warnings):
    """(services listed?, virtual servers) from ipvsadm, or (False, []) without IPVS."""
    if not os.path.exists(PROC_IP_VS):
        return False, []
    ipvsadm = module.get_bin_path("ipvsadm", opt_dirs=["/sbin", "/usr/sbin"])
    if not ipvsadm:
        warnings.append("the kernel has IPVS but ipvsadm is not installed; the IPVS table is not reported")
        return False, []
    rc, out, err = module.run_command([ipvsadm, "-L", "-n"])
    if rc != 0:
        warnings.append("ipvsadm -L -n failed: %s" % (err.strip() or out.strip()))
        return False, []
    rc2, out2, err2 = module.run_command([ipvsadm, "-L", "-n", "--stats", "--exact"])
    try:
        listing = parse_list(out)
        stats = parse_stats(out2) if rc2 == 0 else {}
    except IpvsError as exc:
        warnings.append("cannot parse ipvsadm output: %s" % exc)
        return False, []
    if rc2 != 0:
        warnings.append("ipvsadm --stats failed: %s" % (err2.strip() or out2.strip()))
    return bool(listing), merge_list_stats(listing, stats)


def _nft(module, table):
    """(table exists?, counters)."""
    nft = module.get_bin_path("nft", opt_dirs=["/sbin", "/usr/sbin"])
    if not nft:
        return False, None
    rc, out, _err = module.run_command([nft, "-j", "list", "table", "netdev", table])
    if rc != 0:
        return False, None
    return True, parse_nft_counters(out)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            vips=dict(type="list", elements="str"),
            keepalived_conf=dict(type="path", default="/etc/keepalived/keepalived.conf"),
            state_dir=dict(type="path", default="/run/lbha/vrrp"),
            checker_state=dict(type="path", default="/run/lbha/checker.json"),
            nft_table=dict(type="str", default="lbha"),
            keepalived_pidfile=dict(type="path", default="/run/keepalived.pid"),
        ),
        supports_check_mode=True,
    )
    p = module.params
    warnings = []

    conf_text = _read(p["keepalived_conf"])
    instance_vips = parse_keepalived_vips(conf_text) if conf_text else {}
    if p["vips"] is not None:
        vips = p["vips"]
    else:
        vips = [v for name in sorted(instance_vips) for v in instance_vips[name]]

    ip = module.get_bin_path("ip", required=True, opt_dirs=["/sbin", "/usr/sbin"])
    rc, out, err = module.run_command([ip, "-j", "addr", "show"])
    if rc != 0:
        module.fail_json(msg="ip -j addr show failed: %s" % err.strip(), rc=rc)
    try:
        addresses = parse_ip_addr(out)
        vip_status = vip_ownership(vips, addresses)
    except ValueError as exc:
        module.fail_json(msg=str(exc))

    vrrp = vrrp_instances(_state_files(p["state_dir"]), instance_vips, vip_status)

    ipvs_listed, ipvs_vs = _ipvs(module, warnings)
    nft_exists, counters = _nft(module, p["nft_table"])
    checker_text = _read(p["checker_state"])
    checker = parse_checker_state(checker_text) if checker_text is not None else None
    if checker_text is not None and checker is None:
        warnings.append("%s is not a valid checker state file" % p["checker_state"])
    dataplane = choose_dataplane(ipvs_listed, os.path.exists(PROC_IP_VS), nft_exists, checker_text is not None)
    if dataplane == "ipvs":
        virtual_servers = ipvs_vs
    elif dataplane == "nftables":
        virtual_servers = checker_virtual_servers(checker, counters)
    else:
        virtual_servers = []

    report = build_report(dataplane, vrrp, vip_status, virtual_servers, _keepalived(module, p["keepalived_pidfile"]))
    for w in warnings:
        module.warn(w)
    module.exit_json(changed=False, **report)


if __name__ == "__main__":
    main()
