# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Converge time of playbooks/site.yml on the default scenario's five containers.

* first run: ``site.yml`` on freshly created containers (packages are baked into the image, so
  this is configuration, service start and the first health checks, not downloads),
  ``--first-runs`` times, each on a topology destroyed and created anew (median, min, max);
* idempotent rerun: ``site.yml`` again on the last converged topology, ``--runs`` times (median,
  min, max); every rerun must report zero changed tasks, or the benchmark fails.

The playbook runs as molecule's converge does (docker connection, pipelining) with an inventory
built from molecule/default/molecule.yml. The topology is created with ``molecule create`` and
destroyed at the end, unless ``--reuse`` is given (then there is one first run, the converge of
the running topology, usually already idempotent, and it is reported as such).
Writes benchmarks/results/converge_time.json.

    python3 benchmarks/converge_time.py [--first-runs 5] [--runs 5] [--reuse]
"""
from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import argparse
import json
import os
import platform
import re
import statistics
import sys
import tempfile
import time

# suite puts the molecule suite's helpers on the path.
import suite  # noqa: F401  # pylint: disable=unused-import
from lbha_suite.playbooks import molecule, run_playbook, write_inventory

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
RESULT = os.path.join(HERE, "results", "converge_time.json")

RECAP = re.compile(r"^(\S+)\s+:\s+ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.MULTILINE)


def converge(inventory):
    result = run_playbook(inventory, "site", timeout=1800)
    if result.returncode != 0:
        raise SystemExit("site.yml failed (rc %d):\n%s" % (result.returncode, result.tail(40)))
    hosts = {m.group(1): {"ok": int(m.group(2)), "changed": int(m.group(3))}
             for m in RECAP.finditer(result.output)}
    return {"seconds": round(result.seconds, 2), "changed": sum(h["changed"] for h in hosts.values()),
            "tasks_ok": sum(h["ok"] for h in hosts.values()), "hosts": len(hosts)}


def summary(values):
    return {"median": round(statistics.median(values), 2), "min": round(min(values), 2),
            "max": round(max(values), 2), "n": len(values)}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--first-runs", type=int, default=5,
                        help="first runs, each on a freshly created topology (default 5)")
    parser.add_argument("--runs", type=int, default=5, help="idempotent reruns (default 5)")
    parser.add_argument("--reuse", action="store_true",
                        help="use the running topology; do not create or destroy it")
    parser.add_argument("--output", default=RESULT)
    args = parser.parse_args(argv)
    load_start = [round(x, 2) for x in os.getloadavg()]

    creates, firsts, reruns = [], [], []
    first_runs = 1 if args.reuse else max(1, args.first_runs)
    try:
        with tempfile.TemporaryDirectory(prefix="lbha-converge-") as tmp:
            inventory = write_inventory(tmp)
            for i in range(first_runs):
                if not args.reuse:
                    if i:
                        molecule("destroy")
                    creates.append(molecule("create"))
                first = converge(inventory)
                print("first run %d: %.1f s, %d changed" % (i + 1, first["seconds"], first["changed"]))
                firsts.append(first)
            for i in range(args.runs):
                run = converge(inventory)
                print("rerun %d: %.1f s, %d changed" % (i + 1, run["seconds"], run["changed"]))
                reruns.append(run)
    finally:
        if not args.reuse:
            molecule("destroy")

    not_idempotent = [r for r in reruns if r["changed"]]
    data = {
        "benchmark": "converge_time",
        "generated": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "scenario": "default",
        "hosts": firsts[0]["hosts"],
        "fresh_topology": not args.reuse,
        "create_s": summary(creates) if creates else None,
        "first_run": dict(summary([r["seconds"] for r in firsts]),
                          changed=[r["changed"] for r in firsts],
                          tasks_ok=[r["tasks_ok"] for r in firsts]),
        "idempotent_rerun": dict(summary([r["seconds"] for r in reruns]),
                                 changed=[r["changed"] for r in reruns]),
        "runs": args.runs,
        "machine": {"cpus": os.cpu_count(), "kernel": platform.release(),
                    "loadavg_at_start": load_start},
        "how": "ansible-playbook lbha.cluster.site, docker connection with pipelining, inventory from "
               "molecule/default/molecule.yml; seconds are wall-clock of the whole playbook",
    }
    os.makedirs(os.path.dirname(args.output), exist_ok=True)
    with open(args.output, "w") as handle:
        json.dump(data, handle, indent=1, sort_keys=True)
        handle.write("\n")
    print(json.dumps(data, indent=1, sort_keys=True))
    if not_idempotent:
        print("NOT idempotent: reruns changed %s" % [r["changed"] for r in reruns], file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
