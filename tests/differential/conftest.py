# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The differential test imports the collection by its FQCN like the unit tests, and sizes its
run by LBHA_DIFF_EXAMPLES."""
from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import importlib.util
import os

from hypothesis import HealthCheck, settings

# tests/unit/conftest.py puts the working tree on sys.path as ansible_collections.lbha.cluster
_spec = importlib.util.spec_from_file_location(
    "lbha_unit_conftest", os.path.join(os.path.dirname(__file__), "..", "unit", "conftest.py"))
_spec.loader.exec_module(importlib.util.module_from_spec(_spec))

DEFAULT_EXAMPLES = 2500

settings.register_profile(
    "lbha-differential",
    deadline=None,
    max_examples=int(os.environ.get("LBHA_DIFF_EXAMPLES", DEFAULT_EXAMPLES)),
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)
settings.load_profile("lbha-differential")


def pytest_terminal_summary(terminalreporter):
    import sys
    oracles = sys.modules.get("oracles")
    STATS = getattr(oracles, "STATS", None)
    if STATS and STATS["examples"]:
        terminalreporter.write_line(
            "differential: %(examples)d examples, %(accepted)d accepted by the model, %(keepalived_runs)d "
            "keepalived -t runs per version, %(nft_runs)d nft -c runs (%(nft_ipv6_runs)d with IPv6), %(disagreements)d disagreements" % STATS)
