# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Helpers for the default scenario's checks: commands run in the containers with `docker exec`.

The checks run under `molecule verify` and on their own (`pytest molecule/default/tests`) against
a created and converged scenario.
"""
from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import json
import os
import re
import subprocess

import pytest

DOCKER = os.environ.get("DOCKER", "/usr/bin/docker")

VIP = "1.1.1.111"
DIRECTORS = {"lb1": "1.1.1.1", "lb2": "1.1.1.2"}
REAL_SERVERS = {"web1": "1.1.1.3", "web2": "1.1.1.4"}
CLIENT = "client"
PAGES = {"web1": "Welcome to nginx NO.1", "web2": "Welcome to nginx NO.2"}
SERVICE_PORT = 80

_MAC = re.compile(r"\[([0-9A-Fa-f]{2}(?::[0-9A-Fa-f]{2}){5})\]")


class Host(object):
    """One container of the scenario."""

    def __init__(self, name):
        self.name = name

    def run(self, *argv, **kwargs):
        """Run argv in the container; returns the CompletedProcess (never raises on rc)."""
        timeout = kwargs.pop("timeout", 30)
        return subprocess.run(
            [DOCKER, "exec", self.name] + [str(a) for a in argv],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True,
            timeout=timeout, check=False, **kwargs)

    def check(self, *argv, **kwargs):
        """Run argv and return its stdout; fails the test with stderr when rc != 0."""
        result = self.run(*argv, **kwargs)
        assert result.returncode == 0, "%s: %s -> rc %d: %s" % (
            self.name, " ".join(str(a) for a in argv), result.returncode, result.stderr.strip())
        return result.stdout

    def sysctl(self, key):
        return self.check("sysctl", "-n", key).strip()

    def addresses(self, dev):
        """IPv4 addresses of dev: [{'local', 'prefixlen', 'label'}]."""
        links = json.loads(self.check("ip", "-json", "-4", "addr", "show", "dev", dev))
        return [a for link in links for a in link.get("addr_info", [])]

    def mac(self, dev="eth0"):
        return self.check("cat", "/sys/class/net/%s/address" % dev).strip().lower()

    def is_active(self, unit):
        return self.run("systemctl", "is-active", "--quiet", unit).returncode == 0

    def is_enabled(self, unit):
        return self.run("systemctl", "is-enabled", "--quiet", unit).returncode == 0


def arp_replies(host, address, count=3, dev="eth0"):
    """MAC addresses that answered `arping` for address from host (lower case, unique)."""
    result = host.run("arping", "-c", count, "-w", count + 2, "-I", dev, address, timeout=count + 10)
    return sorted(set(m.lower() for m in _MAC.findall(result.stdout)))


def _running(name):
    result = subprocess.run([DOCKER, "inspect", "-f", "{{.State.Running}}", name],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            universal_newlines=True, check=False)
    return result.returncode == 0 and result.stdout.strip() == "true"


@pytest.fixture(scope="session")
def topology():
    """The scenario's containers; skips when they are not running."""
    names = list(DIRECTORS) + list(REAL_SERVERS) + [CLIENT]
    if not os.access(DOCKER, os.X_OK):
        pytest.skip("docker client %s is missing" % DOCKER)
    missing = [n for n in names if not _running(n)]
    if missing:
        pytest.skip("containers %s of molecule/default are not running (molecule create -s default)"
                    % ", ".join(missing))
    return {n: Host(n) for n in names}


@pytest.fixture(params=sorted(REAL_SERVERS))
def real_server(request, topology):
    return topology[request.param]


@pytest.fixture
def client(topology):
    return topology[CLIENT]
