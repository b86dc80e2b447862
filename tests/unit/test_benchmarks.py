# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the benchmarks compute from their records: the prober's outage, the soak's counts, the
VIP holder spans of the failover picture."""
from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                                "benchmarks"))
import failover_outage  # noqa: E402  # pylint: disable=wrong-import-position
import plots  # noqa: E402  # pylint: disable=wrong-import-position
import soak  # noqa: E402  # pylint: disable=wrong-import-position


def probe(t, ok, latency=0.003):
    return {"t": t, "end": t + latency, "ok": ok}


def test_the_outage_runs_between_the_starts_of_good_probes_whatever_order_they_completed_in():
    # failed probes end at their timeout, after good ones that started later: the records come in
    # completion order, the outage is counted in start order
    probes = [probe(0.00, True), probe(0.06, True), probe(0.02, False, 0.1), probe(0.04, False, 0.1),
              probe(0.08, True)]
    assert failover_outage.probe_outage(probes, 0.01) == {
        "failed_requests": 2, "outage_ms": 60.0, "recovered": True, "max_gap_ms": 60.0}


def test_no_failed_probe_is_no_outage_and_the_gap_is_the_resolution():
    probes = [probe(i * 0.02, True) for i in range(10)]
    result = failover_outage.probe_outage(probes, 0.05)
    assert result["failed_requests"] == 0 and result["outage_ms"] == 0.0 and result["recovered"]
    assert result["max_gap_ms"] == pytest.approx(20.0, abs=0.1)


def test_a_window_that_ends_in_failures_is_not_recovered():
    probes = [probe(0.0, True), probe(0.02, False), probe(0.04, False)]
    result = failover_outage.probe_outage(probes, 0.01)
    assert result == {"failed_requests": 2, "outage_ms": 40.0, "recovered": False, "max_gap_ms": 0.0}


def test_the_soak_counts_every_flip_of_the_vip_holder():
    samples = [{"vip": v} for v in (True, True, False, False, True, True)]
    assert soak.holder_changes(samples) == 2
    assert soak.holder_changes([{"vip": True}] * 5) == 0


def test_keepalived_state_lines_are_recognised():
    found = soak._ENTERING.findall("Sun Dec  6 (VI_1) Entering BACKUP STATE\n(VI_1) received lower priority\n"
                                   "(VI_2) Entering MASTER STATE (init)")
    assert found == [("VI_1", "BACKUP"), ("VI_2", "MASTER")]


def test_the_picture_shades_who_held_the_vip():
    samples = {"lb1": [{"t": -1.0, "vip": True}, {"t": 0.0, "vip": True}, {"t": 0.02, "vip": False}],
               "lb2": [{"t": -1.0, "vip": False}, {"t": 0.3, "vip": True}, {"t": 2.0, "vip": True}]}
    assert plots._holder_spans(samples) == [(-1.0, 0.02, "lb1"), (0.3, 2.0, "lb2")]
