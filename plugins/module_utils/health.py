# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The health state machine of the nftables plane's checker, with keepalived's semantics.

* every real server is checked every ``delay_loop`` seconds of its virtual server;
* a failing check of a server that is up is retried ``retry`` times, ``delay_before_retry``
  seconds apart, before the server is declared down; a server that is down comes back on the
  first success;
* ``quorum``/``hysteresis``: quorum is lost when the healthy weight sum drops below
  ``quorum - hysteresis`` (or to 0) and regained at ``quorum + hysteresis``; while it is
  lost, a configured ``sorry_server`` takes every new flow in place of the real servers
  (without one, the remaining healthy servers stay, as in keepalived);
* a server starts as up (keepalived's default without ``alpha``) unless the previous run's
  state says otherwise, so a restart neither flaps a down server back in nor reshuffles
  anything;
* a drained server (the host document's administrative state) has weight 0 whatever its
  health: it takes no new flows while its established flows finish (IPVS weight 0).

Time and probes are injected (``clock``, ``probe``), so it is tested without real time or
network.
"""
from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import logging
import threading
import time

from .nft import server_id, tables_summary, vs_key, vs_table
from .probes import service_name

LOG = logging.getLogger("lbha-checker")


class RealServerCheck(object):
    """One real server of one virtual server: its check and its health."""

    def __init__(self, vs, rs, probe, clock=time.time, on_change=None, initial=None, lock=None):
        self.vs = vs
        self.rs = rs
        self.check = rs.get("check")
        self.probe = probe
        self.clock = clock
        self.on_change = on_change
        self.lock = lock or threading.Lock()
        # the model fills keepalived's defaults in; a real server without a check is always up
        self.delay_loop = float(vs["delay_loop"])
        self.retry = int(self.check["retry"]) if self.check else 0
        self.delay_before_retry = float(self.check["delay_before_retry"]) if self.check else 1.0
        self.retry_it = 0
        self.weight = int(rs["weight"])
        self.drained = False
        now = clock()
        initial = initial or {}
        self.up = bool(initial.get("healthy", True))
        self.since = float(initial.get("since") or now)
        self.last_error = initial.get("last_error")
        if initial.get("dynamic_weight") is not None:
            self.weight = int(initial["dynamic_weight"])

    @property
    def key(self):
        return (vs_key(self.vs), self.rs["address"], int(self.rs["port"]))

    @property
    def effective_weight(self):
        """The weight that takes new flows: 0 while the server is drained."""
        return 0 if self.drained else self.weight

    @property
    def name(self):
        return service_name(self.rs["address"], self.rs["port"], self.vs["protocol"])

    @property
    def vs_name(self):
        return service_name(self.vs["address"], self.vs["port"], self.vs["protocol"])

    def run(self):
        """Run the probe once, update the state; return seconds until the next run."""
        try:
            ok, error, weight = self.probe()
        except Exception as exc:  # a broken probe must not kill the checker thread
            ok, error, weight = False, "check raised %s: %s" % (type(exc).__name__, exc), None
        kind = self.check["type"] if self.check else "CHECK"
        events = []
        with self.lock:
            now = self.clock()
            if ok:
                self.retry_it = 0
                if weight is not None and weight != self.weight:
                    LOG.info("%s on service %s: weight %d -> %d.", kind, self.name, self.weight, weight)
                    self.weight = weight
                    events.append("weight")
                if not self.up:
                    self.up = True
                    self.since = now
                    self.last_error = None
                    LOG.info("%s on service %s success.", kind, self.name)
                    events.append("up")
                delay = self.delay_loop
            else:
                self.last_error = error
                if self.up and self.retry_it < self.retry:
                    self.retry_it += 1
                    LOG.info("%s; retry %d of %d in %gs.", error, self.retry_it, self.retry,
                             self.delay_before_retry)
                    delay = self.delay_before_retry
                else:
                    if self.up:
                        LOG.warning("%s", error)
                        LOG.warning("%s on service %s failed after %d retries.", kind, self.name,
                                    self.retry_it)
                        self.up = False
                        self.since = now
                        events.append("down")
                    self.retry_it = 0
                    delay = self.delay_loop
        for event in events:
            if self.on_change is not None:
                self.on_change(self, event)
        return delay

    def state(self):
        return {"address": self.rs["address"], "port": int(self.rs["port"]),
                "weight": self.effective_weight, "healthy": self.up, "since": self.since,
                "last_error": self.last_error, "drained": self.drained,
                "inhibit_on_failure": bool(self.rs.get("inhibit_on_failure"))}


def quorum_next(up, alive_weight, quorum, hysteresis):
    """keepalived's quorum rule: returns the new quorum state."""
    if not up and alive_weight >= quorum + hysteresis:
        return True
    if up and (alive_weight == 0 or alive_weight < quorum - hysteresis):
        return False
    return up


class VirtualServerHealth(object):
    """The real servers of one virtual server and its quorum state."""

    def __init__(self, vs, checks, quorum_up=None):
        self.vs = vs
        self.checks = checks
        alive = self.alive_weight()
        self.quorum_up = (alive >= vs["quorum"] and alive > 0) if quorum_up is None else quorum_up

    @property
    def key(self):
        return vs_key(self.vs)

    def alive_weight(self):
        return sum(c.effective_weight for c in self.checks if c.up)

    def update_quorum(self):
        """Re-evaluate the quorum; log and return True when it changed."""
        alive = self.alive_weight()
        new = quorum_next(self.quorum_up, alive, self.vs["quorum"], self.vs["hysteresis"])
        if new == self.quorum_up:
            return False
        self.quorum_up = new
        name = service_name(self.vs["address"], self.vs["port"], self.vs["protocol"])
        sorry = self.vs.get("sorry_server")
        if new:
            LOG.info("Gained quorum %d+%d=%d <= %d for VS %s", self.vs["quorum"], self.vs["hysteresis"],
                     self.vs["quorum"] + self.vs["hysteresis"], alive, name)
            if sorry:
                LOG.info("Removing sorry server %s from VS %s",
                         service_name(sorry["address"], sorry["port"], self.vs["protocol"]), name)
        else:
            LOG.warning("Lost quorum %d-%d=%d > %d for VS %s", self.vs["quorum"], self.vs["hysteresis"],
                        self.vs["quorum"] - self.vs["hysteresis"], alive, name)
            if sorry:
                LOG.warning("Adding sorry server %s to VS %s",
                            service_name(sorry["address"], sorry["port"], self.vs["protocol"]), name)
        return True

    def table(self, size, seed):
        members = [(c.rs["address"], c.effective_weight, c.up) for c in self.checks]
        use_sorry = not self.quorum_up and bool(self.vs.get("sorry_server"))
        return vs_table(self.vs, members, use_sorry=use_sorry, size=size, seed=seed)

    def state(self, table=None):
        counts = tables_summary(table) if table else {}
        servers = []
        for c in self.checks:
            st = c.state()
            st["buckets"] = counts.get(server_id(c.rs["address"]), 0)
            servers.append(st)
        out = {"address": self.vs["address"], "port": self.vs["port"], "protocol": self.vs["protocol"],
               "lb_algo": self.vs["lb_algo"], "quorum_up": self.quorum_up, "real_servers": servers}
        sorry = self.vs.get("sorry_server")
        if sorry:
            out["sorry_server"] = {"address": sorry["address"], "port": sorry["port"],
                                   "active": bool(not self.quorum_up)}
        return out
