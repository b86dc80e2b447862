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
With ``--profile`` the ``ansible.posix.profile_tasks`` callback times every task, and the result
keeps the ten slowest tasks of the first run and of the median rerun. ``--limit lb1,lb2`` runs
``site.yml`` on the two directors only (the seed's configuration; the number compares with roles
that configure keepalived alone). Writes benchmarks/results/converge_time.json (or ``--output``).

    python3 benchmarks/converge_time.py [--first-runs 5] [--runs 5] [--reuse] [--profile]
                                        [--limit lb1,lb2] [--output FILE]
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
from lbha_suite.scenario import current

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
RESULT = os.path.join(HERE, "results", "converge_time.json")

# profile_tasks' recap: "<role> : <task> ---- 0.81s" (the role is absent for play-level tasks)
PROFILE_LINE = re.compile(r"^(.*?) -{2,} (\d+\.\d+)s$")
RECAP = re.compile(r"^(\S+)\s+:\s+ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.MULTILINE)


def slowest_tasks(output, count=10):
    """The ``count`` slowest tasks of profile_tasks' recap, as [task, seconds] pairs."""
    recap = output.split("TASKS RECAP", 1)[-1] if "TASKS RECAP" in output else ""
    tasks = []
    for line in recap.splitlines():
        match = PROFILE_LINE.match(line.strip())
        if match:
            tasks.append([match.group(1).strip(), float(match.group(2))])
    return sorted(tasks, key=lambda t: -t[1])[:count]


def converge(inventory, limit=None):
    extra = ["--limit", limit] if limit else []
    result = run_playbook(inventory, "site", timeout=1800, extra_args=extra)
    if result.returncode != 0:
        failures = [line for line in result.output.split("TASKS RECAP", 1)[0].splitlines()
                    if line.startswith(("fatal:", "failed:", "ERROR!", "[ERROR]"))]
        shown = "\n".join(failures[:20]) or result.tail(40)
        raise SystemExit("site.yml failed (rc %d):\n%s" % (result.returncode, shown))
    hosts = {m.group(1): {"ok": int(m.group(2)), "changed": int(m.group(3))}
             for m in RECAP.finditer(result.output)}
    return {"seconds": round(result.seconds, 2), "changed": sum(h["changed"] for h in hosts.values()),
            "tasks_ok": sum(h["ok"] for h in hosts.values()), "hosts": len(hosts),
            "task_headers": result.output.count("\nTASK ["), "slowest": slowest_tasks(result.output)}


def versions():
    """ansible-core and Python of the controller, and the image the hosts run."""
    import ansible.release  # pylint: disable=import-outside-toplevel
    import yaml  # pylint: disable=import-outside-toplevel
    with open(os.path.join(current().dir, "molecule.yml")) as handle:
        images = sorted({p.get("image", "") for p in yaml.safe_load(handle)["platforms"]})
    return {"ansible_core": ansible.release.__version__, "python": platform.python_version(),
            "images": images}


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
    parser.add_argument("--profile", action="store_true",
                        help="time every task (ansible.posix.profile_tasks); keep the ten slowest")
    parser.add_argument("--limit", help="run site.yml on these hosts only (e.g. lb1,lb2)")
    parser.add_argument("--output", default=RESULT)
    args = parser.parse_args(argv)
    if args.profile:
        os.environ["ANSIBLE_CALLBACKS_ENABLED"] = "ansible.posix.profile_tasks"
        os.environ["PROFILE_TASKS_TASK_OUTPUT_LIMIT"] = "all"
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
                first = converge(inventory, args.limit)
                print("first run %d: %.1f s, %d changed" % (i + 1, first["seconds"], first["changed"]))
                firsts.append(first)
            for i in range(args.runs):
                run = converge(inventory, args.limit)
                print("rerun %d: %.1f s, %d changed" % (i + 1, run["seconds"], run["changed"]))
                reruns.append(run)
    finally:
        if not args.reuse:
            molecule("destroy")

    not_idempotent = [r for r in reruns if r["changed"]]
    median_rerun = sorted(reruns, key=lambda r: r["seconds"])[len(reruns) // 2] if reruns else None
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
        "limit": args.limit,
        "task_headers": {"first_run": firsts[0]["task_headers"],
                         "idempotent_rerun": median_rerun["task_headers"] if median_rerun else None},
        "slowest_tasks": {"first_run": firsts[0]["slowest"],
                          "idempotent_rerun": median_rerun["slowest"] if median_rerun else None}
        if args.profile else None,
        "machine": {"cpus": os.cpu_count(), "kernel": platform.release(),
                    "loadavg_at_start": load_start},
        "versions": versions(),
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
