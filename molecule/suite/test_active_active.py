# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Active-active: each director MASTER of its own instances, both forwarding (molecule/active-active).

Expectations come from the inventory (lbha_suite/scenario.py: every instance, its priorities and
its MASTER). The steady state is every instance's MASTER holding the instance's VIP and the
other director BACKUP of it; each test starts from it and restores it.
"""
from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import re
import time

import pytest

from lbha_suite.cluster import (CLIENT, DIRECTORS, DRIVER, PAGES, POLLER_SCRIPT, REAL_SERVERS, SCENARIO,
                                SERVICE_PORT, Recorder, fetch, master_down_interval, neighbour_mac,
                                neighbour_replies, read_mails, start_everything, start_host, wait_booted,
                                wait_for)
from lbha_suite.playbooks import run_playbook, upgrade_marks, upgrade_recorder
from lbha_suite.scenario import VRRP_STATE_DIR

INSTANCES = SCENARIO.instances
MARGIN = DRIVER.slack
SETTLE = 90                 # the cluster back to its steady state after a test (s)
MAIL_BOUND = 40.0           # a transition until its e-mail is in the client's mailbox (s)
DRILL_SECONDS = 240


def state_of(host, instance):
    result = host.run("cat", "%s/%s.state" % (VRRP_STATE_DIR, instance))
    return result.stdout.strip() if result.returncode == 0 else None


def vips_on(host):
    """The VIPs of the scenario (IPv4 and IPv6) on the host's interface (nothing when it is down)."""
    if not DRIVER.running(host.name):
        return set()
    held = set(a["local"] for a in host.addresses(host.interface, family=None))
    return set(i["vip"] for i in INSTANCES) & held


def holders(topology):
    """{vip: [directors holding it]}"""
    out = dict((i["vip"], []) for i in INSTANCES)
    for name in DIRECTORS:
        for vip in vips_on(topology[name]):
            out[vip].append(name)
    return out


def steady(topology):
    """Every instance MASTER on its own director only, with its VIP there only."""
    held = holders(topology)
    for inst in INSTANCES:
        if held[inst["vip"]] != [inst["master"]]:
            return False
        for name in DIRECTORS:
            want = "MASTER" if name == inst["master"] else "BACKUP"
            if state_of(topology[name], inst["name"]) != want:
                return False
    return True


@pytest.fixture
def active_active(topology, plane):
    """Starts from the steady state and restores it afterwards."""
    def restore():
        start_everything(topology, plane)
        wait_for(lambda: steady(topology), SETTLE, lambda: "the steady state (now %s)" % holders(topology))
    if not steady(topology):
        restore()
    yield
    restore()


def poller(client, vip, seconds, count=None, interval=0.1, timeout=2.0):
    """Requests to vip from the client (the suite's HTTP poller)."""
    count = count if count is not None else int(seconds / max(interval, 0.01)) + 1
    return Recorder(client, POLLER_SCRIPT, [vip, SERVICE_PORT, interval, timeout, seconds, count], seconds)


def takeover_bound(survivor):
    """The other director's instances on survivor: its Master_Down_Interval, plus slack."""
    return max(master_down_interval(i["advert_int"], i["priorities"][survivor]) for i in INSTANCES) + 2 * MARGIN


# --- steady state ---------------------------------------------------------------------------------

def test_each_director_is_master_of_its_own_instances(topology, active_active):
    assert len(set(i["master"] for i in INSTANCES)) == len(DIRECTORS), (
        "the scenario must make every director MASTER of an instance: %s" % INSTANCES)
    for inst in INSTANCES:
        assert holders(topology)[inst["vip"]] == [inst["master"]]
        for name in DIRECTORS:
            assert state_of(topology[name], inst["name"]) == ("MASTER" if name == inst["master"] else "BACKUP")


def test_keepalived_conf_has_each_instances_own_priority(director):
    text = director.check("cat", "/etc/keepalived/keepalived.conf")
    for inst in INSTANCES:
        block = text.split("vrrp_instance %s {" % inst["name"])[1].split("\n}")[0]
        assert re.search(r"^\s*priority %d$" % inst["priorities"][director.name], block, re.MULTILINE), block
        state = "MASTER" if director.name == inst["master"] else "BACKUP"
        assert re.search(r"^\s*state %s$" % state, block, re.MULTILINE), block


def test_every_real_server_holds_every_vip_on_lo(real_server):
    held = set(a["local"] for a in real_server.addresses("lo", family=None))
    assert set(i["vip"] for i in INSTANCES) <= held, held


def test_every_vip_reaches_both_real_servers(topology, active_active):
    client = topology[CLIENT]
    for inst in INSTANCES:
        rec = poller(client, inst["vip"], 60, count=40, interval=0.0)
        wait_for(lambda: not rec.running(), 70, "40 requests to %s" % inst["vip"])
        polls = rec.stop()
        failed = [p.get("error") for p in polls if not p["ok"]]
        assert len(polls) == 40 and not failed, "%s: %d requests, failures %s" % (inst["vip"], len(polls), failed[:3])
        assert set(p["page"] for p in polls) == set(PAGES.values()), (inst["vip"], set(p["page"] for p in polls))


def test_only_the_master_answers_neighbour_resolution_for_its_vip(topology, active_active):
    """ARP for an IPv4 VIP, neighbour solicitations for an IPv6 one: only the instance's MASTER
    answers (the real servers hold every VIP on lo), and the client's neighbour cache, filled
    by a request through the VIP, holds the MASTER's MAC."""
    client = topology[CLIENT]
    assert any(":" in i["vip"] for i in INSTANCES), "the scenario must have an IPv6 VIP: %s" % INSTANCES
    for inst in INSTANCES:
        master_mac = topology[inst["master"]].mac()
        assert neighbour_replies(client, inst["vip"]) == [master_mac], "replies for %s" % inst["vip"]
        assert fetch(client, vip=inst["vip"]) in PAGES.values(), "a request through %s" % inst["vip"]
        wait_for(lambda: neighbour_mac(client, inst["vip"]) == master_mac, 10,
                 lambda: "the client's neighbour entry for %s to be %s's MAC %s (now %s)"
                 % (inst["vip"], inst["master"], master_mac, neighbour_mac(client, inst["vip"])))


# --- a director fails -----------------------------------------------------------------------------

@pytest.mark.parametrize("victim", sorted(DIRECTORS))
def test_a_crashed_director_leaves_every_vip_to_the_other(topology, active_active, plane, victim):
    survivor = [n for n in DIRECTORS if n != victim][0]
    client = topology[CLIENT]
    own = [i for i in INSTANCES if i["master"] == survivor]
    taken = [i for i in INSTANCES if i["master"] == victim]
    known = set(m["id"] for m in read_mails(client))
    recs = dict((i["vip"], poller(client, i["vip"], DRILL_SECONDS)) for i in INSTANCES)
    try:
        wait_for(lambda: all(len([p for p in r.peek() if p["ok"]]) >= 5 for r in recs.values()), 30,
                 "good responses through every VIP")
        t_fail = time.time()
        topology[victim].crash()
        bound = takeover_bound(survivor)
        wait_for(lambda: all(holders(topology)[i["vip"]] == [survivor] for i in INSTANCES), bound + 10,
                 lambda: "%s to hold every VIP (now %s)" % (survivor, holders(topology)))
        t_taken = time.time()
        for inst in INSTANCES:
            assert state_of(topology[survivor], inst["name"]) == "MASTER", inst["name"]
        # the client's neighbour entry moves with the survivor's gratuitous ARP: after that
        # settling time every request through every VIP must succeed
        wait_for(lambda: all(len([p for p in r.peek() if p["t"] >= t_taken + 2 * MARGIN]) >= 20
                             for r in recs.values()), 30 + 2 * MARGIN,
                 "requests through every VIP from %s after the takeover" % survivor)
        t_recover = time.time()
        start_host(topology[victim])
        wait_booted(topology[victim])
        wait_for(lambda: steady(topology), SETTLE, lambda: "%s to take its instances back (now %s)"
                 % (victim, holders(topology)))
        wait_for(lambda: all(len([p for p in r.peek() if p["ok"] and p["t"] > time.time() - 2]) >= 5
                             for r in recs.values()), 30, "good responses after %s's return" % victim)
    finally:
        polls = dict((vip, r.stop()) for vip, r in recs.items())

    assert t_taken - t_fail <= bound, "%s took every VIP after %.1f s (bound %.1f s)" % (survivor, t_taken - t_fail, bound)
    for inst in own:
        failed = [p for p in polls[inst["vip"]] if not p["ok"]]
        assert not failed, "%s's own VIP %s failed %d requests while %s crashed and returned: %s" % (
            survivor, inst["vip"], len(failed), victim, [p.get("error") for p in failed[:3]])
    for inst in taken:
        after = [p for p in polls[inst["vip"]] if t_taken + 2 * MARGIN <= p["t"] < t_recover]
        failed = [p.get("error") for p in after if not p["ok"]]
        assert len(after) >= 20 and not failed, "%s through %s after the takeover: %d requests, failures %s" % (
            inst["vip"], survivor, len(after), failed[:3])
        # the new MASTER mails its transition (smtp_alert_vrrp in the inventory)
        subject = "[%s] VRRP Instance %s - Entering MASTER state" % (SCENARIO.router_ids[survivor], inst["name"])
        wait_for(lambda: [m for m in read_mails(client) if m["id"] not in known and m["subject"] == subject],
                 MAIL_BOUND, "the mail '%s'" % subject)


# --- operations ------------------------------------------------------------------------------------

def test_the_failover_playbook_needs_the_director_to_empty(topology, active_active, inventory):
    result = run_playbook(inventory, "failover", {"lbha_operations_probe_host": CLIENT})
    assert result.returncode != 0, result.tail()
    assert "are each MASTER of other instances (active-active)" in result.output, result.tail()
    assert steady(topology), "a refused switchover changed the cluster: %s" % holders(topology)


@pytest.mark.parametrize("source", sorted(DIRECTORS))
def test_the_failover_playbook_empties_the_named_director_and_gives_back(topology, active_active, inventory,
                                                                         source):
    peer = [n for n in DIRECTORS if n != source][0]
    result = run_playbook(inventory, "failover", {"lbha_operations_probe_host": CLIENT,
                                                  "lbha_failover_from": source})
    assert result.returncode == 0, result.tail()
    assert not topology[source].is_active("keepalived")
    assert holders(topology) == dict((i["vip"], [peer]) for i in INSTANCES), holders(topology)
    for inst in INSTANCES:
        assert state_of(topology[peer], inst["name"]) == "MASTER"
    # the peer kept its own instances: they never moved
    topology[source].check("systemctl", "start", "keepalived", timeout=60)
    wait_for(lambda: steady(topology), SETTLE, lambda: "%s to take its instances back (now %s)"
             % (source, holders(topology)))
    result = run_playbook(inventory, "failover", {"lbha_operations_probe_host": CLIENT,
                                                  "lbha_failover_from": source, "lbha_failover_restore": True})
    assert result.returncode == 0, result.tail()
    assert "Switched over from %s to %s and back" % (source, peer) in result.output, result.tail()
    assert steady(topology), holders(topology)


def test_upgrade_directors_upgrades_each_director_while_it_holds_no_vip(
        topology, active_active, inventory, tmp_path):
    # the "upgrade" records when it ran and how many of the scenario's VIPs the director held then
    tasks = upgrade_recorder(tmp_path / "upgrade.yml", [i["vip"] for i in INSTANCES],
                             [topology[name] for name in DIRECTORS])
    client = topology[CLIENT]
    recs = dict((i["vip"], poller(client, i["vip"], DRILL_SECONDS)) for i in INSTANCES)
    try:
        wait_for(lambda: all(len([p for p in r.peek() if p["ok"]]) >= 5 for r in recs.values()), 30,
                 "good responses through every VIP")
        t_start = time.time()
        result = run_playbook(inventory, "upgrade_directors", {"lbha_upgrade_tasks": tasks})
        t_end = time.time()
    finally:
        polls = dict((vip, r.stop()) for vip, r in recs.items())
    assert result.returncode == 0, result.tail()
    marks = upgrade_marks([topology[name] for name in DIRECTORS])
    assert all(held == 0 for _stamp, held in marks.values()), "a director held a VIP while upgraded: %s" % marks
    assert steady(topology), "each director is MASTER of its own instances again: %s" % holders(topology)
    for vip, vip_polls in polls.items():
        window = [p for p in vip_polls if t_start <= p["t"] <= t_end]
        failed = [p for p in window if not p["ok"]]
        assert len(window) >= 40 and not failed, "%s: %d of %d requests failed during the upgrade: %s" % (
            vip, len(failed), len(window), ["%.2f: %s" % (p["t"] - t_start, p.get("error")) for p in failed[:10]])


# --- a real server fails ---------------------------------------------------------------------------

def test_a_real_server_failure_is_mailed_for_every_virtual_server(topology, active_active, plane):
    failing = sorted(REAL_SERVERS)[0]
    client = topology[CLIENT]
    known = set(m["id"] for m in read_mails(client))
    topology[failing].check("systemctl", "stop", "nginx", timeout=60)
    try:
        check = SCENARIO.slowest_check
        bound = SCENARIO.delay_loop + check["retry"] * check["delay_before_retry"] + check["connect_timeout"]
        # every director mails it for every virtual server, at the server's address of the
        # service's family (IPv4 or IPv6)
        services = [svc for svc in SCENARIO.services if failing in svc["members"]]
        assert any(":" in svc["address"] for svc in services), "no IPv6 service has %s: %s" % (failing, services)
        wanted = ["[%s] Realserver [%s]:%s:%d of virtual server [%s]:%s:%d - DOWN"
                  % (SCENARIO.router_ids[d], svc["members"][failing], svc["protocol"], svc["port"],
                     svc["address"], svc["protocol"], svc["port"])
                  for d in DIRECTORS for svc in services]

        def missing():
            subjects = set(m["subject"] for m in read_mails(client) if m["id"] not in known)
            return [w for w in wanted if w not in subjects]
        wait_for(lambda: not missing(), bound + MAIL_BOUND, lambda: "the mails %s" % missing())
        addresses = set(svc["members"][failing] for svc in services)
        bodies = [m["body"] for m in read_mails(client)
                  if m["id"] not in known and any("[%s]" % a in m["subject"] for a in addresses)]
        assert bodies and all(failing in b for b in bodies), "a mail does not name %s: %s" % (failing, bodies)
    finally:
        topology[failing].check("systemctl", "start", "nginx", timeout=60)
