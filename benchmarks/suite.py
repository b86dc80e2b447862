# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Puts the molecule suite's helpers (molecule/suite/lbha_suite) on the path of a benchmark that
drives a container scenario, the default one unless LBHA_SCENARIO says otherwise."""
from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import os
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "molecule", "suite"))
os.environ.setdefault("LBHA_SCENARIO", "default")


def environment(director=None):
    """What a result file says about where and how it was measured: the machine and its load,
    the versions (controller, Docker, images, and keepalived on ``director``, a suite Host), and
    the command line."""
    import platform
    import subprocess
    import ansible.release  # pylint: disable=import-outside-toplevel
    import yaml  # pylint: disable=import-outside-toplevel
    from lbha_suite.scenario import current  # pylint: disable=import-outside-toplevel
    with open(os.path.join(current().dir, "molecule.yml")) as handle:
        images = sorted({p.get("image", "") for p in yaml.safe_load(handle)["platforms"]})
    docker = subprocess.run(["docker", "version", "--format", "{{.Server.Version}}"], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, universal_newlines=True, check=False).stdout.strip()
    versions = {"ansible_core": ansible.release.__version__, "python": platform.python_version(),
                "images": images, "docker": docker or None}
    if director is not None:
        result = director.run("keepalived", "--version")
        versions["keepalived"] = ((result.stderr or result.stdout).splitlines() or [None])[0]
    return {"machine": {"cpus": os.cpu_count(), "kernel": platform.release(),
                        "loadavg_at_start": [round(x, 2) for x in os.getloadavg()]},
            "versions": versions,
            "command": " ".join(["python3", os.path.relpath(os.path.abspath(sys.argv[0]), REPO)] + sys.argv[1:])}
