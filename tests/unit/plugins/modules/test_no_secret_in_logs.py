# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""auth_pass never reaches a log: not the invocation AnsibleModule writes to syslog/the journal
while it is constructed, not the module's result (its ``invocation``), for every module that takes
the cluster definition."""
from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import json

import pytest
from ansible.module_utils import basic

from ansible_collections.lbha.cluster.plugins.module_utils import _args
from ansible_collections.lbha.cluster.plugins.modules import cluster_validate, keepalived_config

SECRET = "Zq7-xKp2"


@pytest.fixture()
def seed(seed_definition):
    seed_definition["cluster"]["vrrp_instances"][0]["authentication"]["auth_pass"] = SECRET
    return seed_definition


@pytest.fixture()
def journal(monkeypatch):
    """What AnsibleModule.log would send to syslog or the journal."""
    lines = []

    def log(self, msg, log_args=None):
        lines.append((msg, json.dumps(log_args, default=str)))
    monkeypatch.setattr(basic.AnsibleModule, "log", log)
    return lines


def _module_args(module, seed, tmp_path):
    out = dict(cluster=seed["cluster"], directors=seed["directors"], real_server_hosts=seed["real_server_hosts"])
    if module is keepalived_config:
        out.update(host=seed["directors"][0], dest=str(tmp_path / "keepalived.conf"),
                   document=str(tmp_path / "cluster.json"), validate=False)
    return out


@pytest.mark.parametrize("module", [keepalived_config, cluster_validate], ids=["keepalived_config", "cluster_validate"])
def test_the_invocation_log_and_the_result_hold_no_auth_pass(module, seed, tmp_path, journal, capsys, module_args):
    with module_args(_module_args(module, seed, tmp_path)):
        with pytest.raises(SystemExit) as info:
            module.main()
    out = capsys.readouterr().out
    assert info.value.code == 0, out
    invoked = [m for m, _a in journal if m.startswith("Invoked with ")]
    assert len(invoked) == 1, "the module logged no invocation (the test would prove nothing): %s" % journal
    assert "cluster=" in invoked[0] and "VI_1" in invoked[0], invoked[0]
    for msg, log_args in journal:
        assert SECRET not in msg and SECRET not in log_args, msg
    assert SECRET not in out
    result = json.loads(out)
    # ansible-core before 2.20 echoes the masked arguments in the result (later ones leave that to
    # the controller); the secret is not in the output either way (above)
    if "invocation" in result:
        assert result["invocation"]["module_args"]["cluster"]["vrrp_instances"][0]["authentication"][
            "auth_pass"] != SECRET


def test_a_plain_ansible_module_would_log_it(seed, tmp_path, journal, module_args):
    """The control: without cluster_module the secret does reach the invocation log."""
    spec = _args.cluster_argument_spec()
    with module_args(dict(cluster=seed["cluster"])):
        basic.AnsibleModule(argument_spec=spec)
    assert any(SECRET in m for m, _a in journal)


def test_the_cluster_option_is_not_no_log(module_args):
    """no_log on `cluster` would make Ansible mask every value of the definition (80, TCP, eth0)
    in every message; the secrets are masked one by one instead."""
    assert not _args.cluster_argument_spec()["cluster"].get("no_log")
    with module_args(dict(cluster={"vrrp_instances": [{"name": "VI_1", "authentication": {"auth_pass": SECRET}}]})):
        module = _args.cluster_module(argument_spec=_args.cluster_argument_spec())
    assert SECRET in module.no_log_values and "VI_1" not in module.no_log_values
