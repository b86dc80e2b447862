# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""VRRP tracks the nftables plane: the model's vrrp_script lbha_plane, the checker's liveness
file and the plane-check program that reads it as keepalived's script user."""
from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import copy
import os
import stat
import subprocess
import sys
import time

import pytest

from ansible_collections.lbha.cluster.plugins.module_utils import checker, keepalived, model
from ansible_collections.lbha.cluster.plugins.module_utils.model import ValidationError
from ansible_collections.lbha.cluster.tests.unit.plugins.module_utils.checker_doubles import (
    FakePlane, doc_dict)

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "..", ".."))
PLANE_CHECK = os.path.join(REPO, "roles", "director", "files", "lbha-plane-check")


@pytest.fixture()
def seed(seed_definition):
    return copy.deepcopy(seed_definition)


def norm(seed, dataplane, **kw):
    return model.normalize(seed["cluster"], seed["directors"][0], seed["directors"], seed["real_server_hosts"],
                           dataplane=dataplane, **kw)


def test_the_default_check_reads_the_checkers_own_liveness_file_and_bound():
    program, path, bound = model.DEFAULT_PLANE_CHECK.split()
    assert path == checker.liveness_path(checker.DEFAULT_STATE) == "/run/lbha/checker.alive"
    assert int(bound) == checker.STALE_SECONDS
    assert program == "/usr/lib/lbha-cluster/plane-check"


def test_nftables_instances_with_a_virtual_server_track_the_plane(seed):
    seed["cluster"]["vrrp_instances"].append({"name": "VI_2", "interface": "eth0", "virtual_router_id": 52,
                                              "virtual_ipaddress": ["1.1.1.200/24"]})
    m = norm(seed, "nftables")
    script = [s for s in m["vrrp_scripts"] if s["name"] == model.PLANE_SCRIPT]
    assert script == [{"name": "lbha_plane", "script": model.DEFAULT_PLANE_CHECK, "interval": 1, "timeout": 2,
                       "rise": 2, "fall": 3, "weight": None, "user": None, "init_fail": False}]
    tracks = dict((i["name"], i["track_script"]) for i in m["vrrp_instances"])
    assert tracks == {"VI_1": ["lbha_plane"], "VI_2": []}, "only the instance holding the VS's VIP tracks it"
    text = keepalived.render(m)
    assert "vrrp_script lbha_plane {" in text and "    track_script {\n        lbha_plane\n    }" in text
    assert "weight" not in text.split("vrrp_script lbha_plane {")[1].split("}")[0], \
        "weight 0: a failure is FAULT, never a lower priority"


def test_the_ipvs_plane_has_no_plane_script(seed):
    m = norm(seed, "ipvs")
    assert m["vrrp_scripts"] == [] and all(i["track_script"] == [] for i in m["vrrp_instances"])


def test_the_plane_script_keeps_a_users_tracked_script_and_a_sync_group(seed):
    cluster = seed["cluster"]
    cluster["vrrp_scripts"] = [{"name": "chk_up", "script": "/usr/local/bin/up"}]
    cluster["vrrp_instances"][0]["track_script"] = ["chk_up"]
    cluster["vrrp_instances"].append({"name": "VI_2", "interface": "eth0", "virtual_router_id": 52,
                                      "virtual_ipaddress": ["1.1.1.200/24"]})
    cluster["vrrp_sync_groups"] = [{"name": "G1", "group": ["VI_1", "VI_2"]}]
    m = norm(seed, "nftables")
    assert m["vrrp_instances"][0]["track_script"] == ["chk_up", "lbha_plane"]
    assert [s["name"] for s in m["vrrp_scripts"]] == ["chk_up", "lbha_plane"]


def test_a_user_script_may_not_take_the_planes_name(seed):
    seed["cluster"]["vrrp_scripts"] = [{"name": "lbha_plane", "script": "/usr/local/bin/up"}]
    with pytest.raises(ValidationError) as info:
        norm(seed, "ipvs")
    assert any("lbha_cluster.vrrp_scripts[0].name: lbha_plane is the name of the collection's own vrrp_script"
               in e for e in info.value.errors), info.value.errors


def test_the_plane_check_is_checked_like_any_script(seed):
    with pytest.raises(ValidationError) as info:
        norm(seed, "nftables", plane_check="plane-check /run/x 10")
    assert any("plane_check: 'plane-check /run/x 10' must start with an absolute path" in e
               for e in info.value.errors), info.value.errors


# -- the checker's liveness file -------------------------------------------------------------------

def test_the_checker_writes_a_world_readable_liveness_file_without_commands(tmp_path):
    state = tmp_path / "checker.json"
    c = checker.Checker(FakePlane(), state_path=str(state), clock=lambda: 1000.5)
    c.configure(doc_dict())
    c.write_state(loaded=True)
    alive = tmp_path / "checker.alive"
    assert alive.read_text() == "%d 1000 1\n" % os.getpid()
    assert stat.S_IMODE(os.stat(str(alive)).st_mode) == 0o644
    assert stat.S_IMODE(os.stat(str(state)).st_mode) == 0o640
    c.write_state(loaded=False)
    assert alive.read_text().endswith(" 0\n")


# -- plane-check, the program keepalived runs -------------------------------------------------------

@pytest.fixture()
def fake_checker():
    """A live process whose command line names lbha_checkerd, as the daemon's does."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", "/usr/lib/lbha-cluster/lbha_checkerd.py"])
    yield proc
    proc.kill()
    proc.wait()


def plane_check(path, max_age=10):
    return subprocess.run(["/bin/sh", PLANE_CHECK, str(path), str(max_age)], check=False, timeout=30).returncode


def test_plane_check_passes_only_for_a_fresh_loaded_live_checker(tmp_path, fake_checker):
    alive = tmp_path / "checker.alive"
    now = int(time.time())
    alive.write_text(checker.liveness_line(fake_checker.pid, now, True))
    assert plane_check(alive) == 0
    alive.write_text(checker.liveness_line(fake_checker.pid, now, False))
    assert plane_check(alive) == 1, "the checker says the table is not loaded"
    alive.write_text(checker.liveness_line(fake_checker.pid, now - 30, True))
    assert plane_check(alive) == 1, "a stale file: the checker is stuck"
    alive.write_text(checker.liveness_line(os.getpid(), now, True))
    assert plane_check(alive) == 1, "the pid is not a checker"
    alive.write_text("garbage\n")
    assert plane_check(alive) == 1
    alive.unlink()
    assert plane_check(alive) == 1, "no file: the checker stopped"


def test_plane_check_fails_once_the_checker_is_dead(tmp_path, fake_checker):
    alive = tmp_path / "checker.alive"
    alive.write_text(checker.liveness_line(fake_checker.pid, int(time.time()), True))
    assert plane_check(alive) == 0
    fake_checker.kill()
    fake_checker.wait()
    assert plane_check(alive) == 1
