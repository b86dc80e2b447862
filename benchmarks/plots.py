# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pictures of benchmark results, drawn from the JSON files under benchmarks/results/.

* ``converge``: the ten slowest tasks of a first converge and of an idempotent rerun, before and
  after, from converge_time_before.json and converge_time.json (``--profile`` runs), side by side
  with each run's median wall-clock time. Written to docs/img/converge_profile.png.

Nothing is measured here: the figures are those of the result files, which say how they were run.
Needs matplotlib (benchmarks/requirements.txt).

    python3 benchmarks/plots.py [converge]
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


PLOTS = {"converge": converge}


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
