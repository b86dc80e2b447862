# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Do established connections survive a director failure? Measured on a running scenario.

The client opens ``--connections`` (default 200) TCP connections to the VIP at once; each one
downloads the same file from a real server (``--size`` bytes, default 256 KiB), read at
``--rate`` bytes per second (default 32 KiB/s: about 8 s per transfer), and checks its length
and SHA-256. While every transfer is running, one event hits the MASTER:

* ``crash``: the MASTER's power is cut (``docker kill``, or SIGKILL to the guest's qemu): no
  priority-0 advert; the BACKUP takes over after its Master_Down_Interval;
* ``shutdown``: the MASTER shuts down cleanly (systemd stops keepalived, which hands over);
* ``drain``: the first real server is drained (``lbha.cluster.drain``): it gets no new
  connection, the ones it serves must finish.

A transfer survives when it completes intact (every byte, the right hash); a reset, a timeout or
a short or corrupt body is a failure. Each case runs ``--trials`` times (default 3) and the
steady state is restored between trials. The result of the scenario's plane is merged into
``benchmarks/results/connection-survival.json`` (the other plane's entry is kept), with every
trial's counts, the median share that survived, and the errors seen.

    LBHA_SCENARIO=default python3 benchmarks/connection_survival.py    # containers (nftables here)
    LBHA_SCENARIO=ipvs python3 benchmarks/connection_survival.py       # QEMU guests, IPVS

The scenario must be converged (``molecule converge -s NAME``); nothing is created or destroyed.
"""
from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import argparse
import hashlib
import json
import os
import platform
import statistics
import subprocess
import tempfile
import time

# suite puts the molecule suite's helpers on the path.
import suite  # noqa: F401  # pylint: disable=unused-import
from lbha_suite import cluster as scenario
from lbha_suite.planes import plane as scenario_plane
from lbha_suite.playbooks import run_playbook, write_inventory

HERE = os.path.dirname(os.path.abspath(__file__))
RESULT = os.path.join(HERE, "results", "connection-survival.json")
CASES = ("crash", "shutdown", "drain")
FILE = "lbha-bench.bin"
GOAL = 0.999

# One python3 process on the client: every connection in one selector loop, each read paced to
# the rate. It prints {"event": "flowing"} once every connection has received body bytes, then one
# record per connection as it ends, then {"event": "done"}.
DOWNLOADER = r'''
import hashlib, json, selectors, socket, sys, time
host, port, path = sys.argv[1], int(sys.argv[2]), sys.argv[3]
count, size, rate, deadline_s = int(sys.argv[4]), int(sys.argv[5]), float(sys.argv[6]), float(sys.argv[7])
expected = sys.argv[8]
tick = 0.05
chunk = max(1, int(rate * tick))
sel = selectors.DefaultSelector()
def emit(record):
    sys.stdout.write(json.dumps(record, sort_keys=True) + "\n")
    sys.stdout.flush()
conns = []
request = ("GET /%s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n" % (path, host)).encode()
for i in range(count):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
    s.settimeout(10)
    c = {"id": i, "sock": s, "head": b"", "body": 0, "sha": hashlib.sha256(), "start": time.time(),
         "error": None, "done": False, "length": None}
    try:
        s.connect((host, port))
        s.sendall(request)
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ, c)
    except OSError as exc:
        c["error"] = "connect: %s" % exc
        c["done"] = True
    conns.append(c)
def finish(c, error=None):
    if c["done"]:
        return
    c["done"] = True
    try:
        sel.unregister(c["sock"])
    except (KeyError, ValueError):
        pass
    c["sock"].close()
    ok = error is None and c["length"] == size and c["body"] == size and c["sha"].hexdigest() == expected
    if error is None and not ok:
        error = "short or corrupt body: %s of %s bytes" % (c["body"], c["length"])
    emit({"id": c["id"], "ok": ok, "bytes": c["body"], "error": error, "seconds": round(time.time() - c["start"], 3)})
for c in conns:
    if c["done"]:
        emit({"id": c["id"], "ok": False, "bytes": 0, "error": c["error"], "seconds": 0})
flowing = False
started = time.time()
budget = {}
while sel.get_map() and time.time() - started < deadline_s:
    begin = time.time()
    for key, _mask in sel.select(timeout=tick):
        c = key.data
        want = chunk - budget.get(c["id"], 0)
        if want <= 0:
            continue
        try:
            data = c["sock"].recv(want)
        except (BlockingIOError, InterruptedError):
            continue
        except OSError as exc:
            finish(c, "%s: %s" % (type(exc).__name__, exc))
            continue
        if not data:
            finish(c, None if c["length"] is not None and c["body"] == c["length"] else "closed after %d bytes" % c["body"])
            continue
        budget[c["id"]] = budget.get(c["id"], 0) + len(data)
        if c["length"] is None:
            c["head"] += data
            if b"\r\n\r\n" in c["head"]:
                head, _sep, rest = c["head"].partition(b"\r\n\r\n")
                status = head.split(b"\r\n", 1)[0]
                if b" 200 " not in status + b" ":
                    finish(c, "status %s" % status.decode("latin-1"))
                    continue
                for line in head.split(b"\r\n")[1:]:
                    name, _s, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        c["length"] = int(value.strip())
                if c["length"] is None:
                    finish(c, "no Content-Length")
                    continue
                c["body"] += len(rest)
                c["sha"].update(rest)
        else:
            c["body"] += len(data)
            c["sha"].update(data)
        if c["length"] is not None and c["body"] >= c["length"]:
            finish(c)
    if not flowing and all(c["done"] or c["body"] > 0 for c in conns):
        flowing = True
        emit({"event": "flowing", "t": time.time()})
    # the pace: each connection reads at most `chunk` bytes per tick
    pause = tick - (time.time() - begin)
    if pause > 0:
        time.sleep(pause)
    budget = {}
for c in conns:
    finish(c, "not finished within %.0f s (%d of %s bytes)" % (deadline_s, c["body"], c["length"]))
emit({"event": "done", "t": time.time()})
'''


def content(size):
    """The file every real server serves: deterministic bytes, so every transfer has one hash."""
    block = hashlib.sha256(b"lbha.cluster connection survival").digest() * 2048
    data = (block * (size // len(block) + 1))[:size]
    return data, hashlib.sha256(data).hexdigest()


def install_file(topology, size):
    """The benchmark file in every real server's document root (nginx serves it as it is)."""
    data, digest = content(size)
    for name in scenario.REAL_SERVERS:
        host = topology[name]
        root = scenario.SCENARIO.var(name, "lbha_nginx_root")
        proc = subprocess.run(host.command("sh", "-c", "cat > %s/%s.tmp && mv %s/%s.tmp %s/%s && sha256sum %s/%s"
                                           % (root, FILE, root, FILE, root, FILE, root, FILE), interactive=True),
                              input=data, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120, check=True)
        if proc.stdout.split()[0].decode() != digest:
            raise SystemExit("%s: the copy of %s is corrupt" % (name, FILE))
    return digest


def run_trial(topology, plane, inventory, case, args, digest):
    if not scenario.steady(topology, plane):
        scenario.restore(topology, plane)
    client = topology[scenario.CLIENT]
    lb1 = topology[scenario.DIRECTOR_MASTER]
    deadline = args.size / args.rate * 6 + 60
    recorder = scenario.Recorder(client, DOWNLOADER, [scenario.VIP, scenario.SERVICE_PORT, FILE, args.connections,
                                                      args.size, args.rate, deadline, digest], deadline)
    event = None
    try:
        scenario.wait_for(lambda: [r for r in recorder.peek() if r.get("event") == "flowing"], 60,
                          "every connection to receive data")
        time.sleep(args.size / args.rate * 0.3)     # the event hits transfers well under way
        event = time.time()
        if case == "crash":
            lb1.crash()
        elif case == "shutdown":
            lb1.shut_down()
        elif case == "drain":
            result = run_playbook(inventory, "drain", {"lbha_drain_hosts": sorted(scenario.REAL_SERVERS)[0]})
            if result.returncode != 0:
                raise SystemExit("drain failed:\n%s" % result.tail())
        scenario.wait_for(lambda: [r for r in recorder.peek() if r.get("event") == "done"], deadline + 30,
                          "every transfer to end")
    finally:
        records = recorder.stop()
        if case == "drain":
            run_playbook(inventory, "drain", {"lbha_drain_hosts": sorted(scenario.REAL_SERVERS)[0],
                                              "lbha_drain_state": "undrained"})
        scenario.restore(topology, plane)
    flows = [r for r in records if "id" in r]
    errors = {}
    for r in flows:
        if not r["ok"]:
            kind = (r.get("error") or "?").split(":")[0]
            errors[kind] = errors.get(kind, 0) + 1
    survived = sum(1 for r in flows if r["ok"])
    return {"connections": args.connections, "reported": len(flows), "survived": survived,
            "share": round(survived / float(args.connections), 4), "errors": errors,
            "transfer_seconds_median": statistics.median([r["seconds"] for r in flows if r["ok"]] or [0]),
            "event_after_s": round(event - records[0]["t"], 2) if event and records and "t" in records[0] else None}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--connections", type=int, default=200)
    parser.add_argument("--size", type=int, default=256 * 1024, help="bytes per transfer")
    parser.add_argument("--rate", type=float, default=32 * 1024, help="bytes per second per connection")
    parser.add_argument("--trials", type=int, default=3)
    parser.add_argument("--cases", default=",".join(CASES))
    parser.add_argument("--output", default=RESULT)
    args = parser.parse_args(argv)
    cases = [c for c in args.cases.split(",") if c]
    for case in cases:
        if case not in CASES:
            parser.error("unknown case %r" % case)
    names = list(scenario.DIRECTORS) + list(scenario.REAL_SERVERS) + [scenario.CLIENT]
    topology = dict((n, scenario.Host(n)) for n in names)
    missing = [n for n in names if not scenario._running(n)]
    if missing:
        raise SystemExit("hosts %s are not running: converge scenario %s first" % (missing, scenario.SCENARIO.name))
    plane = scenario_plane()
    tmp = tempfile.mkdtemp(prefix="lbha-survival-")
    inventory = write_inventory(tmp)
    digest = install_file(topology, args.size)
    started = time.time()
    out = {}
    for case in cases:
        trials = []
        for i in range(args.trials):
            record = run_trial(topology, plane, inventory, case, args, digest)
            trials.append(record)
            print("%s %s trial %d: %d of %d intact (%s)" % (plane.name, case, i + 1, record["survived"],
                                                            record["connections"], record["errors"] or "no errors"),
                  flush=True)
        shares = [t["share"] for t in trials]
        out[case] = {"trials": trials, "share_median": statistics.median(shares), "share_min": min(shares),
                     "goal": GOAL, "meets_goal": min(shares) >= GOAL}
    entry = {
        "scenario": scenario.SCENARIO.name, "plane": plane.name, "driver": scenario.DRIVER.name,
        "generated": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "seconds": round(time.time() - started, 1),
        "settings": {"connections": args.connections, "bytes": args.size, "rate_bytes_per_s": args.rate,
                     "lb_algo": scenario.SCENARIO.cluster["virtual_servers"][0].get("lb_algo"),
                     "lvs_sync_daemon": (scenario.SCENARIO.cluster.get("global_defs") or {}).get(
                         "lvs_sync_daemon", "default (on for ipvs)")},
        "machine": {"cpus": os.cpu_count(), "kernel": platform.release(), "load_start": list(os.getloadavg())},
        "cases": out,
    }
    data = {}
    if os.path.exists(args.output):
        with open(args.output) as handle:
            data = json.load(handle)
    data.setdefault("benchmark", "connection-survival")
    data.setdefault("planes", {})[plane.name] = entry
    with open(args.output + ".tmp", "w") as handle:
        json.dump(data, handle, indent=1, sort_keys=True)
        handle.write("\n")
    os.rename(args.output + ".tmp", args.output)
    print(json.dumps(dict((case, (v["share_median"], v["share_min"])) for case, v in out.items())))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
