# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The collection as AWX and Automation Platform use it: built into an execution environment
(ansible-builder) and run by ansible-runner, the engine of both.

No image is built (no registry is reachable here): ``ansible-builder create`` writes the build
context, and the introspection script of that context, the one the image build runs, is run on
the collection installed from its tarball. Its output is what the image would install.
"""
from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import os
import shutil
import subprocess
import sys

import pytest
import yaml

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BIN = os.path.dirname(sys.executable)
EXAMPLE = os.path.join(REPO, "examples", "inventory")


def tool(name):
    path = os.path.join(BIN, name)
    if not os.path.exists(path):
        pytest.skip("%s is not installed beside this Python (make venv installs it)" % name)
    return path


@pytest.fixture(scope="module")
def tarball(tmp_path_factory):
    out = tmp_path_factory.mktemp("dist")
    subprocess.run([tool("ansible-galaxy"), "collection", "build", "--force", "--output-path", str(out), REPO],
                   check=True, stdout=subprocess.DEVNULL)
    (path,) = out.glob("lbha-cluster-*.tar.gz")
    return path


@pytest.fixture(scope="module")
def installed(tmp_path_factory, tarball):
    root = tmp_path_factory.mktemp("collections")
    subprocess.run([tool("ansible-galaxy"), "collection", "install", "--force", "--no-deps", "-p", str(root), str(tarball)],
                   check=True, stdout=subprocess.DEVNULL)
    return root


def test_builder_context_installs_the_collection_and_its_system_dependencies(tmp_path, tarball, installed):
    ee = tmp_path / "ee"
    ee.mkdir()
    shutil.copy(str(tarball), str(ee / tarball.name))
    (ee / "execution-environment.yml").write_text(yaml.safe_dump({
        "version": 3,
        "images": {"base_image": {"name": "localhost/lbha-ee-base:latest"}},
        "dependencies": {
            "ansible_core": {"package_pip": "ansible-core>=2.16"},
            "ansible_runner": {"package_pip": "ansible-runner"},
            "galaxy": {"collections": [{"name": "collections/" + tarball.name, "type": "file"}]},
        },
        "additional_build_files": [{"src": tarball.name, "dest": "collections"}],
    }))
    subprocess.run([tool("ansible-builder"), "create", "-f", "execution-environment.yml", "-c", "context"],
                   cwd=str(ee), check=True, stdout=subprocess.DEVNULL)
    context = ee / "context"
    containerfile = (context / "Containerfile") if (context / "Containerfile").exists() else (context / "Dockerfile")
    text = containerfile.read_text()
    assert "ansible-galaxy" in text and "introspect" in text
    requirements = yaml.safe_load((context / "_build" / "requirements.yml").read_text())
    assert requirements["collections"] == [{"name": "collections/" + tarball.name, "type": "file"}]
    assert (context / "_build" / "collections" / tarball.name).exists()

    # what the image build's introspection finds in the installed collection
    bindep, pip = tmp_path / "bindep.txt", tmp_path / "requirements.txt"
    subprocess.run([sys.executable, str(context / "_build" / "scripts" / "introspect.py"), "introspect",
                    str(installed), "--write-bindep", str(bindep), "--write-pip", str(pip)],
                   check=True, stdout=subprocess.DEVNULL)
    lines = bindep.read_text().splitlines()
    assert "openssh-client [platform:dpkg]  # from collection lbha.cluster" in lines
    assert "openssh-clients [platform:rpm]  # from collection lbha.cluster" in lines
    assert "lbha.cluster" not in (pip.read_text() if pip.exists() else ""), \
        "the controller side needs no Python package beyond ansible-core (meta/execution-environment.yml)"


def runner(tmp_path, installed, inventory, monkeypatch):
    ansible_runner = pytest.importorskip("ansible_runner")
    tool("ansible-playbook")
    monkeypatch.setenv("PATH", BIN + os.pathsep + os.environ.get("PATH", ""))
    private = tmp_path / "runner"
    (private / "project").mkdir(parents=True)
    (private / "env").mkdir()
    (private / "env" / "envvars").write_text(yaml.safe_dump({
        "ANSIBLE_COLLECTIONS_PATH": str(installed), "ANSIBLE_LOCALHOST_WARNING": "0"}))
    shutil.copytree(inventory, str(private / "inventory"))
    r = ansible_runner.run(private_data_dir=str(private), playbook="lbha.cluster.validate", quiet=True)
    return r, list(r.events)


def test_runner_reports_success_on_the_example_inventory(tmp_path, installed, monkeypatch):
    r, events = runner(tmp_path, installed, EXAMPLE, monkeypatch)
    assert r.status == "successful" and r.rc == 0, r.stdout.read()
    stats = [e for e in events if e["event"] == "playbook_on_stats"][-1]["event_data"]
    assert not stats["failures"] and stats["ok"]
    validated = [e["event_data"]["res"] for e in events if e["event"] == "runner_on_ok"
                 and e["event_data"]["task_action"] == "lbha.cluster.cluster_validate"]
    assert len(validated) == 1 and validated[0]["vips"] == ["1.1.1.111"]


def test_runner_reports_the_failed_field(tmp_path, installed, monkeypatch):
    bad = tmp_path / "inventory"
    shutil.copytree(EXAMPLE, str(bad))
    (bad / "host_vars" / "lb2.yml").write_text("---\nlbha_director_priority: 300\n")
    r, events = runner(tmp_path, installed, str(bad), monkeypatch)
    assert r.status == "failed" and r.rc != 0
    failed = [e for e in events if e["event"] == "runner_on_failed"]
    assert failed, [e["event"] for e in events]
    res = failed[0]["event_data"]["res"]
    assert any("lb2" in e and "priority" in e and "300" in e for e in res["errors"]), res["errors"]
