# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fault drills: each breaks one thing the collection promises to survive, asserts the end state
(and what the operator is told), and restores the steady state (the ``steady_cluster`` fixture).

The drills here are the same for both planes; the drills of the nftables plane's own parts (its
checker and table) are in test_plane_nftables.py, run where that plane runs. Every
expectation comes from the scenario's inventory (lbha_suite/scenario.py), never from the deployed
files. In the comments, lb1 is the scenario's MASTER, lb2 its BACKUP, web1 its first real server.
"""
from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import copy
import re
import subprocess
import threading
import time

import pytest
import yaml

from lbha_suite.cluster import (CLIENT, DIRECTOR_BACKUP, DIRECTOR_MASTER, DIRECTORS, INSTANCE, PAGES, REAL_SERVERS,
                                SCENARIO, VIP, holds_vip, is_master, run_requests, serving, vrrp_state, wait_for)
from lbha_suite.drills import (KILLS_PAST_LIMIT, PLAYBOOK_VARS, STATUS_SECONDS, kill_past_the_start_limit, masters,
                               status, takeover_bound)
from lbha_suite.playbooks import _ansible_env, ansible_playbook, run_playbook, write_inventory
from lbha_suite.scenario import PROJECT_DIR

LB1, LB2 = DIRECTOR_MASTER, DIRECTOR_BACKUP
WEB1, WEB2 = sorted(REAL_SERVERS)[:2]
DRILL_TABLE = "lbha_drill"  # the nftables table a drill adds inside a container to cut VRRP


def check_bound():
    """A real server's failure (or return) seen by the MASTER's plane: one delay_loop, then the
    slowest check's connect timeouts and retries, plus slack for a loaded 2-core box."""
    c = SCENARIO.slowest_check
    attempts = c["retry"] * (c["connect_timeout"] + c["delay_before_retry"])
    return SCENARIO.delay_loop + c["connect_timeout"] + attempts + 5


def cut_vrrp(host):
    """Drop every VRRP packet that reaches ``host`` (a table of its own, before firewalld's)."""
    host.check("nft", "add", "table", "inet", DRILL_TABLE)
    host.check("nft", "add", "chain", "inet", DRILL_TABLE, "input",
               "{ type filter hook input priority -300; policy accept; }")
    host.check("nft", "add", "rule", "inet", DRILL_TABLE, "input", "ip", "protocol", "vrrp", "drop")


def heal_vrrp(host):
    host.run("nft", "delete", "table", "inet", DRILL_TABLE)


# --- VRRP partition --------------------------------------------------------------------------------

def test_a_vrrp_partition_is_reported_as_split_brain_and_heals_to_one_master(topology, steady_cluster, inventory):
    lb1, lb2 = topology[LB1], topology[LB2]
    t_cut = time.time()
    cut_vrrp(lb2)
    try:
        # lb2 hears no advert: it takes over while lb1 goes on (lb1 still hears lb2, of lower priority)
        wait_for(lambda: masters(topology) == sorted([LB1, LB2]), takeover_bound() + 5,
                 lambda: "both directors to be MASTER once lb2 hears no VRRP (now %s)" % masters(topology))
        t_split = time.time()
        result = status(inventory)
        assert result.returncode != 0, result.tail()
        assert "SPLIT BRAIN: VRRP instance %s (VRID %d) is MASTER on %s" % (
            INSTANCE, SCENARIO.virtual_router_id, " and ".join(sorted([LB1, LB2]))) in result.output, result.tail()
        assert t_split - t_cut <= takeover_bound() + 5
        assert result.seconds <= STATUS_SECONDS, "status took %.1f s to report the split brain" % result.seconds
    finally:
        heal_vrrp(lb2)
    # healed: lb2 hears lb1's higher priority again and steps down, whatever the preemption
    wait_for(lambda: masters(topology) == [LB1], takeover_bound() + 10,
             lambda: "exactly one MASTER (%s) after the partition healed (now %s)" % (LB1, masters(topology)))
    wait_for(lambda: is_master(topology, LB1), 10, "the VIP on %s only" % LB1)
    assert vrrp_state(lb2) == "BACKUP" and not holds_vip(lb2) and holds_vip(lb1)
    result = status(inventory)
    assert result.returncode == 0, result.tail()


# --- keepalived dies (the nftables plane's checker: test_plane_nftables.py) ---------------------------

def test_keepalived_killed_past_its_start_limit_comes_back(topology, steady_cluster, inventory):
    lb1 = topology[LB1]
    kill_past_the_start_limit(lb1, "keepalived")
    wait_for(lambda: lb1.is_active("keepalived") and vrrp_state(lb1) in ("BACKUP", "MASTER"), 30,
             "keepalived on %s to run again after %d kills" % (LB1, KILLS_PAST_LIMIT))
    failed = lb1.run("systemctl", "is-failed", "--quiet", "keepalived").returncode == 0
    assert not failed, "keepalived is frozen in the failed state"
    wait_for(lambda: masters(topology) == [LB1] or (not SCENARIO.preempt and len(masters(topology)) == 1),
             takeover_bound() + 30, lambda: "exactly one MASTER after the kills (now %s)" % masters(topology))


# --- a switchover whose peer dies ----------------------------------------------------------------------

class _Playbook(object):
    """ansible-playbook in the background, its output read line by line."""

    def __init__(self, inventory, name, extra_vars, on_line):
        argv = [ansible_playbook(), "lbha.cluster.%s" % name, "-i", inventory]
        for key, value in sorted(extra_vars.items()):
            argv += ["-e", "%s=%s" % (key, value)]
        self.lines = []
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True,
                                     env=_ansible_env(), cwd=PROJECT_DIR)
        self.thread = threading.Thread(target=self._read, args=(on_line,), daemon=True)
        self.thread.start()

    def _read(self, on_line):
        for line in self.proc.stdout:
            self.lines.append(line)
            on_line(line)

    def wait(self, timeout):
        rc = self.proc.wait(timeout=timeout)
        self.thread.join(10)
        return rc

    @property
    def output(self):
        return "".join(self.lines)


def test_a_switchover_whose_peer_dies_mid_run_restores_the_old_master(topology, steady_cluster, inventory):
    lb1 = topology[LB1]
    paused = []

    def kill_the_peer(line):
        # right after the pre-check passed, as the old MASTER is about to stop keepalived
        if not paused and "TASK [Stop keepalived here" in line:
            paused.append(time.time())
            topology[LB2].freeze()

    run = _Playbook(inventory, "failover", PLAYBOOK_VARS, kill_the_peer)
    try:
        rc = run.wait(600)
    finally:
        if paused:
            topology[LB2].freeze(False)
    out = run.output
    assert paused, "the playbook never reached the handover:\n%s" % out[-3000:]
    assert rc != 0, "the switchover reported success although its peer died:\n%s" % out[-3000:]
    assert "The switchover from %s to %s failed at" % (LB1, LB2) in out, out[-3000:]
    assert "keepalived was started again on %s, which holds its VIPs again (%s)" % (LB1, VIP) in out, out[-3000:]
    # the end state on lb1 itself, whatever the playbook said
    assert lb1.is_active("keepalived")
    wait_for(lambda: is_master(topology, LB1), takeover_bound() + 10,
             "%s to be the only MASTER with the VIP once %s is back" % (LB1, LB2))


def test_the_upgrade_of_a_master_that_fails_starts_keepalived_again(topology, steady_cluster, inventory, tmp_path):
    tasks = tmp_path / "failing-upgrade.yml"
    tasks.write_text("- name: An upgrade that fails on the MASTER\n  ansible.builtin.command: /bin/false\n"
                     "  changed_when: true\n  when: inventory_hostname == '%s'\n" % LB1)
    result = run_playbook(inventory, "upgrade_directors", dict(PLAYBOOK_VARS, lbha_upgrade_tasks=str(tasks)))
    assert result.returncode != 0, result.tail()
    assert "The upgrade of the MASTER %s failed at 'An upgrade that fails on the MASTER'" % LB1 in result.output, \
        result.tail(60)
    assert "keepalived runs on %s again" % LB1 in result.output, result.tail(60)
    # keepalived was stopped on lb1 for the upgrade: it runs again, and one director holds the VIP
    assert topology[LB1].is_active("keepalived")
    wait_for(lambda: is_master(topology, LB1) or is_master(topology, LB2), takeover_bound() + 10,
             "one director to hold the VIP after the failed upgrade")


# --- a definition keepalived refuses on one director -------------------------------------------------

FINGERPRINT = r'''
import hashlib, json, os, subprocess, sys
out = {}
for path in sys.argv[1:]:
    try:
        with open(path, "rb") as fh:
            out[path] = hashlib.sha256(fh.read()).hexdigest()
    except OSError:
        out[path] = None
out["lo"] = sorted(subprocess.run(["ip", "-4", "-o", "addr", "show", "dev", "lo"], stdout=subprocess.PIPE,
                                  universal_newlines=True).stdout.split())
print(json.dumps(out, sort_keys=True))
'''
WATCHED = ("/etc/keepalived/keepalived.conf", "/etc/lbha/cluster.json", "/etc/systemd/system/lbha-vip.service",
           "/etc/lbha/real-server-health.nft", "/etc/systemd/system/keepalived.service.d/lbha.conf")


def _fingerprints(topology):
    return dict((name, topology[name].check("python3", "-c", FINGERPRINT, *WATCHED))
                for name in list(DIRECTORS) + list(REAL_SERVERS))


def test_a_definition_keepalived_refuses_on_one_director_changes_no_host(topology, steady_cluster, tmp_path):
    lb1 = topology[LB1]
    extra_vip = "1.1.1.199"
    cluster = copy.deepcopy(SCENARIO.cluster)
    first = cluster["vrrp_instances"][0]
    cluster["vrrp_instances"].append({
        "name": "VI_DRILL", "interface": "lbhat0", "virtual_router_id": 199, "advert_int": 1,
        "authentication": copy.deepcopy(first.get("authentication")) if first.get("authentication") else None,
        "virtual_ipaddress": ["%s/24" % extra_vip]})
    if cluster["vrrp_instances"][-1]["authentication"] is None:
        del cluster["vrrp_instances"][-1]["authentication"]
    override = tmp_path / "refused-on-lb2.yml"
    override.write_text(yaml.safe_dump({"lbha_cluster": cluster}))
    before = _fingerprints(topology)
    # the interface exists on lb1 only: keepalived -t passes there and refuses on lb2
    lb1.check("ip", "link", "add", "lbhat0", "type", "veth", "peer", "name", "lbhat1")
    try:
        inventory = write_inventory(str(tmp_path))
        result = run_playbook(inventory, "site", extra_args=["-e", "@%s" % override])
    finally:
        lb1.run("ip", "link", "del", "lbhat0")
    assert result.returncode != 0, result.tail()
    assert "keepalived -t refused the new configuration; %s: nothing was changed on any host" % LB2 in result.output, \
        result.tail(80)
    recap = dict(re.findall(r"^(\S+)\s+:\s+ok=\d+\s+changed=(\d+)", result.output, re.M))
    assert recap and all(int(n) == 0 for n in recap.values()), "hosts changed: %s" % recap
    assert _fingerprints(topology) == before, "a host changed although the run stopped at the pre-flight"
    for name in REAL_SERVERS:
        assert extra_vip not in topology[name].check("ip", "-4", "-o", "addr", "show", "dev", "lo")


# --- a real server loses its VIP ------------------------------------------------------------------------

def test_a_real_server_that_loses_its_vip_leaves_the_pool_and_returns(topology, steady_cluster, plane):
    web1, lb1 = topology[WEB1], topology[LB1]
    address = REAL_SERVERS[WEB1]
    t_lost = time.time()
    web1.check("ip", "addr", "del", "%s/32" % VIP, "dev", "lo")
    try:
        wait_for(lambda: not serving(plane, lb1, address), check_bound(),
                 lambda: "%s's plane to take %s out after it lost the VIP (%s)" % (LB1, WEB1, plane.servers(lb1)))
        left = time.time() - t_lost
        polls = run_requests(topology[CLIENT], 20)
        assert all(p["ok"] for p in polls), "requests failed with %s out of the pool: %s" % (WEB1, polls[:3])
        assert {p["page"] for p in polls} == {PAGES[WEB2]}
    finally:
        web1.check("systemctl", "restart", "lbha-vip", timeout=60)
    t_back = time.time()
    wait_for(lambda: serving(plane, lb1, address), check_bound(), "%s to return once its VIP is back" % WEB1)
    back = time.time() - t_back
    assert left <= check_bound() and back <= check_bound()
    pages = {p.get("page") for p in run_requests(topology[CLIENT], 20) if p["ok"]}
    assert pages == set(PAGES.values()), pages


# --- secrets ---------------------------------------------------------------------------------------------

def test_a_converge_puts_no_auth_pass_in_the_journal_or_the_output(topology, steady_cluster, tmp_path):
    secret = "Jq4-lbHA"    # 8 characters, written nowhere else
    cluster = copy.deepcopy(SCENARIO.cluster)
    for inst in cluster["vrrp_instances"]:
        inst["authentication"] = {"auth_type": "PASS", "auth_pass": secret}
    override = tmp_path / "secret.yml"
    override.write_text(yaml.safe_dump({"lbha_cluster": cluster}))
    hosts = list(DIRECTORS) + list(REAL_SERVERS)
    since = dict((name, topology[name].check("date", "+%s").strip()) for name in hosts)
    inventory = write_inventory(str(tmp_path))
    # check mode with diffs and a verbose callback: every module that takes the definition runs and
    # logs, the pre-flight runs keepalived -t with the secret; no host changes
    result = run_playbook(inventory, "site", extra_args=["-e", "@%s" % override, "--check", "--diff", "-v"])
    assert result.returncode == 0, result.tail(80)
    # every director's module saw a keepalived.conf that differs from the deployed one: the new secret
    rendered = re.findall(r"^changed: \[(\S+)\] =>\s*\n\s+changed: true\n\s+conf_changed: true", result.output, re.M)
    assert sorted(set(rendered)) == sorted(DIRECTORS), (
        "the directors' keepalived_config did not render the new secret (%s):\n%s" % (rendered, result.tail(80)))
    assert secret not in result.output
    invoked = 0
    for name in hosts:
        journal = topology[name].check("journalctl", "--since", "@" + since[name], "-o", "cat", "--no-pager",
                                       timeout=60)
        assert secret not in journal, "%s's journal holds the auth_pass" % name
        invoked += len([line for line in journal.splitlines() if "Invoked with" in line and "cluster=" in line])
    assert invoked >= 2 * len(DIRECTORS), "the journal shows no module invocation with the definition: " \
                                          "nothing was checked"
    assert is_master(topology, LB1)


# --- files that hold secrets, and VRRP from the peers only --------------------------------------------

def test_keepalived_conf_and_its_backups_are_for_root_only(director):
    conf = director.check("stat", "-c", "%a %U", "/etc/keepalived/keepalived.conf").split()
    assert conf == ["640", "root"]
    listing = director.check("find", "/etc/keepalived", "-name", "keepalived.conf.*~", "-printf", "%m %p\\n")
    loose = [line for line in listing.splitlines() if not line.startswith("600 ")]
    assert not loose, loose
    assert len(listing.splitlines()) <= 3


def _rich_rules(host, permanent):
    argv = ["firewall-cmd", "--list-rich-rules"] + (["--permanent"] if permanent else [])
    return sorted(line.strip() for line in host.check(*argv).splitlines() if line.strip())


def test_vrrp_is_accepted_from_the_peers_only_and_former_peers_are_removed(topology, steady_cluster, tmp_path):
    if not SCENARIO.firewalld:
        pytest.skip("this scenario runs no firewalld on its directors")
    lb1 = topology[LB1]
    stale = ['rule family="ipv4" source address="1.1.1.0/24" protocol value="vrrp" accept',
             'rule family="ipv4" source address="1.1.1.99" protocol value="vrrp" accept']
    unrelated = 'rule family="ipv4" source address="1.1.1.99" service name="ssh" accept'
    for rule in stale + [unrelated]:
        lb1.check("firewall-cmd", "--permanent", "--add-rich-rule", rule)
        lb1.check("firewall-cmd", "--add-rich-rule", rule)
    playbook = tmp_path / "firewalld.yml"
    playbook.write_text("- name: The directors' firewalld tasks\n  hosts: directors\n  gather_facts: false\n"
                        "  tasks:\n    - name: Configure firewalld\n      ansible.builtin.include_role:\n"
                        "        name: lbha.cluster.director\n        tasks_from: firewalld.yml\n")
    inventory = write_inventory(str(tmp_path))
    try:
        proc = subprocess.run([ansible_playbook(), str(playbook), "-i", inventory], stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, universal_newlines=True, env=_ansible_env(), cwd=PROJECT_DIR,
                              timeout=600, check=False)
        assert proc.returncode == 0, proc.stdout[-3000:]
        for name in DIRECTORS:
            peers = sorted(a for n, a in DIRECTORS.items() if n != name)
            wanted = sorted('rule family="ipv4" source address="%s" protocol value="vrrp" accept' % a for a in peers)
            for permanent in (False, True):
                rules = _rich_rules(topology[name], permanent)
                vrrp = [r for r in rules if 'protocol value="vrrp"' in r]
                assert vrrp == wanted, (name, "permanent" if permanent else "runtime", rules)
        assert unrelated in _rich_rules(lb1, True), "a rule that is not about VRRP was removed"
    finally:
        for permanent in ([], ["--permanent"]):
            lb1.run("firewall-cmd", "--remove-rich-rule", unrelated, *permanent)
            for rule in stale:
                lb1.run("firewall-cmd", "--remove-rich-rule", rule, *permanent)
