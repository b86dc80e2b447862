# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fault drills of the nftables plane's own parts: the checker daemon and its netdev table.

Run only in scenarios whose plane is nftables (conftest.py); on the ipvs plane keepalived
checks and forwards itself (test_faults.py kills it past its start limit on every plane).
"""
from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import re
import time

from lbha_suite.cluster import (CLIENT, DIRECTOR_BACKUP, DIRECTOR_MASTER, INSTANCE, is_master, run_requests, start_poller,
                                vrrp_state, wait_for, wait_master)
from lbha_suite.drills import KILLS_PAST_LIMIT, PLANE_FAULT, kill_past_the_start_limit, status, takeover_bound
from lbha_suite.planes import nftables_table_loaded

LB1, LB2 = DIRECTOR_MASTER, DIRECTOR_BACKUP


def test_the_checker_killed_past_its_start_limit_comes_back_and_restores_a_flushed_table(
        topology, steady_cluster, inventory):
    lb1 = topology[LB1]
    restarts = int(lb1.check("systemctl", "show", "-p", "NRestarts", "--value", "lbha-checker").strip() or 0)
    poller = start_poller(topology[CLIENT], 240)
    try:
        wait_for(lambda: len([p for p in poller.peek() if p["ok"]]) >= 5, 30, "good responses")
        kill_past_the_start_limit(lb1, "lbha-checker")
        assert lb1.is_active("lbha-checker"), "the checker stayed down after %d kills" % KILLS_PAST_LIMIT
        assert int(lb1.check("systemctl", "show", "-p", "NRestarts", "--value", "lbha-checker").strip()) \
            >= restarts + KILLS_PAST_LIMIT
        t_flush = time.time()
        lb1.check("nft", "flush", "ruleset")
        # the checker re-checks the kernel every 2 s and puts the table back
        wait_for(lambda: nftables_table_loaded(lb1), 10, "the checker to load its table again after nft flush ruleset")
        t_back = time.time()
        wait_for(lambda: is_master(topology, LB1) or is_master(topology, LB2), takeover_bound() + 10,
                 "one MASTER with the VIP")
        good_after = wait_for(lambda: [p for p in poller.peek() if p["t"] > t_back + takeover_bound() and p["ok"]],
                              takeover_bound() + 20, "good responses once the table is back")
        wait_for(lambda: len([p for p in poller.peek() if p["t"] > good_after[0]["t"]]) >= 20, 30,
                 "20 more requests once the table is back")
        polls = poller.stop()
    finally:
        poller.stop()
        # nft flush ruleset took firewalld's tables too (a reload cannot recover from that; a restart does)
        lb1.run("systemctl", "restart", "firewalld", timeout=120)
    assert t_back - t_flush <= 10
    after = [p for p in polls if p["t"] > good_after[0]["t"]]
    assert after and all(p["ok"] for p in after), "requests failed after the table was back: %s" % [
        p.get("error") for p in after if not p["ok"]][:3]
    result = status(inventory)
    assert result.returncode == 0, result.tail()


def test_a_director_whose_plane_is_dead_gives_up_the_vip_and_status_fails(topology, steady_cluster, inventory):
    lb1, lb2 = topology[LB1], topology[LB2]
    try:
        t_fail = lb1.check_at("systemctl", "stop", "lbha-checker", timeout=60)
        lb1.check("nft", "delete", "table", "netdev", "lbha")
        # keepalived's track_script (plane-check) fails: lb1 goes FAULT, lb2 takes the VIP
        wait_for(lambda: vrrp_state(lb1) == "FAULT", PLANE_FAULT + 5,
                 lambda: "%s to go FAULT with its plane dead (now %s)" % (LB1, vrrp_state(lb1)))
        wait_master(topology, LB2, takeover_bound() + 5, "after %s's plane died" % LB1)
        took = time.time() - t_fail
        polls = run_requests(topology[CLIENT], 20)
        assert all(p["ok"] for p in polls), "requests failed with the VIP on %s: %s" % (LB2, polls[:3])
        result = status(inventory)
        assert result.returncode != 0, result.tail()
        assert "%s: the nftables checker is not running" % LB1 in result.output, result.tail()
        assert "%s: the nftables table is not loaded" % LB1 in result.output, result.tail()
        assert re.search(r"%s\s+running\s+nftables\s+%s\s+FAULT" % (LB1, INSTANCE), result.output), result.tail()
        assert took <= PLANE_FAULT + takeover_bound() + 5
    finally:
        lb1.check("systemctl", "start", "lbha-checker", timeout=60)
    # the plane back: lb1 leaves FAULT (and, with preemption, takes the VIP back; steady_cluster
    # restores the other case)
    wait_for(lambda: nftables_table_loaded(lb1) and vrrp_state(lb1) in ("BACKUP", "MASTER"), 30,
             "%s to leave FAULT once its checker runs again" % LB1)
    assert vrrp_state(lb2) in ("MASTER", "BACKUP")
