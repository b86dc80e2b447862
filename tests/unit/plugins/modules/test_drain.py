# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""lbha.cluster.drain: the administrative state in the host document, applied to each plane."""
from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import json
import os

import pytest
import yaml
from ansible.module_utils import basic

from ansible_collections.lbha.cluster.plugins.modules import drain, keepalived_config

SEED = os.path.join(os.path.dirname(__file__), "..", "..", "fixtures", "seed", "cluster.yml")


class Director(object):
    """A director converged by keepalived_config into tmp_path, with fake keepalived and systemctl."""

    def __init__(self, tmp_path, monkeypatch, run_module):
        self.tmp = tmp_path
        self.run_module = run_module
        self.bin = tmp_path / "bin"
        self.bin.mkdir()
        self.log = tmp_path / "calls.log"
        for name, rc in (("keepalived", 0), ("systemctl", 0)):
            self.fake(name, rc)
        monkeypatch.setattr(basic.AnsibleModule, "get_bin_path",
                            lambda module, name, required=False, opt_dirs=None: str(self.bin / name))
        with open(SEED) as f:
            self.seed = yaml.safe_load(f)
        self.doc = tmp_path / "cluster.json"
        self.conf = tmp_path / "keepalived.conf"

    def fake(self, name, rc, message=""):
        path = self.bin / name
        path.write_text("#!/bin/sh\necho \"%s $*\" >> %s\necho '%s' >&2\nexit %d\n" % (name, self.log, message, rc))
        path.chmod(0o755)

    def calls(self):
        return self.log.read_text().splitlines() if self.log.exists() else []

    def converge(self, plane="ipvs"):
        result, failed = self.run_module(keepalived_config.main, dict(
            cluster=self.seed["cluster"], host=self.seed["directors"][0], directors=self.seed["directors"],
            real_server_hosts=self.seed["real_server_hosts"], dataplane=plane, dest=str(self.conf),
            document=str(self.doc)))
        assert not failed, result
        self.log.unlink()
        return result

    def drain(self, servers, **kw):
        return self.run_module(drain.main, dict(servers=servers, document=str(self.doc), **kw))


@pytest.fixture()
def director(tmp_path, monkeypatch, run_module):
    return Director(tmp_path, monkeypatch, run_module)


def test_ipvs_renders_weight_0_tests_and_reloads_keepalived(director):
    director.converge("ipvs")
    result, failed = director.drain(["1.1.1.3"])
    assert not failed, result
    assert result["changed"] and result["drained"] == ["1.1.1.3"] and result["reloaded"] == "keepalived"
    assert "real_server 1.1.1.3 80 {\n        weight 0" in director.conf.read_text()
    assert json.loads(director.doc.read_text())["drained"] == ["1.1.1.3"]
    calls = director.calls()
    assert calls[0].startswith("keepalived -t -f ") and calls[1] == "systemctl reload keepalived"
    # idempotent
    result, failed = director.drain(["1.1.1.3"])
    assert not failed and not result["changed"] and director.calls() == calls


def test_the_drain_survives_a_converge_and_undrain_restores_the_weight(director):
    director.converge("ipvs")
    director.drain(["1.1.1.3"])
    director.converge("ipvs")
    assert "real_server 1.1.1.3 80 {\n        weight 0" in director.conf.read_text()
    result, failed = director.drain(["1.1.1.3"], state="undrained")
    assert not failed and result["changed"] and result["drained"] == []
    assert "real_server 1.1.1.3 80 {\n        weight 1" in director.conf.read_text()


def test_nftables_reloads_the_checker_and_leaves_keepalived_conf(director):
    director.converge("nftables")
    before = director.conf.read_text()
    result, failed = director.drain(["1.1.1.4:80"])
    assert not failed, result
    assert result["reloaded"] == "lbha-checker" and director.calls() == ["systemctl reload lbha-checker"]
    assert director.conf.read_text() == before
    assert json.loads(director.doc.read_text())["drained"] == ["1.1.1.4:80"]


def test_check_mode_and_diff_change_nothing(director):
    director.converge("ipvs")
    before = (director.conf.read_text(), director.doc.read_text())
    result, failed = director.drain(["1.1.1.3"], _ansible_check_mode=True, _ansible_diff=True)
    assert not failed and result["changed"]
    assert (director.conf.read_text(), director.doc.read_text()) == before and director.calls() == []
    assert [d["after_header"] for d in result["diff"]] == [str(director.conf), str(director.doc)]
    assert "1111" not in json.dumps(result["diff"]), "the VRRP password is masked"


def test_unknown_servers_and_missing_documents_fail_clearly(director):
    director.converge("ipvs")
    result, failed = director.drain(["1.1.1.9", "1.1.1.3:443"])
    assert failed and "not a real server of lb1" in result["msg"] and "1.1.1.9, 1.1.1.3:443" in result["msg"]
    director.doc.unlink()
    result, failed = director.drain(["1.1.1.3"])
    assert failed and "cannot read" in result["msg"] and "converged by lbha.cluster" in result["msg"]


def test_a_refused_configuration_changes_nothing(director):
    director.converge("ipvs")
    before = (director.conf.read_text(), director.doc.read_text())
    director.fake("keepalived", 1, "(Line 9) Unknown keyword")
    result, failed = director.drain(["1.1.1.3"])
    assert failed and "keepalived -t refused" in result["msg"]
    assert (director.conf.read_text(), director.doc.read_text()) == before
    assert not any(c.startswith("systemctl") for c in director.calls())


def test_a_failed_reload_is_reported_with_the_state_written(director):
    director.converge("nftables")
    director.fake("systemctl", 1, "Unit lbha-checker.service not loaded.")
    result, failed = director.drain(["1.1.1.3"])
    assert failed and "not loaded" in result["msg"] and result["changed"]
    assert json.loads(director.doc.read_text())["drained"] == ["1.1.1.3"]
