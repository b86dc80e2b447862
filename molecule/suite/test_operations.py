# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The day-2 playbooks (lbha.cluster.status, drain, failover) against the running scenario.

Each test runs `ansible-playbook lbha.cluster.<name>` with an inventory built from molecule.yml
(lbha_suite/playbooks.py) and checks the outcome on the hosts themselves: VIP ownership, VRRP
state files, the plane's live table of real servers (lbha_suite/planes.py), and a client polling
the VIP every 50 ms. Each test starts from the steady state (MASTER, BACKUP, every real server
healthy) and restores it. In the comments, lb1 is the scenario's MASTER and lb2 its BACKUP,
web1 and web2 its first two real servers.
"""
from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import json
import re
import time

import pytest

from lbha_suite.cluster import (CLIENT, DIRECTOR_BACKUP, DIRECTOR_MASTER, DIRECTORS, INSTANCE, PAGES,
                                REAL_SERVERS, SCENARIO, VIP, holds_vip, is_master, master_down_interval,
                                outage, run_requests, serving, start_poller, start_sampler, vrrp_state,
                                wait_for, wait_master)
from lbha_suite.playbooks import run_module, run_playbook, upgrade_marks, upgrade_recorder

WEB1, WEB2 = sorted(REAL_SERVERS)[:2]
LB1, LB2 = DIRECTOR_MASTER, DIRECTOR_BACKUP
PLAYBOOK_VARS = {
    # the services are probed from the client container, as a user's client would see them
    "lbha_operations_probe_host": CLIENT,
    "lbha_operations_probe_url": "http://%s/" % VIP,
    "lbha_operations_timeout": 30,
}
POLL_SECONDS = 240          # upper bound of every poller of a test
DRAINED_OBSERVATION = 3.0   # seconds of traffic watched while web1 is drained


def playbook(inventory, name, **extra):
    variables = dict(PLAYBOOK_VARS)
    variables.update(extra)
    return run_playbook(inventory, name, variables)


def drained_on(topology, name):
    """The drained real servers of a director's host document."""
    return json.loads(topology[name].check("cat", SCENARIO.document))["drained"]


def clear_drain(topology, plane, inventory):
    """Nothing drained on any director: what a test left drained is undrained by the drain playbook."""
    left = sorted(set(a for name in DIRECTORS for a in drained_on(topology, name)))
    hosts = [n for n, a in REAL_SERVERS.items() if a in left]
    if hosts:
        result = playbook(inventory, "drain", lbha_drain_hosts=",".join(hosts), lbha_drain_state="undrained")
        assert result.returncode == 0, result.tail()
    for name in DIRECTORS:
        wait_for(lambda name=name: not any(rs.get("drained") for rs in plane.servers(topology[name]).values()),
                 30, "%s to report no drained real server" % name)


# --- status --------------------------------------------------------------------------------------

def row(*cells):
    """A regular expression for a row of the status table."""
    return r"\s+".join(re.escape(str(cell)) if cell is not None else r"\S+" for cell in cells)


def test_status_shows_the_master_and_exits_0(topology, steady_cluster, plane, inventory):
    result = playbook(inventory, "status")
    assert result.returncode == 0, result.tail()
    assert re.search(row(LB1, "running", plane.name, INSTANCE, "MASTER", VIP + "*"), result.output), result.tail()
    assert re.search(row(LB2, "running", plane.name, INSTANCE, "BACKUP", VIP) + r"(\s|')", result.output), result.tail()
    for address in REAL_SERVERS.values():
        assert re.search(row(LB1, "TCP/%s:%d" % (VIP, SCENARIO.service_port), "%s:%d" % (address, SCENARIO.service_port),
                             "healthy", 1), result.output), result.tail()
    assert "OK: every VIP (%s) is held by exactly one director" % VIP in result.output


@pytest.fixture
def vip_on_lb2(topology, steady_cluster):
    """The VIP added by hand on lb2's eth0 (a split brain); removed again afterwards."""
    lb2 = topology[DIRECTOR_BACKUP]
    lb2.check("ip", "addr", "add", "%s/%d" % (VIP, SCENARIO.vip_prefix), "dev", lb2.interface)
    yield lb2
    lb2.run("ip", "addr", "del", "%s/%d" % (VIP, SCENARIO.vip_prefix), "dev", lb2.interface)
    # the client may have learnt lb2's MAC for the VIP meanwhile: let it ask again
    topology[CLIENT].run("ip", "neigh", "del", VIP, "dev", topology[CLIENT].interface)
    wait_for(lambda: not holds_vip(lb2), 10, "the injected VIP to be gone from lb2")


def test_status_detects_an_injected_split_brain(topology, vip_on_lb2, plane, inventory):
    assert holds_vip(topology[DIRECTOR_MASTER]) and holds_vip(vip_on_lb2)
    result = playbook(inventory, "status")
    assert result.returncode != 0, result.tail()
    assert "SPLIT BRAIN: VIP %s is held by %s and %s" % (VIP, LB1, LB2) in result.output, result.tail()
    assert re.search(row(LB2, "running", plane.name, INSTANCE, "BACKUP", VIP + "*"), result.output), result.tail()


def test_status_fails_when_no_director_holds_the_vip(topology, steady_cluster, inventory):
    for name in DIRECTORS:
        topology[name].check("systemctl", "stop", "keepalived", timeout=60)
    for name in DIRECTORS:
        wait_for(lambda name=name: not holds_vip(topology[name]), 10, "the VIP to leave %s" % name)
    result = playbook(inventory, "status")
    assert result.returncode != 0, result.tail()
    assert "VIP %s is held by no director" % VIP in result.output, result.tail()
    assert re.search(row(LB1, "STOPPED"), result.output), result.tail()


# --- drain -----------------------------------------------------------------------------------------

@pytest.fixture
def undrained(topology, steady_cluster, plane, inventory):
    clear_drain(topology, plane, inventory)
    yield steady_cluster
    clear_drain(topology, plane, inventory)


def test_drain_web1_without_a_failed_request(topology, undrained, plane, inventory):
    web1_page, web2_page = PAGES[WEB1], PAGES[WEB2]
    poller = start_poller(topology[CLIENT], POLL_SECONDS)
    try:
        wait_for(lambda: {p.get("page") for p in poller.peek() if p["ok"]} >= {web1_page, web2_page}, 30,
                 "the client to get answers from both real servers")
        t_drain = time.time()
        drained = playbook(inventory, "drain", lbha_drain_hosts=WEB1, lbha_drain_timeout=60)
        t_drained = time.time()
        assert drained.returncode == 0, drained.tail()
        for name in DIRECTORS:
            web1 = plane.servers(topology[name])[REAL_SERVERS[WEB1]]
            assert web1["drained"] is True and web1["weight"] == 0, (name, web1)
            assert drained_on(topology, name) == [REAL_SERVERS[WEB1]]
        time.sleep(DRAINED_OBSERVATION)   # traffic to observe while drained, not a wait for a state
        t_undrain = time.time()
        undrained_run = playbook(inventory, "drain", lbha_drain_hosts=WEB1, lbha_drain_state="undrained")
        assert undrained_run.returncode == 0, undrained_run.tail()
        t_back = wait_for(lambda: next((p["t"] for p in poller.peek()
                                        if p["t"] >= t_undrain and p.get("page") == web1_page), None),
                          20, "%s to serve again after the undrain" % WEB1)
        polls = poller.stop()
    finally:
        poller.stop()

    failed = [p for p in polls if p["t"] >= t_drain and not p["ok"]]
    assert not failed, "%d request(s) failed during drain/undrain: %s" % (
        len(failed), [p.get("error") for p in failed[:3]])
    while_drained = [p for p in polls if t_drained <= p["t"] < t_undrain]
    assert len(while_drained) >= DRAINED_OBSERVATION / 0.05 * 0.5, "too few requests while drained"
    assert {p["page"] for p in while_drained} == {web2_page}, (
        "%s got new requests while drained: %s" % (WEB1, sorted({p["page"] for p in while_drained})))
    assert t_back - t_undrain <= 20
    for name in DIRECTORS:
        web1 = plane.servers(topology[name])[REAL_SERVERS[WEB1]]
        assert web1["drained"] is False and web1["weight"] == 1, (name, web1)
        assert drained_on(topology, name) == []


def test_a_drain_survives_restarts_of_keepalived_and_the_checker(topology, undrained, plane, inventory):
    """The drain is configuration (weight 0 in keepalived.conf, the document's list for the
    checker): restarting every unit of the plane on every director keeps the server drained."""
    result = playbook(inventory, "drain", lbha_drain_hosts=WEB1, lbha_drain_timeout=30)
    assert result.returncode == 0, result.tail()
    for name in DIRECTORS:
        for unit in plane.units:
            topology[name].check("systemctl", "restart", unit, timeout=60)
    for name in DIRECTORS:
        wait_for(lambda name=name: all(topology[name].is_active(u) for u in plane.units)
                 and REAL_SERVERS[WEB2] in plane.servers(topology[name]), 60,
                 "%s to run again after the restart" % name)
        web1 = plane.servers(topology[name]).get(REAL_SERVERS[WEB1])
        assert web1 is not None and web1["weight"] == 0 and web1["drained"], (name, web1)
    wait_master(topology, DIRECTOR_MASTER, 60, "after the restarts")
    polls = [p for p in run_requests(topology[CLIENT], 20) if p["ok"]]
    assert len(polls) == 20 and {p["page"] for p in polls} == {PAGES[WEB2]}, (
        "the drained %s served after the restarts: %s" % (WEB1, sorted({p.get("page") for p in polls})))


def test_an_undrain_leaves_a_failing_server_out(topology, undrained, plane, inventory):
    """Undraining a server whose health check fails gives it no traffic until it passes."""
    web1 = topology[WEB1]
    result = playbook(inventory, "drain", lbha_drain_hosts=WEB1, lbha_drain_timeout=30)
    assert result.returncode == 0, result.tail()
    web1.check("systemctl", "stop", "nginx", timeout=60)
    try:
        for name in DIRECTORS:
            # nftables: the checker reports it unhealthy; ipvs: keepalived took it out of the table
            wait_for(lambda name=name: not (plane.servers(topology[name]).get(REAL_SERVERS[WEB1]) or {}).get("healthy"),
                     60, "%s to see %s fail" % (name, WEB1))
        undrain = run_module(inventory, "directors", "drain", {"servers": [REAL_SERVERS[WEB1]], "state": "undrained"})
        assert undrain.returncode == 0, undrain.tail()
        for name in DIRECTORS:
            assert drained_on(topology, name) == []
        # a check cycle later the failing server is still out, and no request fails
        polls = run_requests(topology[CLIENT], 20)
        assert all(p["ok"] for p in polls) and {p["page"] for p in polls} == {PAGES[WEB2]}, polls[:3]
        for name in DIRECTORS:
            assert not serving(plane, topology[name], REAL_SERVERS[WEB1]), (name, plane.servers(topology[name]))
    finally:
        web1.check("systemctl", "start", "nginx", timeout=60)
    for name in DIRECTORS:
        wait_for(lambda name=name: serving(plane, topology[name], REAL_SERVERS[WEB1]), 60,
                 "%s to take %s back once it passes its check" % (name, WEB1))


def test_drain_refuses_to_strand_a_virtual_server(topology, undrained, plane, inventory):
    result = playbook(inventory, "drain", lbha_drain_hosts="real_servers", lbha_drain_serial=len(REAL_SERVERS))
    assert result.returncode != 0, result.tail()
    assert "no real server would take new connections for" in result.output, result.tail()
    for name in DIRECTORS:
        assert not any(rs["drained"] for rs in plane.servers(topology[name]).values())
        assert drained_on(topology, name) == []


def test_rolling_maintenance_restarts_nginx_without_a_failed_request(topology, undrained, plane, inventory, tmp_path):
    tasks = tmp_path / "restart-nginx.yml"
    tasks.write_text("- name: Restart nginx\n  ansible.builtin.systemd_service:\n"
                     "    name: nginx\n    state: restarted\n")
    pids = {name: topology[name].check("systemctl", "show", "-p", "MainPID", "--value", "nginx").strip()
            for name in REAL_SERVERS}
    poller = start_poller(topology[CLIENT], POLL_SECONDS)
    try:
        wait_for(lambda: len([p for p in poller.peek() if p["ok"]]) >= 5, 30, "good responses")
        t_start = time.time()
        result = playbook(inventory, "maintenance", lbha_maintenance_hosts="real_servers",
                          lbha_maintenance_tasks=str(tasks))
        t_end = time.time()
        wait_for(lambda: {p.get("page") for p in poller.peek() if p["t"] >= t_end} >= set(PAGES.values()),
                 20, "both real servers to serve after the maintenance")
        polls = poller.stop()
    finally:
        poller.stop()
    assert result.returncode == 0, result.tail()
    for name in REAL_SERVERS:
        assert topology[name].check("systemctl", "show", "-p", "MainPID", "--value", "nginx").strip() != pids[name], (
            "nginx on %s was not restarted by the maintenance tasks" % name)
    window = [p for p in polls if p["t"] >= t_start]
    failed = [p for p in window if not p["ok"]]
    assert len(window) >= 40 and not failed, "%d of %d requests failed (s after the start: error): %s" % (
        len(failed), len(window), ["%.2f: %s" % (p["t"] - t_start, p.get("error")) for p in failed[:20]])
    for name in DIRECTORS:
        assert not any(rs["drained"] for rs in plane.servers(topology[name]).values())
        assert drained_on(topology, name) == []


# --- failover --------------------------------------------------------------------------------------

def _takeover_bound(scenario):
    return master_down_interval(scenario.advert_int, scenario.priorities[DIRECTOR_BACKUP]) + 2.0


def test_failover_moves_the_vip_to_lb2(topology, steady_cluster, inventory):
    lb1 = topology[DIRECTOR_MASTER]
    poller = start_poller(topology[CLIENT], POLL_SECONDS)
    try:
        wait_for(lambda: len([p for p in poller.peek() if p["ok"]]) >= 5, 30, "good responses")
        t_start = time.time()
        result = playbook(inventory, "failover")
        polls = poller.stop()
    finally:
        poller.stop()
    assert result.returncode == 0, result.tail()
    assert is_master(topology, DIRECTOR_BACKUP), "%s is not the only MASTER after the failover playbook" % LB2
    assert vrrp_state(lb1) == "STOP" and not lb1.is_active("keepalived")
    assert "%s is MASTER with %s" % (LB2, VIP) in result.output
    window = outage(polls, t_start)
    assert window["recovered"], window
    assert window["outage_ms"] <= _takeover_bound(steady_cluster) * 1000, window


def test_failover_with_restore_moves_the_vip_to_lb2_and_back(topology, steady_cluster, inventory):
    lb2 = topology[DIRECTOR_BACKUP]
    sampler = start_sampler(lb2, POLL_SECONDS)
    try:
        wait_for(lambda: len(sampler.peek()) >= 3, 30, "the VIP sampler on %s to report" % LB2)
        t_start = time.time()
        result = playbook(inventory, "failover", lbha_failover_restore=True)
        samples = sampler.stop()
    finally:
        sampler.stop()
    assert result.returncode == 0, result.tail()
    assert "Switched over from %s to %s and back" % (LB1, LB2) in result.output, result.tail()
    on_lb2 = [s for s in samples if s["t"] >= t_start and s["vip"] and s["state"] == "MASTER"]
    assert on_lb2, "%s never held the VIP as MASTER during the switchover" % LB2
    assert is_master(topology, DIRECTOR_MASTER), "%s is not the only MASTER after the restore" % LB1
    assert vrrp_state(lb2) == "BACKUP" and not holds_vip(lb2)


def test_failover_refuses_when_the_peer_is_unhealthy(topology, steady_cluster, inventory):
    lb2 = topology[DIRECTOR_BACKUP]
    lb2.check("systemctl", "stop", "keepalived", timeout=60)
    result = playbook(inventory, "failover")
    assert result.returncode != 0, result.tail()
    assert "Refusing the switchover from %s to %s: the peer is not ready (keepalived is not running" % (
        LB1, LB2) in result.output, result.tail()
    lb1 = topology[DIRECTOR_MASTER]
    assert lb1.is_active("keepalived") and vrrp_state(lb1) == "MASTER" and holds_vip(lb1)


# --- rolling upgrade of the directors -----------------------------------------------------------------

def test_upgrade_directors_upgrades_the_backup_first_and_never_the_vip_holder(
        topology, steady_cluster, inventory, tmp_path):
    # the "upgrade" records when it ran and whether this director held the VIP at that moment
    tasks = upgrade_recorder(tmp_path / "upgrade.yml", [VIP], [topology[name] for name in DIRECTORS])
    poller = start_poller(topology[CLIENT], POLL_SECONDS)
    try:
        wait_for(lambda: len([p for p in poller.peek() if p["ok"]]) >= 5, 30, "good responses")
        t_start = time.time()
        result = playbook(inventory, "upgrade_directors", lbha_upgrade_tasks=tasks)
        polls = poller.stop()
    finally:
        poller.stop()
    assert result.returncode == 0, result.tail()
    marks = upgrade_marks([topology[name] for name in DIRECTORS])
    assert marks[DIRECTOR_BACKUP][0] < marks[DIRECTOR_MASTER][0], "the MASTER was upgraded first: %s" % marks
    assert all(held == 0 for _unused, held in marks.values()), "a director held the VIP while upgraded: %s" % marks
    assert is_master(topology, DIRECTOR_MASTER), "%s is not MASTER again after the upgrade" % LB1
    assert vrrp_state(topology[DIRECTOR_BACKUP]) == "BACKUP"
    window = [p for p in polls if p["t"] >= t_start]
    failed = [p for p in window if not p["ok"]]
    assert len(window) >= 40 and not failed, "%d of %d requests failed during the upgrade: %s" % (
        len(failed), len(window), ["%.2f: %s" % (p["t"] - t_start, p.get("error")) for p in failed[:20]])
