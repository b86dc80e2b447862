# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The unicast scenario runs molecule/default's checks on its own topology.

molecule/default/tests/conftest.py is loaded under another module name and its helpers and
fixtures are re-exported here, so `from conftest import ...` in the shared test modules finds
them; the test modules of molecule/default are loaded the same way (see load_default).
"""
from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import importlib.util
import os
import sys

import pytest

DEFAULT_TESTS = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "default", "tests"))


def load_default(name):
    """molecule/default/tests/<name>.py as the module lbha_default_<name> (loaded once)."""
    module_name = "lbha_default_%s" % name
    if module_name not in sys.modules:
        spec = importlib.util.spec_from_file_location(module_name, os.path.join(DEFAULT_TESTS, name + ".py"))
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        spec.loader.exec_module(module)
    return sys.modules[module_name]


def export_tests(module_name, namespace):
    """Put the test functions of molecule/default's module_name into a test module's namespace."""
    module = load_default(module_name)
    tests = {k: v for k, v in vars(module).items() if k.startswith("test_") and callable(v)}
    namespace.update(tests)
    return sorted(tests)


_default = load_default("conftest")
globals().update({k: v for k, v in vars(_default).items()
                  if not k.startswith("__") and k not in ("scenario_name", "load_default")})


@pytest.fixture(scope="session")
def scenario_name():
    return os.environ.get("MOLECULE_SCENARIO_NAME") or "unicast"
