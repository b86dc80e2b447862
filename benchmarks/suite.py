# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Puts the molecule suite's helpers (molecule/suite/lbha_suite) on the path of a benchmark that
drives a container scenario, the default one unless LBHA_SCENARIO says otherwise."""
from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import os
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "molecule", "suite"))
os.environ.setdefault("LBHA_SCENARIO", "default")
