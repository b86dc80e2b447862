# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Cost of the nftables DR plane, measured in network namespaces on this machine.

* request rate through the VIP (director d1 with lbha-checker, two real servers) against
  the rate straight to one real server, with a new connection per request; runs alternate
  and the ratio is the median over rounds (absolute rates drift on a shared VM);
* time of one health-change update (``nft -f`` of the element replacement the checker
  sends), median and p95.

Uses the integration test's topology (namespaces ``lbhat-*``, 10.252.0.0/24 only, removed
at the end). Needs root, ``ip`` and ``nft``. Writes benchmarks/results/nft_plane.json.

    python3 benchmarks/nft_plane.py [--rounds 7] [--requests 400] [--updates 60]
"""
from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import argparse
import importlib.util
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
RESULT = os.path.join(HERE, "results", "nft_plane.json")

RATE_CLIENT = r'''
import http.client, json, sys, time
host, n = sys.argv[1], int(sys.argv[2])
fail = 0
t0 = time.perf_counter()
for _attempt in range(n):
    try:
        c = http.client.HTTPConnection(host, 80, timeout=3)
        c.request("GET", "/", headers={"Connection": "close"})
        c.getresponse().read()
        c.close()
    except Exception:
        fail += 1
dt = time.perf_counter() - t0
print(json.dumps({"rate": n / dt, "failures": fail}))
'''


def _load_topology():
    path = os.path.join(REPO, "tests", "integration", "test_nft_plane_netns.py")
    spec = importlib.util.spec_from_file_location("lbha_nft_netns", path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules["lbha_nft_netns"] = mod
    spec.loader.exec_module(mod)
    return mod


def percentile(values, p):
    values = sorted(values)
    k = (len(values) - 1) * p / 100.0
    lo, hi = int(k), min(int(k) + 1, len(values) - 1)
    return values[lo] + (values[hi] - values[lo]) * (k - lo)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--requests", type=int, default=400)
    ap.add_argument("--updates", type=int, default=60)
    ap.add_argument("--output", default=RESULT)
    args = ap.parse_args()

    mod = _load_topology()
    missing = mod.missing_prerequisites()
    if missing:
        print("nft_plane benchmark skipped: needs " + "; ".join(missing))
        return 0
    sys.path.insert(0, REPO)
    from plugins.module_utils import nft  # noqa: E402  (pure module, no relative imports)

    topo = mod.Topology(directors=("d1",))
    try:
        topo.build()
        topo.write_config(mod.dataplane())
        topo.start_checkers()
        mod.until("both real servers healthy",
                  lambda: len(topo.servers("d1")) == 2 and all(r["healthy"] for r in topo.servers("d1").values()))
        client = os.path.join(topo.tmp, "rate.py")
        with open(client, "w") as fh:
            fh.write(RATE_CLIENT)

        def rate(host):
            res = topo.exec("cli", mod.PYTHON, client, host, str(args.requests), timeout=args.requests * 4 + 60)
            out = json.loads(res.stdout)
            if out["failures"]:
                raise SystemExit("%d requests to %s failed" % (out["failures"], host))
            return out["rate"]

        rate(mod.VIP)                                   # warm-up: ARP, page cache, bytecode
        rounds = []
        for i in range(args.rounds):
            order = [mod.VIP, mod.NET + "3"] if i % 2 == 0 else [mod.NET + "3", mod.VIP]
            r = {host: rate(host) for host in order}
            rounds.append({"vip": r[mod.VIP], "direct": r[mod.NET + "3"], "ratio": r[mod.VIP] / r[mod.NET + "3"]})

        # element updates, alternating between "all up" and "rs1 down" like a health flap
        host_doc = mod.dataplane()
        doc = dict(host_doc["nftables"], virtual_servers=host_doc["model"]["virtual_servers"])
        vs = doc["virtual_servers"][0]
        key = nft.vs_key(vs)
        texts = []
        for down in ((), (mod.NET + "3",)):
            members = [(rs["address"], rs["weight"], rs["address"] not in down) for rs in vs["real_servers"]]
            table = nft.vs_table(vs, members, size=doc["buckets"], seed=doc["seed"])
            texts.append(nft.render_update(doc, {key: table}))
        nft_bin = shutil.which("nft")
        times = []
        for i in range(args.updates):
            t0 = time.perf_counter()
            subprocess.run(["ip", "netns", "exec", topo.netns("d1"), nft_bin, "-f", "-"],
                           input=texts[i % 2], universal_newlines=True, check=True)
            times.append((time.perf_counter() - t0) * 1000.0)
        subprocess.run(["ip", "netns", "exec", topo.netns("d1"), nft_bin, "-f", "-"],
                       input=texts[0], universal_newlines=True, check=True)
        ok = topo.many(20)
        if ok["failures"] or set(ok["counts"]) != {"rs1", "rs2"}:
            raise SystemExit("traffic broken after the update runs: %r" % ok)
    finally:
        topo.close()

    ratios = [r["ratio"] for r in rounds]
    result = {
        "benchmark": "nft_plane",
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {"kernel": platform.release(), "cpus": os.cpu_count(),
                    "nft": subprocess.run([shutil.which("nft"), "--version"], stdout=subprocess.PIPE,
                                          universal_newlines=True, check=False).stdout.strip()},
        "method": ("new TCP connection per HTTP request (Python client and server in namespaces); "
                   "VIP through director d1 (nftables netdev DR, 2 real servers) vs direct to rs1; "
                   "runs alternate, ratio = median over rounds"),
        "requests_per_run": args.requests,
        "rounds": rounds,
        "rate_ratio_vip_vs_direct": {"median": statistics.median(ratios), "min": min(ratios), "max": max(ratios)},
        "rate_median": {"vip": statistics.median(r["vip"] for r in rounds),
                        "direct": statistics.median(r["direct"] for r in rounds)},
        "map_update_ms": {"runs": args.updates, "median": statistics.median(times),
                          "p95": percentile(times, 95), "max": max(times),
                          "what": "nft -f of one element replacement (servers + 251 buckets), new process each"},
    }
    os.makedirs(os.path.dirname(args.output), exist_ok=True)
    with open(args.output, "w") as fh:
        json.dump(result, fh, indent=2, sort_keys=True)
        fh.write("\n")
    print(json.dumps({k: result[k] for k in ("rate_ratio_vip_vs_direct", "rate_median", "map_update_ms")},
                     indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
