# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Per-instance priority and state: two instances, each director MASTER of one (active-active),
and the per-host form beside it."""
from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import pytest

from ansible_collections.lbha.cluster.plugins.module_utils import keepalived, model
from ansible_collections.lbha.cluster.tests.unit.plugins.module_utils.test_keepalived import _testable, run_argv


def active_active(**over):
    instances = [
        {"name": "VI_1", "interface": "eth0", "virtual_router_id": 51, "virtual_ipaddress": ["10.0.0.100/24"],
         "priority": {"lb1": 100, "lb2": 90}},
        {"name": "VI_2", "interface": "eth0", "virtual_router_id": 52, "virtual_ipaddress": ["10.0.0.101/24"],
         "priority": {"lb1": 90, "lb2": 100}},
    ]
    for i, changes in over.items():
        instances[int(i[-1])].update(changes)
    return {"vrrp_instances": instances,
            "virtual_servers": [{"address": "10.0.0.%d" % vip, "port": 80,
                                 "real_servers": [{"address": "10.0.0.11"}, {"address": "10.0.0.12"}]}
                                for vip in (100, 101)]}


DIRECTORS = [{"name": "lb1", "address": "10.0.0.1"}, {"name": "lb2", "address": "10.0.0.2"}]


def view(cluster, directors=None):
    """{director: {instance: (state, priority)}}"""
    result = model.validate_cluster(cluster, directors or DIRECTORS)
    return dict((name, dict((i["name"], (i["state"], i["priority"])) for i in m["vrrp_instances"]))
                for name, m in result["directors"].items())


def errors(cluster, directors=None):
    with pytest.raises(model.ValidationError) as exc:
        model.validate_cluster(cluster, directors or DIRECTORS)
    return "\n".join(exc.value.errors)


def test_each_director_is_master_of_one_instance():
    assert view(active_active()) == {"lb1": {"VI_1": ("MASTER", 100), "VI_2": ("BACKUP", 90)},
                                     "lb2": {"VI_1": ("BACKUP", 90), "VI_2": ("MASTER", 100)}}


def test_the_per_host_form_is_the_default_an_instance_overrides():
    cluster = active_active(vi0={"priority": None}, vi1={"priority": {"lb1": 80}})
    directors = [dict(DIRECTORS[0], priority=100), dict(DIRECTORS[1], priority=90)]
    assert view(cluster, directors) == {"lb1": {"VI_1": ("MASTER", 100), "VI_2": ("BACKUP", 80)},
                                        "lb2": {"VI_1": ("BACKUP", 90), "VI_2": ("MASTER", 90)}}


def test_a_per_instance_state_is_rendered_for_that_instance_only():
    cluster = active_active(vi1={"state": {"lb2": "master"}})
    assert view(cluster)["lb2"] == {"VI_1": ("BACKUP", 90), "VI_2": ("MASTER", 100)}
    text = keepalived.render(model.normalize(cluster, DIRECTORS[1], DIRECTORS))
    vi2 = text.split("vrrp_instance VI_2 {")[1].split("\n}")[0]
    assert "    state MASTER\n" in vi2 and "    priority 100\n" in vi2


@pytest.mark.parametrize("changes,directors,message", [
    ({"vi1": {"priority": {"lb1": 90, "lb2": 90}}}, None,
     "lbha_cluster.vrrp_instances[1].priority: lb1 and lb2 both have priority 90"),
    ({"vi0": {"priority": {"lb1": 100}}}, None,
     "lb2: priority (lbha_director_priority): is required (1-254; the highest is MASTER), per host or per "
     "instance (vrrp_instances[].priority.lb2)"),
    ({"vi0": {"priority": {"lb1": 100, "lb3": 90}}}, None,
     "lbha_cluster.vrrp_instances[0].priority: 'lb3' is not a director (lb1, lb2)"),
    ({"vi0": {"priority": [100, 90]}}, None,
     "lbha_cluster.vrrp_instances[0].priority: expected a mapping of director names to priorities (1-255) "
     "(the per-host form is lbha_director_priority), got a list [100, 90]"),
    ({"vi0": {"priority": {"lb1": 300, "lb2": 90}}}, None,
     "lbha_cluster.vrrp_instances[0].priority.lb1: 300 is outside 1-255"),
    ({"vi1": {"state": {"lb1": "MASTER"}}}, None,
     "lbha_cluster.vrrp_instances[1].priority: lb1 is declared MASTER with priority 90 but lb2 has the "
     "higher priority 100 and would take over"),
    ({"vi1": {"state": {"lb1": "MASTER", "lb2": "MASTER"}}}, None,
     "lbha_cluster.vrrp_instances[1].priority: lb1, lb2 are all declared MASTER"),
    ({"vi0": {"state": {"lb1": "primary"}}}, None,
     "lbha_cluster.vrrp_instances[0].state.lb1: 'primary' is not one of MASTER, BACKUP"),
    ({"vi0": {"state": {"lb1": "MASTER"}, "nopreempt": True}}, None,
     "lbha_cluster.vrrp_instances[0].state.lb1: MASTER cannot be combined with nopreempt"),
    ({"vi0": {"priority": {"lb1": 255, "lb2": 90}}}, None,
     "lbha_cluster.vrrp_instances[0].priority.lb1: 255 is reserved for the owner"),
    # the per-host form is checked as before, once
    ({"vi0": {"priority": None}, "vi1": {"priority": None}},
     [dict(DIRECTORS[0], priority=100), dict(DIRECTORS[1], priority=100)],
     "directors: lb1 and lb2 both have priority 100"),
])
def test_every_instance_must_elect_one_master(changes, directors, message):
    text = errors(active_active(**changes), directors)
    assert message in text, text


def test_a_problem_of_the_per_host_form_is_reported_once():
    directors = [dict(DIRECTORS[0], priority=100), dict(DIRECTORS[1], priority=100)]
    text = errors(active_active(vi0={"priority": None}, vi1={"priority": None}), directors)
    assert text.count("both have priority 100") == 1, text


def test_keepalived_accepts_the_active_active_configuration(tmp_path, eth0_keepalived):
    cluster = active_active(vi1={"state": {"lb2": "MASTER"}})
    for director in DIRECTORS:
        path = tmp_path / ("%s.conf" % director["name"])
        path.write_text(_testable(keepalived.render(model.normalize(cluster, director, DIRECTORS))))
        ok, messages, _notes = keepalived.config_test(str(path), run_argv, eth0_keepalived)
        assert ok, messages
