#!/usr/bin/python
# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

DOCUMENTATION = r'''
---
module: keepalived_config
short_description: Render, validate and install keepalived.conf and the host document of one director
version_added: 0.1.0
description:
  - Validates the cluster definition for this director (every error names the field and the
    host), renders C(keepalived.conf) (C(global_defs), C(vrrp_script), C(vrrp_instance),
    C(vrrp_sync_group) and, with the C(ipvs) data plane, C(virtual_server)/C(real_server) with
    C(TCP_CHECK), C(HTTP_GET), C(SSL_GET) or C(MISC_CHECK)), tests it with C(keepalived -t)
    and replaces the live file atomically, keeping a backup.
  - Writes the director's host document (O(document), JSON, mode C(0600)) - the plane, the
    normalised model, the paths and the administrative state (drained real servers) - which the
    nftables checker, M(lbha.cluster.lbha_info), M(lbha.cluster.drain) and the operations
    playbooks read. The administrative state of the existing document is kept; only
    M(lbha.cluster.drain) changes it. A drained real server is rendered with weight C(0).
  - Nothing is written when validation or C(keepalived -t) fails. Files are given their mode
    and owner before they are renamed into place.
author:
  - lbha.cluster maintainers (@lbha)
extends_documentation_fragment:
  - lbha.cluster.cluster
attributes:
  check_mode:
    support: full
    description: Validates and renders, reports what would change, writes nothing and does not run C(keepalived -t).
  diff_mode:
    support: full
    description: Before and after of C(keepalived.conf) and of the host document; C(auth_pass) values are shown as C(********).
  platform:
    support: full
    platforms: posix
    description: Linux directors with keepalived 2.x.
options:
  host:
    description:
      - The director being rendered, C({name, address, priority, state, router_id}).
      - C(state) is derived when not set (MASTER for the highest priority among C(directors));
        C(router_id) defaults to C(name).
    type: dict
    required: true
  dest:
    description: Path of keepalived's configuration file.
    type: path
    default: /etc/keepalived/keepalived.conf
  document:
    description: Path of the host document.
    type: path
    default: /etc/lbha/cluster.json
  vrrp_state_dir:
    description: Directory where the notify hook records each instance's VRRP state (recorded in the document).
    type: path
    default: /run/lbha/vrrp
  checker_state:
    description: Path of the nftables checker's state file (recorded in the document).
    type: path
    default: /run/lbha/checker.json
  keepalived_service:
    description: systemd unit of keepalived (recorded in the document).
    type: str
    default: keepalived
  checker_service:
    description: systemd unit of the nftables checker (recorded in the document).
    type: str
    default: lbha-checker
  plane_check_script:
    description:
      - nftables plane - the program keepalived runs (as the script user) to track the plane's health
        (the C(lbha_plane) vrrp_script, weight 0, tracked by every instance that holds a virtual server's
        VIP). It fails when the checker's liveness file beside O(checker_state) is missing, older than
        10 seconds, names a process that is not the checker, or says the table is not loaded; the
        instances then go to FAULT and give up their VIPs.
    type: path
    default: /usr/lib/lbha-cluster/plane-check
  flow_timeout:
    description: nftables plane - seconds an idle flow stays pinned to its real server.
    type: int
    default: 300
  buckets:
    description: nftables plane - size of each virtual server's hash bucket table.
    type: int
    default: 251
  seed:
    description:
      - nftables plane - hash seed. Must be the same on every director so that a flow keeps its
        real server across a failover. Default - derived from the VRRP instance names.
    type: int
  validate:
    description:
      - Test the new file with C(keepalived -t -f) before it replaces the live one (when the
        C(keepalived) binary is installed). On failure the module fails with keepalived's messages.
      - The collection's own programs (O(notify_script), O(plane_check_script)) that are not
        installed yet are stood in for by C(/usr/bin/true) in the test, as with O(preflight); the
        director role installs them after this file, in one call with its other files.
    type: bool
    default: true
  preflight:
    description:
      - Validate, render and test the new C(keepalived.conf) with C(keepalived -t) in a private
        temporary directory, and change nothing on the host (also in check mode). The
        collection's own programs that are not installed yet (the notify hook, the plane check)
        are stood in for by C(/usr/bin/true) (not behind a symlinked directory, which keepalived
        2.3 refuses for a script run as root), and a script user that does not exist yet by C(root).
        Without keepalived on the host the test is skipped and RV(tested) is false.
      - C(site.yml) runs this on every director before any host changes.
    type: bool
    default: false
  backup:
    description: Keep a timestamped copy of the previous C(keepalived.conf) when it changes.
    type: bool
    default: true
  keep_backups:
    description: How many backups of C(keepalived.conf) to keep (each holds the VRRP password of its time); older ones are deleted.
    type: int
    default: 3
  mode:
    description: Permissions of C(keepalived.conf) (it holds the VRRP password). The host document is always C(0600).
    type: raw
    default: '0640'
  owner:
    description: Owner of the written files.
    type: str
  group:
    description: Group of the written files.
    type: str
notes:
  - keepalived before 2.2.8 (Debian 12 ships 2.2.7) terminates its own config test when a script
    runs as a non-root C(script_user); the module then repeats the test with C(script_user root)
    and says so in a warning.
seealso:
  - module: lbha.cluster.cluster_validate
  - module: lbha.cluster.drain
'''

EXAMPLES = r'''
- name: Render keepalived.conf for this director
  lbha.cluster.keepalived_config:
    cluster: "{{ lbha_cluster }}"
    host: {name: lb1, address: 1.1.1.1, priority: 100, router_id: master}
    directors:
      - {name: lb1, address: 1.1.1.1, priority: 100}
      - {name: lb2, address: 1.1.1.2, priority: 90}
    real_server_hosts:
      real_servers:
        - {name: web1, address: 1.1.1.3}
        - {name: web2, address: 1.1.1.4, check: {connect_timeout: 3, delay_before_retry: 3}}
  notify: Reload keepalived

- name: VRRP only, forwarding by the nftables plane
  lbha.cluster.keepalived_config:
    cluster: "{{ lbha_cluster }}"
    host: "{{ ([inventory_hostname] | lbha.cluster.director_hosts(hostvars))[0] }}"
    directors: "{{ groups['directors'] | lbha.cluster.director_hosts(hostvars) }}"
    real_server_hosts: "{{ lbha_cluster | lbha.cluster.real_server_hosts(groups, hostvars) }}"
    dataplane: nftables
'''

RETURN = r'''
dest:
  description: Path of keepalived's configuration file.
  returned: always
  type: str
  sample: /etc/keepalived/keepalived.conf
backup_file:
  description: Copy of the previous file, when one was made.
  returned: changed and a backup was made
  type: str
  sample: /etc/keepalived/keepalived.conf.12345.2026-01-01@10:00:00~
conf_changed:
  description: Whether C(keepalived.conf) changed (keepalived needs a reload).
  returned: always
  type: bool
document:
  description: Path of the host document.
  returned: always
  type: str
  sample: /etc/lbha/cluster.json
document_changed:
  description: Whether the host document changed (the nftables checker needs a reload).
  returned: always
  type: bool
plane:
  description: The forwarding plane written to the document.
  returned: success
  type: str
  sample: ipvs
previous_plane:
  description: The plane of the document this run replaced, or null when there was none.
  returned: success
  type: str
  sample: nftables
drained:
  description: The administrative state kept from the previous document (drained real servers).
  returned: success
  type: list
  elements: str
  sample: ["1.1.1.3"]
vrrp_instances:
  description: Names of the rendered VRRP instances.
  returned: success
  type: list
  elements: str
  sample: [VI_1]
virtual_servers:
  description: Number of virtual servers of the cluster (rendered with C(ipvs), in the host document with C(nftables)).
  returned: success
  type: int
  sample: 1
ipvs_sysctl:
  description:
    - The kernel's IPVS settings this director needs (C(net.ipv4.vs.sloppy_tcp) and
      C(net.ipv4.vs.sloppy_sctp), 1 or 0); empty on the nftables plane. The director role applies them.
  returned: success
  type: dict
  sample: {net.ipv4.vs.sloppy_tcp: 1, net.ipv4.vs.sloppy_sctp: 1}
ipvs_release:
  description:
    - The C(ipvsadm -D) commands that remove this director's virtual services, run by the director
      role's keepalived drop-in after a clean stop (keepalived runs with C(--dont-release-ipvs) on the
      ipvs plane, so IPVS keeps forwarding until VRRP has handed the VIPs over). Empty on nftables.
  returned: success
  type: list
  elements: str
  sample: ["ipvsadm -D -t 1.1.1.111:80"]
ipvs_notrack:
  description:
    - The nftables file that exempts the virtual services' packets from connection tracking on
      the ipvs plane (a director in direct routing sees one direction of every connection;
      conntrack would mark the client's FIN invalid and firewalld drop it). Empty on the nftables
      plane or when every service is a fwmark service. The director role writes and loads it.
  returned: success
  type: str
lvs_sync_daemon:
  description:
    - The connection sync daemon keepalived runs (C(instance), C(interface), C(id) and the optional
      C(maxlen), C(port), C(ttl), C(group)), or null when it is off or the plane is nftables.
  returned: success
  type: dict
  sample: {instance: VI_1, interface: eth0, id: 51, maxlen: null, port: null, ttl: null, group: null}
tested:
  description: With O(preflight), whether C(keepalived -t) ran (false when keepalived is not installed).
  returned: preflight
  type: bool
in_place:
  description:
    - With O(preflight), whether the host already has exactly this C(keepalived.conf) (with O(mode),
      O(owner) and O(group)) and this document, so that the same call without O(preflight) would
      change nothing. The director role then skips that call.
  returned: preflight
  type: bool
state:
  description: This director's initial VRRP state per instance.
  returned: success
  type: dict
  sample: {VI_1: MASTER}
errors:
  description: Every validation error (also joined in C(msg)).
  returned: failure
  type: list
  elements: str
  sample: ["lb2: lbha_cluster.vrrp_instances[0].virtual_router_id: 300 is outside 1-255"]
'''

import os
import pwd
import shutil
import tempfile

from ansible.module_utils.common.text.converters import to_native

from ansible_collections.lbha.cluster.plugins.module_utils import hostdoc, notrack
from ansible_collections.lbha.cluster.plugins.module_utils.ipvsadm import delete_commands
from ansible_collections.lbha.cluster.plugins.module_utils._args import cluster_argument_spec, cluster_module
from ansible_collections.lbha.cluster.plugins.module_utils.checker import STALE_SECONDS, liveness_path
from ansible_collections.lbha.cluster.plugins.module_utils._config import ConfigFiles, preflight_text, test_keepalived_conf
from ansible_collections.lbha.cluster.plugins.module_utils.keepalived import render
from ansible_collections.lbha.cluster.plugins.module_utils.model import ValidationError, ipvs_sysctl, normalize


def argument_spec():
    return cluster_argument_spec(
        host=dict(type="dict", required=True),
        dest=dict(type="path", default="/etc/keepalived/keepalived.conf"),
        document=dict(type="path", default=hostdoc.DEFAULT_PATH),
        vrrp_state_dir=dict(type="path", default=hostdoc.DEFAULT_PATHS["vrrp_state_dir"]),
        checker_state=dict(type="path", default=hostdoc.DEFAULT_PATHS["checker_state"]),
        keepalived_service=dict(type="str", default="keepalived"),
        checker_service=dict(type="str", default="lbha-checker"),
        plane_check_script=dict(type="path", default="/usr/lib/lbha-cluster/plane-check"),
        flow_timeout=dict(type="int", default=300),
        buckets=dict(type="int", default=251),
        seed=dict(type="int"),
        validate=dict(type="bool", default=True),
        preflight=dict(type="bool", default=False),
        backup=dict(type="bool", default=True),
        keep_backups=dict(type="int", default=3),
        mode=dict(type="raw", default="0640"),
        owner=dict(type="str"),
        group=dict(type="str"),
    )


def _user_exists(name):
    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False


def main():
    module = cluster_module(argument_spec=argument_spec(), supports_check_mode=True)
    p = module.params
    fail_result = dict(dest=p["dest"], document=p["document"], conf_changed=False, document_changed=False)

    try:
        model = normalize(p["cluster"], host=p["host"], directors=p["directors"],
                          real_server_hosts=p["real_server_hosts"], dataplane=p["dataplane"],
                          notify_script=p["notify_script"], script_user=p["script_user"],
                          plane_check="%s %s %d" % (p["plane_check_script"], liveness_path(p["checker_state"]),
                                                    STALE_SECONDS))
    except ValidationError as e:
        for w in e.warnings:
            module.warn(w)
        module.fail_json(msg="The cluster definition is not valid:\n" + "\n".join(e.errors), errors=e.errors,
                         **fail_result)
    for w in model["warnings"]:
        module.warn(w)

    files = ConfigFiles(module, p["dest"], p["document"])
    previous = files.previous_document()
    try:
        doc, dropped = hostdoc.build(
            model, p["dataplane"],
            paths={"document": p["document"], "keepalived_conf": p["dest"], "vrrp_state_dir": p["vrrp_state_dir"],
                   "checker_state": p["checker_state"]},
            services={"keepalived": p["keepalived_service"], "checker": p["checker_service"]},
            nftables={"buckets": p["buckets"], "flow_timeout": p["flow_timeout"], "seed": p["seed"]},
            drained=previous["drained"] if previous else ())
    except hostdoc.HostDocumentError as e:
        module.fail_json(msg="%s: %s" % (model["host"]["name"], to_native(e)), **fail_result)
    for ref in dropped:
        module.warn("%s is no longer a real server: its drained state in %s is dropped" % (ref, p["document"]))

    conf = render(hostdoc.render_model(doc))
    result = dict(changed=False, dest=p["dest"], document=p["document"], plane=doc["plane"],
                  previous_plane=previous["plane"] if previous else None, drained=doc["drained"],
                  vrrp_instances=[i["name"] for i in model["vrrp_instances"]],
                  virtual_servers=len(model["virtual_servers"]),
                  state=dict((i["name"], i["state"]) for i in model["vrrp_instances"]),
                  ipvs_sysctl=ipvs_sysctl(model), lvs_sync_daemon=model["global_defs"]["lvs_sync_daemon"],
                  ipvs_notrack=notrack.render(hostdoc.render_model(doc)),
                  ipvs_release=delete_commands(model["virtual_servers"]) if doc["plane"] == "ipvs" else [])
    conf_changed, doc_changed, diffs = files.compare(conf, doc)
    result.update(conf_changed=conf_changed, document_changed=doc_changed)

    if p["preflight"]:
        text = preflight_text(conf, (p["notify_script"], p["plane_check_script"]), _user_exists, os.path.exists)
        workdir = tempfile.mkdtemp(prefix="lbha-preflight-")
        try:
            result["tested"] = test_keepalived_conf(
                module, text, p["dest"], fail_result, directory=workdir,
                what="%s: nothing was changed on any host:" % model["host"]["name"])
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
        if not result["tested"]:
            module.warn("keepalived is not installed on %s yet: its configuration is tested once the role "
                        "has installed it" % model["host"]["name"])
        result["in_place"] = not (conf_changed or doc_changed or files.attributes_differ())
        module.exit_json(**result)

    if not module.check_mode:
        if conf_changed and p["validate"]:
            # the collection's own programs are installed after this file (one call for all of
            # the role's files): stood in for, like the preflight, while they are not there yet
            test_keepalived_conf(module, preflight_text(conf, (p["notify_script"], p["plane_check_script"]),
                                                        _user_exists, os.path.exists),
                                 p["dest"], fail_result)
        files.write(conf if conf_changed else None, doc if doc_changed else None,
                    backup=p["backup"], keep_backups=p["keep_backups"])
    changed = files.set_attributes(conf_changed or doc_changed)
    result["changed"] = changed
    if files.backup_file:
        result["backup_file"] = files.backup_file
    if module._diff and diffs:
        result["diff"] = diffs
    module.exit_json(**result)


if __name__ == "__main__":
    main()
