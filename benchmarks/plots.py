# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pictures of benchmark results, drawn from the JSON files under benchmarks/results/.

* ``converge``: the ten slowest tasks of a first converge and of an idempotent rerun, before and
  after, from converge_time_before.json and converge_time.json (``--profile`` runs), side by side
  with each run's median wall-clock time. Written to docs/img/converge_profile.png.
* ``failover``: one trial of each failure kind and profile of failover_outage_traces.json (a
  ``--traces`` run): the client's requests over time, which real server served each, the failed
  ones, the fault and which director held the VIP. Written to docs/img/failover_traces.png.

Nothing is measured here: the figures are those of the result files, which say how they were run.
Needs matplotlib (benchmarks/requirements.txt).

    python3 benchmarks/plots.py [converge] [failover]
"""
from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import argparse
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
RESULTS = os.path.join(HERE, "results")
IMAGES = os.path.join(os.path.dirname(HERE), "docs", "img")


def _load(name):
    with open(os.path.join(RESULTS, name)) as fh:
        return json.load(fh)


def _short(task, width=58):
    """'lbha.cluster.director : Write ...' as 'director: Write ...', cut to width."""
    task = task.replace("lbha.cluster.", "").replace(" : ", ": ")
    return task if len(task) <= width else task[:width - 1] + "\u2026"


def converge(out_dir=IMAGES):
    """Four panels: first converge and rerun, before and after; returns the PNG's path."""
    import matplotlib
    matplotlib.use("Agg")
    from matplotlib import pyplot

    runs = [("before", _load("converge_time_before.json")), ("after", _load("converge_time.json"))]
    phases = [("first_run", "first converge"), ("idempotent_rerun", "idempotent rerun")]
    longest = max(s for _label, data in runs for phase, _t in phases for _task, s in data["slowest_tasks"][phase])
    fig, axes = pyplot.subplots(len(phases), len(runs), figsize=(15, 8.5), sharex=True)
    for row, (phase, title) in enumerate(phases):
        for col, (label, data) in enumerate(runs):
            ax = axes[row][col]
            tasks = data["slowest_tasks"][phase][::-1]
            ax.barh([_short(t) for t, _s in tasks], [s for _t, s in tasks],
                    color="#c0504d" if label == "before" else "#4f81bd")
            for y, (_t, s) in enumerate(tasks):
                ax.text(s + longest * 0.01, y, "%.2f" % s, va="center", fontsize=8)
            ax.set_title("%s, %s: %.1f s median (%d task headers)" % (
                title, label, data[phase]["median"], data["task_headers"][phase]), fontsize=10)
            ax.tick_params(axis="y", labelsize=8)
            ax.set_xlim(0, longest * 1.15)
            if row == len(phases) - 1:
                ax.set_xlabel("seconds (profile_tasks)")
    after = runs[1][1]
    fig.suptitle("site.yml on the seed topology (%d hosts): the ten slowest tasks, before and after\n"
                 "%s; ansible-core %s, %d CPUs" % (
                     after["hosts"], after["generated"][:10], after["versions"]["ansible_core"],
                     after["machine"]["cpus"]), fontsize=11)
    fig.tight_layout()
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, "converge_profile.png")
    fig.savefig(path, dpi=90)
    pyplot.close(fig)
    return path


def _holder_spans(vip_samples):
    """[(start, end, director)] while a director held the VIP, from the samplers' records."""
    spans = []
    for name, samples in sorted(vip_samples.items()):
        start = None
        for sample in samples:
            if sample["vip"] and start is None:
                start = sample["t"]
            elif not sample["vip"] and start is not None:
                spans.append((start, sample["t"], name))
                start = None
        if start is not None and samples:
            spans.append((start, samples[-1]["t"], name))
    return spans


def failover(out_dir=IMAGES, source="failover_outage_traces.json"):
    """One panel per failure kind and profile of a ``--traces`` run of failover_outage.py: each
    request over time (latency, which real server served it, failed ones), the moment of the
    fault and which director held the VIP. Returns the PNG's path."""
    import matplotlib
    matplotlib.use("Agg")
    from matplotlib import pyplot

    data = _load(source)
    panels = [(profile, kind, result["samples"][0]["trace"])
              for profile, pdata in sorted(data["profiles"].items())
              for kind, result in sorted(pdata["results"].items())
              if result.get("samples") and "trace" in result["samples"][0]]
    if not panels:
        raise SystemExit("plots: %s has no traces (run failover_outage.py --traces)" % source)
    timeout = data["poll"]["timeout_ms"]
    colours = {"lb1": "#dbe5f1", "lb2": "#fde9d9"}
    fig, axes = pyplot.subplots(len(panels), 1, figsize=(12, 2.6 * len(panels)), sharex=True, squeeze=False)
    pages = sorted(set(r["page"] for _p, _k, t in panels for r in t["requests"] if r["ok"] and r.get("page")))
    markers = dict(zip(pages, ("o", "s", "^", "D")))
    for ax, (profile, kind, trace) in zip(axes[:, 0], panels):
        for start, end, name in _holder_spans(trace["vip"]):
            ax.axvspan(start, end, color=colours.get(name, "#eeeeee"), zorder=0)
        for page in pages:
            served = [r for r in trace["requests"] if r["ok"] and r.get("page") == page]
            ax.scatter([r["t"] for r in served], [max(r["latency_ms"], 0.1) for r in served], s=8,
                       marker=markers[page], label="served: %s" % page, zorder=3)
        failed = [r for r in trace["requests"] if not r["ok"]]
        ax.scatter([r["t"] for r in failed], [timeout] * len(failed), s=22, marker="x", color="#c00000",
                   label="failed (no response in %.0f ms)" % timeout, zorder=4)
        ax.axvline(0, color="black", linestyle="--", linewidth=1)
        ax.set_yscale("log")
        ax.set_ylim(0.3, timeout * 2)
        ax.set_ylabel("latency ms")
        ax.set_title("%s profile, %s of lb1: outage %.0f ms, %d failed (background: who holds the VIP, "
                     "blue lb1, orange lb2)" % (profile, kind, data["profiles"][profile]["results"][kind]["samples"][0]
                                                ["outage_ms"], len(failed)), fontsize=9)
        ax.legend(loc="upper right", fontsize=7)
    axes[-1][0].set_xlabel("seconds from the fault (dashed line)")
    fig.suptitle("One failover of each kind as the client saw it: a request every %.0f ms (%s)\n%s, %d CPUs" % (
        data["poll"]["interval_ms"], data["poll"]["kind"], data["generated"][:10], data["machine"]["cpus"]),
        fontsize=11)
    fig.tight_layout(rect=(0, 0, 1, 0.97))
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, "failover_traces.png")
    fig.savefig(path, dpi=90)
    pyplot.close(fig)
    return path


PLOTS = {"converge": converge, "failover": failover}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("plots", nargs="*", metavar="PLOT", help="one of %s (default: all)" % ", ".join(sorted(PLOTS)))
    args = parser.parse_args(argv)
    unknown = sorted(set(args.plots) - set(PLOTS))
    if unknown:
        parser.error("unknown plot(s): %s" % ", ".join(unknown))
    try:
        import matplotlib  # noqa: F401  # pylint: disable=unused-import
    except ImportError:
        sys.stderr.write("plots: matplotlib is missing (pip install -r benchmarks/requirements.txt)\n")
        return 2
    for name in args.plots or sorted(PLOTS):
        print("plots: wrote %s" % os.path.relpath(PLOTS[name](), os.getcwd()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
