# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The cluster as the suite sees it: hosts, recorders on them, the state of VRRP and the planes.

Every constant comes from the scenario's inventory (scenario.py), never from the deployed files.
Hosts are reached, stopped, crashed and restarted through the scenario's driver (drivers.py):
``docker exec`` for containers, SSH for QEMU guests, ``ip netns exec`` for a namespace client.
"""
from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import json
import os
import re
import subprocess
import tempfile
import time

import pytest

from .drivers import driver
from .scenario import current

SCENARIO = current()
DRIVER = driver()

VIP = SCENARIO.vip
DIRECTORS = SCENARIO.directors
REAL_SERVERS = SCENARIO.real_servers
CLIENT = SCENARIO.client
PAGES = SCENARIO.pages
SERVICE_PORT = SCENARIO.service_port

# the IPv6 counterpart of arping, run as `python3 -c` on the host (nothing to install there)
with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "ndprobe.py")) as _handle:
    _NDPROBE = _handle.read()
_MAC = re.compile(r"\[([0-9A-Fa-f]{2}(?::[0-9A-Fa-f]{2}){5})\]")


class Host(object):
    """One host of the scenario (a container, a guest, or the namespace client)."""

    def __init__(self, name):
        self.name = name

    @property
    def interface(self):
        """The host's interface on the cluster's network."""
        return DRIVER.interface(self.name)

    def command(self, *argv, **kwargs):
        """The controller's command line that runs argv on this host."""
        return DRIVER.command(self.name, argv, interactive=kwargs.get("interactive", False))

    def run(self, *argv, **kwargs):
        """Run argv on the host; returns the CompletedProcess (never raises on rc)."""
        timeout = kwargs.pop("timeout", 30)
        return subprocess.run(
            self.command(*argv), stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True,
            timeout=timeout, check=False, **kwargs)

    def popen(self, *argv, **kwargs):
        """Start argv on the host (stdin a pipe: closing it ends the command on every driver)."""
        return subprocess.Popen(self.command(*argv, interactive=True), stdin=subprocess.PIPE, **kwargs)

    def check(self, *argv, **kwargs):
        """Run argv and return its stdout; fails the test with stderr when rc != 0."""
        result = self.run(*argv, **kwargs)
        assert result.returncode == 0, "%s: %s -> rc %d: %s" % (
            self.name, " ".join(str(a) for a in argv), result.returncode, result.stderr.strip())
        return result.stdout

    def check_at(self, *argv, **kwargs):
        """Run argv like check(); returns when it started on the controller's timeline: the host's
        own clock, read right before the command, less the host's offset. The time to reach the
        host (an SSH command to an emulated guest takes up to a second) is not counted in what
        a drill then measures from this moment."""
        out = self.check("sh", "-c", 'date +%s.%N; exec "$@"', "sh", *argv, **kwargs)
        return float(out.split("\n", 1)[0].strip()) - self.clock_offset()

    def sysctl(self, key):
        return self.check("sysctl", "-n", key).strip()

    def addresses(self, dev, family=4):
        """Addresses of dev: [{'local', 'prefixlen', 'label'}], IPv4 (family 4), IPv6 (6) or both (None)."""
        links = json.loads(self.check(*(["ip", "-json"] + (["-%d" % family] if family else [])
                                        + ["addr", "show", "dev", dev])))
        return [a for link in links for a in link.get("addr_info", [])]

    def mac(self, dev=None):
        return self.check("cat", "/sys/class/net/%s/address" % (dev or self.interface)).strip().lower()

    def is_active(self, unit):
        return self.run("systemctl", "is-active", "--quiet", unit).returncode == 0

    def is_enabled(self, unit):
        return self.run("systemctl", "is-enabled", "--quiet", unit).returncode == 0

    def shut_down(self):
        """A clean stop of the whole host: systemd stops every service (`docker stop`, or
        `systemctl poweroff` in a guest)."""
        DRIVER.stop(self.name)

    def crash(self):
        """A power cut: every process dies at once (`docker kill`, or SIGKILL to the guest's qemu)."""
        DRIVER.crash(self.name)

    def freeze(self, frozen=True):
        """The host hangs (every process stopped, nothing closed: `docker pause`, or SIGSTOP to
        the guest's qemu); ``frozen=False`` resumes it."""
        DRIVER.freeze(self.name, frozen)

    def clock_offset(self):
        """This host's clock minus the controller's (0 where they share a kernel)."""
        return DRIVER.clock_offset(self.name)


def arp_replies(host, address, count=3, dev=None):
    """MAC addresses that answered `arping` for address from host (lower case, unique)."""
    result = host.run("arping", "-c", count, "-w", count + 2, "-I", dev or host.interface, address,
                      timeout=count + 10)
    return sorted(set(m.lower() for m in _MAC.findall(result.stdout)))


def nd_replies(host, address, count=3, dev=None):
    """MAC addresses that answered IPv6 neighbour solicitations for address from host (lower
    case, unique): the link-layer address each advertisement announced (ndprobe.py)."""
    result = host.run("python3", "-c", _NDPROBE, "solicit", dev or host.interface, address, count, "1.0",
                      timeout=count + 20)
    assert result.returncode == 0, "%s: ndprobe -> rc %d: %s" % (host.name, result.returncode, result.stderr.strip())
    replies = json.loads(result.stdout)["replies"]
    # the Ethernet source and the link-layer address announced: one MAC per replying host
    return sorted(set(mac.lower() for r in replies for mac in (r["eth_src"], r.get("tlla") or r["eth_src"])))


def neighbour_replies(host, address, count=3):
    """Who answers neighbour resolution for address: ARP for IPv4, neighbour discovery for IPv6."""
    return (nd_replies if ":" in address else arp_replies)(host, address, count)


def _running(name):
    return DRIVER.running(name)


# --- failover drills -------------------------------------------------------------------------
#
# Everything that must be timed runs as ONE python3 process on a host (started with
# `docker exec -i NAME python3 -c SCRIPT`, or over SSH): the HTTP poller on the client and the VIP
# samplers on the directors. They print JSON lines with the host's clock, which the recorder puts
# on the controller's timeline (containers share its clock; a guest's offset is measured). They
# stop when their stdin is closed and at their own deadline, so nothing outlives a test. Their
# output goes to a file on the controller, read after they stop.

DIRECTOR_MASTER = SCENARIO.master
DIRECTOR_BACKUP = SCENARIO.backup
INSTANCE = SCENARIO.instance
VRRP_STATE_FILE = SCENARIO.vrrp_state_file

POLL_INTERVAL = 0.05    # one request every 50 ms
POLL_TIMEOUT = DRIVER.poll_timeout      # a request that takes longer has failed (0.5 s in containers)
SAMPLE_INTERVAL = 0.1   # VIP ownership sampled every 100 ms on each director
BOOT_TIMEOUT = 120      # a restarted container: systemd up, services started (loaded CI box)
SETTLE_TIMEOUT = 60     # the cluster back to its steady state after a drill

_STOP_ON_EOF = r'''
import json, subprocess, sys, threading, time
stop = threading.Event()
def _watch_stdin():
    try:
        while sys.stdin.buffer.read(4096):
            pass
    finally:
        stop.set()
threading.Thread(target=_watch_stdin, daemon=True).start()
def emit(record):
    sys.stdout.write(json.dumps(record, sort_keys=True) + "\n")
    sys.stdout.flush()
'''

POLLER_SCRIPT = _STOP_ON_EOF + r'''
import socket
host, port = sys.argv[1], int(sys.argv[2])
interval, timeout = float(sys.argv[3]), float(sys.argv[4])
max_seconds, max_count = float(sys.argv[5]), int(sys.argv[6])
def neighbour():
    """The MAC this client sends to for the VIP (its ARP table), or None."""
    try:
        with open("/proc/net/arp") as handle:
            for line in handle.read().splitlines()[1:]:
                fields = line.split()
                if fields and fields[0] == host and fields[3] != "00:00:00:00:00:00":
                    return fields[3].lower()
    except OSError:
        pass
    return None
request = ("GET / HTTP/1.0\r\nHost: %s\r\nConnection: close\r\n\r\n"
           % ("[%s]" % host if ":" in host else host)).encode()
started = time.time()
count = 0
while not stop.is_set() and count < max_count and time.time() - started < max_seconds:
    begin = time.time()
    record = {"t": begin, "ok": False}
    try:
        conn = socket.create_connection((host, port), timeout=timeout)
        try:
            conn.sendall(request)
            data = b""
            while True:
                left = timeout - (time.time() - begin)
                if left <= 0:
                    raise socket.timeout("no complete response within %.3f s" % timeout)
                conn.settimeout(left)
                chunk = conn.recv(65536)
                if not chunk:
                    break
                data += chunk
        finally:
            conn.close()
        head, _, body = data.partition(b"\r\n\r\n")
        status = head.split(b"\r\n", 1)[0].decode("latin-1")
        record["status"] = status
        record["page"] = body.decode("utf-8", "replace").strip()
        record["ok"] = status.split(" ")[1:2] == ["200"]
    except Exception as exc:  # every failure is a data point, never a crash
        record["error"] = "%s: %s" % (type(exc).__name__, exc)
    record["end"] = time.time()
    record["mac"] = neighbour()
    emit(record)
    count += 1
    pause = interval - (time.time() - begin)
    if pause > 0:
        stop.wait(pause)
'''

SAMPLER_SCRIPT = _STOP_ON_EOF + r'''
vip, dev, state_file = sys.argv[1], sys.argv[2], sys.argv[3]
interval, max_seconds = float(sys.argv[4]), float(sys.argv[5])
started = time.time()
while not stop.is_set() and time.time() - started < max_seconds:
    begin = time.time()
    out = subprocess.run(["ip", "-4", "-o", "addr", "show", "dev", dev],
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                         universal_newlines=True).stdout
    owned = any(f.split("/")[0] == vip for line in out.splitlines() for f in line.split()[3:4])
    try:
        with open(state_file) as handle:
            state = handle.read().strip()
    except OSError:
        state = None
    emit({"t": begin, "vip": owned, "state": state})
    pause = interval - (time.time() - begin)
    if pause > 0:
        stop.wait(pause)
'''

VRRP_CAPTURE_SCRIPT = r'''
import json, socket, sys, time
seconds, limit = float(sys.argv[1]), int(sys.argv[2])
sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, 112)
deadline = time.time() + seconds
adverts = []
while len(adverts) < limit and time.time() < deadline:
    sock.settimeout(max(0.01, deadline - time.time()))
    try:
        packet = sock.recv(2048)
    except socket.timeout:
        break
    ihl = (packet[0] & 0x0F) * 4
    vrrp = packet[ihl:]
    adverts.append({"t": time.time(), "src": socket.inet_ntoa(packet[12:16]),
                    "dst": socket.inet_ntoa(packet[16:20]), "ttl": packet[8],
                    "version": vrrp[0] >> 4, "vrid": vrrp[1], "priority": vrrp[2]})
print(json.dumps(adverts))
'''

MAIL_SCRIPT = r'''
import email, json, os, sys
from email import policy
root = sys.argv[1]
mails = []
for sub in ("new", "cur"):
    path = os.path.join(root, sub)
    for name in sorted(os.listdir(path)) if os.path.isdir(path) else []:
        with open(os.path.join(path, name), "rb") as handle:
            msg = email.message_from_binary_file(handle, policy=policy.default)
        body = msg.get_body(preferencelist=("plain",))
        mails.append({"id": name.split(":")[0], "subject": str(msg.get("Subject", "")),
                      "from": str(msg.get("From", "")), "peer": str(msg.get("X-Peer", "")),
                      "body": body.get_content() if body is not None else ""})
print(json.dumps(mails))
'''


class Recorder(object):
    """A python3 script running as one process on a host, its JSON lines kept on the controller.

    The records' times ("t", "end") are on the controller's clock."""

    def __init__(self, host, script, args, max_seconds):
        self.host = host
        self.max_seconds = max_seconds
        self.offset = host.clock_offset()
        self._out = tempfile.TemporaryFile(mode="w+b")
        self._err = tempfile.TemporaryFile(mode="w+")
        self._records = None
        self.proc = host.popen("python3", "-u", "-c", script, *args, stdout=self._out, stderr=self._err)

    def peek(self):
        """The records written so far (the script may still be running)."""
        if self._records is not None:
            return self._records
        data = os.pread(self._out.fileno(), os.fstat(self._out.fileno()).st_size, 0)
        records = []
        for line in data.decode("utf-8", "replace").splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue    # a line cut short (still being written, or the host stopped)
            for key in ("t", "end"):
                if key in record:
                    record[key] -= self.offset
            records.append(record)
        return records

    def running(self):
        return self._records is None and self.proc.poll() is None

    def stop(self):
        """Close the script's stdin (its stop signal), wait for it, return its records."""
        if self._records is not None:
            return self._records
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        try:
            self.proc.wait(timeout=self.max_seconds + 30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._records = self.peek()
        self._err.seek(0)
        self.stderr = self._err.read()
        self._out.close()
        self._err.close()
        return self._records


def start_poller(client, max_seconds, count=None, interval=POLL_INTERVAL, timeout=POLL_TIMEOUT):
    """Requests to the VIP from the client every `interval` s until stopped or bounded."""
    if count is None:
        count = int(max_seconds / interval) + 1
    return Recorder(client, POLLER_SCRIPT,
                    [VIP, SERVICE_PORT, interval, timeout, max_seconds, count], max_seconds)


def run_requests(client, count, timeout=2.0, max_seconds=60):
    """count requests to the VIP back to back from the client; their records once all are done."""
    poller = start_poller(client, max_seconds, count=count, interval=0.0, timeout=timeout)
    wait_for(lambda: not poller.running(), max_seconds + 10, "%d requests from the client" % count)
    return poller.stop()


def start_sampler(director, max_seconds, interval=SAMPLE_INTERVAL):
    """Whether the director holds the VIP on its interface, and its VRRP state, every `interval` s."""
    return Recorder(director, SAMPLER_SCRIPT,
                    [VIP, director.interface, VRRP_STATE_FILE, interval, max_seconds], max_seconds)


def wait_for(predicate, timeout, what, interval=0.1):
    """Poll predicate until it returns a true value (returned) or fail after timeout seconds."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        try:
            value = predicate()
        except (AssertionError, subprocess.TimeoutExpired, ValueError) as exc:
            value, last = None, exc
        if value:
            return value
        if time.monotonic() >= deadline:
            if callable(what):
                what = what()
            pytest.fail("timed out after %.0f s waiting for %s%s" % (
                timeout, what, " (last error: %s)" % last if last else ""))
        time.sleep(interval)


# --- state of the cluster ----------------------------------------------------------------------

def vrrp_state(director):
    """The director's VRRP state (notify hook's file), None when unknown or the host is down."""
    if not _running(director.name):
        return None
    result = director.run("cat", VRRP_STATE_FILE)
    return result.stdout.strip() if result.returncode == 0 else None


def holds_vip(director):
    """Whether the VIP is on the director's interface (a stopped host holds nothing)."""
    if not _running(director.name):
        return False
    return VIP in [a["local"] for a in director.addresses(director.interface)]


def neighbour_mac(client, address=VIP):
    """The client's neighbour (ARP) entry for address: lower-case MAC or None."""
    entries = json.loads(client.check("ip", "-json", "neigh", "show", address, "dev", client.interface) or "[]")
    macs = [e["lladdr"].lower() for e in entries if e.get("lladdr")]
    return macs[0] if macs else None


def is_master(topology, name):
    """name is MASTER (state file and VIP on its interface) and the other director is neither."""
    other = [d for d in DIRECTORS if d != name][0]
    return (vrrp_state(topology[name]) == "MASTER" and holds_vip(topology[name])
            and vrrp_state(topology[other]) != "MASTER" and not holds_vip(topology[other]))


def describe(topology):
    """The directors' VRRP states and VIP ownership, for failure messages."""
    return ", ".join("%s: %s%s" % (name, vrrp_state(topology[name]),
                                   " +VIP" if holds_vip(topology[name]) else "")
                     for name in DIRECTORS)


def wait_master(topology, name, timeout, why):
    """Wait until name is MASTER with the VIP and the other director is neither."""
    wait_for(lambda: is_master(topology, name), timeout,
             lambda: "%s to become MASTER with the VIP %s (now %s)" % (name, why, describe(topology)))


def fetch(client, timeout=5, vip=VIP):
    """One request to vip (the scenario's first VIP) from the client: the page, or None when it failed."""
    result = client.run("curl", "-sS", "--max-time", timeout,
                        "http://%s:%d/" % ("[%s]" % vip if ":" in vip else vip, SERVICE_PORT),
                        timeout=timeout + 10)
    return result.stdout.strip() if result.returncode == 0 else None


def vrrp_adverts(host, seconds, limit=5):
    """VRRP packets (IP protocol 112) that reach host within seconds: [{src, dst, vrid, priority}]."""
    return json.loads(host.check("python3", "-c", VRRP_CAPTURE_SCRIPT, seconds, limit,
                                 timeout=seconds + 30))


def read_mails(client):
    return json.loads(client.check("python3", "-c", MAIL_SCRIPT, DRIVER.maildir))


def master_down_interval(advert_int, priority):
    """RFC 3768: 3 * Advertisement_Interval + Skew_Time, Skew_Time = (256 - Priority) / 256."""
    return 3 * advert_int + (256 - priority) / 256.0 * advert_int


# --- bringing the topology back ------------------------------------------------------------------

def wait_booted(host, timeout=BOOT_TIMEOUT):
    if not DRIVER.has_init(host.name):
        return      # the namespace client: no system of its own to boot

    def booted():
        state = host.run("systemctl", "is-system-running", timeout=15).stdout.strip()
        return state in ("running", "degraded")
    wait_for(booted, timeout, "systemd to finish booting in %s" % host.name, interval=0.5)


def start_host(host):
    """Start a stopped or crashed host again (`docker start`, or the guest booted from its disk)."""
    if not _running(host.name):
        DRIVER.start(host.name)
    wait_booted(host)


def steady(topology, plane):
    """The MASTER with the VIP, the BACKUP without, every real server healthy on the MASTER's plane."""
    if not is_master(topology, DIRECTOR_MASTER):
        return False
    if vrrp_state(topology[DIRECTOR_BACKUP]) != "BACKUP":
        return False
    servers = plane.servers(topology[DIRECTOR_MASTER])
    serving = sorted(a for a, rs in servers.items() if rs["healthy"] and rs["weight"] > 0)
    return serving == sorted(REAL_SERVERS.values())


def start_everything(topology, plane):
    """Every host running again, nginx on every real server, the plane's units on every director."""
    for name in list(DIRECTORS) + list(REAL_SERVERS) + [CLIENT]:
        start_host(topology[name])
    for name in REAL_SERVERS:
        if not topology[name].is_active("nginx"):
            topology[name].check("systemctl", "start", "nginx", timeout=60)
    for name in DIRECTORS:
        for unit in plane.units:
            if not topology[name].is_active(unit):
                topology[name].check("systemctl", "start", unit, timeout=60)


def restore(topology, plane):
    """Undo whatever a drill did and wait (bounded) for the steady state."""
    start_everything(topology, plane)
    if not SCENARIO.preempt:
        # the MASTER came back as BACKUP; a restart of the other's keepalived (priority-0 advert)
        # hands the VIP back, and the other returns as BACKUP.
        def master_ready():
            return vrrp_state(topology[DIRECTOR_MASTER]) in ("BACKUP", "MASTER")
        wait_for(master_ready, SETTLE_TIMEOUT, "keepalived on %s to report its state" % DIRECTOR_MASTER)
        if vrrp_state(topology[DIRECTOR_BACKUP]) == "MASTER":
            topology[DIRECTOR_BACKUP].check("systemctl", "restart", "keepalived", timeout=60)
    wait_for(lambda: steady(topology, plane), SETTLE_TIMEOUT,
             "the steady state (%s MASTER with the VIP, %s BACKUP, every real server healthy)"
             % (DIRECTOR_MASTER, DIRECTOR_BACKUP))


# --- measurements -------------------------------------------------------------------------------

def ownership_intervals(samples, period=SAMPLE_INTERVAL):
    """[(start, end)] during which the samples show the VIP; a run still open when the samples
    end (container stopped, recorder stopped) ends one period after its last sample."""
    intervals, start, last = [], None, None
    for sample in samples:
        if sample["vip"] and start is None:
            start = sample["t"]
        elif not sample["vip"] and start is not None:
            intervals.append((start, sample["t"]))
            start = None
        last = sample["t"]
    if start is not None:
        intervals.append((start, last + period))
    return intervals


def overlaps(first, second):
    """Intersections of two interval lists."""
    result = []
    for a_start, a_end in first:
        for b_start, b_end in second:
            start, end = max(a_start, b_start), min(a_end, b_end)
            if end > start:
                result.append((start, end))
    return sorted(result)


def first_time(samples, since, predicate):
    for sample in samples:
        if sample["t"] >= since and predicate(sample):
            return sample["t"]
    return None


def outage(polls, since, until=None, stamp="end"):
    """Client-visible outage among poll records started in [since, until).

    Returns {'failed_requests', 'outage_ms', 'recovered', 'max_gap_ms'}: outage_ms is the longest
    time between the last good response before a run of failed requests and the first good
    response after it (0 when nothing failed); recovered is False when the window ends in
    failures; max_gap_ms is the longest time between two consecutive good responses (the
    resolution of the measurement when nothing failed). A good response counts at its ``stamp``:
    its end (the poller: one request at a time), or ``"t"``, its start (a prober whose requests
    overlap, its records sorted by start)."""
    window = [p for p in polls if p["t"] >= since and (until is None or p["t"] < until)]
    before = [p for p in polls if p["t"] < since and p["ok"]]
    last_good = before[-1][stamp] if before else (window[0]["t"] if window else since)
    failed, longest, in_run, recovered, gap = 0, 0.0, False, True, 0.0
    for poll in window:
        if poll["ok"]:
            gap = max(gap, poll[stamp] - last_good)
            if in_run:
                longest = max(longest, poll[stamp] - last_good)
                in_run = False
            last_good = poll[stamp]
        else:
            failed += 1
            in_run = True
    if in_run:
        recovered = False
        longest = max(longest, window[-1][stamp] - last_good)
    return {"failed_requests": failed, "outage_ms": round(longest * 1000.0, 1), "recovered": recovered,
            "max_gap_ms": round(gap * 1000.0, 1)}


def serving(plane, director, address):
    """Whether the director's plane gives the real server new connections (present, healthy,
    weight above 0, not drained). A server keepalived removed from IPVS is not serving."""
    rs = plane.servers(director).get(address)
    return bool(rs and rs["healthy"] and rs["weight"] > 0 and not rs.get("drained"))
