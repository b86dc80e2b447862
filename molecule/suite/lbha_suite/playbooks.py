# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Running the collection's operations playbooks against the scenario under test.

The inventory is built from the scenario's molecule.yml (platforms, groups, the provisioner's
group_vars and host_vars), the same data molecule gives to converge, so the playbooks run the
same way under `molecule verify` and in a standalone `pytest` against a converged scenario.
"""
from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import json
import os
import re
import shutil
import subprocess
import sys
import time

import yaml

from .drivers import driver
from .scenario import PROJECT_DIR, current

PLAYBOOK_TIMEOUT = 600


def ansible_playbook():
    """The ansible-playbook of the running Python's environment, else the one on PATH."""
    candidate = os.path.join(os.path.dirname(sys.executable), "ansible-playbook")
    if os.access(candidate, os.X_OK):
        return candidate
    return shutil.which("ansible-playbook")


def collections_path():
    return os.environ.get("ANSIBLE_COLLECTIONS_PATH") or os.path.join(PROJECT_DIR, ".cache", "collections")


def molecule(*args):
    """`molecule ARGS -s <scenario>` from the project directory; returns its seconds.

    Raises CalledProcessError when molecule fails."""
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=collections_path(),
               PATH=os.pathsep.join([os.path.dirname(sys.executable), "/usr/sbin", "/sbin",
                                     os.environ.get("PATH", "")]))
    started = time.monotonic()
    subprocess.run([os.path.join(os.path.dirname(sys.executable), "molecule")] + list(args) + ["-s", current().name],
                   cwd=PROJECT_DIR, env=env, check=True)
    return time.monotonic() - started


def write_inventory(directory, molecule_file=None):
    """An inventory of the scenario's hosts (connections from the driver) with its variables."""
    with open(molecule_file or os.path.join(current().dir, "molecule.yml")) as handle:
        scenario = yaml.safe_load(handle)
    inventory = scenario.get("provisioner", {}).get("inventory", {})
    host_vars = inventory.get("host_vars", {})
    groups = {}
    hosts = {}
    for platform in scenario["platforms"]:
        name = platform["name"]
        hosts[name] = dict(host_vars.get(name, {}), **driver().inventory_vars(name))
        for group in platform.get("groups", []):
            groups.setdefault(group, {"hosts": {}})["hosts"][name] = None
    data = {"all": {"hosts": hosts, "vars": inventory.get("group_vars", {}).get("all", {}),
                    "children": groups}}
    path = os.path.join(directory, "inventory.yml")
    with open(path, "w") as handle:
        yaml.safe_dump(data, handle, default_flow_style=False)
    return path


class PlaybookResult(object):
    def __init__(self, argv, returncode, output, seconds):
        self.argv = argv
        self.returncode = returncode
        self.output = output
        self.seconds = seconds

    def __repr__(self):
        return "<%s rc=%d %.1fs>" % (" ".join(self.argv[1:3]), self.returncode, self.seconds)

    def tail(self, lines=60):
        return "\n".join(self.output.splitlines()[-lines:])


def _ansible_env():
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=collections_path(), ANSIBLE_PIPELINING="True",
               ANSIBLE_HOST_KEY_CHECKING="False", ANSIBLE_FORCE_COLOR="0", ANSIBLE_NOCOLOR="1",
               ANSIBLE_RETRY_FILES_ENABLED="False", ANSIBLE_CALLBACK_RESULT_FORMAT="yaml")
    env.pop("ANSIBLE_CONFIG", None)
    return env


def run_module(inventory, hosts, module, args, timeout=PLAYBOOK_TIMEOUT):
    """`ansible HOSTS -m lbha.cluster.<module> -a ARGS` against the inventory; never raises on rc."""
    argv = [os.path.join(os.path.dirname(ansible_playbook()), "ansible"), hosts, "-i", inventory,
            "-m", "lbha.cluster.%s" % module, "-a", json.dumps(args)]
    started = time.monotonic()
    proc = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True,
                          env=_ansible_env(), cwd=PROJECT_DIR, timeout=timeout, check=False)
    return PlaybookResult(argv, proc.returncode, proc.stdout, time.monotonic() - started)


def run_playbook(inventory, name, extra_vars=None, timeout=PLAYBOOK_TIMEOUT, extra_args=()):
    """`ansible-playbook lbha.cluster.<name>` against the inventory; never raises on rc."""
    argv = [ansible_playbook(), "lbha.cluster.%s" % name, "-i", inventory]
    for key, value in sorted((extra_vars or {}).items()):
        argv += ["-e", "%s=%s" % (key, value) if not isinstance(value, (dict, list, bool))
                 else "%s" % yaml.safe_dump({key: value}, default_flow_style=True).strip()]
    argv += list(extra_args)
    env = _ansible_env()
    started = time.monotonic()
    proc = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True,
                          env=env, cwd=PROJECT_DIR, timeout=timeout, check=False)
    return PlaybookResult(argv, proc.returncode, proc.stdout, time.monotonic() - started)


UPGRADE_MARK = "/var/tmp/lbha-upgrade-mark"


def upgrade_recorder(path, vips, hosts):
    """Upgrade tasks for ``lbha_upgrade_tasks``, written to ``path``: the "upgrade" records in
    UPGRADE_MARK when it ran and how many of ``vips`` the director then held on eth0. The marks
    of an earlier run are removed from ``hosts`` first."""
    with open(str(path), "w") as handle:
        handle.write(
            "- name: Record the upgrade\n"
            "  ansible.builtin.shell: >-\n"
            "    printf '%%s %%s\\n' \"$(date +%%s.%%N)\"\n"
            "    \"$(ip -o addr show dev eth0 | grep -cE ' (%s)/' || true)\" > %s\n"
            "  changed_when: true\n" % ("|".join(re.escape(v) for v in vips), UPGRADE_MARK))
    for host in hosts:
        host.check("rm", "-f", UPGRADE_MARK)
    return str(path)


def upgrade_marks(hosts):
    """``{host name: (time of its upgrade, VIPs it held then)}`` from UPGRADE_MARK."""
    marks = {}
    for host in hosts:
        stamp, held = host.check("cat", UPGRADE_MARK).split()
        marks[host.name] = (float(stamp), int(held))
    return marks
