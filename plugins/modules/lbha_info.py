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
  - Read-only. Reports, for the director it runs on, what its host document
    (O(document), written by M(lbha.cluster.keepalived_config)) says it is - the forwarding
    plane, the VRRP instances and their VIPs, the drained real servers - and what it is doing
    now - the VRRP state of each instance, whether it holds each VIP (on which interface and
    label), the forwarding table with real-server health and counters, whether keepalived runs
    and, on the nftables plane, whether the checker is alive and its table loaded.
  - Nothing is guessed - the plane, the instances and the paths are the document's. A host
    without a document reports C(deployed=false) and the VIPs of O(vips) only.
  - VRRP states come from the notify hook's state files. Without a state file the state is
    inferred from VIP ownership (all VIPs of the instance held = C(MASTER), none = C(BACKUP))
    and C(state_source) says so.
  - On the C(ipvs) plane the table comes from C(ipvsadm -L -n) and C(ipvsadm -L -n --stats
    --exact); a real server keepalived took out is absent or has weight C(0). On the
    C(nftables) plane health comes from the checker's state file and packet counters per
    virtual server from C(nft -j list table netdev <table>).
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
  document:
    description: The director's host document.
    type: path
    default: /etc/lbha/cluster.json
  vips:
    description:
      - More VIPs to report on (C(1.1.1.111) or C(1.1.1.111/24)), besides those of the document;
        on a host without a document, the only ones (a real server holds them on C(lo)).
    type: list
    elements: str
    default: []
  keepalived_pidfile:
    description: keepalived's pid file; when it is missing or stale, C(pidof keepalived) is asked.
    type: path
    default: /run/keepalived.pid
notes:
  - Run it with C(become), as the document, C(ipvsadm) and C(nft) need root.
seealso:
  - module: lbha.cluster.keepalived_config
  - module: lbha.cluster.drain
"""

EXAMPLES = r"""
# Run on the directors with become: the document, ipvsadm and nft need root.
- name: Status of this director
  lbha.cluster.lbha_info:
  register: lb

- name: Show the VRRP state of each instance
  ansible.builtin.debug:
    msg: "{{ inventory_hostname }}: {{ lb.vrrp_instances | map(attribute='state') | join(',') }}"

- name: The cluster's problems (split brain, unheld VIPs, a dead checker)
  ansible.builtin.debug:
    msg: "{{ (ansible_play_hosts_all | lbha.cluster.director_reports(hostvars, 'lb') | lbha.cluster.cluster_status).problems }}"
  run_once: true

- name: Real servers that are down
  ansible.builtin.debug:
    msg: "{{ lb.virtual_servers | map(attribute='real_servers') | flatten | rejectattr('healthy') | map(attribute='address') }}"
"""

RETURN = r"""
deployed:
  description: Whether the host has a host document (a director converged by this collection).
  returned: always
  type: bool
director:
  description: The director's name in the document.
  returned: always
  type: str
  sample: lb1
dataplane:
  description: The plane of the document, C(ipvs) or C(nftables); C(none) without a document.
  returned: always
  type: str
  sample: ipvs
drained:
  description: The administrative state - drained real servers (C(address), C(address:port), C([v6]:port)).
  returned: always
  type: list
  elements: str
  sample: ["1.1.1.3"]
services:
  description: The systemd units of keepalived and of the nftables checker, as the document names them (null without one).
  returned: always
  type: dict
  sample: {keepalived: keepalived, checker: lbha-checker}
master:
  description: Whether any VRRP instance is MASTER here.
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
  description: One entry per instance of the document.
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
      description: The instance's VIPs.
      type: list
      elements: str
    virtual_router_id:
      description: The instance's VRID.
      type: int
    priority:
      description: This director's configured priority.
      type: int
    nopreempt:
      description: Whether the instance is configured with C(nopreempt).
      type: bool
  sample:
    - {name: VI_1, state: MASTER, state_source: file, vips: [1.1.1.111], virtual_router_id: 51, priority: 100,
       nopreempt: false}
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
  description: The forwarding table of the plane in use.
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
        - C(address), C(port), C(forward), C(weight), C(healthy), C(drained), C(active_conn), C(inactive_conn),
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
        - {address: 1.1.1.3, port: 80, forward: DR, weight: 1, healthy: true, drained: false, active_conn: 0,
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
checker:
  description:
    - The nftables plane's checker - C(pid), C(updated) and C(age) of its state file, C(alive) (a
      live process rewrote it recently) and C(table_loaded) (the netdev table is in the kernel).
    - Null on the ipvs plane and without a document.
  returned: always
  type: dict
  sample: {pid: 923, updated: 1764046500.1, age: 2.3, alive: true, table_loaded: true}
"""

import glob
import os
import stat
import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.lbha.cluster.plugins.module_utils import hostdoc
from ansible_collections.lbha.cluster.plugins.module_utils.ipvsadm import (
    IpvsError, merge_list_stats, parse_list, parse_stats,
)
from ansible_collections.lbha.cluster.plugins.module_utils.status import (
    build_report, checker_liveness, checker_virtual_servers, mark_drained, parse_checker_state, parse_ip_addr,
    parse_nft_counters, parse_state_file, vip_ownership, vrrp_instances,
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


def _read_state_file(path):
    """A VRRP state file's first bytes, or None. The directory belongs to keepalived's script user:
    a symlink is not followed and a FIFO or device is not opened for reading (it could block or
    expose another file to this root process)."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        return os.read(fd, 64).decode("ascii", "replace")
    except OSError:
        return None
    finally:
        os.close(fd)


def _state_files(state_dir):
    states = {}
    for path in sorted(glob.glob(os.path.join(state_dir, "*.state"))):
        name = os.path.basename(path)[:-len(".state")]
        states[name] = parse_state_file(_read_state_file(path))
    return states


def _ipvs(module, warnings):
    """The virtual servers of the IPVS table ([] when the kernel or ipvsadm cannot say)."""
    if not os.path.exists(PROC_IP_VS):
        warnings.append("the host document says ipvs, but this kernel has no IPVS (%s is missing)" % PROC_IP_VS)
        return []
    ipvsadm = module.get_bin_path("ipvsadm", opt_dirs=["/sbin", "/usr/sbin"])
    if not ipvsadm:
        warnings.append("the kernel has IPVS but ipvsadm is not installed; the IPVS table is not reported")
        return []
    rc, out, err = module.run_command([ipvsadm, "-L", "-n"])
    if rc != 0:
        warnings.append("ipvsadm -L -n failed: %s" % (err.strip() or out.strip()))
        return []
    rc2, out2, err2 = module.run_command([ipvsadm, "-L", "-n", "--stats", "--exact"])
    try:
        listing = parse_list(out)
        stats = parse_stats(out2) if rc2 == 0 else {}
    except IpvsError as exc:
        warnings.append("cannot parse ipvsadm output: %s" % exc)
        return []
    if rc2 != 0:
        warnings.append("ipvsadm --stats failed: %s" % (err2.strip() or out2.strip()))
    return merge_list_stats(listing, stats)


def _nft(module, table):
    """(table loaded?, counters)."""
    nft = module.get_bin_path("nft", opt_dirs=["/sbin", "/usr/sbin"])
    if not nft:
        return False, None
    rc, out, _err = module.run_command([nft, "-j", "list", "table", "netdev", table])
    if rc != 0:
        return False, None
    return True, parse_nft_counters(out)


def _pid_alive(pid):
    """Whether ``pid`` is the checker daemon (a pid reused by another program is not)."""
    cmdline = _read(os.path.join(PROC, str(pid), "cmdline"))
    return bool(cmdline) and "lbha_checkerd" in cmdline


def main():
    module = AnsibleModule(
        argument_spec=dict(
            document=dict(type="path", default=hostdoc.DEFAULT_PATH),
            vips=dict(type="list", elements="str", default=[]),
            keepalived_pidfile=dict(type="path", default="/run/keepalived.pid"),
        ),
        supports_check_mode=True,
    )
    p = module.params
    warnings = []
    doc = None
    if os.path.exists(p["document"]):
        try:
            doc = hostdoc.load(p["document"])
        except hostdoc.HostDocumentError as exc:
            module.fail_json(msg=str(exc))
    instances = hostdoc.instances(doc) if doc else []
    vips = hostdoc.vips(doc) if doc else []
    vips += [v for v in p["vips"] if v not in vips]

    ip = module.get_bin_path("ip", required=True, opt_dirs=["/sbin", "/usr/sbin"])
    rc, out, err = module.run_command([ip, "-j", "addr", "show"])
    if rc != 0:
        module.fail_json(msg="ip -j addr show failed: %s" % err.strip(), rc=rc)
    try:
        vip_status = vip_ownership(vips, parse_ip_addr(out))
    except ValueError as exc:
        module.fail_json(msg=str(exc))

    vrrp = vrrp_instances(_state_files(doc["paths"]["vrrp_state_dir"]) if doc else {}, instances, vip_status)
    virtual_servers = []
    checker = None
    if doc and doc["plane"] == "ipvs":
        drained = set(doc["drained"])
        virtual_servers = mark_drained(_ipvs(module, warnings), lambda a, port: hostdoc.is_drained(drained, a, port))
    elif doc:
        loaded, counters = _nft(module, doc["nftables"]["table"])
        text = _read(doc["paths"]["checker_state"])
        state = parse_checker_state(text) if text is not None else None
        if text is not None and state is None:
            warnings.append("%s is not a valid checker state file" % doc["paths"]["checker_state"])
        virtual_servers = checker_virtual_servers(state, counters)
        checker = checker_liveness(state, time.time(), _pid_alive, loaded)
    report = build_report(doc, vrrp, vip_status, virtual_servers, _keepalived(module, p["keepalived_pidfile"]), checker)
    for w in warnings:
        module.warn(w)
    module.exit_json(changed=False, **report)


if __name__ == "__main__":
    main()
