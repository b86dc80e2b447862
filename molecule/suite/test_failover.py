# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Failover, proven on addresses, VRRP states and the client's ARP table, with measured outages.

Every drill watches the cluster with processes inside the containers while it breaks something:
an HTTP poller on the client (one request every 50 ms, 0.5 s timeout, and the MAC the client's
ARP table holds for the VIP) and a VIP sampler on each director (VIP on eth0? VRRP state?) every
100 ms. Assertions are made on these timelines and on the live end states; the numbers go to
build/results/failover-<scenario>.json. Expectations follow the scenario's inventory: with
`nopreempt` the returning MASTER stays BACKUP. Each test starts from and restores the steady
state (the highest-priority director MASTER, the other BACKUP, every real server healthy).
In the comments, lb1 is the scenario's MASTER and lb2 its BACKUP.
"""
from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import re
import time

import pytest

from lbha_suite.cluster import (CLIENT, DIRECTORS, DRIVER, DIRECTOR_BACKUP, DIRECTOR_MASTER, INSTANCE, PAGES,
                                REAL_SERVERS, SAMPLE_INTERVAL, BOOT_TIMEOUT, VIP, first_time,
                                holds_vip, is_master, master_down_interval, neighbour_mac, outage,
                                overlaps, ownership_intervals, read_mails, run_requests, serving,
                                start_host, start_poller, start_sampler, vrrp_adverts, vrrp_state,
                                wait_booted, wait_for, wait_master)

DRILL_SECONDS = 300         # upper bound of every recorder of a drill
# scheduling slack on a loaded 2-core box, plus the time the harness needs to inject a failure
# (a `docker exec`; an SSH command into an emulated guest takes up to a second more)
MARGIN = DRIVER.slack
ARP_SLACK = 1.0             # gratuitous ARP reaching the client after the VIP moved (s)
HANDOVER_OVERLAP = 0.5      # a clean handover: sampling imprecision only (2 samples + jitter)
STALE_VIP_BOUND = 10.0      # SIGKILL: the dead master's VIP must be gone within this (s)
STARTUP = 5.0               # keepalived started until it runs its first election (s)
NOTIFY_BOUND = DRIVER.notify_time    # the VIP on a director until its notify hook has recorded the state (s)
MAIL_BOUND = 40.0           # a transition until its e-mail is in the client's mailbox (s)
MAIL_QUIET = 15.0           # no mail asked for: the silence observed after the last transition (s)


class Drill(object):
    """The poller on the client and a VIP sampler on each director, for one drill."""

    def __init__(self, topology):
        self.topology = topology
        self.poller = start_poller(topology[CLIENT], DRILL_SECONDS)
        self.samplers = {name: [start_sampler(topology[name], DRILL_SECONDS)] for name in DIRECTORS}
        self.polls = None
        self.samples = None

    def resample(self, name):
        """A new sampler for a director whose container was restarted."""
        self.samplers[name].append(start_sampler(self.topology[name], DRILL_SECONDS))

    def warm_up(self):
        """Wait until the client has good responses and each director has been sampled."""
        def ready():
            return (len([p for p in self.poller.peek() if p["ok"]]) >= 5
                    and all(len(recs[-1].peek()) >= 3 for recs in self.samplers.values()))
        wait_for(ready, 30, "the poller and the VIP samplers to report")

    def polls_since(self, since):
        return [p for p in self.poller.peek() if p["t"] >= since]

    def wait_good(self, since, count, timeout, what, page=None):
        """Wait for `count` consecutive good responses started after `since`; returns the first's time."""
        def run_of_good():
            run = []
            for poll in self.polls_since(since):
                if poll["ok"] and (page is None or poll.get("page") == page):
                    run.append(poll)
                    if len(run) >= count:
                        return run[0]["t"]
                else:
                    run = []
            return None
        return wait_for(run_of_good, timeout, what, interval=0.2)

    def stop(self):
        self.polls = self.poller.stop()
        self.samples = {name: [rec.stop() for rec in recs] for name, recs in self.samplers.items()}
        assert self.polls, "the poller on the client recorded nothing: %s" % self.poller.stderr

    def intervals(self, name):
        """When the director held the VIP, over all its samplers (restarts included)."""
        return sorted(i for samples in self.samples[name] for i in ownership_intervals(samples))

    def director_samples_live(self, name):
        """The samples so far, while the drill runs."""
        return sorted((s for rec in self.samplers[name] for s in rec.peek()), key=lambda s: s["t"])

    def director_samples(self, name):
        return sorted((s for samples in self.samples[name] for s in samples), key=lambda s: s["t"])

    def split_brain(self):
        return overlaps(self.intervals(DIRECTOR_MASTER), self.intervals(DIRECTOR_BACKUP))


def _bounds(scenario):
    advert = scenario.advert_int
    prio = scenario.priorities
    return {
        "takeover": master_down_interval(advert, prio[DIRECTOR_BACKUP]) + MARGIN + SAMPLE_INTERVAL,
        "preempt": master_down_interval(advert, prio[DIRECTOR_MASTER]) + STARTUP + MARGIN,
    }


def _director_drill(topology, scenario):
    """The two directors, the drill's time bounds and the drill of a director failure."""
    return topology[DIRECTOR_MASTER], topology[DIRECTOR_BACKUP], _bounds(scenario), Drill(topology)


def _ms(seconds):
    return None if seconds is None else round(seconds * 1000.0, 1)


def _assert_took_over(drill, topology, since, bound, what):
    """lb2 held the VIP within bound of since, and its notify hook recorded MASTER within
    NOTIFY_BOUND of that; returns when lb2 held the VIP (timeline time).

    The VIP is what VRRP's timers bound; the state file is written by a hook keepalived forks
    after the transition, so it has a bound of its own."""
    samples = drill.director_samples(DIRECTOR_BACKUP)
    took = first_time(samples, since, lambda s: s["vip"])
    assert took is not None, "%s: lb2 never held the VIP (samples: %s)" % (what, samples[-5:])
    assert took - since <= bound, "%s: lb2 took %.2f s to hold the VIP (bound %.2f s)" % (
        what, took - since, bound)
    reported = first_time(samples, since, lambda s: s["vip"] and s["state"] == "MASTER")
    assert reported is not None, "%s: lb2's notify hook never recorded MASTER (samples: %s)" % (
        what, samples[-5:])
    assert reported - took <= NOTIFY_BOUND, (
        "%s: lb2's notify hook recorded MASTER %.2f s after the VIP moved (bound %.2f s)" % (
            what, reported - took, NOTIFY_BOUND))
    return took


def _assert_client_follows(drill, mac, since, until, what):
    """The client's ARP entry for the VIP is mac within ARP_SLACK of since (and before until)."""
    seen = [p for p in drill.polls if since <= p["t"] < until and p.get("mac") == mac]
    assert seen and seen[0]["t"] - since <= ARP_SLACK, (
        "%s: the client's ARP entry for the VIP did not become %s within %.1f s (saw %s)" % (
            what, mac, ARP_SLACK,
            sorted(set(p.get("mac") for p in drill.polls if since <= p["t"] < until), key=str)))
    return seen[0]["t"]


def _assert_service_continues(drill, since, until, settle, what):
    """Failed requests only in [since, since + settle], the window ends with good ones."""
    window = outage(drill.polls, since, until)
    late = [p for p in drill.polls if since + settle < p["t"] < (until or float("inf")) and not p["ok"]]
    assert window["recovered"], "%s: the service did not come back (%s)" % (what, window)
    assert not late, "%s: %d request(s) failed later than %.1f s after the event: %s" % (
        what, len(late), settle, [p.get("error") for p in late[:3]])
    assert window["outage_ms"] <= settle * 1000.0, "%s: outage %.0f ms exceeds %.1f s" % (
        what, window["outage_ms"], settle)
    return window


def _wait_keepalived_back(topology, name, timeout):
    host = topology[name]
    wait_for(lambda: host.is_active("keepalived") and vrrp_state(host) in ("BACKUP", "MASTER"),
             timeout, "keepalived on %s to run and report its state" % name)


def _expect_return(drill, topology, cluster, since, what):
    """After lb1 is back: preemption (lb1 MASTER again) or, with nopreempt, lb2 keeps the VIP.

    Returns the measurements of this phase."""
    bounds = _bounds(cluster)
    if cluster.preempt:
        wait_master(topology, DIRECTOR_MASTER, bounds["preempt"] + BOOT_TIMEOUT, "by preemption (%s)" % what)
        return {}
    # nopreempt: lb1 is back as BACKUP; watch for longer than a preemption takes.
    _wait_keepalived_back(topology, DIRECTOR_MASTER, BOOT_TIMEOUT)
    hold_until = time.time() + 2 * bounds["preempt"]
    while time.time() < hold_until:
        assert vrrp_state(topology[DIRECTOR_MASTER]) == "BACKUP", "%s: lb1 left BACKUP despite nopreempt" % what
        assert is_master(topology, DIRECTOR_BACKUP), "%s: lb2 lost the VIP despite nopreempt" % what
        time.sleep(0.5)
    return {"held_s": round(2 * bounds["preempt"], 1)}


def _assert_return_timeline(drill, cluster, since, what, lb2_since=None):
    """The timeline of lb1's return: preempt_ms (VIP back on lb1) or lb2 never losing it.

    lb2_since: when lb2 is known to hold the VIP, when that is later than since."""
    lb1_gain = first_time(drill.director_samples(DIRECTOR_MASTER), since, lambda s: s["vip"])
    lb2_loss = first_time(drill.director_samples(DIRECTOR_BACKUP), max(since, lb2_since or since),
                          lambda s: not s["vip"])
    if cluster.preempt:
        assert lb2_loss is not None, "%s: lb2 never handed the VIP back" % what
        return {"preempt_ms": _ms(min(t for t in (lb1_gain, lb2_loss) if t is not None) - since)}
    assert lb1_gain is None, "%s: lb1 took the VIP back despite nopreempt" % what
    assert lb2_loss is None, "%s: lb2 dropped the VIP despite nopreempt" % what
    return {"preempt_ms": None}


def _assert_no_split_brain(drill, allowed, what):
    both = drill.split_brain()
    longest = max([end - start for start, end in both] or [0.0])
    assert longest <= allowed, "%s: both directors held the VIP for %.2f s (allowed %.2f s): %s" % (
        what, longest, allowed, both)
    return _ms(sum(end - start for start, end in both))


def _assert_clean_handover(drill, topology, cluster, t_fail, t_recover, what, takeover, settle_back):
    """The checks of a failover with an advert (`what` stop) and lb1's return (`what` start).

    lb2 takes over within `takeover`, the client's ARP follows it, the service continues through
    the failure and, within `settle_back`, through lb1's return, which follows the cluster's
    preemption setting, and the directors never both hold the VIP beyond sampling imprecision.
    Returns the measurements to record."""
    stop, start = "%s stop" % what, "%s start" % what
    took = _assert_took_over(drill, topology, t_fail, takeover, stop)
    _assert_client_follows(drill, topology[DIRECTOR_BACKUP].mac(), took, t_recover, stop)
    failed = _assert_service_continues(drill, t_fail, t_recover, takeover, stop)
    back = _assert_service_continues(drill, t_recover, None, settle_back, start)
    ret = _assert_return_timeline(drill, cluster, t_recover, start)
    overlap = _assert_no_split_brain(drill, HANDOVER_OVERLAP, "%s stop/start" % what)
    return dict(ret, vip_move_ms=_ms(took - t_fail), outage_ms=failed["outage_ms"],
                max_gap_ms=failed["max_gap_ms"], failed_requests=failed["failed_requests"],
                overlap_ms=overlap, preempt_outage_ms=back["outage_ms"],
                preempt_failed_requests=back["failed_requests"])


# --- steady state ------------------------------------------------------------------------------

def test_master_holds_the_vip_and_backup_does_not(topology, steady_cluster):
    lb1, lb2 = topology[DIRECTOR_MASTER], topology[DIRECTOR_BACKUP]
    assert vrrp_state(lb1) == "MASTER" and holds_vip(lb1)
    assert vrrp_state(lb2) == "BACKUP" and not holds_vip(lb2)
    vips = [a for a in lb1.addresses(lb1.interface) if a["local"] == VIP]
    assert [a["prefixlen"] for a in vips] == [steady_cluster.vip_prefix]


def test_vrrp_adverts_reach_the_backup_from_the_master(topology, steady_cluster):
    cluster = steady_cluster
    adverts = vrrp_adverts(topology[DIRECTOR_BACKUP], 6 * cluster.advert_int + 2, limit=4)
    assert len(adverts) >= 3, "%s received %d VRRP adverts in %.0f s" % (
        DIRECTOR_BACKUP, len(adverts), 6 * cluster.advert_int + 2)
    master = DIRECTORS[DIRECTOR_MASTER]
    dst = DIRECTORS[DIRECTOR_BACKUP] if cluster.unicast else "224.0.0.18"
    assert {(a["src"], a["dst"], a["vrid"], a["priority"], a["ttl"]) for a in adverts} == {
        (master, dst, cluster.virtual_router_id, cluster.priorities[DIRECTOR_MASTER], 255)}
    spacing = [b["t"] - a["t"] for a, b in zip(adverts, adverts[1:])]
    assert all(abs(gap - cluster.advert_int) <= 0.5 for gap in spacing), spacing


def test_client_arp_entry_for_the_vip_is_the_master(topology, steady_cluster):
    polls = run_requests(topology[CLIENT], 1)
    assert polls and polls[0]["ok"], polls
    assert neighbour_mac(topology[CLIENT]) == topology[DIRECTOR_MASTER].mac()
    assert polls[0]["mac"] == topology[DIRECTOR_MASTER].mac()


def test_forty_requests_all_succeed_and_reach_both_real_servers(topology, steady_cluster):
    polls = run_requests(topology[CLIENT], 40)
    assert len(polls) == 40
    failed = [p.get("error") or p.get("status") for p in polls if not p["ok"]]
    assert not failed, "%d of 40 requests failed: %s" % (len(failed), failed[:5])
    assert {p["page"] for p in polls} == set(PAGES.values())


# --- director failures ---------------------------------------------------------------------------

def test_keepalived_stop_fails_over_and_lb1_returns(topology, steady_cluster, failover_results):
    cluster = steady_cluster
    lb1, lb2, bounds, drill = _director_drill(topology, cluster)
    try:
        drill.warm_up()
        t_fail = lb1.check_at("systemctl", "stop", "keepalived", timeout=60)
        wait_master(topology, DIRECTOR_BACKUP, bounds["takeover"] + 30, "after keepalived stopped on lb1")
        assert vrrp_state(lb1) == "STOP"
        wait_for(lambda: neighbour_mac(topology[CLIENT]) == lb2.mac(), 10,
                 "the client's ARP entry for the VIP to become lb2's MAC")
        drill.wait_good(time.time(), 10, 20, "good responses through lb2")
        t_recover = time.time()
        lb1.check("systemctl", "start", "keepalived", timeout=60)
        held = _expect_return(drill, topology, cluster, t_recover, "keepalived start")
        drill.wait_good(time.time(), 10, 20, "good responses after lb1's return")
    finally:
        drill.stop()

    failover_results("keepalived_stop", dict(
        _assert_clean_handover(drill, topology, cluster, t_fail, t_recover, "keepalived",
                               bounds["takeover"], bounds["preempt"]), **held))


def test_keepalived_sigkill_fails_over_and_lb1_returns(topology, steady_cluster, failover_results):
    cluster = steady_cluster
    lb1, lb2, bounds, drill = _director_drill(topology, cluster)
    try:
        drill.warm_up()
        t_fail = lb1.check_at("systemctl", "kill", "--signal=KILL", "keepalived", timeout=60)
        # systemd restarts keepalived (Restart=on-failure); lb2 takes over meanwhile.
        wait_for(lambda: first_time(drill.director_samples_live(DIRECTOR_BACKUP), t_fail,
                                    lambda s: s["vip"] and s["state"] == "MASTER"),
                 bounds["takeover"] + 30, "lb2 to hold the VIP as MASTER after SIGKILL on lb1")
        _wait_keepalived_back(topology, DIRECTOR_MASTER, 60)
        t_back = time.time()
        held = _expect_return(drill, topology, cluster, t_back, "keepalived restarted by systemd")
        drill.wait_good(time.time(), 10, 20, "good responses after lb1's return")
    finally:
        drill.stop()

    lb1_samples = drill.director_samples(DIRECTOR_MASTER)
    took = _assert_took_over(drill, topology, t_fail, bounds["takeover"], "SIGKILL")
    # the stale VIP left on lb1 by the dead keepalived goes when systemd restarts it
    stale_end = first_time(lb1_samples, t_fail, lambda s: not s["vip"])
    assert stale_end is not None and stale_end - t_fail <= STALE_VIP_BOUND, (
        "lb1 kept the dead keepalived's VIP for more than %.0f s" % STALE_VIP_BOUND)
    restarted = first_time(lb1_samples, t_fail, lambda s: s["state"] == "BACKUP")
    assert restarted is not None, "the restarted keepalived on lb1 never reported BACKUP"
    # Both directors hold the VIP while the dead keepalived's address is still on lb1; any
    # other overlap (lb1's return, by preemption) is a handover, as short as after a stop.
    both = drill.split_brain()
    stale = [(start, end) for start, end in both if end <= stale_end + SAMPLE_INTERVAL]
    handovers = [(start, end) for start, end in both if (start, end) not in stale]
    longest = max([end - start for start, end in handovers] or [0.0])
    assert longest <= HANDOVER_OVERLAP, (
        "SIGKILL: after the stale VIP was gone, both directors held the VIP for %.2f s "
        "(allowed %.2f s): %s" % (longest, HANDOVER_OVERLAP, handovers))
    overlap = _ms(sum(end - start for start, end in both))
    lb2_master_end = min([end for start, end in drill.intervals(DIRECTOR_BACKUP) if end > took]
                         or [time.time()])
    _assert_client_follows(drill, lb2.mac(), took, lb2_master_end + SAMPLE_INTERVAL, "SIGKILL")
    failed = _assert_service_continues(drill, t_fail, None, bounds["takeover"] + bounds["preempt"],
                                       "SIGKILL and lb1's return")
    ret = _assert_return_timeline(drill, cluster, max(restarted, stale_end),
                                  "keepalived restarted by systemd", lb2_since=took)
    failover_results("keepalived_sigkill", dict(
        vip_move_ms=_ms(took - t_fail), outage_ms=failed["outage_ms"], max_gap_ms=failed["max_gap_ms"],
        failed_requests=failed["failed_requests"], overlap_ms=overlap,
        stale_vip_ms=_ms(stale_end - t_fail), restart_ms=_ms(restarted - t_fail),
        **dict(ret, **held)))


@pytest.mark.parametrize("event", ["shutdown", "power_cut"])
def test_director_down_fails_over_and_lb1_returns(topology, steady_cluster, plane, failover_results, event):
    """lb1 down as a whole, then started again: a clean shutdown (systemd stops every service,
    keepalived hands over), or a power cut (every process gone at once, no advert: lb2's
    Master_Down_Interval ends the outage)."""
    cluster = steady_cluster
    lb1, lb2, bounds, drill = _director_drill(topology, cluster)
    lb1_mac = lb1.mac()
    try:
        drill.warm_up()
        t_fail = time.time()
        if event == "shutdown":
            lb1.shut_down()
        else:
            lb1.crash()
        wait_master(topology, DIRECTOR_BACKUP, bounds["takeover"] + 30, "after lb1's %s" % event)
        wait_for(lambda: neighbour_mac(topology[CLIENT]) == lb2.mac(), 10,
                 "the client's ARP entry for the VIP to become lb2's MAC")
        drill.wait_good(time.time(), 10, 20, "good responses through lb2")
        t_recover = time.time()
        start_host(lb1)
        drill.resample(DIRECTOR_MASTER)
        wait_booted(lb1)
        wait_for(lambda: all(lb1.is_active(unit) for unit in plane.units), BOOT_TIMEOUT,
                 "%s to run on the restarted %s" % (" and ".join(plane.units), DIRECTOR_MASTER))
        held = _expect_return(drill, topology, cluster, t_recover, "lb1 started again")
        if cluster.preempt:
            wait_for(lambda: neighbour_mac(topology[CLIENT]) == lb1_mac, 10,
                     "the client's ARP entry for the VIP to be lb1's MAC again")
        drill.wait_good(time.time(), 10, 30, "good responses after lb1's return")
    finally:
        drill.stop()

    failover_results(event, dict(
        _assert_clean_handover(drill, topology, cluster, t_fail, t_recover, event,
                               bounds["takeover"], bounds["preempt"] + BOOT_TIMEOUT), **held))


# --- real-server failure -------------------------------------------------------------------------

def test_real_server_failure_and_recovery(topology, steady_cluster, plane, failover_results):
    cluster = steady_cluster
    failing, other = sorted(REAL_SERVERS)[:2]
    web1 = topology[failing]
    check = cluster.slowest_check
    detect_bound = (cluster.delay_loop + check["retry"] * check["delay_before_retry"]
                    + check["connect_timeout"] + 2 * MARGIN)
    readd_bound = cluster.delay_loop + check["connect_timeout"] + 2 * MARGIN
    lb1 = topology[DIRECTOR_MASTER]
    known_mails = {m["id"] for m in read_mails(topology[CLIENT])}
    drill = Drill(topology)
    try:
        drill.warm_up()
        t_fail = web1.check_at("systemctl", "stop", "nginx", timeout=60)
        t_only = drill.wait_good(t_fail, 40, detect_bound + 30,
                                 "40 good responses in a row (2 s), all from %s" % other, page=PAGES[other])
        wait_for(lambda: not serving(plane, lb1, REAL_SERVERS[failing]), 10,
                 "%s's %s plane to take %s out" % (DIRECTOR_MASTER, plane.name, failing))
        # every director checks on its own clock (a director that restarted in an earlier test
        # is out of phase with the other): each must see the failure before nginx comes back,
        # or it has no transition to mail

        def still_serving():
            return [d for d in DIRECTORS if serving(plane, topology[d], REAL_SERVERS[failing])]
        wait_for(lambda: not still_serving(), detect_bound + 10, lambda: "every director's %s plane to take %s "
                 "out (still serving: %s)" % (plane.name, failing, still_serving()))
        t_recover = time.time()
        web1.check("systemctl", "start", "nginx", timeout=60)
        t_web1 = drill.wait_good(t_recover, 1, readd_bound + 30, "%s to serve again" % failing,
                                 page=PAGES[failing])
        drill.wait_good(time.time(), 10, 20, "good responses after web1's return")
    finally:
        drill.stop()

    failed = _assert_service_continues(drill, t_fail, t_recover, detect_bound, "nginx stopped on %s" % failing)
    assert t_only - t_fail <= detect_bound, "%s was removed after %.1f s (bound %.1f s)" % (
        failing, t_only - t_fail, detect_bound)
    served = [p.get("page") for p in drill.polls if t_only <= p["t"] < t_recover]
    assert len(served) >= 40 and set(served) == {PAGES[other]}, (
        "after removal every request must be served by %s, saw %s" % (other, sorted(set(served), key=str)))
    after = [p for p in drill.polls if p["t"] >= t_recover]
    assert after and all(p["ok"] for p in after), "requests failed after nginx started on %s: %s" % (
        failing, [p.get("error") for p in after if not p["ok"]][:3])
    assert t_web1 - t_recover <= readd_bound, "%s took %.1f s to serve again (bound %.1f s)" % (
        failing, t_web1 - t_recover, readd_bound)
    first_failed = [p["t"] for p in drill.polls if p["t"] >= t_fail and not p["ok"]]
    last_failed = first_failed[-1] if first_failed else None
    failover_results("real_server_nginx_stop", dict(
        outage_ms=failed["outage_ms"], max_gap_ms=failed["max_gap_ms"], failed_requests=failed["failed_requests"],
        removal_ms=_ms((last_failed if last_failed else t_fail) - t_fail),
        web2_only_after_ms=_ms(t_only - t_fail), readd_ms=_ms(t_web1 - t_recover),
        detect_bound_s=detect_bound, readd_bound_s=readd_bound))
    _assert_real_server_mails(topology, cluster, failing, known_mails)


def _sent_by(mail, director):
    """Whether ``mail`` came from ``director``'s address (the receiver writes its peer as
    ``1.1.1.1:PORT`` or ``('1.1.1.1', PORT)``)."""
    return re.search(r"(?<![\w.:])%s(?![\w.])" % re.escape(DIRECTORS[director]), mail["peer"]) is not None


def _assert_real_server_mails(topology, cluster, failing, known):
    """Each director mails the failure and the recovery of ``failing`` with keepalived's subject
    (ipvs plane: keepalived's checker; nftables plane: lbha-checker), or, when the inventory
    asks for no such mail, none comes."""
    client = topology[CLIENT]
    service = "[%s]:tcp:%d" % (REAL_SERVERS[failing], cluster.service_port)
    vs = "[%s]:tcp:%d" % (VIP, cluster.service_port)

    def subject(director, event):
        return "[%s] Realserver %s of virtual server %s - %s" % (cluster.router_ids[director], service, vs, event)

    def missing():
        mails = [m for m in read_mails(client) if m["id"] not in known]
        wanted = [(d, e) for d in DIRECTORS for e in ("DOWN", "UP")]
        return [(d, e) for d, e in wanted
                if not [m for m in mails if m["subject"] == subject(d, e) and _sent_by(m, d)]]

    if cluster.real_server_mails(failing):
        wait_for(lambda: not missing(), MAIL_BOUND, lambda: "a DOWN and an UP e-mail about %s from each director "
                 "(missing: %s)" % (failing, missing()))
        return
    deadline = time.time() + MAIL_QUIET
    while time.time() < deadline:
        about = [m["subject"] for m in read_mails(client) if m["id"] not in known and service in m["subject"]]
        assert not about, "a mail about %s although the inventory asks for none: %s" % (failing, about)
        time.sleep(1)


# --- notification e-mail -------------------------------------------------------------------------

def test_failover_mails_exactly_when_the_inventory_asks(topology, steady_cluster):
    """With smtp_alert, the new MASTER mails its transition; without, keepalived sends nothing."""
    cluster = steady_cluster
    client, lb1 = topology[CLIENT], topology[DIRECTOR_MASTER]
    known = {m["id"] for m in read_mails(client)}

    def new_mail(peer, state):
        for mail in read_mails(client):
            text = mail["subject"] + "\n" + mail["body"]
            if (mail["id"] not in known and INSTANCE in mail["subject"]
                    and "Entering %s state" % state in text and mail["peer"].find(peer) >= 0):
                return mail
        return None

    lb1.check("systemctl", "stop", "keepalived", timeout=60)
    wait_master(topology, DIRECTOR_BACKUP, _bounds(cluster)["takeover"] + 30, "after keepalived stopped on lb1")
    if not cluster.smtp_alert:
        # nothing to wait for: the mail keepalived would send comes within seconds, so a window
        # twice the mail test's own bound is the observation
        deadline = time.time() + 2 * MAIL_BOUND
        while time.time() < deadline:
            assert not [m for m in read_mails(client) if m["id"] not in known], "a mail without smtp_alert"
            time.sleep(1)
        return
    mail = wait_for(lambda: new_mail(DIRECTORS[DIRECTOR_BACKUP], "MASTER"), MAIL_BOUND,
                    "an e-mail from %s saying %s entered MASTER state" % (DIRECTOR_BACKUP, INSTANCE))
    assert cluster.mail_from in mail["from"]
    assert "VRRP Instance %s" % INSTANCE in mail["subject"]
    lb1.check("systemctl", "start", "keepalived", timeout=60)
    if cluster.preempt:
        wait_master(topology, DIRECTOR_MASTER, _bounds(cluster)["preempt"] + 30, "by preemption")
        wait_for(lambda: new_mail(DIRECTORS[DIRECTOR_BACKUP], "BACKUP"), MAIL_BOUND,
                 "an e-mail from %s saying %s entered BACKUP state" % (DIRECTOR_BACKUP, INSTANCE))
