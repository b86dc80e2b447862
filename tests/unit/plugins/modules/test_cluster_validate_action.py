# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The cluster_validate action plugin (the validation in the controller's process) returns what
the module returns, fails as it fails, and never returns an auth_pass."""
from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import copy
import json
from unittest import mock

import pytest

from ansible_collections.lbha.cluster.plugins.action.cluster_validate import ActionModule
from ansible_collections.lbha.cluster.plugins.modules import cluster_validate

SECRET = "Zq7-xKp2"


@pytest.fixture()
def seed(seed_definition):
    seed_definition["cluster"]["vrrp_instances"][0]["authentication"]["auth_pass"] = SECRET
    return seed_definition


def action(args):
    task = mock.MagicMock(args=copy.deepcopy(args), async_val=0, check_mode=False, diff=False, action="cluster_validate")
    plugin = ActionModule(task=task, connection=mock.MagicMock(), play_context=mock.MagicMock(check_mode=False),
                          loader=None, templar=None, shared_loader_obj=None)
    return plugin.run(task_vars={})


def args(seed, **more):
    return dict(dict(cluster=seed["cluster"], directors=seed["directors"],
                     real_server_hosts=seed["real_server_hosts"]), **more)


def test_the_action_returns_what_the_module_returns(seed, run_module):
    result = action(args(seed))
    module_result, failed = run_module(cluster_validate.main, args(seed))
    assert not failed and not result.get("failed")
    for key in ("changed", "directors", "virtual_services", "vips"):
        assert result[key] == module_result[key], key
    assert result["directors"]["lb2"]["state"] == {"VI_1": "BACKUP"}


def test_a_bad_definition_fails_with_every_error_and_no_secret(seed):
    seed["cluster"]["vrrp_instances"][0]["virtual_router_id"] = 300
    seed["cluster"]["vrrp_instances"][0]["authentication"]["auth_pass"] = SECRET + "-far-too-long"
    result = action(args(seed))
    assert result["failed"] and "virtual_router_id: 300 is outside 1-255" in result["msg"]
    assert result["errors"] and SECRET not in json.dumps(result)


def test_options_are_checked_against_the_modules_spec(seed):
    from ansible.errors import AnsibleActionFail
    with pytest.raises(AnsibleActionFail) as info:
        action(args(seed, dataplane="tc"))
    assert "dataplane" in str(info.value)
