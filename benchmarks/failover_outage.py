# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Client-visible outage of a director failover on the default scenario, over many trials.

For each timer profile and each failure of the MASTER (lb1), ``--trials`` times:

* ``stop``: ``systemctl stop keepalived`` (keepalived sends a priority-0 advert);
* ``kill``: SIGKILL to keepalived (no advert; systemd restarts it after RestartSec);
* ``container``: ``docker stop lb1`` (systemd shuts the container down, keepalived stops cleanly);
* ``crash``: ``docker kill lb1`` (every process SIGKILLed at once, like a power loss: no
  priority-0 advert, no restart, lb1's interface disappears; only the Master_Down_Interval and
  lb2's gratuitous ARP end the outage).

A poller in the client container sends one HTTP request to the VIP every 50 ms (timeout
``--poll-timeout``, default 0.5 s: a lost request makes the outage at least timeout + 50 ms).
The outage of a trial is the time between the last good response before failed requests and the
first good response after them (0 when no request failed; ``max_gap_ms`` is then the resolution).
After each trial the steady state is restored (lb1 MASTER again, both real servers healthy).

Profiles: ``default`` is the scenario as converged (VRRPv2, advert_int 1); ``fast`` re-converges
site.yml with every VRRP instance on VRRPv3 (without authentication, which VRRPv3 does not have)
and ``--fast-advert`` (0.1 s), then converges back.
Each profile's numbers are compared with its Master_Down_Interval (RFC 3768 / RFC 5798:
3 x advert_int + skew, skew = (256 - priority of lb2) / 256, times advert_int with VRRPv3).

Creates and converges the topology with molecule and destroys it at the end, unless ``--reuse``.
Writes benchmarks/results/failover_outage.json.

    python3 benchmarks/failover_outage.py [--trials 20] [--types stop,kill,container,crash]
                                          [--profiles default,fast] [--fast-advert 0.1]
                                          [--poll-timeout 0.5] [--reuse] [--output FILE]
"""
from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import argparse
import copy
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time

import yaml

# suite puts the molecule suite's helpers on the path.
import suite  # noqa: F401  # pylint: disable=unused-import
from lbha_suite import cluster as scenario
from lbha_suite.planes import plane as scenario_plane
from lbha_suite.playbooks import molecule, run_playbook, write_inventory

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
RESULT = os.path.join(HERE, "results", "failover_outage.json")

TYPES = ("stop", "kill", "container", "crash")
TRIAL_SECONDS = 120
RECOVERED_RUN = 20          # consecutive good responses (1 s) that end a trial


class TrialError(Exception):
    pass


# The connection-level prober: a new HTTP request to the VIP every `interval` s whatever the
# earlier ones are doing (non-blocking sockets, so a lost one never delays the next), each failed
# when its response is not complete `timeout` s after it started. The measurement's resolution is
# the interval, not the timeout: an outage is bounded by the start of the last good request
# before it and of the first good one after it.
PROBER_SCRIPT = scenario._STOP_ON_EOF + r'''
import os, selectors, socket
host, port = sys.argv[1], int(sys.argv[2])
interval, timeout, max_seconds = float(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5])
family = socket.AF_INET6 if ":" in host else socket.AF_INET
request = ("GET / HTTP/1.0\r\nHost: %s\r\nConnection: close\r\n\r\n"
           % ("[%s]" % host if ":" in host else host)).encode()
sel = selectors.DefaultSelector()
inflight = {}
def finish(sock, ok, error=None):
    probe = inflight.pop(sock)
    sel.unregister(sock)
    sock.close()
    record = {"seq": probe["seq"], "t": probe["t"], "end": time.time(), "ok": ok}
    if ok:
        record["page"] = probe["data"].partition(b"\r\n\r\n")[2].decode("utf-8", "replace").strip()
    else:
        record["error"] = error
    emit(record)
started = time.time()
next_start, seq = started, 0
while not stop.is_set():
    now = time.time()
    sending = now - started < max_seconds
    if not sending and not inflight:
        break
    if sending and now >= next_start:
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setblocking(False)
        sock.connect_ex((host, port))
        inflight[sock] = {"seq": seq, "t": now, "data": b"", "sent": False}
        sel.register(sock, selectors.EVENT_WRITE)
        seq += 1
        next_start = max(next_start + interval, now)   # a late start is not followed by a burst
    for sock in [k for k, v in inflight.items() if now - v["t"] > timeout]:
        finish(sock, False, "no complete response within %.3f s" % timeout)
    wait = max(0.0, min(next_start - time.time(), 0.002)) if sending else 0.002
    for key, _events in sel.select(wait):
        sock, probe = key.fileobj, inflight.get(key.fileobj)
        if probe is None:
            continue
        if not probe["sent"]:
            err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if err:
                finish(sock, False, os.strerror(err))
                continue
            try:
                sock.send(request)
            except OSError as exc:
                finish(sock, False, str(exc))
                continue
            probe["sent"] = True
            sel.modify(sock, selectors.EVENT_READ)
            continue
        try:
            chunk = sock.recv(65536)
        except OSError as exc:
            finish(sock, False, str(exc))
            continue
        if chunk:
            probe["data"] += chunk
        else:
            ok = probe["data"].split(b"\r\n", 1)[0].split(b" ")[1:2] == [b"200"]
            finish(sock, ok, None if ok else "status %r" % probe["data"][:40])
'''


def start_prober(client, seconds, interval, timeout):
    return scenario.Recorder(client, PROBER_SCRIPT, [scenario.VIP, scenario.SERVICE_PORT, interval, timeout, seconds],
                             seconds + timeout)


def probe_outage(probes, since):
    """Outage seen by the prober after ``since``: from the start of the last good probe before
    the first failed one to the start of the first good probe after the last failed one (0 when
    none failed); the suite's outage() over the probes in the order they started."""
    return scenario.outage(sorted(probes, key=lambda p: p["t"]), since, stamp="t")


def _wait(predicate, timeout, what, interval=0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = predicate()
        except (AssertionError, subprocess.SubprocessError, ValueError):
            value = None
        if value:
            return value
        time.sleep(interval)
    raise TrialError("timed out after %.0f s waiting for %s" % (timeout, what))


def converge(inventory, overrides=None):
    extra = []
    if overrides is not None:
        handle = tempfile.NamedTemporaryFile("w", suffix=".yml", prefix="lbha-profile-", delete=False)
        with handle:
            yaml.safe_dump(overrides, handle)
        extra = ["-e", "@" + handle.name]
    try:
        result = run_playbook(inventory, "site", extra_args=extra, timeout=1800)
    finally:
        if extra:
            os.unlink(extra[1][1:])
    if result.returncode != 0:
        raise SystemExit("site.yml failed (rc %d):\n%s" % (result.returncode, result.tail(40)))
    return result.seconds


def scenario_cluster():
    with open(os.path.join(REPO, "molecule", "default", "molecule.yml")) as handle:
        data = yaml.safe_load(handle)
    inventory = data["provisioner"]["inventory"]
    return inventory["group_vars"]["all"]["lbha_cluster"], inventory["host_vars"]


def fast_profile(cluster, advert):
    out = copy.deepcopy(cluster)
    for inst in out["vrrp_instances"]:
        inst["version"] = 3
        inst["advert_int"] = advert
        inst.pop("authentication", None)    # VRRPv3 (RFC 5798) has no authentication
    return {"lbha_cluster": out}


def master_down_interval(advert, priority, version):
    skew = (256 - priority) / 256.0
    return 3 * advert + (skew * advert if version == 3 else skew)


def percentile(values, pct):
    """Nearest-rank percentile."""
    ordered = sorted(values)
    rank = max(1, int(math.ceil(pct / 100.0 * len(ordered))))
    return ordered[rank - 1]


def steady_state(topology, plane):
    if not scenario.steady(topology, plane):
        scenario.restore(topology, plane)


def inject(topology, kind):
    lb1 = topology["lb1"]
    if kind == "stop":
        lb1.check("systemctl", "stop", "keepalived", timeout=60)
    elif kind == "kill":
        lb1.check("systemctl", "kill", "--signal=KILL", "keepalived", timeout=60)
    elif kind == "container":
        lb1.shut_down()
    elif kind == "crash":
        lb1.crash()
    else:
        raise ValueError(kind)


def start_client(client, probe):
    """The client's requests for one trial: the HTTP poller (one request at a time) or the prober."""
    if probe["kind"] == "prober":
        return start_prober(client, TRIAL_SECONDS, probe["interval"], probe["timeout"])
    return scenario.start_poller(client, TRIAL_SECONDS, timeout=probe["timeout"])


def trace(polls, samples, t_fail, before=1.0, after=6.0):
    """What a picture of the trial needs, times relative to the fault: every request (start,
    latency, served by which page, failed) and every VIP sample of each director."""
    def window(t):
        return t_fail - before <= t <= t_fail + after
    return {
        "requests": [{"t": round(p["t"] - t_fail, 4), "latency_ms": round((p["end"] - p["t"]) * 1000.0, 2),
                      "ok": p["ok"], "page": p.get("page")} for p in sorted(polls, key=lambda p: p["t"])
                     if window(p["t"])],
        "vip": dict((name, [{"t": round(r["t"] - t_fail, 4), "vip": r["vip"], "state": r["state"]}
                            for r in records if window(r["t"])]) for name, records in samples.items()),
    }


def trial(topology, cluster, kind, probe, takeover_bound, keep_trace=False):
    steady_state(topology, cluster)
    client, lb2 = topology["client"], topology["lb2"]
    poller = start_client(client, probe)
    # who holds the VIP, every 20 ms, on both directors (for the picture of this trial)
    samplers = dict((name, scenario.start_sampler(topology[name], TRIAL_SECONDS, interval=0.02))
                    for name in ("lb1", "lb2")) if keep_trace else {}
    run_needed = int(math.ceil(1.0 / probe["interval"]))   # 1 s of good responses in a row
    try:
        _wait(lambda: len([p for p in poller.peek() if p["ok"]]) >= 5, 30, "good responses before the failure")
        t_fail = time.time()
        inject(topology, kind)
        moved = None
        try:
            _wait(lambda: scenario.holds_vip(lb2) and scenario.vrrp_state(lb2) == "MASTER",
                  30 if kind != "kill" else takeover_bound, "lb2 to hold the VIP as MASTER")
            moved = time.time() - t_fail
        except TrialError:
            if kind != "kill":
                raise
            # a keepalived restarted by systemd may win the election before lb2's timer ends

        def recovered():
            run = 0
            for poll in sorted(poller.peek(), key=lambda p: p["t"]):
                if poll["t"] < t_fail:
                    continue
                run = run + 1 if poll["ok"] else 0
                if run >= run_needed:
                    return True
            return False
        _wait(recovered, 60, "%d good responses in a row after the failure" % run_needed)
        polls = poller.stop()
    finally:
        poller.stop()
        samples = dict((name, sampler.stop()) for name, sampler in samplers.items())
    if probe["kind"] == "prober":
        result = probe_outage(polls, t_fail)
    else:
        result = scenario.outage(polls, t_fail)
    # None: lb2 did not become MASTER (only possible for "kill", within the MDI + 5 s looked at)
    result["vip_on_lb2_within_s"] = None if moved is None else round(moved, 3)
    if keep_trace:
        result["trace"] = trace(polls, samples, t_fail)
    scenario.restore(topology, cluster)
    return result


def summarize(records, mdi):
    """Statistics of one failure type's trials, compared with the Master_Down_Interval."""
    outages = [r["outage_ms"] for r in records]
    moves = [r["vip_on_lb2_within_s"] for r in records if r.get("vip_on_lb2_within_s") is not None]
    return {
        "trials": len(records),
        "outage_ms": {"median": statistics.median(outages), "p95": percentile(outages, 95),
                      "max": max(outages), "min": min(outages)} if outages else None,
        "failed_requests": {"total": sum(r["failed_requests"] for r in records),
                            "max_per_trial": max([r["failed_requests"] for r in records] or [0])},
        "max_gap_ms_median": statistics.median([r["max_gap_ms"] for r in records]) if records else None,
        "all_recovered": all(r["recovered"] for r in records),
        # client-visible outage over Master_Down_Interval: 0 means the client saw no outage
        "outage_ratio_to_master_down_interval": {
            "median": round(statistics.median(outages) / (mdi * 1000.0), 3),
            "max": round(max(outages) / (mdi * 1000.0), 3)} if outages else None,
        # failure injected -> lb2 seen as MASTER with the VIP (docker exec sampling, about 0.1-0.3 s
        # resolution; includes the `systemctl stop` / `docker stop` call itself)
        "vip_moved_in_trials": len(moves),
        "vip_move_s": {"median": round(statistics.median(moves), 3), "max": round(max(moves), 3),
                       "ratio_to_master_down_interval": round(statistics.median(moves) / mdi, 3)}
        if moves else None,
        "samples": records,
    }


def run_profile(topology, name, kinds, trials, mdi, probe, traces):
    cluster = scenario_plane()   # where the plane keeps its state (the suite's fixture)
    out = {}
    for kind in kinds:
        records = []
        errors = []
        for i in range(trials):
            try:
                record = trial(topology, cluster, kind, probe, mdi + 5.0, keep_trace=traces and not records)
            except (TrialError, subprocess.SubprocessError, scenario.pytest.fail.Exception) as exc:
                errors.append(str(exc))
                print("  %s %s trial %d: ERROR %s" % (name, kind, i + 1, exc), flush=True)
                scenario.restore(topology, cluster)
                continue
            records.append(record)
            print("  %s %s trial %d: outage %.0f ms, %d failed request(s)" % (
                name, kind, i + 1, record["outage_ms"], record["failed_requests"]), flush=True)
        out[kind] = dict(summarize(records, mdi), errors=errors)
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--trials", type=int, default=20, help="trials per failure type (default 20)")
    parser.add_argument("--types", default=",".join(TYPES), help="failure types (default: all)")
    parser.add_argument("--profiles", default="default,fast", help="timer profiles (default: default,fast)")
    parser.add_argument("--fast-advert", type=float, default=0.1, help="advert_int of the fast profile")
    parser.add_argument("--poll-timeout", type=float, default=scenario.POLL_TIMEOUT,
                        help="seconds after which a client request counts as failed (default %(default)s); "
                             "a failed request makes the outage at least this long")
    parser.add_argument("--prober", action="store_true",
                        help="measure with the connection-level prober: a request every --probe-interval s "
                             "whatever the earlier ones do, each failed after --probe-timeout s")
    parser.add_argument("--probe-interval", type=float, default=0.02, help="seconds between probes (default 0.02)")
    parser.add_argument("--probe-timeout", type=float, default=0.1,
                        help="seconds after which a probe counts as failed (default 0.1)")
    parser.add_argument("--traces", action="store_true",
                        help="keep the first trial of each failure kind whole (requests and VIP samples) "
                             "for benchmarks/plots.py failover")
    parser.add_argument("--reuse", action="store_true",
                        help="use the running, converged topology; do not create or destroy it")
    parser.add_argument("--output", default=RESULT)
    args = parser.parse_args(argv)
    load_start = [round(x, 2) for x in os.getloadavg()]
    kinds = [k for k in args.types.split(",") if k]
    profiles = [p for p in args.profiles.split(",") if p]
    for kind in kinds:
        if kind not in TYPES:
            parser.error("unknown failure type %r" % kind)

    cluster_def, host_vars = scenario_cluster()
    priority = int(host_vars["lb2"]["lbha_director_priority"])
    base = cluster_def["vrrp_instances"][0]
    timers = {
        "default": {"version": int(base.get("version", 2)), "advert_int": float(base.get("advert_int", 1))},
        "fast": {"version": 3, "advert_int": args.fast_advert},
    }
    probe = ({"kind": "prober", "interval": args.probe_interval, "timeout": args.probe_timeout} if args.prober
             else {"kind": "poller", "interval": scenario.POLL_INTERVAL, "timeout": args.poll_timeout})
    topology = {name: scenario.Host(name) for name in ("lb1", "lb2", "web1", "web2", "client")}
    data = {
        "benchmark": "failover_outage",
        "scenario": "default",
        "trials": args.trials,
        "poll": ({"kind": "prober", "interval_ms": args.probe_interval * 1000, "timeout_ms": args.probe_timeout * 1000,
                  "how": "a new HTTP request every interval whatever the earlier ones do (non-blocking), "
                         "failed when not complete within the timeout; outage = start of the first good "
                         "request after the failures - start of the last good one before them"}
                 if args.prober else
                 {"kind": "poller", "interval_ms": scenario.POLL_INTERVAL * 1000, "timeout_ms": args.poll_timeout * 1000,
                  "how": "one HTTP request at a time, the next interval after the previous one ended or "
                         "timed out; outage = end of the first good response after the failures - end of "
                         "the last good one before them"}),
        "failures": {"stop": "systemctl stop keepalived on lb1 (priority-0 advert)",
                     "kill": "SIGKILL to keepalived on lb1 (systemd restarts it after RestartSec); "
                             "the VIP move is looked for until Master_Down_Interval + 5 s",
                     "container": "docker stop lb1 (systemd shutdown)",
                     "crash": "docker kill lb1 (all processes SIGKILLed, like a power loss)"},
        "profiles": {},
    }
    if not args.reuse:
        molecule("create")
        molecule("converge")
    data.update(suite.environment(topology["lb1"]))
    data["machine"]["loadavg_at_start"] = load_start
    with tempfile.TemporaryDirectory(prefix="lbha-failover-") as tmp:
        inventory = write_inventory(tmp)
        try:
            for profile in profiles:
                timer = timers[profile]
                mdi = master_down_interval(timer["advert_int"], priority, timer["version"])
                converge_s = None
                if profile != "default":
                    converge_s = converge(inventory, fast_profile(cluster_def, timer["advert_int"]))
                print("profile %s: VRRPv%d advert_int %g s, Master_Down_Interval %.3f s" % (
                    profile, timer["version"], timer["advert_int"], mdi), flush=True)
                results = run_profile(topology, profile, kinds, args.trials, mdi, probe, args.traces)
                data["profiles"][profile] = dict(timer, master_down_interval_s=round(mdi, 4),
                                                 reconverge_s=None if converge_s is None else round(converge_s, 1),
                                                 results=results)
                data["generated"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
                write(args.output, data)
                if profile != "default":
                    converge(inventory)        # back to the scenario's own timers
        finally:
            if not args.reuse:
                molecule("destroy")
    write(args.output, data)
    print(json.dumps({p: {k: v["outage_ms"] for k, v in d["results"].items()}
                      for p, d in data["profiles"].items()}, indent=1, sort_keys=True))
    return 0


def write(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w") as handle:
        json.dump(data, handle, indent=1, sort_keys=True)
        handle.write("\n")
    os.rename(tmp, path)


if __name__ == "__main__":
    sys.exit(main())
