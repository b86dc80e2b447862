# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""No root process of a director writes where a less trusted user can redirect it.

The notify hook runs as root when keepalived's unit records STOP after keepalived is gone
(``ExecStopPost=notify --stop-all``). The state directory belongs to keepalived's script user,
who can replace any file in it with a symlink at any moment. These tests play that user: an
``mv`` on PATH moves the state file in place and at once swaps the order file the hook writes
next for a symlink to a root-owned file (the race won every time), and symlinks are planted
under the state files' names. The root-owned file must come out untouched.
"""
from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import os
import pwd
import shutil
import stat
import subprocess
import tempfile

import pytest

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
HOOK = os.path.join(REPO, "roles", "director", "files", "lbha-notify")

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or not shutil.which("setpriv"),
    reason="needs root (to play root and an unprivileged user) and setpriv (util-linux)")

FAKE_MV = r'''#!/bin/sh
# mv TEMP DIR/NAME.state as the script user would race it: the move happens, and at once the
# order file the hook writes next is swapped for a symlink to a root-only file.
id -u > "%(marker)s"
real=/bin/mv
[ -x /usr/bin/mv ] && real=/usr/bin/mv
"$real" "$@" || exit
for target; do :; done
base=$(basename "$target" .state)
order="$(dirname "$target")/.$base.order"
rm -f "$order" && ln -s "%(victim)s" "$order"
'''


@pytest.fixture
def world():
    """A base directory root owns, the hook, a root-only victim file, a state directory of nobody."""
    user = pwd.getpwnam("nobody")
    base = tempfile.mkdtemp(prefix="lbha-priv-", dir="/tmp")
    os.chmod(base, 0o755)
    hook = os.path.join(base, "notify")
    shutil.copy(HOOK, hook)
    os.chmod(hook, 0o755)
    victim = os.path.join(base, "victim")
    with open(victim, "w") as fh:
        fh.write("precious\n")
    os.chmod(victim, 0o600)
    state = os.path.join(base, "vrrp")
    os.mkdir(state)
    os.chown(state, user.pw_uid, user.pw_gid)
    os.chmod(state, 0o755)
    fakebin = os.path.join(base, "bin")
    os.mkdir(fakebin)
    marker = os.path.join(base, "marker")
    open(marker, "w").close()
    os.chmod(marker, 0o666)    # the fake mv (run as whoever runs the hook) writes its uid here
    with open(os.path.join(fakebin, "mv"), "w") as fh:
        fh.write(FAKE_MV % {"marker": marker, "victim": victim})
    os.chmod(os.path.join(fakebin, "mv"), 0o755)
    world = dict(base=base, hook=hook, victim=victim, state=state, fakebin=fakebin, marker=marker, user=user)
    yield world
    shutil.rmtree(base)


def run_hook(world, *args, race=True):
    env = dict(os.environ, LBHA_STATE_DIR=world["state"])
    if race:
        env["PATH"] = world["fakebin"] + os.pathsep + env.get("PATH", "/usr/bin:/bin")
    return subprocess.run([world["hook"]] + list(args), env=env, check=True, timeout=30,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def victim_untouched(world):
    st = os.lstat(world["victim"])
    with open(world["victim"]) as fh:
        content = fh.read()
    return content == "precious\n" and stat.S_IMODE(st.st_mode) == 0o600 and st.st_uid == 0


def test_root_stop_all_does_not_follow_a_raced_order_file(world):
    # a state file as keepalived's notify (run as the script user) leaves it
    with open(os.path.join(world["state"], "VI_1.state"), "w") as fh:
        fh.write("MASTER\n")
    os.chown(os.path.join(world["state"], "VI_1.state"), world["user"].pw_uid, world["user"].pw_gid)
    run_hook(world, "--stop-all")
    with open(world["marker"]) as fh:
        ran_as = fh.read().strip()
    assert ran_as == str(world["user"].pw_uid), (
        "the swapping mv did not run as the directory's owner (%r): the race was not played" % ran_as)
    assert victim_untouched(world), "root wrote through the symlink the script user planted"


def test_root_hook_does_not_follow_a_planted_state_file(world):
    os.symlink(world["victim"], os.path.join(world["state"], "VI_1.state"))
    run_hook(world, "INSTANCE", "VI_1", "BACKUP", race=False)
    assert victim_untouched(world)
    path = os.path.join(world["state"], "VI_1.state")
    # the symlink itself was replaced by a regular file of the directory's owner
    assert not os.path.islink(path) and os.stat(path).st_uid == world["user"].pw_uid
    with open(path) as fh:
        assert fh.read() == "BACKUP\n"


def test_root_refuses_a_root_owned_directory_others_can_write(world):
    os.chown(world["state"], 0, 0)
    os.chmod(world["state"], 0o777)
    run_hook(world, "INSTANCE", "VI_1", "MASTER")
    assert victim_untouched(world)
    assert not os.path.exists(os.path.join(world["state"], "VI_1.state"))


def test_stop_all_records_stop_for_every_instance(world):
    for name, state in (("VI_1", "MASTER"), ("VI_2", "BACKUP")):
        path = os.path.join(world["state"], name + ".state")
        with open(path, "w") as fh:
            fh.write(state + "\n")
        os.chown(path, world["user"].pw_uid, world["user"].pw_gid)
    run_hook(world, "--stop-all", race=False)
    for name in ("VI_1", "VI_2"):
        path = os.path.join(world["state"], name + ".state")
        with open(path) as fh:
            assert fh.read() == "STOP\n"
        assert os.stat(path).st_uid == world["user"].pw_uid
