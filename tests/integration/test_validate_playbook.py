# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""`lbha.cluster.validate` (and so the first play of site.yml) on real inventories.

Runs ansible-playbook on the controller only: the example inventory's hosts are never
contacted (the play gathers no facts and validates once on localhost).
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
EXAMPLE = os.path.join(REPO, "examples", "inventory")
PLAYBOOK_BIN = os.path.join(os.path.dirname(sys.executable), "ansible-playbook")


@pytest.fixture(scope="module")
def collections_path(tmp_path_factory):
    root = tmp_path_factory.mktemp("collections")
    ns = root / "ansible_collections" / "lbha"
    ns.mkdir(parents=True)
    os.symlink(REPO, str(ns / "cluster"))
    return str(root)


def run_validate(collections_path, inventory, *extra):
    if not os.path.exists(PLAYBOOK_BIN):
        pytest.skip("ansible-playbook is not installed beside this Python (%s)" % PLAYBOOK_BIN)
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=collections_path, ANSIBLE_NOCOLOR="1",
               ANSIBLE_FORCE_COLOR="0", ANSIBLE_LOCALHOST_WARNING="0")
    return subprocess.run([PLAYBOOK_BIN, "-i", inventory, "lbha.cluster.validate"] + list(extra),
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True,
                          env=env, timeout=300, check=False)


def copy_example(tmp_path):
    dest = tmp_path / "inventory"
    shutil.copytree(EXAMPLE, str(dest))
    return dest


def test_the_example_inventory_is_valid(collections_path):
    result = run_validate(collections_path, os.path.join(EXAMPLE, "hosts.yml"))
    assert result.returncode == 0, result.stdout
    assert "failed=0" in result.stdout


def test_a_bad_priority_names_the_field_and_the_host(collections_path, tmp_path):
    inv = copy_example(tmp_path)
    (inv / "host_vars" / "lb2.yml").write_text("---\nlbha_director_priority: 300\n")
    result = run_validate(collections_path, str(inv / "hosts.yml"))
    assert result.returncode != 0
    assert "lb2" in result.stdout and "300" in result.stdout and "priority" in result.stdout, result.stdout


def test_a_long_auth_pass_is_refused_in_check_mode_too(collections_path, tmp_path):
    inv = copy_example(tmp_path)
    cluster = yaml.safe_load((inv / "group_vars" / "all.yml").read_text())
    cluster["lbha_cluster"]["vrrp_instances"][0]["authentication"]["auth_pass"] = "123456789"
    (inv / "group_vars" / "all.yml").write_text(yaml.safe_dump(cluster))
    result = run_validate(collections_path, str(inv / "hosts.yml"), "--check", "--diff")
    assert result.returncode != 0
    assert "auth_pass" in result.stdout, result.stdout
    assert "123456789" not in result.stdout, "the secret must not be printed"


def test_a_vip_without_prefix_is_refused(collections_path, tmp_path):
    inv = copy_example(tmp_path)
    cluster = yaml.safe_load((inv / "group_vars" / "all.yml").read_text())
    cluster["lbha_cluster"]["vrrp_instances"][0]["virtual_ipaddress"] = ["1.1.1.111"]
    (inv / "group_vars" / "all.yml").write_text(yaml.safe_dump(cluster))
    result = run_validate(collections_path, str(inv / "hosts.yml"))
    assert result.returncode != 0
    assert "virtual_ipaddress" in result.stdout, result.stdout


def test_an_nftables_only_refusal_stops_the_play_for_a_director_on_that_plane(collections_path, tmp_path):
    inv = copy_example(tmp_path)
    cluster = yaml.safe_load((inv / "group_vars" / "all.yml").read_text())
    cluster["lbha_cluster"]["virtual_servers"][0]["lb_kind"] = "NAT"
    (inv / "group_vars" / "all.yml").write_text(yaml.safe_dump(cluster))
    (inv / "host_vars" / "lb2.yml").write_text("---\nlbha_director_priority: 90\nlbha_director_dataplane: nftables\n")
    result = run_validate(collections_path, str(inv / "hosts.yml"))
    assert result.returncode != 0, result.stdout
    assert "lb2: lbha_cluster.virtual_servers[0].lb_kind: NAT is not supported by the nftables plane" in result.stdout
    # with auto (the example's lb1) the same definition is valid for ipvs, and the fallback is named
    (inv / "host_vars" / "lb2.yml").write_text("---\nlbha_director_priority: 90\n")
    result = run_validate(collections_path, str(inv / "hosts.yml"))
    assert result.returncode == 0, result.stdout
    assert "which this director uses when its kernel has no IPVS" in result.stdout


ACTIVE_ACTIVE = os.path.join(REPO, "examples", "active-active")


def test_the_active_active_example_is_valid(collections_path):
    result = run_validate(collections_path, os.path.join(ACTIVE_ACTIVE, "hosts.yml"))
    assert result.returncode == 0, result.stdout
    assert "failed=0" in result.stdout


DUAL_STACK = os.path.join(REPO, "examples", "dual-stack")


def test_the_dual_stack_example_is_valid(collections_path):
    result = run_validate(collections_path, os.path.join(DUAL_STACK, "hosts.yml"))
    assert result.returncode == 0, result.stdout
    assert "failed=0" in result.stdout


def test_an_ipv6_real_server_in_an_ipv4_service_is_refused(collections_path, tmp_path):
    inv = tmp_path / "inventory"
    shutil.copytree(DUAL_STACK, str(inv))
    cluster = yaml.safe_load((inv / "group_vars" / "all.yml").read_text())
    cluster["lbha_cluster"]["virtual_servers"][0]["real_servers"] = [{"address": "2001:db8:1:1::5"}]
    (inv / "group_vars" / "all.yml").write_text(yaml.safe_dump(cluster))
    result = run_validate(collections_path, str(inv / "hosts.yml"))
    assert result.returncode != 0
    assert ("virtual_servers[0].real_servers[0].address: 2001:db8:1:1::5 is an IPv6 address; "
            "this one must be IPv4 like the others it goes with") in result.stdout, result.stdout


def test_an_instance_whose_directors_tie_is_refused(collections_path, tmp_path):
    inv = tmp_path / "inventory"
    shutil.copytree(ACTIVE_ACTIVE, str(inv))
    cluster = yaml.safe_load((inv / "group_vars" / "all.yml").read_text())
    cluster["lbha_cluster"]["vrrp_instances"][1]["priority"] = {"lb1": 100, "lb2": 100}
    (inv / "group_vars" / "all.yml").write_text(yaml.safe_dump(cluster))
    result = run_validate(collections_path, str(inv / "hosts.yml"))
    assert result.returncode != 0
    assert "vrrp_instances[1].priority: lb1 and lb2 both have priority 100" in result.stdout, result.stdout
