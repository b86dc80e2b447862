# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Does a VRRP timer profile fail over when nothing failed? A soak under load on the default scenario.

For ``--minutes`` (default 10) nothing is asked of the cluster while:

* the client sends a request to the VIP every 20 ms (the connection-level prober of
  failover_outage.py, each failed after 0.5 s) and ``--load-clients`` loops (default 4) send
  requests back to back (counted per second);
* each director runs ``--cpu-hogs`` busy processes (default 2: as many as this machine's cores),
  competing with keepalived for the CPU.

Counted: the VRRP transitions no one asked for, twice and independently: the "Entering ... STATE"
lines keepalived logged on both directors during the soak, and the changes of the VIP's holder
seen by a sampler on each director (every 50 ms). The client's failed requests and its latency
percentiles are reported beside them. A profile is fit for a loaded network only with 0
transitions.

Profiles: ``default`` (the scenario's VRRPv2, advert_int 1) or ``fast`` (VRRPv3, ``--advert``
seconds, applied by a converge of site.yml and undone at the end; failover_outage.py's profile).
The scenario must be converged (``molecule converge``); nothing is created or destroyed.
Writes benchmarks/results/soak_<profile>.json.

    python3 benchmarks/soak.py [--profile fast] [--advert 0.05] [--minutes 10]
                               [--load-clients 4] [--cpu-hogs 2] [--output FILE]
"""
from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import argparse
import json
import os
import re
import statistics
import sys
import tempfile
import time

# suite puts the molecule suite's helpers on the path.
import suite
from lbha_suite import cluster as scenario
from lbha_suite.planes import plane as scenario_plane
from lbha_suite.playbooks import write_inventory
from failover_outage import (PROBER_SCRIPT, converge, fast_profile, master_down_interval, percentile,
                             scenario_cluster, write)

HERE = os.path.dirname(os.path.abspath(__file__))
DIRECTORS = ("lb1", "lb2")

# A busy loop that stops when its stdin closes (the recorder's stop signal).
CPU_HOG = scenario._STOP_ON_EOF + r'''
started = time.time()
n = 0
while not stop.is_set() and time.time() - started < float(sys.argv[1]):
    for _step in range(100000):
        n += 1
emit({"t": time.time(), "loops": n})
'''

# A load loop: requests to the VIP back to back (each failed after 2 s), one record per second
# with that second's counts and slowest response, so a 10-minute soak does not log every request.
LOAD = scenario._STOP_ON_EOF + r'''
import socket
host, port, max_seconds = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
request = ("GET / HTTP/1.0\r\nHost: %s\r\nConnection: close\r\n\r\n"
           % ("[%s]" % host if ":" in host else host)).encode()
started = time.time()
second = {"t": started, "ok": 0, "failed": 0, "max_ms": 0.0}
while not stop.is_set() and time.time() - started < max_seconds:
    begin = time.time()
    ok = False
    try:
        conn = socket.create_connection((host, port), timeout=2.0)
        try:
            conn.sendall(request)
            data = b""
            while True:
                chunk = conn.recv(65536)
                if not chunk:
                    break
                data += chunk
        finally:
            conn.close()
        ok = data.split(b"\r\n", 1)[0].split(b" ")[1:2] == [b"200"]
    except Exception:  # every failure is counted, never a crash
        ok = False
    end = time.time()
    second["ok" if ok else "failed"] += 1
    second["max_ms"] = max(second["max_ms"], (end - begin) * 1000.0)
    if end - second["t"] >= 1.0:
        emit(second)
        second = {"t": end, "ok": 0, "failed": 0, "max_ms": 0.0}
emit(second)
'''

_ENTERING = re.compile(r"\((\S+)\) Entering (MASTER|BACKUP|FAULT) STATE")


def transitions(director, since, until):
    """keepalived's state changes logged on director between the epoch times ``since`` and
    ``until``: [(instance, state)]."""
    out = director.check("journalctl", "-u", "keepalived", "--since", "@%d" % int(since), "-o", "json",
                         "--output-fields=MESSAGE,__REALTIME_TIMESTAMP", "--no-pager", timeout=60)
    found = []
    for line in out.splitlines():
        entry = json.loads(line)
        stamp = int(entry["__REALTIME_TIMESTAMP"]) / 1e6
        match = _ENTERING.search(entry.get("MESSAGE") or "") if isinstance(entry.get("MESSAGE"), str) else None
        if match and since <= stamp <= until:
            found.append(match.groups())
    return found


def holder_changes(samples):
    """How often the director's VIP ownership flipped in its samples."""
    flips, last = 0, None
    for sample in samples:
        if last is not None and sample["vip"] != last:
            flips += 1
        last = sample["vip"]
    return flips


def latency(probes):
    good = sorted((p["end"] - p["t"]) * 1000.0 for p in probes if p["ok"])
    if not good:
        return None
    return {"median_ms": round(statistics.median(good), 2), "p95_ms": round(percentile(good, 95), 2),
            "p99_ms": round(percentile(good, 99), 2), "max_ms": round(good[-1], 2)}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--profile", choices=("default", "fast"), default="fast")
    parser.add_argument("--advert", type=float, default=0.05, help="advert_int of the fast profile (default 0.05)")
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--load-clients", type=int, default=4, help="back-to-back request loops on the client")
    parser.add_argument("--cpu-hogs", type=int, default=os.cpu_count() or 2, help="busy processes per director")
    parser.add_argument("--output")
    args = parser.parse_args(argv)
    output = args.output or os.path.join(HERE, "results", "soak_%s.json" % args.profile)
    seconds = args.minutes * 60.0

    cluster_def, host_vars = scenario_cluster()
    base = cluster_def["vrrp_instances"][0]
    version, advert = ((3, args.advert) if args.profile == "fast"
                       else (int(base.get("version", 2)), float(base.get("advert_int", 1))))
    priority = int(host_vars["lb2"]["lbha_director_priority"])
    topology = dict((name, scenario.Host(name)) for name in ("lb1", "lb2", "web1", "web2", "client"))
    plane = scenario_plane()
    data = {"benchmark": "soak", "scenario": "default", "profile": args.profile,
            "vrrp": {"version": version, "advert_int": advert,
                     "master_down_interval_s": round(master_down_interval(advert, priority, version), 4)},
            "load": {"seconds": seconds, "prober": {"interval_ms": 20, "timeout_ms": 500},
                     "load_clients": args.load_clients, "cpu_hogs_per_director": args.cpu_hogs}}
    data.update(suite.environment(topology["lb1"]))
    with tempfile.TemporaryDirectory(prefix="lbha-soak-") as tmp:
        inventory = write_inventory(tmp)
        if args.profile == "fast":
            data["reconverge_s"] = round(converge(inventory, fast_profile(cluster_def, args.advert)), 1)
        try:
            scenario.wait_for(lambda: scenario.steady(topology, plane), 120,
                              lambda: "the steady state, lb1 MASTER (now %s)" % scenario.describe(topology))
            started = time.time()
            client = topology["client"]
            prober = scenario.Recorder(client, PROBER_SCRIPT, [scenario.VIP, scenario.SERVICE_PORT, 0.02, 0.5, seconds],
                                       seconds + 1)
            loads = [scenario.Recorder(client, LOAD, [scenario.VIP, scenario.SERVICE_PORT, seconds], seconds)
                     for _loop in range(args.load_clients)]
            hogs = [scenario.Recorder(topology[name], CPU_HOG, [seconds], seconds)
                    for name in DIRECTORS for _hog in range(args.cpu_hogs)]
            samplers = dict((name, scenario.start_sampler(topology[name], seconds, interval=0.05)) for name in DIRECTORS)
            print("soak: %s profile (VRRPv%d, advert_int %g s) for %.0f s" % (args.profile, version, advert, seconds),
                  flush=True)
            scenario.wait_for(lambda: not prober.running(), seconds + 60, "the soak's end")
            probes = prober.stop()
            load_records = [r for rec in loads for r in rec.stop()]
            for hog in hogs:
                hog.stop()
            samples = dict((name, sampler.stop()) for name, sampler in samplers.items())
            ended = time.time()
            changes = dict((name, transitions(topology[name], started, ended)) for name in DIRECTORS)
            data["loadavg_at_end"] = [round(x, 2) for x in os.getloadavg()]
        finally:
            if args.profile == "fast":
                converge(inventory)        # back to the scenario's own timers
    data["seconds"] = round(ended - started, 1)
    data["unrequested_transitions"] = {
        "keepalived_log": dict((name, len(found)) for name, found in changes.items()),
        "keepalived_log_lines": dict((name, ["%s %s" % t for t in found]) for name, found in changes.items()),
        "vip_holder_changes": dict((name, holder_changes(s)) for name, s in samples.items()),
        "samples": dict((name, len(s)) for name, s in samples.items()),
    }
    # the two counters see the same events: the total is keepalived's own count, the holder
    # changes confirm it independently
    data["unrequested_transitions"]["total"] = sum(data["unrequested_transitions"]["keepalived_log"].values())
    data["client"] = {
        "probes": len(probes), "probes_failed": len([p for p in probes if not p["ok"]]),
        "probe_latency": latency(probes),
        "load_requests": sum(r["ok"] + r["failed"] for r in load_records),
        "load_failed": sum(r["failed"] for r in load_records),
        "load_slowest_ms": round(max([r["max_ms"] for r in load_records] or [0.0]), 1),
        "load_requests_per_second": round(sum(r["ok"] + r["failed"] for r in load_records) / seconds, 1),
    }
    data["generated"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    write(output, data)
    print(json.dumps({"unrequested_transitions": data["unrequested_transitions"]["total"],
                      "client": data["client"]}, indent=1, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
