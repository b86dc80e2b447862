# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""How the suite reaches, stops, crashes and restarts the hosts of a scenario.

The tests are the same for every scenario; what differs is the machinery under the hosts:

- ``DockerDriver``: systemd containers (molecule's docker driver), reached with ``docker exec``;
  a stop is ``docker stop`` (systemd shuts down), a crash ``docker kill`` (SIGKILL to every
  process at once).
- ``QemuDriver``: QEMU guests with their own kernels (molecule's default driver and
  ``lbha_suite/guests.py``), reached over SSH through the scenario's network namespace; a stop is
  ``systemctl poweroff`` in the guest, a crash SIGKILL to the guest's qemu (a power cut). The
  client is the namespace itself, reached with ``ip netns exec``.

Each driver turns a command (an argv list) into the host command line that runs it on a host,
says whether a host runs, and how far a host's clock is from the controller's (the guests'
samples are put on the controller's timeline).
"""
from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import glob
import json
import os
import subprocess

from . import guests as _guests
from .scenario import MAILDIR, current

DOCKER = os.environ.get("DOCKER", "/usr/bin/docker")


class DockerDriver(object):
    name = "docker"
    maildir = MAILDIR
    slack = 1.0         # seconds a timing bound allows for scheduling and the harness's own commands
    notify_time = 1.0   # a VRRP transition until keepalived's notify hook has recorded it (s)
    poll_timeout = 0.5  # a client request without a response after this long has failed

    def command(self, host, argv, interactive=False):
        return [DOCKER, "exec"] + (["-i"] if interactive else []) + [host] + [str(a) for a in argv]

    def available(self):
        return os.access(DOCKER, os.X_OK)

    def running(self, host):
        result = subprocess.run([DOCKER, "inspect", "-f", "{{.State.Running}}", host],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                universal_newlines=True, check=False)
        return result.returncode == 0 and result.stdout.strip() == "true"

    def stop(self, host, timeout=120):
        subprocess.run([DOCKER, "stop", host], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       check=True, timeout=timeout)

    def crash(self, host, timeout=60):
        subprocess.run([DOCKER, "kill", host], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       check=True, timeout=timeout)

    def freeze(self, host, frozen=True, timeout=60):
        subprocess.run([DOCKER, "pause" if frozen else "unpause", host], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, check=True, timeout=timeout)

    def start(self, host, timeout=120):
        if not self.running(host):
            subprocess.run([DOCKER, "start", host], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           check=True, timeout=timeout)

    def clock_offset(self, host):
        return 0.0      # containers share the controller's kernel and clock

    def has_init(self, host):
        return True     # every container runs systemd

    def interface(self, host):
        return "eth0"

    def inventory_vars(self, host):
        # `docker exec` runs as root and the images have no sudo: the playbooks' become is
        # switched off by the connection variable (which wins over the play keyword).
        return {"ansible_connection": "community.docker.docker",
                "ansible_python_interpreter": "/usr/bin/python3", "ansible_become": False}


def guest_state_dir(scenario_name):
    """Where create.yml keeps the guests' state: molecule's ephemeral directory of the scenario,
    or (a standalone pytest) the most recent live one of that scenario."""
    if os.environ.get("LBHA_GUEST_STATE"):
        return os.environ["LBHA_GUEST_STATE"]
    if os.environ.get("MOLECULE_EPHEMERAL_DIRECTORY"):
        return os.path.join(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"], "guests")
    found = []
    for path in glob.glob(os.path.expanduser("~/.ansible/tmp/molecule.*.%s/guests/%s"
                                             % (scenario_name, _guests.STATE_FILE))):
        with open(path) as handle:
            state = json.load(handle)
        if state.get("netns") and state.get("guests"):
            found.append((os.path.getmtime(path), os.path.dirname(path)))
    assert found, ("no running guests of scenario %s (molecule create -s %s), or set LBHA_GUEST_STATE"
                   % (scenario_name, scenario_name))
    return max(found)[1]


class QemuDriver(object):
    name = "qemu"
    slack = 2.0         # an emulated guest runs a command over SSH in up to a second more
    # an emulated guest starts a program in 0.2-0.5 s: the notify hook (a shell, flock, mv)
    # recorded MASTER 0.7-1.0 s after the VIP moved on an idle host, 2.1 s in a full make test
    notify_time = 3.0
    # an emulated guest handles packets and VRRP transitions several times slower: a request has
    # failed when it has no response after one SYN retransmission (1 s) and some
    poll_timeout = 1.5

    def __init__(self, scenario):
        self.scenario = scenario
        self.state_dir = guest_state_dir(scenario.name)
        self._offsets = {}

    @property
    def state(self):
        return _guests.load_state(self.state_dir)

    @property
    def maildir(self):
        return self.state["smtp"]["maildir"]

    def is_client(self, host):
        return host == self.scenario.client

    def _guest(self, state, host):
        for guest in state["guests"]:
            if guest["name"] == host:
                return guest
        raise AssertionError("%s is not a guest of %s" % (host, self.state_dir))

    def command(self, host, argv, interactive=False):
        state = self.state
        if self.is_client(host):
            return ["ip", "netns", "exec", state["netns"]] + [str(a) for a in argv]
        guest = self._guest(state, host)
        if not os.path.exists(_guests.control_path(state, guest["address"])) and _guests.running(state, host):
            _guests.start_master(state, guest)
        return _guests.ssh_argv(state, guest["address"], argv)

    def available(self):
        return os.path.isdir(self.state_dir)

    def running(self, host):
        state = self.state
        if self.is_client(host):
            return bool(state.get("netns")) and _guests.netns_exists(state["netns"])
        return _guests.running(state, host)

    def stop(self, host, timeout=_guests.SHUTDOWN_TIMEOUT):
        self._offsets.pop(host, None)
        _guests.stop(self.state, host, timeout)

    def crash(self, host, timeout=60):
        self._offsets.pop(host, None)
        _guests.kill(self.state, host)

    def freeze(self, host, frozen=True, timeout=60):
        self._offsets.pop(host, None)   # the guest's clock stands still while it is frozen
        _guests.freeze(self.state, host, frozen)

    def start(self, host, timeout=None):
        if self.is_client(host):
            return
        self._offsets.pop(host, None)
        _guests.start(self.state, host)

    def has_init(self, host):
        return not self.is_client(host)

    def clock_offset(self, host):
        """The guest's clock minus the controller's (measured once per boot, error below half the
        best of five SSH round trips); the client shares the controller's clock."""
        if self.is_client(host):
            return 0.0
        if host not in self._offsets:
            state = self.state
            offset, rtt = _guests.clock_offset(state, self._guest(state, host))
            self._offsets[host] = (offset, rtt)
        return self._offsets[host][0]

    def interface(self, host):
        return self.state["bridge"] if self.is_client(host) else "eth0"

    def inventory_vars(self, host):
        state = self.state
        if self.is_client(host):
            return {"ansible_connection": "local", "ansible_python_interpreter": state["client_python"],
                    "ansible_become": False}
        guest = self._guest(state, host)
        # the options after -i KEY -l root, without the suite's connection sharing (Ansible has its own)
        options = _guests.ssh_options(state)[4:]
        pairs = [(options[i], options[i + 1]) for i in range(0, len(options), 2)
                 if not options[i + 1].startswith("Control")]
        common = " ".join("%s '%s'" % pair if " " in pair[1] else "%s %s" % pair for pair in pairs)
        return {"ansible_host": guest["address"], "ansible_user": "root", "ansible_port": 22,
                "ansible_ssh_private_key_file": state["ssh_key"], "ansible_ssh_common_args": common,
                "ansible_python_interpreter": "/usr/bin/python3", "ansible_become": False}


_DRIVER = []


def driver():
    """The driver of the scenario under test (molecule.yml's driver: docker, or the guests)."""
    if not _DRIVER:
        scenario = current()
        name = (scenario.molecule.get("driver") or {}).get("name")
        _DRIVER.append(DockerDriver() if name == "docker" else QemuDriver(scenario))
    return _DRIVER[0]
