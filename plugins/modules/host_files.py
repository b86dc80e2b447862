#!/usr/bin/python
# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

DOCUMENTATION = r'''
---
module: host_files
short_description: Keep a list of files, directories and leftovers on a host in one call
version_added: 0.2.0
description:
  - The files and directories a role of this collection keeps on a host (scripts, units,
    drop-ins, rulesets) and the leftovers of earlier releases it removes, as one list applied in
    one call instead of one task per file.
  - Every new file content is written beside its target and validated (O(files[].validate))
    before any target changes; when one is refused, nothing on the host changes.
  - Directories are created parents first; files are renamed over their targets with their final
    mode and owner already set, so no reader sees half a file or a looser mode.
  - With O(check), a command tests the result in place once every entry is applied (C(nginx -t),
    which reads every file the configuration includes); when it fails, every entry is put back
    as it was (former content, mode and owner; new files and directories removed) and the module
    fails with the command's output. It runs only when something changed.
  - Entries may carry O(files[].tags); RV(changed_tags) names the tags of what changed, so the
    role notifies a handler only when a file that concerns it changed.
author:
  - lbha.cluster maintainers (@lbha)
attributes:
  check_mode:
    support: full
    description: Reports what would change (and its diff); changes nothing and runs no validation or check.
  diff_mode:
    support: full
    description: Before and after of every file and directory that changes (binary files by size).
  platform:
    support: full
    platforms: posix
    description: Any POSIX host; C(validate) commands run there.
options:
  check:
    description:
      - Command run once every entry is applied, without C(%s); on failure the entries are put back
        as they were. A list that removes a directory is refused with it (a directory cannot be put back).
    type: str
  files:
    description: The entries, applied in the order directories, files, then removals.
    type: list
    elements: dict
    required: true
    suboptions:
      path:
        description: Absolute path of the file or directory.
        type: path
        required: true
      state:
        description:
          - V(file) keeps a file with O(files[].content) (or O(files[].content_b64)),
            V(directory) a directory, V(absent) removes a file or a whole directory.
        type: str
        choices: [file, directory, absent]
        default: file
      content:
        description: The file's text (UTF-8), exactly; nothing is stripped or added.
        type: str
      content_b64:
        description: The file's bytes, base64-encoded (for binary files).
        type: str
      mode:
        description: Octal mode as a string (V('0644')). Default for a new file C(0644), for a new directory C(0755).
        type: str
      owner:
        description: Owner name or uid; a new entry gets the running user, an existing one keeps its owner when not given.
        type: str
      group:
        description: Group name or gid; when not given, as for O(files[].owner).
        type: str
      validate:
        description: Command run on the new content before any target changes, C(%s) is the temporary file.
        type: str
      tags:
        description: Names returned in RV(changed_tags) when this entry changes.
        type: list
        elements: str
seealso:
  - name: The director role
    description: Installs its scripts, units and drop-ins with this module.
    link: https://github.com/lbha/cluster/blob/main/roles/director/README.md
'''

EXAMPLES = r'''
- name: Scripts and the unit that runs them, in one call
  lbha.cluster.host_files:
    files:
      - {path: /usr/local/lib/example, state: directory, mode: "0755"}
      - path: /usr/local/lib/example/hook
        content: "{{ lookup('ansible.builtin.file', 'hook', rstrip=false) }}"
        mode: "0755"
      - path: /etc/nftables.d/example.nft
        content: "{{ ruleset }}"
        validate: nft -c -f %s
        tags: [ruleset]
      - {path: /usr/local/lib/example-old, state: absent}
  register: files
  notify: Reload the ruleset   # the handler says when: "'ruleset' in files.changed_tags"

- name: A server block and its page, tested with nginx -t in place and put back if refused
  lbha.cluster.host_files:
    files:
      - path: /etc/nginx/conf.d/example.conf
        content: "{{ lookup('ansible.builtin.template', 'example.conf.j2') }}"
      - {path: /etc/nginx/sites-enabled/default, state: absent}
    check: nginx -t -q
  notify: Reload nginx
'''

RETURN = r'''
changed_paths:
  description: The paths created, rewritten, re-moded or removed (or that would be, in check mode).
  returned: success
  type: list
  elements: str
  sample: [/usr/local/lib/example/hook]
changed_tags:
  description: The tags of the entries in RV(changed_paths).
  returned: success
  type: list
  elements: str
  sample: [ruleset]
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.lbha.cluster.plugins.module_utils.hostfiles import (
    HostFilesError, apply, changed_tags, diffs, entries, plan)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            files=dict(type="list", elements="dict", required=True, options=dict(
                path=dict(type="path", required=True),
                state=dict(type="str", choices=["file", "directory", "absent"], default="file"),
                content=dict(type="str"),
                content_b64=dict(type="str"),
                mode=dict(type="str"),
                owner=dict(type="str"),
                group=dict(type="str"),
                validate=dict(type="str"),
                tags=dict(type="list", elements="str"),
            )),
            check=dict(type="str"),
        ),
        supports_check_mode=True,
    )
    try:
        steps = plan(entries(module.params["files"]))
    except HostFilesError as exc:
        module.fail_json(msg=str(exc))
    result = dict(changed=bool(steps), changed_paths=[s["path"] for s in steps],
                  changed_tags=changed_tags(steps))
    if module._diff and steps:
        result["diff"] = diffs(steps)
    if module.check_mode or not steps:
        module.exit_json(**result)

    def run_validate(command):
        rc, out, err = module.run_command(command, use_unsafe_shell=False)
        return rc, (err or out)

    try:
        apply(steps, run_validate, module.params["check"])
    except (HostFilesError, OSError) as exc:
        module.fail_json(msg=str(exc), changed_paths=[], changed_tags=[])
    module.exit_json(**result)


if __name__ == "__main__":
    main()
