# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""lbha.cluster.sysctls against a /proc/sys made of files in a temporary directory."""
from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import pytest

from ansible_collections.lbha.cluster.plugins.module_utils import sysctl
from ansible_collections.lbha.cluster.plugins.modules import sysctls

KEYS = {"net.ipv4.conf.all.arp_ignore": "0", "net.ipv4.conf.lo.arp_announce": "0",
        "net/ipv4/conf/eth0.100/rp_filter": "1", "net.ipv4.vs.sloppy_tcp": "0"}


@pytest.fixture()
def kernel(tmp_path, monkeypatch):
    root = tmp_path / "proc"
    for key, value in KEYS.items():
        path = root / (key if "/" in key else key.replace(".", "/"))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(value + "\n")
    monkeypatch.setattr(sysctl, "PROC", str(root))
    return root


@pytest.fixture()
def run(tmp_path, run_module):
    def call(settings, **kw):
        return run_module(sysctls.main, dict(settings=settings, file=str(tmp_path / "90-x.conf"), **kw))
    return call


def test_sets_what_differs_writes_the_file_then_is_idempotent(kernel, run, tmp_path):
    wanted = {"net.ipv4.conf.all.arp_ignore": 1, "net.ipv4.conf.lo.arp_announce": 2,
              "net/ipv4/conf/eth0.100/rp_filter": 1}
    result, failed = run(wanted)
    assert not failed and result["changed"] and result["file_changed"]
    assert result["set"] == ["net.ipv4.conf.all.arp_ignore", "net.ipv4.conf.lo.arp_announce"]
    assert (kernel / "net/ipv4/conf/all/arp_ignore").read_text().strip() == "1"
    assert (kernel / "net/ipv4/conf/lo/arp_announce").read_text().strip() == "2"
    lines = (tmp_path / "90-x.conf").read_text().splitlines()
    assert lines[0].startswith("#")
    assert lines[1:] == ["net.ipv4.conf.all.arp_ignore=1", "net.ipv4.conf.lo.arp_announce=2",
                         "net/ipv4/conf/eth0.100/rp_filter=1"]
    again, _failed = run(wanted)
    assert not again["changed"] and again["set"] == [] and not again["file_changed"]


def test_drift_of_a_live_value_is_put_back(kernel, run):
    run({"net.ipv4.conf.all.arp_ignore": 1})
    (kernel / "net/ipv4/conf/all/arp_ignore").write_text("0\n")
    result, _failed = run({"net.ipv4.conf.all.arp_ignore": 1})
    assert result["changed"] and result["set"] == ["net.ipv4.conf.all.arp_ignore"] and not result["file_changed"]


def test_an_unknown_key_changes_nothing(kernel, run, tmp_path):
    result, failed = run({"net.ipv4.conf.all.arp_ignore": 1, "net.ipv4.vs.no_such_key": 1})
    assert failed and "net.ipv4.vs.no_such_key" in result["msg"]
    assert not (tmp_path / "90-x.conf").exists()
    assert (kernel / "net/ipv4/conf/all/arp_ignore").read_text().strip() == "0"


@pytest.mark.parametrize("settings, message", [
    ({"net.ipv4.conf.all.arp_ignore": True}, "boolean"),
    ({"net.ipv4.conf.all.arp_ignore": " "}, "empty value"),
    ({"../../etc/passwd": 1}, "not a sysctl name"),
    ({"net/ipv4/../../x": 1}, "not a sysctl name"),
])
def test_bad_settings_are_refused(kernel, run, settings, message):
    result, failed = run(settings)
    assert failed and message in result["msg"]


def test_check_mode_and_diff(kernel, run, tmp_path):
    result, _failed = run({"net.ipv4.conf.all.arp_ignore": 1}, _ansible_check_mode=True, _ansible_diff=True)
    assert result["changed"] and result["set"] == ["net.ipv4.conf.all.arp_ignore"]
    assert "net.ipv4.conf.all.arp_ignore=1" in result["diff"]["after"]
    assert not (tmp_path / "90-x.conf").exists()
    assert (kernel / "net/ipv4/conf/all/arp_ignore").read_text().strip() == "0"


def test_no_settings_remove_an_exclusive_file(kernel, run, tmp_path):
    run({"net.ipv4.vs.sloppy_tcp": 1}, exclusive=True)
    result, _failed = run({}, exclusive=True)
    assert result["changed"] and result["file_changed"] and not (tmp_path / "90-x.conf").exists()
    assert (kernel / "net/ipv4/vs/sloppy_tcp").read_text().strip() == "1"


def test_check_mode_takes_a_missing_key_for_one_a_module_load_would_bring(kernel, run, tmp_path):
    result, failed = run({"net.ipv4.vs.conn_reuse_mode": 0}, _ansible_check_mode=True)
    assert not failed and result["set"] == ["net.ipv4.vs.conn_reuse_mode"]
    assert any("net.ipv4.vs.conn_reuse_mode" in w for w in result["warnings"])
    assert not (tmp_path / "90-x.conf").exists()


def test_a_shared_file_keeps_every_other_line(kernel, run, tmp_path):
    conf = tmp_path / "90-x.conf"
    conf.write_text("# the admin's own\nvm.swappiness = 10\nnet.ipv4.conf.all.arp_ignore = 0\n"
                    "-net.ipv4.conf.all.arp_ignore=0\nkernel.panic=5\n")
    result, failed = run({"net.ipv4.conf.all.arp_ignore": 1, "net.ipv4.conf.lo.arp_announce": 2})
    assert not failed and result["file_changed"]
    assert conf.read_text() == ("# the admin's own\nvm.swappiness = 10\nnet.ipv4.conf.all.arp_ignore=1\n"
                                "kernel.panic=5\nnet.ipv4.conf.lo.arp_announce=2\n")
    again, _failed = run({"net.ipv4.conf.all.arp_ignore": 1, "net.ipv4.conf.lo.arp_announce": 2})
    assert not again["changed"]
    emptied, _failed = run({})
    assert not emptied["changed"] and conf.exists(), "a shared file is never removed"


def test_an_exclusive_file_is_rewritten_whole(kernel, run, tmp_path):
    conf = tmp_path / "90-x.conf"
    conf.write_text("vm.swappiness = 10\n")
    run({"net.ipv4.vs.sloppy_tcp": 1}, exclusive=True, header="mine")
    assert conf.read_text() == "# mine\nnet.ipv4.vs.sloppy_tcp=1\n"
