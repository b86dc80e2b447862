# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Health checks with keepalived's semantics, and the nftables plane's checker daemon.

On a director that uses the nftables plane, keepalived does VRRP only; this daemon
(``lbha_checkerd.py`` of the director role, unit ``lbha-checker.service``) checks the real
servers of ``/etc/lbha/dataplane.json`` and programs the ``netdev`` table rendered by
``nft.py``.

Semantics (those of keepalived's checkers):

* every real server is checked every ``delay_loop`` seconds (the check's own ``delay_loop``
  wins over the virtual server's);
* TCP_CHECK connects to ``connect_ip`` (default: the real server) ``connect_port`` (default:
  its port) within ``connect_timeout``; HTTP_GET / SSL_GET fetch every ``url`` path with a
  ``Host`` header (``virtualhost``, else the address) and compare the status with
  ``status_code`` (any 2xx when empty) and, when set, the MD5 ``digest`` of the body;
  MISC_CHECK runs ``misc_path`` (exit 0 = up; with ``misc_dynamic`` exit 2..255 = up with
  weight ``code - 2``); a real server without a check is always up;
* a failing check of a server that is up is retried ``retry`` times, ``delay_before_retry``
  seconds apart, before the server is declared down; a server that is down comes back on the
  first success;
* a server that is down takes no new flows, whether it is removed or kept with weight 0
  (``inhibit_on_failure``); its established flows continue through the flow map;
* ``quorum``/``hysteresis``: quorum is lost when the healthy weight sum drops below
  ``quorum - hysteresis`` (or to 0) and regained at ``quorum + hysteresis``; while it is
  lost, a configured ``sorry_server`` takes every new flow in place of the real servers
  (without one, the remaining healthy servers stay, as in keepalived);
* a server starts as up (keepalived's default without ``alpha``) unless the previous run's
  state file says otherwise, so a restart neither flaps a down server back in nor
  reshuffles anything;
* a server listed in the drain file (``drain.json`` beside the configuration,
  ``{"drain": ["1.1.1.3", "1.1.1.4:80"]}``: an address for every port, or ``address:port``)
  has weight 0 whatever its health: it takes no new flows while its established flows
  finish (IPVS weight 0). The file is read at start and on every reload (SIGHUP), so
  maintenance needs no change of the cluster definition.

Time and I/O are injectable (``clock``, probe factory, nft runner), so the state machine is
tested without real time or network.
"""
from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import hashlib
import http.client
import ipaddress
import json
import logging
import os
import signal
import socket
import ssl
import tempfile
import threading
import time

from .nft import (DataplaneError, render_ruleset, render_structure,
                  render_update, server_id, tables_summary, validate_dataplane, vs_key, vs_table)

LOG = logging.getLogger("lbha-checker")

DEFAULT_CONFIG = "/etc/lbha/dataplane.json"
DEFAULT_STATE = "/run/lbha/checker.json"
DRAIN_FILE = "drain.json"
RETRY_APPLY_SECONDS = 5.0
MAX_BODY = 16 * 1024 * 1024

CHECK_DEFAULTS = {"connect_timeout": 5, "retry": 1, "delay_before_retry": 1}


def _svc(address, port, protocol):
    return "[%s]:%s:%d" % (address, protocol.lower(), port)


# --------------------------------------------------------------------------------------------
# probes: callables that return (ok, error, weight); weight is None unless MISC_CHECK is dynamic


def tcp_probe(host, port, timeout):
    def probe():
        try:
            sock = socket.create_connection((host, port), timeout=timeout)
        except socket.timeout:
            return False, "TCP connection to [%s]:tcp:%d timeout" % (host, port), None
        except OSError as exc:
            return False, "TCP connection to [%s]:tcp:%d failed: %s" % (
                host, port, exc.strerror or exc), None
        sock.close()
        return True, None, None
    return probe


def http_probe(host, port, timeout, urls, virtualhost=None, tls=False):
    host_header = virtualhost or (host if port in (80, 443) else "%s:%d" % (host, port))
    kind = "SSL" if tls else "HTTP"

    def fetch(path):
        if tls:
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            conn = http.client.HTTPSConnection(host, port, timeout=timeout, context=ctx)
        else:
            conn = http.client.HTTPConnection(host, port, timeout=timeout)
        try:
            conn.request("GET", path, headers={"Host": host_header, "User-Agent": "lbha-checker",
                                               "Connection": "close"})
            resp = conn.getresponse()
            body = resp.read(MAX_BODY)
            return resp.status, body
        finally:
            conn.close()

    def probe():
        for url in urls:
            path = url.get("path") or "/"
            try:
                status, body = fetch(path)
            except socket.timeout:
                return False, "%s request to [%s]:tcp:%d url(%s) timeout" % (kind, host, port, path), None
            except (OSError, http.client.HTTPException) as exc:
                return False, "%s request to [%s]:tcp:%d url(%s) failed: %s" % (
                    kind, host, port, path, getattr(exc, "strerror", None) or exc), None
            codes = url.get("status_code") or []
            if (codes and status not in codes) or (not codes and not 200 <= status < 300):
                return False, "HTTP status code error to [%s]:tcp:%d url(%s), status_code [%d]" % (
                    host, port, path, status), None
            digest = url.get("digest")
            if digest:
                got = hashlib.md5(body).hexdigest()
                if got.lower() != str(digest).lower():
                    return False, "MD5 digest error to [%s]:tcp:%d url[%s], MD5SUM [%s]" % (
                        host, port, path, got), None
        return True, None, None
    return probe


def make_probe(rs, check, misc_probe=None):
    """Build the probe for one real server's check (``check`` already has defaults).

    ``misc_probe(command, timeout, dynamic)`` builds MISC_CHECK probes: running a program is the
    daemon's business (lbha_checkerd.py), so without it a MISC_CHECK is refused.
    """
    if check is None:
        return lambda: (True, None, None)
    kind = check["type"]
    host = check.get("connect_ip") or rs["address"]
    port = int(check.get("connect_port") or rs["port"])
    timeout = float(check["connect_timeout"])
    if kind == "TCP_CHECK":
        return tcp_probe(host, port, timeout)
    if kind in ("HTTP_GET", "SSL_GET"):
        urls = check.get("url") or [{"path": "/"}]
        return http_probe(host, port, timeout, urls, check.get("virtualhost"), tls=kind == "SSL_GET")
    if kind == "MISC_CHECK" and misc_probe is not None:
        return misc_probe(check["misc_path"], float(check.get("misc_timeout") or timeout),
                          bool(check.get("misc_dynamic")))
    raise DataplaneError("check type %r is not supported by lbha-checker" % kind)


def normalize_check(check, path):
    """Fill keepalived's defaults into one check and validate what the daemon needs."""
    if check is None:
        return None
    if not isinstance(check, dict) or "type" not in check:
        raise DataplaneError("%s: expected a mapping with a type" % path)
    out = dict(check)
    kind = str(check["type"]).upper()
    if kind not in ("TCP_CHECK", "HTTP_GET", "SSL_GET", "MISC_CHECK"):
        raise DataplaneError("%s.type: %r is not TCP_CHECK, HTTP_GET, SSL_GET or MISC_CHECK"
                             % (path, check["type"]))
    out["type"] = kind
    for key, default in CHECK_DEFAULTS.items():
        value = check.get(key)
        value = default if value is None else value
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise DataplaneError("%s.%s: expected a non-negative number, got %r" % (path, key, value))
        out[key] = value
    if out["connect_timeout"] <= 0:
        raise DataplaneError("%s.connect_timeout: must be greater than 0" % path)
    if kind == "MISC_CHECK" and not check.get("misc_path"):
        raise DataplaneError("%s.misc_path: required for MISC_CHECK" % path)
    if kind in ("HTTP_GET", "SSL_GET"):
        urls = check.get("url") or [{"path": "/"}]
        if not isinstance(urls, list):
            raise DataplaneError("%s.url: expected a list" % path)
        for i, url in enumerate(urls):
            if not isinstance(url, dict) or not str(url.get("path") or "/").startswith("/"):
                raise DataplaneError("%s.url[%d].path: expected a path starting with /" % (path, i))
        out["url"] = urls
    return out


# --------------------------------------------------------------------------------------------
# state machine


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
        check = self.check or {}
        self.delay_loop = float(check.get("delay_loop") or vs.get("delay_loop") or 6)
        self.retry = int(check.get("retry", 0) if self.check else 0)
        self.delay_before_retry = float(check.get("delay_before_retry", 1) if self.check else 1)
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
        return _svc(self.rs["address"], self.rs["port"], self.vs["protocol"])

    @property
    def vs_name(self):
        return _svc(self.vs["address"], self.vs["port"], self.vs["protocol"])

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
        name = _svc(self.vs["address"], self.vs["port"], self.vs["protocol"])
        sorry = self.vs.get("sorry_server")
        if new:
            LOG.info("Gained quorum %d+%d=%d <= %d for VS %s", self.vs["quorum"], self.vs["hysteresis"],
                     self.vs["quorum"] + self.vs["hysteresis"], alive, name)
            if sorry:
                LOG.info("Removing sorry server %s from VS %s",
                         _svc(sorry["address"], sorry["port"], self.vs["protocol"]), name)
        else:
            LOG.warning("Lost quorum %d-%d=%d > %d for VS %s", self.vs["quorum"], self.vs["hysteresis"],
                        self.vs["quorum"] - self.vs["hysteresis"], alive, name)
            if sorry:
                LOG.warning("Adding sorry server %s to VS %s",
                            _svc(sorry["address"], sorry["port"], self.vs["protocol"]), name)
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


# --------------------------------------------------------------------------------------------
# nft and files


class NftError(RuntimeError):
    pass


def write_json_atomic(path, data):
    directory = os.path.dirname(path) or "."
    fd, tmp = tempfile.mkstemp(prefix=".checker.", dir=directory)
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(data, fh, indent=1, sort_keys=True)
            fh.write("\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)
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


def load_config(path):
    """Read and validate the dataplane document; returns ``(doc, warnings)``."""
    try:
        with open(path) as fh:
            raw = json.load(fh)
    except OSError as exc:
        raise DataplaneError("%s: cannot read: %s" % (path, exc.strerror or exc))
    except ValueError as exc:
        raise DataplaneError("%s: not valid JSON: %s" % (path, exc))
    doc, warnings = validate_dataplane(raw)
    for i, vs in enumerate(doc["virtual_servers"]):
        for j, rs in enumerate(vs["real_servers"]):
            rs["check"] = normalize_check(rs.get("check"), "virtual_servers[%d].real_servers[%d].check"
                                          % (i, j))
    return doc, warnings


def default_drain_path(config_path):
    """The drain file beside the configuration: ``/etc/lbha/drain.json``."""
    return os.path.join(os.path.dirname(config_path) or ".", DRAIN_FILE)


def load_drain(path):
    """The drained real servers of ``path``: a frozenset of ``address`` and ``address:port``.

    A missing file drains nothing. The document is ``{"drain": [entries]}``; an entry is an
    IPv4 address (the real server on every port) or ``address:port``.
    """
    try:
        with open(path) as fh:
            raw = json.load(fh)
    except FileNotFoundError:
        return frozenset()
    except OSError as exc:
        raise DataplaneError("%s: cannot read: %s" % (path, exc.strerror or exc))
    except ValueError as exc:
        raise DataplaneError("%s: not valid JSON: %s" % (path, exc))
    entries = raw.get("drain") if isinstance(raw, dict) else None
    if not isinstance(entries, list):
        raise DataplaneError('%s: expected {"drain": [address or address:port, ...]}' % path)
    out = set()
    for i, entry in enumerate(entries):
        text = str(entry).strip() if isinstance(entry, (str, int)) else None
        address, _sep, port = (text or "").partition(":")
        try:
            address = str(ipaddress.IPv4Address(address))
            if port and not 1 <= int(port) <= 65535:
                raise ValueError(port)
        except ValueError:
            raise DataplaneError("%s: drain[%d]: %r is not an IPv4 address or address:port"
                                 % (path, i, entry))
        out.add("%s:%d" % (address, int(port)) if port else address)
    return frozenset(out)


def is_drained(drain, address, port):
    return address in drain or "%s:%d" % (address, int(port)) in drain


# --------------------------------------------------------------------------------------------
# daemon


class Checker(object):
    """The daemon: health of every real server, the nftables table, the state file."""

    def __init__(self, plane, config_path=DEFAULT_CONFIG, state_path=DEFAULT_STATE,
                 clock=time.time, probe_factory=make_probe, drain_path=None):
        self.config_path = config_path
        self.state_path = state_path
        self.drain_path = drain_path or default_drain_path(config_path)
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
        """Drain exactly the real servers of ``drain`` (see :func:`load_drain`)."""
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
            for vsh in self.vss:
                if vsh.key == vs_key(vs):
                    vsh.update_quorum()
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

    def write_state(self):
        write_json_atomic(self.state_path, self.state())

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
            doc, warnings = load_config(self.config_path)
            drain = load_drain(self.drain_path)
        except DataplaneError as exc:
            LOG.error("Reload refused, keeping the running configuration: %s", exc)
            return False
        for w in warnings:
            LOG.warning("%s", w)
        old_table = self.doc["table"] if self.doc else None
        previous, quorum = self.health_snapshot()
        self.stop_threads()
        self.set_drain(drain)
        self.configure(doc, previous, quorum)
        self.start_threads()
        self.applied = None
        if old_table and old_table != doc["table"]:
            self.plane.delete_table(old_table)
        LOG.info("Configuration reloaded from %s", self.config_path)
        return True

    def serve(self):
        """Main loop: apply on every change, write the state file, handle reload and stop."""
        signal.signal(signal.SIGHUP, self.request_reload)
        signal.signal(signal.SIGTERM, self.request_stop)
        signal.signal(signal.SIGINT, self.request_stop)
        self.start_threads()
        pending = True
        while True:
            if self._stop:
                break
            if self._reload:
                self._reload = False
                self.reload()
                pending = True
            if self.dirty:
                pending = True
            if pending:
                try:
                    self.apply()
                    pending = False
                except (NftError, OSError) as exc:
                    LOG.error("Cannot program nftables (retrying in %gs): %s", RETRY_APPLY_SECONDS, exc)
                try:
                    self.write_state()
                except OSError as exc:
                    LOG.error("Cannot write %s: %s", self.state_path, exc)
            self.wake.wait(RETRY_APPLY_SECONDS if pending else None)
            self.wake.clear()
        self.stop_threads()
        try:
            self.write_state()
        except OSError as exc:
            LOG.error("Cannot write %s: %s", self.state_path, exc)
        # The table stays loaded: forwarding goes on with the last good maps.
        LOG.info("Stopped; table netdev %s left in place", self.doc["table"])
        return 0
