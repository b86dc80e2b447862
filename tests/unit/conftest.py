"""Make the working tree importable as ``ansible_collections.lbha.cluster``.

Unit tests import the collection's code the way Ansible does (by its FQCN path). The
working tree is not laid out as ``ansible_collections/lbha/cluster``, so a temporary
tree with a symlink to the repository root is put on ``sys.path`` for the session.
"""
from __future__ import annotations

import os
import shutil
import sys
import tempfile

import pytest

REPO_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
KEEPALIVED = shutil.which("keepalived") or next(
    (p for p in ("/usr/sbin/keepalived", "/sbin/keepalived") if os.access(p, os.X_OK)), None)


def _install_collection_path() -> str:
    root = tempfile.mkdtemp(prefix="lbha-unit-")
    ns = os.path.join(root, "ansible_collections", "lbha")
    os.makedirs(ns)
    os.symlink(REPO_ROOT, os.path.join(ns, "cluster"))
    sys.path.insert(0, root)
    # Drop a cached namespace package that may have been created before this path existed.
    for name in list(sys.modules):
        if name == "ansible_collections" or name.startswith("ansible_collections."):
            del sys.modules[name]
    return root


_COLLECTIONS_ROOT = _install_collection_path()


@pytest.fixture(scope="session")
def repo_root() -> str:
    return REPO_ROOT


@pytest.fixture(scope="session")
def checkerd():
    """The nftables plane's daemon program (roles/director/files/lbha_checkerd.py).

    On a director it sits beside the package ``lbha_cluster`` (the collection's module_utils);
    here that name is given the very modules the tests import, so classes are shared.
    """
    import importlib
    import importlib.util

    package = importlib.import_module("ansible_collections.lbha.cluster.plugins.module_utils")
    sys.modules.setdefault("lbha_cluster", package)
    for name in sorted(os.listdir(os.path.join(REPO_ROOT, "plugins", "module_utils"))):
        if name.endswith(".py") and name != "__init__.py":
            name = name[:-3]
            sys.modules.setdefault("lbha_cluster." + name, importlib.import_module(package.__name__ + "." + name))
    path = os.path.join(REPO_ROOT, "roles", "director", "files", "lbha_checkerd.py")
    spec = importlib.util.spec_from_file_location("lbha_checkerd", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def load_script():
    """``load_script("role_docs.py")``: a script of scripts/ as a module (they are not a package)."""
    import importlib.util

    def load(name):
        spec = importlib.util.spec_from_file_location(name.replace("-", "_")[:-3],
                                                      os.path.join(REPO_ROOT, "scripts", name))
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    return load


@pytest.fixture()
def seed_definition():
    """The seed tutorial's cluster as model input (tests/unit/fixtures/seed/cluster.yml)."""
    import yaml
    with open(os.path.join(REPO_ROOT, "tests", "unit", "fixtures", "seed", "cluster.yml")) as f:
        return yaml.safe_load(f)


@pytest.fixture()
def eth0_keepalived(tmp_path):
    """A keepalived command that can run ``keepalived -t`` on the collection's configurations:
    their interface eth0 must exist, so on a host without one it runs in a private network
    namespace with a veth called eth0."""
    if KEEPALIVED is None:
        pytest.skip("keepalived is not installed (no keepalived binary)")
    if os.path.exists("/sys/class/net/eth0"):
        return KEEPALIVED
    if os.geteuid() != 0 or not shutil.which("unshare") or not shutil.which("ip"):
        pytest.skip("keepalived -t needs an eth0 interface: this host has none and cannot create a "
                    "network namespace (needs root, unshare and ip)")
    wrapper = tmp_path / "keepalived-netns"
    wrapper.write_text('#!/bin/sh\nexec unshare -n sh -c \'ip link add eth0 type veth peer name lbhapeer0 '
                       '&& exec "$0" "$@"\' %s "$@"\n' % KEEPALIVED)
    wrapper.chmod(0o755)
    return str(wrapper)
