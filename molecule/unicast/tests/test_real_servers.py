# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""molecule/default's test_real_servers.py, run against the unicast topology (expectations follow its config)."""
from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

from conftest import export_tests

TESTS = export_tests("test_real_servers", globals())
