#!/usr/bin/python
# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

DOCUMENTATION = r'''
---
module: drain
short_description: Drain or undrain real servers on a director, on either forwarding plane
version_added: 0.2.0
description:
  - Changes the administrative state of real servers in the director's host document
    (O(document), written by M(lbha.cluster.keepalived_config)) and applies it to the plane the
    document names. A drained real server takes no new connections while its established ones
    finish (IPVS weight C(0) semantics).
  - C(ipvs) plane - C(keepalived.conf) is rendered again from the document, with the drained real
    servers at weight C(0), tested with C(keepalived -t) and keepalived is reloaded. The drain is
    part of keepalived's configuration, so it survives reloads, restarts and health changes.
    An undrained real server gets its configured weight back in C(keepalived.conf); keepalived
    puts it back into IPVS only while its health check passes.
  - C(nftables) plane - the checker is reloaded and reads the drained real servers from the
    document; it gives them no buckets, and undrains a server only into the buckets it would have
    if healthy (a failing one stays out).
  - A converge (M(lbha.cluster.keepalived_config)) keeps the administrative state; only this
    module changes it.
author:
  - lbha.cluster maintainers (@lbha)
attributes:
  check_mode:
    support: full
    description: Reports what would change; writes nothing and reloads nothing.
  diff_mode:
    support: full
    description: Before and after of the document (and of C(keepalived.conf) on the ipvs plane), secrets masked.
  platform:
    support: full
    platforms: posix
    description: Directors converged by the C(lbha.cluster.director) role.
options:
  servers:
    description:
      - The real servers, as C(address) (the server in every virtual server), C(address:port) or
        C([address]:port) for IPv6. Each must be a real server of the document.
    type: list
    elements: str
    required: true
  state:
    description: V(drained) takes the servers out of rotation, V(undrained) puts them back.
    type: str
    choices: [drained, undrained]
    default: drained
  document:
    description: The director's host document.
    type: path
    default: /etc/lbha/cluster.json
  reload:
    description: Reload keepalived (ipvs plane) or the checker (nftables plane) when something changed.
    type: bool
    default: true
  validate:
    description: Test a new C(keepalived.conf) with C(keepalived -t) before it replaces the live one.
    type: bool
    default: true
seealso:
  - module: lbha.cluster.lbha_info
  - module: lbha.cluster.keepalived_config
'''

EXAMPLES = r'''
- name: Take web1 out of rotation on every director
  lbha.cluster.drain:
    servers: [1.1.1.3]
  delegate_to: "{{ item }}"
  loop: "{{ groups['directors'] }}"

- name: Put it back on port 80 only
  lbha.cluster.drain:
    servers: ["1.1.1.3:80"]
    state: undrained
'''

RETURN = r'''
plane:
  description: The plane of the document.
  returned: success
  type: str
  sample: ipvs
drained:
  description: Every drained real server after the change.
  returned: success
  type: list
  elements: str
  sample: ["1.1.1.3"]
changed_servers:
  description: The entries that were added to or removed from the drained list.
  returned: success
  type: list
  elements: str
  sample: ["1.1.1.3"]
reloaded:
  description: The systemd unit that was reloaded, or null.
  returned: success
  type: str
  sample: keepalived
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.lbha.cluster.plugins.module_utils import hostdoc
from ansible_collections.lbha.cluster.plugins.module_utils._config import ConfigFiles, test_keepalived_conf
from ansible_collections.lbha.cluster.plugins.module_utils.keepalived import render


def main():
    module = AnsibleModule(
        argument_spec=dict(
            servers=dict(type="list", elements="str", required=True),
            state=dict(type="str", choices=["drained", "undrained"], default="drained"),
            document=dict(type="path", default=hostdoc.DEFAULT_PATH),
            reload=dict(type="bool", default=True),
            validate=dict(type="bool", default=True),
        ),
        supports_check_mode=True,
    )
    p = module.params
    try:
        doc = hostdoc.load(p["document"])
    except hostdoc.HostDocumentError as exc:
        module.fail_json(msg="%s (is this a director converged by lbha.cluster?)" % exc)
    try:
        new, changed_servers = hostdoc.set_drained(doc, p["servers"], drained=p["state"] == "drained")
    except hostdoc.HostDocumentError as exc:
        module.fail_json(msg=str(exc), drained=doc["drained"])

    conf_path = doc["paths"]["keepalived_conf"]
    files = ConfigFiles(module, conf_path, p["document"])
    conf = render(hostdoc.render_model(new)) if doc["plane"] == "ipvs" else None
    conf_changed, doc_changed, diffs = files.compare(conf, new)
    result = dict(changed=bool(conf_changed or doc_changed), plane=doc["plane"], drained=new["drained"],
                  changed_servers=changed_servers, reloaded=None)
    if module._diff and diffs:
        result["diff"] = diffs
    if module.check_mode or not result["changed"]:
        module.exit_json(**result)

    fail_result = dict(plane=doc["plane"], drained=doc["drained"], changed_servers=[])
    if conf_changed and p["validate"]:
        test_keepalived_conf(module, conf, conf_path, fail_result)
    files.write(conf if conf_changed else None, new if doc_changed else None, backup=False)
    if p["reload"]:
        unit = doc["services"]["keepalived" if doc["plane"] == "ipvs" else "checker"]
        systemctl = module.get_bin_path("systemctl", required=True)
        rc, out, err = module.run_command([systemctl, "reload", unit])
        if rc != 0:
            result.update(changed=True, msg="the drained state is written to %s, but 'systemctl reload %s' failed: %s"
                          % (p["document"], unit, (err or out).strip()))
            module.fail_json(**result)
        result["reloaded"] = unit
    module.exit_json(**result)


if __name__ == "__main__":
    main()
