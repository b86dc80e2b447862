# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The suite every container scenario runs (its molecule.yml: ``verifier: directory: ../suite``).

The scenario under test and what it must do come from its inventory (lbha_suite/scenario.py);
the plane's state is read where that plane keeps it (lbha_suite/planes.py). A check that cannot
find what it checks fails; nothing is skipped because the scenario is missing something.
Files named ``test_plane_<plane>*.py`` hold what only one forwarding plane has; they are run
for scenarios of that plane only (every other file runs on every plane and driver).
Measurements go to ``build/results/failover-<scenario>.json`` (``LBHA_RESULTS_DIR``), never into
the committed tree: the benchmarks under benchmarks/ write the committed numbers.
"""
from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import json
import os
import platform as _platform
import time

import pytest

from lbha_suite import cluster as c
from lbha_suite.planes import plane as _plane
from lbha_suite.playbooks import write_inventory
from lbha_suite.scenario import PROJECT_DIR, current

# the tests of another plane than the scenario's are deselected (they are not skipped: they are
# not this scenario's tests; the scenario of their plane runs them). make test also leaves out the
# files another of its scenarios runs on the same code path (LBHA_SUITE_EXCLUDE, the Makefile's
# SUITE_EXCLUDE_<scenario>, listed in the test summary). Molecule names every test file on the
# command line, which collect_ignore does not filter: the items are deselected instead.
# An active-active scenario (each director MASTER of other instances) runs the files made for it,
# test_active_active*.py, and test_client.py: every other file proves a cluster with one MASTER
# of every instance. Any other scenario does not run the active-active files.
_FILES = [name for name in os.listdir(os.path.dirname(os.path.abspath(__file__)))
          if name.startswith("test_") and name.endswith(".py")]
ACTIVE_ACTIVE_FILES = set(name for name in _FILES if name.startswith("test_active_active"))
NOT_THIS_SCENARIOS = frozenset(
    set(name for name in _FILES
        if name.startswith("test_plane_") and not name.startswith("test_plane_%s" % current().plane))
    | (set(_FILES) - ACTIVE_ACTIVE_FILES - {"test_client.py"} if current().active_active else ACTIVE_ACTIVE_FILES)
    | set(os.environ.get("LBHA_SUITE_EXCLUDE", "").split()))


def pytest_collection_modifyitems(config, items):
    dropped = [item for item in items if os.path.basename(str(item.fspath)) in NOT_THIS_SCENARIOS]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = [item for item in items if item not in dropped]


@pytest.fixture(scope="session")
def scenario():
    return current()


@pytest.fixture(scope="session")
def plane():
    return _plane()


@pytest.fixture(scope="session")
def topology(scenario):
    """The scenario's hosts; fails when one is not running (create and converge first)."""
    names = list(c.DIRECTORS) + list(c.REAL_SERVERS) + ([c.CLIENT] if c.CLIENT else [])
    assert c.DRIVER.available(), "the %s driver of scenario %s cannot reach its hosts" % (
        c.DRIVER.name, scenario.name)
    missing = [n for n in names if not c._running(n)]
    assert not missing, "hosts %s of scenario %s are not running (molecule create/converge -s %s)" % (
        ", ".join(missing), scenario.name, scenario.name)
    return dict((n, c.Host(n)) for n in names)


@pytest.fixture(params=sorted(c.REAL_SERVERS))
def real_server(request, topology):
    return topology[request.param]


@pytest.fixture(params=sorted(c.DIRECTORS))
def director(request, topology):
    return topology[request.param]


@pytest.fixture
def client(topology):
    return topology[c.CLIENT]


@pytest.fixture
def steady_cluster(topology, scenario, plane):
    """Starts from the steady state and restores it afterwards, whatever the test did."""
    if not c.steady(topology, plane):
        c.restore(topology, plane)
    yield scenario
    c.restore(topology, plane)


def results_dir():
    return os.environ.get("LBHA_RESULTS_DIR") or os.path.join(PROJECT_DIR, "build", "results")


@pytest.fixture(scope="session")
def failover_results(scenario):
    """Per-case measurements, written to <results dir>/failover-<scenario>.json."""
    data = {
        "benchmark": "failover",
        "master_down_interval_s": round(c.master_down_interval(scenario.advert_int,
                                                               scenario.priorities[scenario.backup]), 4),
        "poll": {"interval_ms": c.POLL_INTERVAL * 1000, "timeout_ms": c.POLL_TIMEOUT * 1000,
                 "outage": "ms between the last good response before failed requests and the "
                           "first good response after them, measured on the client"},
        "vip_sample_interval_ms": c.SAMPLE_INTERVAL * 1000,
        "machine": {"cpus": os.cpu_count(), "kernel": _platform.release()},
        "cases": {},
    }
    data.update(scenario.summary())
    path = os.path.join(results_dir(), "failover-%s.json" % scenario.name)

    def record(case, values):
        data["cases"][case] = values
        data["generated"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        if not os.path.isdir(os.path.dirname(path)):
            os.makedirs(os.path.dirname(path))
        tmp = path + ".tmp"
        with open(tmp, "w") as handle:
            json.dump(data, handle, indent=1, sort_keys=True)
            handle.write("\n")
        os.rename(tmp, path)

    return record


@pytest.fixture(scope="module")
def inventory(tmp_path_factory):
    """An inventory of the scenario's hosts for the playbooks a test module runs."""
    return write_inventory(str(tmp_path_factory.mktemp("inventory")))
