# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The day-2 decisions (module_utils/operations.py) over lbha_info reports."""
from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import copy

from ansible_collections.lbha.cluster.plugins.module_utils import operations


def rs(address, healthy=True, weight=1, drained=False):
    return {"address": address, "port": 80, "healthy": healthy, "weight": weight, "drained": drained,
            "active_conn": 0, "inactive_conn": 0}


def report(state="BACKUP", held=(), priority=90, plane="ipvs", servers=None, keepalived=True, checker=None,
           instance="VI_1"):
    vips = [{"address": "1.1.1.111", "held": "1.1.1.111" in held}]
    return {"deployed": True, "dataplane": plane, "keepalived": {"running": keepalived, "pid": 1},
            "vrrp_instances": [{"name": instance, "state": state, "vips": ["1.1.1.111"], "virtual_router_id": 51,
                                "priority": priority, "nopreempt": False}],
            "vips": vips, "holds_vips": [v["address"] for v in vips if v["held"]], "master": state == "MASTER",
            "checker": checker, "services": {"keepalived": "keepalived", "checker": "lbha-checker"},
            "virtual_servers": [{"address": "1.1.1.111", "port": 80, "protocol": "TCP",
                                 "real_servers": servers if servers is not None else [rs("1.1.1.3"), rs("1.1.1.4")]}]}


def healthy():
    return {"lb1": report("MASTER", held=["1.1.1.111"], priority=100), "lb2": report()}


def test_a_healthy_cluster_has_no_problem_and_a_table():
    status = operations.cluster_status(healthy())
    assert status["problems"] == [] and status["unread"] == []
    assert status["masters"] == {"VI_1": ["lb1"]} and status["holders"] == {"1.1.1.111": ["lb1"]}
    table = status["table"]
    assert table[1].split() == ["lb1", "running", "ipvs", "VI_1", "MASTER", "1.1.1.111*"]
    assert table[2].split() == ["lb2", "running", "ipvs", "VI_1", "BACKUP", "1.1.1.111"]
    assert "lb1        TCP/1.1.1.111:80       1.1.1.3:80         healthy       1      0      0" in table


def test_split_brain_is_named_per_instance_and_per_vip():
    reports = healthy()
    reports["lb2"] = report("MASTER", held=["1.1.1.111"])
    problems = operations.cluster_status(reports)["problems"]
    assert "SPLIT BRAIN: VRRP instance VI_1 (VRID 51) is MASTER on lb1 and lb2" in problems
    assert "SPLIT BRAIN: VIP 1.1.1.111 is held by lb1 and lb2" in problems


def test_an_unheld_vip_and_unreachable_directors():
    reports = {"lb1": None, "lb2": report()}
    status = operations.cluster_status(reports)
    assert status["unread"] == ["lb1"]
    assert status["problems"] == ["VIP 1.1.1.111 is held by no reachable director (unreachable: lb1)"]
    assert "lb1        UNREACHABLE or failed: state unknown" in status["table"]
    assert operations.cluster_status({"lb1": report(), "lb2": report()})["problems"] == [
        "VIP 1.1.1.111 is held by no director"]
    assert "the state of no director could be read" in operations.cluster_status({"lb1": None})["problems"][0]


def test_a_dead_checker_or_missing_table_is_a_problem_on_nftables():
    reports = healthy()
    reports["lb2"] = report(plane="nftables", checker={"alive": False, "table_loaded": False, "age": 60, "pid": 9})
    problems = operations.cluster_status(reports)["problems"]
    assert any(p.startswith("lb2: the nftables checker is not running") for p in problems)
    assert "lb2: the nftables table is not loaded: this director drops the VIPs' traffic" in problems


def test_switchover_plan_chooses_the_highest_priority_peer():
    reports = healthy()
    reports["lb3"] = report(priority=95)
    assert operations.switchover_plan(reports) == {"master": "lb1", "peer": "lb3", "problems": []}
    assert operations.switchover_plan(reports, "lb2")["peer"] == "lb2"
    assert operations.switchover_plan(reports, "lb1")["problems"] == ["lb1 is the MASTER itself"]
    assert "lb9 is not a reachable director" in operations.switchover_plan(reports, "lb9")["problems"][0]
    two = dict(reports, lb2=report("MASTER", held=["1.1.1.111"]))
    assert operations.switchover_plan(two)["problems"][0] == "MASTER on lb1, lb2 (exactly one expected)"
    assert operations.switchover_plan({"lb1": report(), "lb2": None})["problems"][0] == \
        "MASTER on no director (exactly one expected)"


def test_switchover_plan_needs_the_source_named_in_an_active_active_cluster():
    reports = {"lb1": report("MASTER", held=["1.1.1.111"], priority=100),
               "lb2": report("MASTER", held=["1.1.1.112"], priority=100, instance="VI_2")}
    plan = operations.switchover_plan(reports)
    assert plan["master"] is None
    assert plan["problems"] == [
        "lb1 and lb2 are each MASTER of other instances (active-active), so there is no one MASTER to hand over "
        "from: lbha.cluster.failover takes the director to empty as lbha_failover_from"]
    assert operations.switchover_plan(reports, source="lb2") == {"master": "lb2", "peer": "lb1", "problems": []}
    assert operations.switchover_plan(reports, source="lb1")["peer"] == "lb2"
    assert operations.switchover_plan(reports, "lb1", "lb1")["problems"] == ["lb1 is the MASTER itself"]


def test_switchover_plan_refuses_to_give_back_nopreempt_instances_of_an_active_active_cluster():
    lb1 = report("MASTER", held=["1.1.1.111"], priority=100)
    lb1["vrrp_instances"][0]["nopreempt"] = True
    reports = {"lb1": lb1, "lb2": report("MASTER", held=["1.1.1.112"], priority=100, instance="VI_2")}
    assert operations.switchover_plan(reports, source="lb1")["problems"] == []
    problems = operations.switchover_plan(reports, source="lb1", restore=True)["problems"]
    assert problems == ["giving the VIPs back to lb1 restarts keepalived on lb2, which is MASTER of VI_2: with "
                        "nopreempt (VI_1) those would move too (lbha.cluster.failover without "
                        "lbha_failover_restore leaves the VIPs on the peer)"]
    lb1["vrrp_instances"][0]["nopreempt"] = False
    assert operations.switchover_plan(reports, source="lb1", restore=True)["problems"] == []


def test_switchover_plan_refuses_a_source_that_holds_nothing_or_a_split_brain():
    reports = healthy()
    assert operations.switchover_plan(reports, source="lb2")["problems"][0] == \
        "lb2 is MASTER of no instance: nothing to hand over"
    assert operations.switchover_plan(reports, source="lb1") == {"master": "lb1", "peer": "lb2", "problems": []}
    assert "lb9 is not a reachable director" in operations.switchover_plan(reports, source="lb9")["problems"][0]
    split = dict(reports, lb2=report("MASTER", held=["1.1.1.111"]))
    assert operations.switchover_plan(split, source="lb1")["problems"] == ["MASTER of VI_1 on lb1, lb2 (split brain)"]


def test_peer_problems():
    master = healthy()["lb1"]
    assert operations.peer_problems(master, report()) == []
    assert operations.peer_problems(master, report(keepalived=False)) == ["keepalived is not running"]
    assert operations.peer_problems(master, report(state="FAULT")) == ["every instance must be BACKUP (VI_1 is FAULT)"]
    assert operations.peer_problems(master, report(instance="VI_2")) == ["it has no instance VI_1"]
    down = report(servers=[rs("1.1.1.3", healthy=False, weight=0), rs("1.1.1.4", drained=True, weight=0)])
    assert operations.peer_problems(master, down) == ["no real server takes new connections for TCP/1.1.1.111:80"]
    dead = report(plane="nftables", checker={"alive": False, "table_loaded": True})
    assert operations.peer_problems(master, dead) == ["its nftables checker is not running or its table is not loaded"]


def test_drain_problems():
    reports = healthy()
    assert operations.drain_problems(reports, ["1.1.1.3"]) == []
    assert operations.drain_problems(reports, ["1.1.1.9"]) == [
        "not a real server on any director: 1.1.1.9 (set lbha_real_server_address)"]
    stranded = operations.drain_problems(reports, ["1.1.1.3", "1.1.1.4"])
    assert stranded == ["no real server would take new connections for lb1 TCP/1.1.1.111:80, lb2 TCP/1.1.1.111:80 "
                        "(lbha_drain_force=true drains anyway)"]
    assert operations.drain_problems(reports, ["1.1.1.3", "1.1.1.4"], force=True) == []
    # the other server is already drained: draining this one would strand the service
    one_left = copy.deepcopy(reports)
    for rep in one_left.values():
        rep["virtual_servers"][0]["real_servers"][1].update(drained=True, weight=0)
    assert operations.drain_problems(one_left, ["1.1.1.3"]) != []


def test_real_servers_settled():
    rep = report(servers=[rs("1.1.1.3", weight=0, drained=True), rs("1.1.1.4")])
    assert operations.real_servers_settled(rep, ["1.1.1.3"], "drained")
    assert not operations.real_servers_settled(rep, ["1.1.1.4"], "drained")
    # the document says drained at once; the table only once the plane applied it
    pending = report(servers=[rs("1.1.1.3", weight=1, drained=True)])
    assert not operations.real_servers_settled(pending, ["1.1.1.3"], "drained")
    assert operations.real_servers_settled(rep, ["1.1.1.4"], "undrained")
    assert not operations.real_servers_settled(report(servers=[rs("1.1.1.3", healthy=False, weight=0)]),
                                               ["1.1.1.3"], "undrained")
    assert not operations.real_servers_settled(report(servers=[]), ["1.1.1.3"], "undrained"), "absent is not back"


def test_the_peer_must_have_every_instance_of_the_master_not_only_those_it_holds():
    master = report("MASTER", held=["1.1.1.111"], priority=100)
    master["vrrp_instances"].append({"name": "VI_2", "state": "BACKUP", "vips": ["1.1.1.112"],
                                     "virtual_router_id": 52, "priority": 100, "nopreempt": False})
    assert operations.peer_problems(master, report()) == ["it has no instance VI_2"]
    peer = report()
    peer["vrrp_instances"].append({"name": "VI_2", "state": "MASTER", "vips": ["1.1.1.112"],
                                   "virtual_router_id": 52, "priority": 90, "nopreempt": False})
    assert operations.peer_problems(master, peer) == [], "VI_2 is not the MASTER's: the peer may hold it"


def test_an_unreachable_or_failed_peer_cannot_take_over():
    master = healthy()["lb1"]
    assert operations.peer_problems(master, {"unreachable": True, "msg": "container lb2 is paused"}) == [
        "its state could not be read: container lb2 is paused"]
    assert operations.peer_problems(master, {"failed": True, "msg": "boom"}) == ["its state could not be read: boom"]
    assert operations.peer_problems(master, None) == ["its state could not be read"]


def test_restore_report_says_whether_the_old_master_holds_its_vips_again():
    before = dict(healthy()["lb1"], director="lb1")
    back = operations.restore_report(before, report("MASTER", held=["1.1.1.111"]), "lb2",
                                     "Wait until the peer is MASTER and holds every VIP", "Timeout.")
    assert back == {"restored": True, "msg": "The switchover from lb1 to lb2 failed at 'Wait until the peer is "
                    "MASTER and holds every VIP': Timeout. keepalived was started again on lb1, which holds its "
                    "VIPs again (1.1.1.111)."}
    lost = operations.restore_report(before, report("BACKUP"), "lb2", "x", "y")
    assert not lost["restored"] and lost["msg"].endswith("which does NOT hold 1.1.1.111: run lbha.cluster.status now.")
    unread = operations.restore_report(before, {"failed": True, "msg": "no"}, "lb2", None, None)
    assert not unread["restored"] and "failed at '?': no message" in unread["msg"]
    assert not operations.restore_report(before, None, "lb2", "x", "y")["restored"]


# --- upgrade_plan ---------------------------------------------------------------------------------

def test_upgrade_plan_of_one_master_upgrades_the_backups_first_then_the_master_behind_the_best_peer():
    reports = dict(healthy(), lb3=report(priority=95))
    assert operations.upgrade_plan(reports) == {"backups": ["lb2", "lb3"], "masters": ["lb1"],
                                                "peer": {"lb1": "lb3"}, "problems": []}


def test_upgrade_plan_of_an_active_active_cluster_moves_each_masters_instances_in_turn():
    reports = {"lb1": report("MASTER", held=["1.1.1.111"], priority=100),
               "lb2": report("MASTER", held=["1.1.1.112"], priority=100, instance="VI_2")}
    assert operations.upgrade_plan(reports) == {"backups": [], "masters": ["lb1", "lb2"],
                                                "peer": {"lb1": "lb2", "lb2": "lb1"}, "problems": []}


def test_upgrade_plan_refuses_a_split_brain_no_master_nopreempt_active_active_and_a_lone_director():
    split = {"lb1": report("MASTER", held=["1.1.1.111"], priority=100), "lb2": report("MASTER", held=["1.1.1.111"])}
    assert operations.upgrade_plan(split)["problems"] == ["MASTER of VI_1 on lb1, lb2 (split brain)"]
    assert operations.upgrade_plan({"lb1": report(), "lb2": report()})["problems"] == ["MASTER on no director"]
    lb1 = report("MASTER", held=["1.1.1.111"], priority=100)
    lb1["vrrp_instances"][0]["nopreempt"] = True
    nopreempt = {"lb1": lb1, "lb2": report("MASTER", held=["1.1.1.112"], priority=100, instance="VI_2")}
    assert [p.split(":")[0] for p in operations.upgrade_plan(nopreempt)["problems"]] == [
        "giving the VIPs back to lb1 restarts keepalived on lb2, which is MASTER of VI_2"]
    # a single-MASTER cluster with nopreempt is fine: the peer holds nothing of its own
    single = healthy()
    single["lb1"]["vrrp_instances"][0]["nopreempt"] = True
    assert operations.upgrade_plan(single)["problems"] == []
    assert operations.upgrade_plan({"lb1": report("MASTER", held=["1.1.1.111"])})["problems"] == [
        "no reachable director other than the MASTER to take over"]
