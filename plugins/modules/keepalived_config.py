#!/usr/bin/python
# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

DOCUMENTATION = r'''
---
module: keepalived_config
short_description: Render, validate and install keepalived.conf for one director of an lbha cluster
version_added: 0.1.0
description:
  - Validates the cluster definition for this director (every error names the field and the
    host), renders C(keepalived.conf) (C(global_defs), C(vrrp_script), C(vrrp_instance),
    C(vrrp_sync_group) and, with the C(ipvs) data plane, C(virtual_server)/C(real_server) with
    C(TCP_CHECK), C(HTTP_GET), C(SSL_GET) or C(MISC_CHECK)), tests it with C(keepalived -t)
    and replaces the live file atomically, keeping a backup.
  - With the C(nftables) data plane, also writes the plane's document (C(dataplane_dest)) that
    the C(lbha-checker) service reads.
  - Nothing is written when validation or C(keepalived -t) fails.
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
    description: Before and after of C(keepalived.conf) (and of the nftables document); C(auth_pass) values are shown as C(********).
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
  dataplane_dest:
    description:
      - Path of the nftables plane's document (JSON). Written only with C(dataplane=nftables);
        left alone otherwise.
    type: path
    default: /etc/lbha/dataplane.json
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
    type: bool
    default: true
  backup:
    description: Keep a timestamped copy of the previous file when it changes.
    type: bool
    default: true
  mode:
    description: Permissions of the written files (they hold the VRRP password).
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
dataplane_changed:
  description: Whether the nftables plane's document changed (always false with C(ipvs)).
  returned: always
  type: bool
  sample: false
vrrp_instances:
  description: Names of the rendered VRRP instances.
  returned: success
  type: list
  elements: str
  sample: [VI_1]
virtual_servers:
  description: Number of virtual servers of the cluster (rendered with C(ipvs), in the plane's document with C(nftables)).
  returned: success
  type: int
  sample: 1
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

import json
import os
import re
import tempfile

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common.text.converters import to_bytes, to_native

from ansible_collections.lbha.cluster.plugins.module_utils.model import (
    DEFAULT_NOTIFY_SCRIPT, ValidationError, dataplane_document, normalize, secrets)
from ansible_collections.lbha.cluster.plugins.module_utils.keepalived import (
    MASK, config_test, render)

try:
    from ansible_collections.lbha.cluster.plugins.module_utils.nft import (
        DataplaneError, validate_dataplane)
except ImportError:  # pragma: no cover - the nftables plane is optional for this module
    validate_dataplane = None
    DataplaneError = ValueError

_AUTH_PASS_RE = re.compile(r"^(\s*auth_pass\s+)\S+", re.M)


def mask_conf(text):
    """Mask every auth_pass of a keepalived.conf text (also an old one, whose secret may differ)."""
    return _AUTH_PASS_RE.sub(r"\g<1>" + MASK, text or "")


def read(path):
    try:
        with open(path, "rb") as f:
            return f.read().decode("utf-8", "replace")
    except (IOError, OSError):
        return None


def argument_spec():
    return dict(
        cluster=dict(type="dict", required=True),
        host=dict(type="dict", required=True),
        directors=dict(type="list", elements="dict"),
        real_server_hosts=dict(type="dict", default={}),
        dataplane=dict(type="str", choices=["ipvs", "nftables"], default="ipvs"),
        notify_script=dict(type="str", default=DEFAULT_NOTIFY_SCRIPT),
        script_user=dict(type="str"),
        dest=dict(type="path", default="/etc/keepalived/keepalived.conf"),
        dataplane_dest=dict(type="path", default="/etc/lbha/dataplane.json"),
        flow_timeout=dict(type="int", default=300),
        buckets=dict(type="int", default=251),
        seed=dict(type="int"),
        validate=dict(type="bool", default=True),
        backup=dict(type="bool", default=True),
        mode=dict(type="raw", default="0640"),
        owner=dict(type="str"),
        group=dict(type="str"),
    )


class FileWriter(object):
    """Writes one file atomically (optionally tested first) and tracks changed/diff."""

    def __init__(self, module, path):
        self.module = module
        self.path = path
        self.backup_file = None

    def file_args(self):
        p = self.module.params
        return self.module.load_file_common_arguments(
            dict(path=self.path, mode=p["mode"], owner=p["owner"], group=p["group"]))

    def tmp_in_dir(self, content):
        directory = os.path.dirname(self.path) or "."
        if not os.path.isdir(directory):
            os.makedirs(directory, 0o755)
        fd, tmp = tempfile.mkstemp(prefix=".%s." % os.path.basename(self.path), dir=directory)
        with os.fdopen(fd, "wb") as f:
            f.write(to_bytes(content))
        os.chmod(tmp, 0o600)
        return tmp

    def install(self, tmp, backup):
        if backup and os.path.exists(self.path):
            self.backup_file = self.module.backup_local(self.path)
        self.module.atomic_move(tmp, self.path, unsafe_writes=False)

    def set_attributes(self, changed):
        if not os.path.exists(self.path):
            return changed
        return self.module.set_fs_attributes_if_different(self.file_args(), changed)


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    p = module.params
    for secret in secrets(p["cluster"]):
        module.no_log_values.add(secret)

    try:
        model = normalize(p["cluster"], host=p["host"], directors=p["directors"],
                          real_server_hosts=p["real_server_hosts"], dataplane=p["dataplane"],
                          notify_script=p["notify_script"], script_user=p["script_user"])
    except ValidationError as e:
        for w in e.warnings:
            module.warn(w)
        module.fail_json(msg="The cluster definition is not valid:\n" + "\n".join(e.errors),
                         errors=e.errors, dest=p["dest"], dataplane_changed=False)
    for w in model["warnings"]:
        module.warn(w)

    text = render(model)
    result = dict(changed=False, dest=p["dest"], dataplane_changed=False,
                  vrrp_instances=[i["name"] for i in model["vrrp_instances"]],
                  virtual_servers=len(model["virtual_servers"]),
                  state=dict((i["name"], i["state"]) for i in model["vrrp_instances"]))
    diffs = []

    # the nftables plane's document
    dp_text = None
    dp_writer = None
    if p["dataplane"] == "nftables":
        doc = dataplane_document(model, seed=p["seed"], buckets=p["buckets"], flow_timeout=p["flow_timeout"])
        if validate_dataplane is not None:
            try:
                dp_doc, dp_warnings = validate_dataplane(doc)
            except DataplaneError as e:
                module.fail_json(msg="%s: the nftables plane refuses the cluster: %s"
                                 % (model["host"]["name"], to_native(e)), dest=p["dest"],
                                 dataplane_changed=False)
            for w in dp_warnings:
                module.warn("%s: %s" % (model["host"]["name"], w))
        dp_text = json.dumps(doc, indent=2, sort_keys=True) + "\n"
        dp_writer = FileWriter(module, p["dataplane_dest"])
        dp_old = read(p["dataplane_dest"])
        if dp_old != dp_text:
            result["dataplane_changed"] = True
            diffs.append(dict(before_header=p["dataplane_dest"], after_header=p["dataplane_dest"],
                              before=dp_old or "", after=dp_text))

    writer = FileWriter(module, p["dest"])
    old = read(p["dest"])
    conf_changed = old != text
    if conf_changed:
        diffs.insert(0, dict(before_header=p["dest"], after_header=p["dest"],
                             before=mask_conf(old), after=render(model, mask=True)))

    if not module.check_mode:
        if conf_changed:
            tmp = writer.tmp_in_dir(text)
            try:
                binary = module.get_bin_path("keepalived", opt_dirs=["/usr/sbin", "/sbin"]) \
                    if p["validate"] else None
                if binary:
                    ok, messages, notes = config_test(tmp, module.run_command, binary)
                    for n in notes:
                        module.warn(n)
                    if not ok:
                        messages = messages.replace(tmp, p["dest"] + " (new)")
                        module.fail_json(msg="keepalived -t refused the new configuration; %s is unchanged:\n%s"
                                         % (p["dest"], messages), keepalived_messages=messages.splitlines(),
                                         dest=p["dest"], dataplane_changed=False)
                writer.install(tmp, p["backup"])
                tmp = None
            finally:
                if tmp and os.path.exists(tmp):
                    os.unlink(tmp)
        if dp_writer is not None and result["dataplane_changed"]:
            dp_writer.install(dp_writer.tmp_in_dir(dp_text), backup=False)

    changed = conf_changed or result["dataplane_changed"]
    changed = writer.set_attributes(changed)
    if dp_writer is not None:
        changed = dp_writer.set_attributes(changed)
    result["changed"] = changed
    if writer.backup_file:
        result["backup_file"] = writer.backup_file
    if module._diff and diffs:
        result["diff"] = diffs
    module.exit_json(**result)


if __name__ == "__main__":
    main()
