# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""keepalived_config: idempotence, check mode, diff masking, validation, the host document."""
from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import json
import os
import pwd
import stat

import pytest
import yaml
from ansible.module_utils import basic

from ansible_collections.lbha.cluster.plugins.modules import cluster_validate, keepalived_config

SEED = os.path.join(os.path.dirname(__file__), "..", "..", "fixtures", "seed")


@pytest.fixture()
def seed():
    with open(os.path.join(SEED, "cluster.yml")) as f:
        return yaml.safe_load(f)


@pytest.fixture()
def fake_keepalived(tmp_path, monkeypatch):
    """Point the module at a fake keepalived; ``.set(rc, message)`` decides what -t answers."""
    class Fake(object):
        path = tmp_path / "bin" / "keepalived"

        def set(self, rc, message=""):
            self.path.parent.mkdir(exist_ok=True)
            self.path.write_text("#!/bin/sh\necho \"$@\" >> %s\nprintf '%%s\\n' \"%s\" >&2\nexit %d\n"
                                 % (tmp_path / "calls.log", message, rc))
            self.path.chmod(0o755)

        def calls(self):
            log = tmp_path / "calls.log"
            return log.read_text().splitlines() if log.exists() else []

    fake = Fake()
    fake.set(0)
    monkeypatch.setattr(basic.AnsibleModule, "get_bin_path",
                        lambda self, name, required=False, opt_dirs=None: str(fake.path))
    return fake


def args(seed, tmp_path, name="lb1", **kw):
    host = [d for d in seed["directors"] if d["name"] == name][0]
    out = dict(cluster=seed["cluster"], host=host, directors=seed["directors"],
               real_server_hosts=seed["real_server_hosts"], dest=str(tmp_path / "keepalived.conf"),
               document=str(tmp_path / "lbha" / "cluster.json"))
    out.update(kw)
    return out


def golden(name):
    with open(os.path.join(SEED, name)) as f:
        return f.read()


def test_first_run_changes_second_does_not(run_module, seed, tmp_path, fake_keepalived):
    a = args(seed, tmp_path)
    result, failed = run_module(keepalived_config.main, a)
    assert not failed and result["changed"]
    dest = tmp_path / "keepalived.conf"
    assert dest.read_text() == golden("lb1.conf")
    assert stat.S_IMODE(dest.stat().st_mode) == 0o640
    assert result["vrrp_instances"] == ["VI_1"] and result["virtual_servers"] == 1
    assert result["state"] == {"VI_1": "MASTER"} and result["document_changed"] and result["conf_changed"]
    assert result["plane"] == "ipvs" and result["previous_plane"] is None and result["drained"] == []
    assert len(fake_keepalived.calls()) == 1 and fake_keepalived.calls()[0].startswith("-t -f ")
    assert "backup_file" not in result  # nothing to back up the first time
    doc = tmp_path / "lbha" / "cluster.json"
    assert json.loads(doc.read_text())["plane"] == "ipvs"
    assert stat.S_IMODE(doc.stat().st_mode) == 0o600, "the document holds the VRRP password"

    result, failed = run_module(keepalived_config.main, a)
    assert not failed and not result["changed"]
    assert len(fake_keepalived.calls()) == 1  # an unchanged file is not tested again


def test_change_makes_a_backup(run_module, seed, tmp_path, fake_keepalived):
    run_module(keepalived_config.main, args(seed, tmp_path))
    seed["directors"][0]["priority"] = 110
    result, failed = run_module(keepalived_config.main, args(seed, tmp_path))
    assert not failed and result["changed"]
    assert "priority 110" in (tmp_path / "keepalived.conf").read_text()
    assert "priority 100" in open(result["backup_file"]).read()
    assert stat.S_IMODE(os.stat(result["backup_file"]).st_mode) == 0o600


def test_only_the_newest_backups_are_kept(run_module, seed, tmp_path, fake_keepalived):
    run_module(keepalived_config.main, args(seed, tmp_path))
    for day in (1, 2, 3):
        old = tmp_path / ("keepalived.conf.1.2026-01-0%d@00:00:00~" % day)
        old.write_text("auth_pass old%d\n" % day)
        os.utime(str(old), (day * 86400, day * 86400))
    seed["directors"][0]["priority"] = 101
    result, failed = run_module(keepalived_config.main, args(seed, tmp_path, keep_backups=2))
    assert not failed and result["changed"]
    backups = sorted(p.name for p in tmp_path.glob("keepalived.conf.*~"))
    assert backups == sorted([os.path.basename(result["backup_file"]), "keepalived.conf.1.2026-01-03@00:00:00~"])


def test_check_mode_writes_nothing(run_module, seed, tmp_path, fake_keepalived):
    result, failed = run_module(keepalived_config.main, dict(args(seed, tmp_path, dataplane="nftables"),
                                                             _ansible_check_mode=True))
    assert not failed and result["changed"] and result["document_changed"]
    assert not (tmp_path / "keepalived.conf").exists()
    assert not (tmp_path / "lbha").exists()
    assert fake_keepalived.calls() == []


def test_diff_masks_secrets(run_module, seed, tmp_path, fake_keepalived):
    dest = tmp_path / "keepalived.conf"
    dest.write_text(golden("lb1.conf").replace("auth_pass 1111", "auth_pass oldpass1"))
    result, failed = run_module(keepalived_config.main, dict(args(seed, tmp_path), _ansible_diff=True))
    assert not failed and result["changed"]
    diff = result["diff"][0]
    assert diff["before_header"] == str(dest)
    assert "auth_pass ********" in diff["before"] and "auth_pass ********" in diff["after"]
    assert result["diff"][1]["after_header"].endswith("cluster.json")
    assert '"auth_pass": "********"' in result["diff"][1]["after"]
    text = json.dumps(result)
    assert "1111" not in text and "oldpass1" not in text
    assert "auth_pass 1111" in dest.read_text()  # the file itself holds the real secret


def test_keepalived_failure_leaves_live_file(run_module, seed, tmp_path, fake_keepalived):
    dest = tmp_path / "keepalived.conf"
    dest.write_text("# the live file\n")
    fake_keepalived.set(1, "(Line 9) Unknown keyword 'bogus'")
    result, failed = run_module(keepalived_config.main, args(seed, tmp_path))
    assert failed
    assert "Unknown keyword 'bogus'" in result["msg"] and "is unchanged" in result["msg"]
    assert dest.read_text() == "# the live file\n"
    assert sorted(os.listdir(tmp_path)) == ["bin", "calls.log", "keepalived.conf"]  # no temp file left


def test_validate_false_skips_keepalived(run_module, seed, tmp_path, fake_keepalived):
    fake_keepalived.set(1, "would fail")
    result, failed = run_module(keepalived_config.main, args(seed, tmp_path, validate=False))
    assert not failed and result["changed"] and fake_keepalived.calls() == []


def test_validation_error_names_host_and_field(run_module, seed, tmp_path, fake_keepalived):
    seed["cluster"]["vrrp_instances"][0]["virtual_router_id"] = 300
    result, failed = run_module(keepalived_config.main, args(seed, tmp_path, name="lb2"))
    assert failed
    assert "lb2: lbha_cluster.vrrp_instances[0].virtual_router_id: 300 is outside 1-255" in result["errors"]
    assert not (tmp_path / "keepalived.conf").exists()


def test_nftables_document(run_module, seed, tmp_path, fake_keepalived):
    a = args(seed, tmp_path, dataplane="nftables", flow_timeout=120)
    result, failed = run_module(keepalived_config.main, a)
    assert not failed, result.get("msg")
    assert result["changed"] and result["document_changed"] and result["plane"] == "nftables"
    assert (tmp_path / "keepalived.conf").read_text() == golden("lb1-nftables.conf")
    doc = json.loads((tmp_path / "lbha" / "cluster.json").read_text())
    assert doc["plane"] == "nftables" and doc["nftables"]["flow_timeout"] == 120
    assert [rs["address"] for rs in doc["model"]["virtual_servers"][0]["real_servers"]] == ["1.1.1.3", "1.1.1.4"]
    result, failed = run_module(keepalived_config.main, a)
    assert not failed and not result["changed"] and not result["document_changed"]


def test_a_converge_keeps_the_drained_servers(run_module, seed, tmp_path, fake_keepalived):
    run_module(keepalived_config.main, args(seed, tmp_path))
    path = tmp_path / "lbha" / "cluster.json"
    doc = json.loads(path.read_text())
    doc["drained"] = ["1.1.1.3", "1.1.1.9"]
    path.write_text(json.dumps(doc))
    result, failed = run_module(keepalived_config.main, args(seed, tmp_path))
    assert not failed and result["drained"] == ["1.1.1.3"]
    assert any("1.1.1.9 is no longer a real server" in w for w in result.get("warnings", []))
    conf = (tmp_path / "keepalived.conf").read_text()
    assert "real_server 1.1.1.3 80 {\n        weight 0" in conf, "a drained server stays at weight 0"


def test_a_broken_document_is_not_overwritten(run_module, seed, tmp_path, fake_keepalived):
    (tmp_path / "lbha").mkdir()
    (tmp_path / "lbha" / "cluster.json").write_text("{")
    result, failed = run_module(keepalived_config.main, args(seed, tmp_path))
    assert failed and "must not be lost" in result["msg"]
    assert (tmp_path / "lbha" / "cluster.json").read_text() == "{"
    assert not (tmp_path / "keepalived.conf").exists()


def test_a_plane_switch_is_reported(run_module, seed, tmp_path, fake_keepalived):
    run_module(keepalived_config.main, args(seed, tmp_path, dataplane="nftables"))
    result, failed = run_module(keepalived_config.main, args(seed, tmp_path))
    assert not failed and result["previous_plane"] == "nftables" and result["plane"] == "ipvs"


def test_auth_pass_kept_out_of_module_output(seed, tmp_path, fake_keepalived, capsys, module_args):
    # The real exit_json: the invocation's module_args must not show auth_pass.
    seed["cluster"]["vrrp_instances"][0]["authentication"]["auth_pass"] = "s3cr3tpw"
    with module_args(args(seed, tmp_path)):
        with pytest.raises(SystemExit):
            keepalived_config.main()
    out = capsys.readouterr().out
    assert "s3cr3tpw" not in out and '"changed": true' in out


def test_real_keepalived(run_module, seed, tmp_path, monkeypatch, eth0_keepalived):
    binary = eth0_keepalived
    monkeypatch.setattr(basic.AnsibleModule, "get_bin_path",
                        lambda self, name, required=False, opt_dirs=None: binary)
    # script_user must exist here (the director role creates keepalived_script)
    result, failed = run_module(keepalived_config.main, args(seed, tmp_path, script_user="nobody"))
    assert not failed, result.get("msg")
    assert result["changed"]
    # an unknown interface is refused by keepalived itself, and the live file stays
    live = (tmp_path / "keepalived.conf").read_text()
    seed["cluster"]["vrrp_instances"][0]["interface"] = "lbhanoif0"
    result, failed = run_module(keepalived_config.main, args(seed, tmp_path, script_user="nobody"))
    assert failed and "keepalived -t refused" in result["msg"]
    assert (tmp_path / "keepalived.conf").read_text() == live


def test_cluster_validate(run_module, seed):
    result, failed = run_module(cluster_validate.main, dict(cluster=seed["cluster"], directors=seed["directors"],
                                                            real_server_hosts=seed["real_server_hosts"]))
    assert not failed and not result["changed"]
    assert result["directors"]["lb1"]["state"] == {"VI_1": "MASTER"}
    assert result["directors"]["lb2"] == {"priority": 90, "router_id": "backup", "state": {"VI_1": "BACKUP"},
                                          "priorities": {"VI_1": 90}}
    assert result["virtual_services"] == [{"address": "1.1.1.111", "port": 80, "protocol": "TCP",
                                           "lb_kind": "DR", "real_servers": 2}]
    assert result["vips"] == ["1.1.1.111"]


def test_cluster_validate_active_active(run_module, seed):
    """Each director MASTER of one instance; no per-host priority at all."""
    first = seed["cluster"]["vrrp_instances"][0]
    second = dict(first, name="VI_2", virtual_router_id=52, virtual_ipaddress=["1.1.1.112/24"],
                  priority={"lb1": 90, "lb2": 100})
    first["priority"] = {"lb1": 100, "lb2": 90}
    seed["cluster"]["vrrp_instances"].append(second)
    for d in seed["directors"]:
        d.pop("priority")
        d.pop("state", None)
    result, failed = run_module(cluster_validate.main, dict(cluster=seed["cluster"], directors=seed["directors"],
                                                            real_server_hosts=seed["real_server_hosts"]))
    assert not failed, result
    assert result["directors"]["lb1"]["state"] == {"VI_1": "MASTER", "VI_2": "BACKUP"}
    assert result["directors"]["lb2"]["state"] == {"VI_1": "BACKUP", "VI_2": "MASTER"}
    assert result["directors"]["lb2"]["priorities"] == {"VI_1": 90, "VI_2": 100}
    assert result["directors"]["lb2"]["priority"] is None
    assert result["vips"] == ["1.1.1.111", "1.1.1.112"]


def test_cluster_validate_fails_with_all_errors(run_module, seed):
    seed["cluster"]["vrrp_instances"][0]["authentication"]["auth_pass"] = "123456789"
    seed["directors"][1]["priority"] = 100
    result, failed = run_module(cluster_validate.main, dict(cluster=seed["cluster"], directors=seed["directors"],
                                                            real_server_hosts=seed["real_server_hosts"]))
    assert failed
    assert any(e.startswith("lb1, lb2: lbha_cluster.vrrp_instances[0].authentication.auth_pass")
               for e in result["errors"])
    assert any("both have priority 100" in e for e in result["errors"])


def test_no_secret_is_ever_in_a_file_looser_than_its_final_mode(run_module, seed, tmp_path, fake_keepalived,
                                                                monkeypatch):
    """Every file the module renames into place (keepalived.conf, the document, a backup) already
    has its final mode, at most 0640, and its whole content: there is no moment at which a
    secret sits in a file someone else may read."""
    from ansible_collections.lbha.cluster.plugins.module_utils import _files
    dest = tmp_path / "keepalived.conf"
    dest.write_text(golden("lb1.conf").replace("auth_pass 1111", "auth_pass oldpass1"))
    dest.chmod(0o644)            # an earlier release (or a hand-made file) left it world-readable
    renamed = []
    real_rename = os.rename

    def rename(src, dst):
        renamed.append((os.path.basename(str(dst)), stat.S_IMODE(os.stat(src).st_mode), open(src).read()))
        return real_rename(src, dst)
    monkeypatch.setattr(_files.os, "rename", rename)
    result, failed = run_module(keepalived_config.main, args(seed, tmp_path))
    assert not failed and result["changed"]
    names = [n for n, _m, _t in renamed]
    assert "keepalived.conf" in names and "cluster.json" in names and any(n.endswith("~") for n in names), names
    for name, mode, text in renamed:
        assert mode & 0o037 == 0, "%s was renamed into place with mode %o" % (name, mode)
        if name.endswith("~"):
            assert mode == 0o600 and "auth_pass oldpass1" in text
        if name == "keepalived.conf":
            assert mode == 0o640 and "auth_pass 1111" in text
    assert stat.S_IMODE(dest.stat().st_mode) == 0o640


def test_backups_of_earlier_releases_become_0600_and_are_pruned(run_module, seed, tmp_path, fake_keepalived):
    run_module(keepalived_config.main, args(seed, tmp_path))
    for day in (1, 2, 3, 4):
        old = tmp_path / ("keepalived.conf.1.2026-01-0%d@00:00:00~" % day)
        old.write_text("auth_pass old%d\n" % day)
        old.chmod(0o644)
        os.utime(str(old), (day * 86400, day * 86400))
    seed["directors"][0]["priority"] = 101
    result, failed = run_module(keepalived_config.main, args(seed, tmp_path))
    assert not failed and result["changed"]
    backups = sorted(tmp_path.glob("keepalived.conf.*~"))
    assert len(backups) == 3, [b.name for b in backups]
    assert not (tmp_path / "keepalived.conf.1.2026-01-01@00:00:00~").exists()
    assert not (tmp_path / "keepalived.conf.1.2026-01-02@00:00:00~").exists()
    assert all(stat.S_IMODE(b.stat().st_mode) == 0o600 for b in backups), [
        (b.name, oct(stat.S_IMODE(b.stat().st_mode))) for b in backups]


def test_preflight_tests_and_writes_nothing(run_module, seed, tmp_path, fake_keepalived):
    etc = tmp_path / "etc"
    a = args(seed, tmp_path, dest=str(etc / "keepalived" / "keepalived.conf"),
             document=str(etc / "lbha" / "cluster.json"), dataplane="nftables", preflight=True)
    result, failed = run_module(keepalived_config.main, a)
    assert not failed and result["tested"] is True and not result["changed"], result
    assert result["conf_changed"], "it says what a converge would change"
    assert len(fake_keepalived.calls()) == 1 and fake_keepalived.calls()[0].startswith("-t -f ")
    assert not etc.exists(), "preflight created %s" % sorted(str(p) for p in etc.rglob("*"))


def test_preflight_says_when_the_host_already_has_exactly_this_configuration(run_module, seed, tmp_path, fake_keepalived):
    """in_place: the converge call would change nothing (files and mode), so the role skips it."""
    me = pwd.getpwuid(os.getuid()).pw_name
    a = args(seed, tmp_path, dataplane="nftables", mode="0640", owner=me)
    before, _failed = run_module(keepalived_config.main, dict(a, preflight=True))
    assert before["in_place"] is False
    written, failed = run_module(keepalived_config.main, a)
    assert not failed and written["changed"]
    now, _failed = run_module(keepalived_config.main, dict(a, preflight=True))
    assert now["in_place"] is True and now["ipvs_notrack"] == written["ipvs_notrack"]
    again, _failed = run_module(keepalived_config.main, a)
    assert not again["changed"], "in_place said the converge would change nothing"
    os.chmod(str(tmp_path / "keepalived.conf"), 0o644)
    assert run_module(keepalived_config.main, dict(a, preflight=True))[0]["in_place"] is False
    os.chmod(str(tmp_path / "keepalived.conf"), 0o640)
    seed["directors"][0]["priority"] = 101
    assert run_module(keepalived_config.main, dict(args(seed, tmp_path, dataplane="nftables", mode="0640",
                                                        owner=me), preflight=True))[0]["in_place"] is False
    assert run_module(keepalived_config.main, dict(a, dataplane="ipvs", preflight=True))[0]["in_place"] is False


def test_preflight_failure_names_the_director_and_changes_nothing(run_module, seed, tmp_path, fake_keepalived):
    dest = tmp_path / "keepalived.conf"
    dest.write_text("# the live file\n")
    fake_keepalived.set(1, "WARNING - interface lbhat0 for vrrp instance VI_1 doesn't exist")
    result, failed = run_module(keepalived_config.main, args(seed, tmp_path, name="lb2", preflight=True))
    assert failed
    assert "keepalived -t refused the new configuration; lb2: nothing was changed on any host" in result["msg"]
    assert "interface lbhat0" in result["msg"]
    assert dest.read_text() == "# the live file\n"
    assert sorted(os.listdir(tmp_path)) == ["bin", "calls.log", "keepalived.conf"]


def test_preflight_stands_in_only_for_the_collections_own_missing_programs():
    from ansible_collections.lbha.cluster.plugins.module_utils._config import preflight_text
    text = ('    script_user keepalived_script\n    script "/usr/lib/lbha-cluster/plane-check /run/x 10"\n'
            '    notify "/usr/lib/lbha-cluster/notify"\n    script "/usr/local/bin/mine"\n')
    out = preflight_text(text, ("/usr/lib/lbha-cluster/notify", "/usr/lib/lbha-cluster/plane-check"),
                         lambda user: False, lambda path: False)
    assert out == ('    script_user root\n    script "/usr/bin/true /run/x 10"\n'
                   '    notify "/usr/bin/true"\n    script "/usr/local/bin/mine"\n')
    assert preflight_text(text, ("/usr/lib/lbha-cluster/notify",), lambda user: True, lambda path: True) == text
