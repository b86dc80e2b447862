# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The nftables plane's checker: health of every real server, the kernel table, the state file.

On a director that uses the nftables plane, keepalived does VRRP only; the daemon
(``lbha_checkerd.py`` of the director role, unit ``lbha-checker.service``) runs a
:class:`Checker` over the host document (``/etc/lbha/cluster.json``, see ``hostdoc.py``):
the virtual and real servers of its model, the drained ones of its administrative state, the
table settings of its ``nftables`` section. It checks the document's shape and version only:
every rule was the model's, before the document was written.

The health state machine is ``health.py``, the probes ``probes.py``, the ruleset ``nft.py``;
running ``nft`` and MISC_CHECK programs is the daemon's (injected as ``plane`` and
``probe_factory``). Semantics that span them:

* a server that is down takes no new flows, whether it is removed or kept with weight 0
  (``inhibit_on_failure``); its established flows continue through the flow map; when a
  server is removed its virtual server's flow map is flushed in the same transaction;
* a reload (SIGHUP) re-reads the document and keeps the health of unchanged servers and the
  flows in the kernel;
* the table is compared with the kernel at least every ``HEARTBEAT_SECONDS``: a table
  deleted or flushed behind the checker's back is put back, and the state file's ``updated``
  and ``pid`` tell readers that the daemon is alive;
* the liveness file (:func:`liveness_path`, one line ``PID UPDATED LOADED``, world-readable,
  nothing else in it) is what keepalived's ``track_script`` of the plane reads as the script
  user (``plane-check``): a dead or stuck checker, or a table it cannot load, takes this
  director out of VRRP (FAULT), so it gives up its VIPs.
"""
from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import json
import os
import signal
import tempfile
import threading
import time

from .alerts import Mailer, quorum_message, real_server_message
from .health import LOG, RealServerCheck, VirtualServerHealth
from .hostdoc import DEFAULT_PATH as DEFAULT_DOCUMENT
from .hostdoc import HostDocumentError, is_drained, load, nft_document
from .nft import render_ruleset, render_structure, render_update, server_id, tables_summary, vs_key
from .probes import make_probe

DEFAULT_STATE = "/run/lbha/checker.json"
RETRY_APPLY_SECONDS = 2.0
HEARTBEAT_SECONDS = 2.0
# A state or liveness file older than this: the checker no longer looks after the table
# (status.py, plane-check and the model's track_script use it).
STALE_SECONDS = 10
MAIL_FLUSH_SECONDS = 2.0     # how long a stopping checker waits for mail still queued
STATE_MODE = 0o640            # last_error may name a MISC_CHECK command line
LIVENESS_MODE = 0o644         # read by keepalived's script user; holds no command line


def liveness_path(state_path):
    """The liveness file beside the state file: ``/run/lbha/checker.json`` -> ``/run/lbha/checker.alive``."""
    return os.path.splitext(state_path)[0] + ".alive"


def liveness_line(pid, updated, loaded):
    """``PID UPDATED LOADED``: whole seconds, LOADED 1 when the table is in the kernel as computed."""
    return "%d %d %d\n" % (pid, int(updated), 1 if loaded else 0)


class NftError(RuntimeError):
    """nft refused a ruleset."""


def write_json_atomic(path, data, mode=STATE_MODE):
    write_text_atomic(path, json.dumps(data, indent=1, sort_keys=True) + "\n", mode)


def write_text_atomic(path, text, mode):
    directory = os.path.dirname(path) or "."
    fd, tmp = tempfile.mkstemp(prefix=".checker.", dir=directory)
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def read_previous_state(path):
    """Health from an earlier run's state file: ``{(vs_key, address, port): server state}``."""
    try:
        with open(path) as fh:
            data = json.load(fh)
    except (OSError, ValueError):
        return {}, {}
    servers, quorum = {}, {}
    for vs in data.get("virtual_servers") or []:
        try:
            key = vs_key(vs)
            quorum[key] = bool(vs.get("quorum_up", True))
            for rs in vs.get("real_servers") or []:
                servers[(key, rs["address"], int(rs["port"]))] = rs
        except (KeyError, TypeError, ValueError):
            continue
    return servers, quorum


def load_document(path):
    """``(nftables document, drained references)`` of the host document at ``path``.

    HostDocumentError when it cannot be read, is of another shape or version, or is not for
    the nftables plane.
    """
    doc = load(path)
    if doc["plane"] != "nftables":
        raise HostDocumentError("%s: this director uses the %s plane, not nftables; the checker has "
                                "nothing to do (converge the director to stop it)" % (path, doc["plane"]))
    return nft_document(doc), frozenset(doc["drained"])


class Checker(object):
    """The daemon: health of every real server, the nftables table, the state file."""

    def __init__(self, plane, document_path=DEFAULT_DOCUMENT, state_path=DEFAULT_STATE,
                 clock=time.time, probe_factory=make_probe, mailer=None):
        self.document_path = document_path
        self.mailer = mailer if mailer is not None else Mailer()
        self.state_path = state_path
        self.drain = frozenset()
        self.plane = plane
        self.clock = clock
        self.probe_factory = probe_factory
        self.lock = threading.RLock()
        self.wake = threading.Event()
        self.doc = None
        self.vss = []
        self.generation = 0
        self.applied = None          # text of the element fill last loaded into the kernel
        self.tables = {}
        self.dirty = True
        self.flush_flows = set()
        self._stop_threads = None
        self._threads = []
        self._reload = False
        self._stop = False

    # -- model --------------------------------------------------------------------------------
    def configure(self, doc, previous=None, previous_quorum=None):
        """Build the checks for ``doc``; carry health over from ``previous`` (a restart or reload)."""
        previous = previous or {}
        previous_quorum = previous_quorum or {}
        self.generation += 1
        gen = self.generation
        vss = []
        for vs in doc["virtual_servers"]:
            checks = []
            for rs in vs["real_servers"]:
                key = (vs_key(vs), rs["address"], int(rs["port"]))
                prev = previous.get(key)
                checks.append(RealServerCheck(
                    vs, rs, self.probe_factory(rs, rs.get("check")), clock=self.clock,
                    on_change=lambda c, e, gen=gen: self._changed(gen, c, e),
                    initial=prev, lock=self.lock))
            for c in checks:
                c.drained = is_drained(self.drain, c.rs["address"], c.rs["port"])
            vss.append(VirtualServerHealth(vs, checks, previous_quorum.get(vs_key(vs))))
        with self.lock:
            self.doc = doc
            self.vss = vss
            self.dirty = True

    def set_drain(self, drain):
        """Drain exactly the real servers of ``drain`` (references as in the host document)."""
        with self.lock:
            self.drain = frozenset(drain)
            for vsh in self.vss:
                changed = False
                for c in vsh.checks:
                    drained = is_drained(self.drain, c.rs["address"], c.rs["port"])
                    if drained != c.drained:
                        c.drained = drained
                        changed = True
                        LOG.info("%s service %s %s VS %s", "Draining" if drained else "Undraining",
                                 c.name, "of" if drained else "to", c.vs_name)
                if changed:
                    vsh.update_quorum()
                    self.dirty = True

    def health_snapshot(self):
        """``{(vs_key, address, port): state}`` of the current checks, for a reload."""
        with self.lock:
            out = {}
            for vsh in self.vss:
                for c in vsh.checks:
                    st = c.state()
                    if self.check_is_dynamic(c):
                        st["dynamic_weight"] = c.weight
                    out[c.key] = st
            return out, {vsh.key: vsh.quorum_up for vsh in self.vss}

    @staticmethod
    def check_is_dynamic(check):
        return bool(check.check and check.check.get("misc_dynamic"))

    def _changed(self, gen, check, event):
        if gen != self.generation:
            return
        with self.lock:
            vs = check.vs
            mail = self.doc.get("mail")
            if event in ("down", "up"):
                inhibit = bool(check.rs.get("inhibit_on_failure"))
                if event == "down":
                    LOG.warning("%s service %s from VS %s", "Disabling" if inhibit else "Removing",
                                check.name, check.vs_name)
                    if not inhibit:
                        # packets still pinned to it would go nowhere (UDP has no SYN to reschedule them)
                        self.flush_flows.add(vs_key(vs))
                else:
                    LOG.info("%s service %s to VS %s", "Enabling" if inhibit else "Adding",
                             check.name, check.vs_name)
                if mail and check.rs.get("mail"):
                    self.mailer.submit(mail, *real_server_message(
                        mail, vs, check.rs, event == "up", check.check["type"] if check.check else "CHECK",
                        check.last_error))
            for vsh in self.vss:
                if vsh.key == vs_key(vs) and vsh.update_quorum() and mail and vs.get("mail"):
                    self.mailer.submit(mail, *quorum_message(mail, vs, vsh.quorum_up, vsh.alive_weight()))
            self.dirty = True
        self.wake.set()

    # -- kernel and state file ------------------------------------------------------------------
    def compute_tables(self):
        with self.lock:
            return {vsh.key: vsh.table(self.doc["buckets"], self.doc["seed"]) for vsh in self.vss}

    def apply(self, force=False):
        """Bring the kernel table in line with the current health; returns what was done."""
        with self.lock:
            doc = self.doc
            tables = self.compute_tables()
            flush = sorted(self.flush_flows)
            self.flush_flows.clear()
            self.dirty = False
        update = render_update(doc, tables)
        _structure, fp = render_structure(doc)
        current = self.plane.fingerprint(doc["table"])
        if current == fp and not force and update == self.applied:
            self.tables = tables
            return "unchanged"
        if current == fp:
            self.plane.load(render_update(doc, tables, flush) if flush else update)
            action = "updated"
            if flush:
                LOG.info("Flushed the flow map of %s: a real server failed", ", ".join(flush))
        else:
            self.plane.load(render_ruleset(doc, tables))
            action = "replaced" if current else "created"
        self.applied = update
        self.tables = tables
        parts = []
        for vsh in self.vss:
            counts = tables_summary(tables[vsh.key])
            shares = " ".join("%s=%d" % (c.rs["address"], counts.get(server_id(c.rs["address"]), 0))
                              for c in vsh.checks)
            sorry = vsh.vs.get("sorry_server")
            if sorry and not vsh.quorum_up:
                shares += " sorry %s=%d" % (sorry["address"], counts.get(server_id(sorry["address"]), 0))
            parts.append("%s: %s" % (vsh.key, shares or "no real servers"))
        LOG.info("nftables table netdev %s %s (buckets %s)", doc["table"], action, "; ".join(parts))
        return action

    def state(self):
        with self.lock:
            return {"updated": self.clock(), "pid": os.getpid(),
                    "table": self.doc["table"] if self.doc else None,
                    "virtual_servers": [vsh.state(self.tables.get(vsh.key)) for vsh in self.vss]}

    def write_state(self, loaded=None):
        """The state file; with ``loaded`` (whether the table is in the kernel as computed) also
        the liveness file that keepalived's track_script reads."""
        state = self.state()
        write_json_atomic(self.state_path, state)
        if loaded is not None:
            write_text_atomic(liveness_path(self.state_path), liveness_line(state["pid"], state["updated"], loaded),
                              LIVENESS_MODE)

    def run_all_once(self):
        """Run every check once, in order (tests and diagnostics)."""
        for vsh in list(self.vss):
            for c in vsh.checks:
                c.run()

    # -- threads ------------------------------------------------------------------------------
    def _worker(self, check, stop):
        while not stop.is_set():
            delay = check.run()
            stop.wait(delay)

    def start_threads(self):
        stop = threading.Event()
        threads = []
        for vsh in self.vss:
            for c in vsh.checks:
                t = threading.Thread(target=self._worker, args=(c, stop), daemon=True,
                                     name="check %s %s" % (vsh.key, c.rs["address"]))
                t.start()
                threads.append(t)
        self._stop_threads = stop
        self._threads = threads

    def stop_threads(self):
        if self._stop_threads is not None:
            self._stop_threads.set()
        # A probe in flight finishes on its own; its result belongs to an old generation and is
        # ignored, so there is no need to wait longer than a moment.
        for t in self._threads:
            t.join(0.2)
        self._threads = []

    def request_reload(self, *_args):
        self._reload = True
        self.wake.set()

    def request_stop(self, *_args):
        self._stop = True
        self.wake.set()

    def reload(self):
        try:
            doc, drain = load_document(self.document_path)
        except HostDocumentError as exc:
            LOG.error("Reload refused, keeping the running configuration: %s", exc)
            return False
        old_table = self.doc["table"] if self.doc else None
        previous, quorum = self.health_snapshot()
        self.stop_threads()
        self.set_drain(drain)
        self.configure(doc, previous, quorum)
        self.start_threads()
        self.applied = None
        if old_table and old_table != doc["table"]:
            self.plane.delete_table(old_table)
        LOG.info("Configuration reloaded from %s", self.document_path)
        return True

    def serve(self):
        """Main loop: apply on every change and at least every HEARTBEAT_SECONDS (so a table that
        someone flushed or deleted is put back), write the state file each time (its ``updated``
        field is the daemon's heartbeat), handle reload and stop."""
        signal.signal(signal.SIGHUP, self.request_reload)
        signal.signal(signal.SIGTERM, self.request_stop)
        signal.signal(signal.SIGINT, self.request_stop)
        self.start_threads()
        while True:
            if self._stop:
                break
            if self._reload:
                self._reload = False
                self.reload()
                pending = True
            try:
                self.apply()
                pending = False
            except (NftError, OSError) as exc:
                pending = True
                LOG.error("Cannot program nftables (retrying in %gs): %s", RETRY_APPLY_SECONDS, exc)
            try:
                self.write_state(loaded=not pending)
            except OSError as exc:
                LOG.error("Cannot write %s: %s", self.state_path, exc)
            self.wake.wait(RETRY_APPLY_SECONDS if pending else HEARTBEAT_SECONDS)
            self.wake.clear()
        self.stop_threads()
        self.mailer.stop(wait=MAIL_FLUSH_SECONDS)
        try:
            self.write_state()
            # nobody looks after the table any more: keepalived's track_script fails at once
            os.unlink(liveness_path(self.state_path))
        except OSError as exc:
            LOG.error("Cannot write %s: %s", self.state_path, exc)
        # The table stays loaded: forwarding goes on with the last good maps.
        LOG.info("Stopped; table netdev %s left in place", self.doc["table"])
        return 0
