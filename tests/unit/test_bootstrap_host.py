# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""scripts/bootstrap-host.sh on a machine that has none of its packages.

The script runs against a stub root (LBHA_HOST_ROOT) and stub commands first on PATH: dpkg-query
says nothing is installed, apt-get "installs" by creating the docker client and daemon in the stub
root, and the stub client answers `info` only once the stub daemon has started. The cold path
therefore passes only when every lookup happens after the step that provides it.
"""
from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import os
import stat
import subprocess

import pytest

SCRIPT = os.path.join(os.path.dirname(__file__), "..", "..", "scripts", "bootstrap-host.sh")

STUBS = {
    "id": '#!/bin/sh\necho 0\n',
    # every package is missing until apt-get installs it
    "dpkg-query": '#!/bin/sh\n[ -e "$LBHA_HOST_ROOT/var/lib/stub-installed" ] && printf installed\nexit 0\n',
    "apt-get": """#!/bin/sh
echo "apt-get $*" >> "$LBHA_HOST_ROOT/calls"
[ "$1" = update ] && exit 0
mkdir -p "$LBHA_HOST_ROOT/usr/sbin" "$LBHA_HOST_ROOT/usr/bin" "$LBHA_HOST_ROOT/var/lib"
printf '#!/bin/sh\\necho dockerd >> "$LBHA_HOST_ROOT/calls"\\ntouch "$LBHA_HOST_ROOT/dockerd.up"\\n' \
  > "$LBHA_HOST_ROOT/usr/sbin/dockerd"
printf '#!/bin/sh\\n[ "$1" = info ] && [ -e "$LBHA_HOST_ROOT/dockerd.up" ]\\n' > "$LBHA_HOST_ROOT/usr/bin/docker"
chmod +x "$LBHA_HOST_ROOT/usr/sbin/dockerd" "$LBHA_HOST_ROOT/usr/bin/docker"
[ -n "$STUB_NO_DOCKERD" ] && rm "$LBHA_HOST_ROOT/usr/sbin/dockerd"
touch "$LBHA_HOST_ROOT/var/lib/stub-installed"
""",
}


@pytest.fixture()
def cold_root(tmp_path):
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "debian_version").write_text("12.8\n")
    stubs = tmp_path / "bin"
    stubs.mkdir()
    for name, text in STUBS.items():
        path = stubs / name
        path.write_text(text)
        path.chmod(path.stat().st_mode | stat.S_IXUSR)
    env = dict(os.environ, LBHA_HOST_ROOT=str(root), LBHA_SKIP_IMAGES="1", LBHA_DOCKERD_TIMEOUT="10",
               PATH="%s:%s" % (stubs, os.environ["PATH"]), STUB_NO_DOCKERD="")
    return root, env


def run(env):
    return subprocess.run(["bash", SCRIPT], env=env, capture_output=True, text=True, timeout=60, check=False)


def test_cold_machine_installs_then_starts_the_engine_first_time(cold_root):
    root, env = cold_root
    result = run(env)
    assert result.returncode == 0, result.stderr
    calls = (root / "calls").read_text().splitlines()
    assert calls[0] == "apt-get update -q"
    assert calls[1].startswith("apt-get install") and "docker.io" in calls[1]
    assert calls[2] == "dockerd", "the daemon must be started after the install step"
    assert "host ready" in result.stdout


def test_warm_machine_installs_nothing(cold_root):
    root, env = cold_root
    assert run(env).returncode == 0
    (root / "calls").unlink()
    result = run(env)
    assert result.returncode == 0, result.stderr
    assert "host packages present" in result.stdout
    assert "Docker daemon answers" in result.stdout
    assert not (root / "calls").exists()


def test_a_package_without_dockerd_is_named_in_the_error(cold_root):
    _root, env = cold_root
    env["STUB_NO_DOCKERD"] = "1"
    result = run(env)
    assert result.returncode == 1
    assert "dockerd not found" in result.stderr and "after installing docker.io" in result.stderr
