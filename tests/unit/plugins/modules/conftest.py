# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Run a module's main() in-process and capture its exit_json / fail_json result."""
from __future__ import (absolute_import, division, print_function)
from __future__ import annotations
__metaclass__ = type

import contextlib
import json
import os
import sys

import pytest
from ansible.module_utils import basic

try:
    from ansible.module_utils.testing import patch_module_args
except ImportError:     # ansible-core < 2.19 (make compat runs these tests on 2.16)
    from unittest import mock

    @contextlib.contextmanager
    def patch_module_args(args):
        """The module arguments ``main()`` reads, the way ansible-core before 2.19 passes them."""
        with mock.patch.object(basic, "_ANSIBLE_ARGS", json.dumps({"ANSIBLE_MODULE_ARGS": args}).encode()):
            yield

FIXTURES = os.path.join(os.path.dirname(__file__), "..", "..", "fixtures")
FAKE_IPVSADM = os.path.abspath(os.path.join(FIXTURES, "ipvs", "fake_ipvsadm.py"))


class ModuleExit(Exception):
    def __init__(self, result, failed):
        super().__init__(result.get("msg", ""))
        self.result = result
        self.failed = failed


def _exit_json(self, **kwargs):
    kwargs.setdefault("changed", False)
    kwargs["warnings"] = list(getattr(self, "_lbha_warnings", []))
    raise ModuleExit(kwargs, failed=False)


def _fail_json(self, msg, **kwargs):
    kwargs["msg"] = msg
    kwargs["failed"] = True
    raise ModuleExit(kwargs, failed=True)


def _warn(self, warning):
    self._lbha_warnings = getattr(self, "_lbha_warnings", []) + [warning]


@pytest.fixture
def module_args():
    """``with module_args(args): main()`` on every ansible-core release the collection claims."""
    return patch_module_args


@pytest.fixture
def run_module(monkeypatch):
    """``run_module(main, args) -> (result, failed)``."""
    monkeypatch.setattr(basic.AnsibleModule, "exit_json", _exit_json)
    monkeypatch.setattr(basic.AnsibleModule, "fail_json", _fail_json)
    monkeypatch.setattr(basic.AnsibleModule, "warn", _warn)

    def run(main, args):
        with patch_module_args(args):
            with pytest.raises(ModuleExit) as info:
                main()
        return info.value.result, info.value.failed
    return run


class FakeKernel:
    """The simulated IPVS table behind ``fake_ipvsadm.py`` (a JSON file) and its call log."""

    def __init__(self, tmp_path, monkeypatch):
        self.state_path = tmp_path / "ipvs-state.json"
        self.log_path = tmp_path / "ipvsadm.log"
        # an executable named like the real program, running the simulation with this Python
        self.ipvsadm = str(tmp_path / "ipvsadm")
        with open(self.ipvsadm, "w") as f:
            f.write('#!/bin/sh\nexec "%s" "%s" "$@"\n' % (sys.executable, FAKE_IPVSADM))
        os.chmod(self.ipvsadm, 0o755)
        monkeypatch.setenv("FAKE_IPVS_STATE", str(self.state_path))
        monkeypatch.setenv("FAKE_IPVS_LOG", str(self.log_path))
        monkeypatch.delenv("FAKE_IPVS_MODE", raising=False)
        self.monkeypatch = monkeypatch

    def no_ipvs(self):
        self.monkeypatch.setenv("FAKE_IPVS_MODE", "noipvs")

    def state(self):
        if not self.state_path.exists():
            return {"services": []}
        return json.loads(self.state_path.read_text())

    def write(self, state):
        self.state_path.write_text(json.dumps(state))

    def calls(self):
        if not self.log_path.exists():
            return []
        return [json.loads(line) for line in self.log_path.read_text().splitlines()]

    def writes(self):
        """The calls that could change the table (everything but listings)."""
        return [c for c in self.calls() if c[0] and c[0][0] not in ("-S", "-L", "-l")]


@pytest.fixture
def kernel(tmp_path, monkeypatch):
    return FakeKernel(tmp_path, monkeypatch)


FAKE_COMMAND = r'''#!/usr/bin/env python3
import json, sys
state_file, log = sys.argv[0] + ".json", sys.argv[0] + ".log"
args = sys.argv[1:]
with open(log, "a") as f:
    f.write(json.dumps(args) + "\n")
state = json.load(open(state_file))
%s
json.dump(state, open(state_file, "w"))
'''


class FakeCommand(object):
    """An executable named like the program it stands for: ``body`` (Python, with ``args`` and the
    JSON ``state`` bound; ``state`` is saved after it) simulates the program, every call is
    logged, and the modules' get_bin_path finds it (by name when a test fakes several programs;
    any other name finds the last one faked)."""

    def __init__(self, tmp_path, monkeypatch, name, body, state, fakes=None):
        self.path = tmp_path / name
        self.path.write_text(FAKE_COMMAND % body)
        self.path.chmod(0o755)
        self.state_path = tmp_path / (name + ".json")
        self.log_path = tmp_path / (name + ".log")
        self.set(state)
        fakes = {} if fakes is None else fakes
        fakes[name] = fakes[None] = str(self.path)
        monkeypatch.setattr(basic.AnsibleModule, "get_bin_path",
                            lambda module, arg, required=False, opt_dirs=None: fakes.get(arg, fakes[None]))

    def set(self, state):
        self.state_path.write_text(json.dumps(state))

    def state(self):
        return json.loads(self.state_path.read_text())

    def calls(self):
        return [json.loads(line) for line in self.log_path.read_text().splitlines()] if self.log_path.exists() else []


@pytest.fixture
def fake_command(tmp_path, monkeypatch):
    """``fake_command(name, body, state)`` -> FakeCommand."""
    fakes = {}
    return lambda name, body, state: FakeCommand(tmp_path, monkeypatch, name, body, state, fakes)
