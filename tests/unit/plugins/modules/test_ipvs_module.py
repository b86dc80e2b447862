# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""lbha.cluster.ipvs against fake_ipvsadm.py, a simulated kernel table with ipvsadm 1.31's formats."""
from __future__ import (absolute_import, division, print_function)
from __future__ import annotations
__metaclass__ = type

import os
import subprocess

import pytest

from ansible_collections.lbha.cluster.plugins.modules import ipvs as ipvs_module
from ansible_collections.lbha.cluster.plugins.module_utils.ipvsadm import NO_IPVS_MESSAGE

SEED = [{"address": "1.1.1.111", "port": 80, "protocol": "TCP", "lb_algo": "rr", "lb_kind": "DR",
         "real_servers": [{"address": "1.1.1.3", "port": 80, "weight": 1},
                          {"address": "1.1.1.4", "port": 80, "weight": 1}]}]
SEED_SAVE = ("-A -t 1.1.1.111:80 -s rr\n"
             "-a -t 1.1.1.111:80 -r 1.1.1.3:80 -g -w 1\n"
             "-a -t 1.1.1.111:80 -r 1.1.1.4:80 -g -w 1\n")


def _args(kernel, **kw):
    kw.setdefault("ipvsadm", kernel.ipvsadm)
    return kw


def _save(kernel):
    """What ``ipvsadm -S -n`` prints now."""
    return subprocess.run([kernel.ipvsadm, "-S", "-n"], capture_output=True, text=True, check=True,
                          env=dict(os.environ)).stdout


def test_creates_the_seed_service_then_is_idempotent(run_module, kernel):
    result, failed = run_module(ipvs_module.main, _args(kernel, virtual_servers=SEED))
    assert not failed, result
    assert result["changed"] is True
    assert result["commands"] == ["-A -t 1.1.1.111:80 -s rr",
                                  "-a -t 1.1.1.111:80 -r 1.1.1.3:80 -g -w 1",
                                  "-a -t 1.1.1.111:80 -r 1.1.1.4:80 -g -w 1"]
    assert _save(kernel) == SEED_SAVE
    # one ipvsadm -R run carried every command
    writes = kernel.writes()
    assert [w[0] for w in writes] == [["-R"]]
    assert writes[0][1] == "".join(c + "\n" for c in result["commands"])
    assert [rs["address"] for rs in result["virtual_servers"][0]["real_servers"]] == ["1.1.1.3", "1.1.1.4"]

    result, failed = run_module(ipvs_module.main, _args(kernel, virtual_servers=SEED))
    assert not failed
    assert (result["changed"], result["commands"]) == (False, [])
    assert len(kernel.writes()) == 1


def test_check_mode_and_diff_change_nothing(run_module, kernel):
    result, failed = run_module(ipvs_module.main, _args(kernel, virtual_servers=SEED,
                                                        _ansible_check_mode=True, _ansible_diff=True))
    assert not failed
    assert result["changed"] is True
    assert result["diff"]["before"] == ""
    assert result["diff"]["after"] == SEED_SAVE
    assert kernel.writes() == []
    assert _save(kernel) == ""


def test_edit_weight_scheduler_and_remove_a_server(run_module, kernel):
    run_module(ipvs_module.main, _args(kernel, virtual_servers=SEED))
    want = [dict(SEED[0], lb_algo="wrr", real_servers=[{"address": "1.1.1.3", "weight": 5}])]
    result, failed = run_module(ipvs_module.main, _args(kernel, virtual_servers=want, _ansible_diff=True))
    assert not failed, result
    assert result["commands"] == ["-E -t 1.1.1.111:80 -s wrr",
                                  "-d -t 1.1.1.111:80 -r 1.1.1.4:80",
                                  "-e -t 1.1.1.111:80 -r 1.1.1.3:80 -g -w 5"]
    assert result["diff"]["before"] == SEED_SAVE
    assert _save(kernel) == "-A -t 1.1.1.111:80 -s wrr\n-a -t 1.1.1.111:80 -r 1.1.1.3:80 -g -w 5\n"
    assert result["diff"]["after"] == _save(kernel)


def test_drain_keeps_the_server_at_weight_zero(run_module, kernel):
    run_module(ipvs_module.main, _args(kernel, virtual_servers=SEED))
    result, failed = run_module(ipvs_module.main, _args(kernel, drain=["1.1.1.3"]))
    assert not failed
    assert result["commands"] == ["-e -t 1.1.1.111:80 -r 1.1.1.3:80 -g -w 0"]
    assert "-a -t 1.1.1.111:80 -r 1.1.1.3:80 -g -w 0\n" in _save(kernel)
    result = run_module(ipvs_module.main, _args(kernel, drain=["1.1.1.3"]))[0]
    assert result["changed"] is False
    # a drain entry that matches nothing is a warning, not a silent success
    result, failed = run_module(ipvs_module.main, _args(kernel, drain=["9.9.9.9"]))
    assert not failed and result["changed"] is False
    assert result["warnings"] == ["drain: 9.9.9.9 is not a real server of any managed service"]


def test_purge_and_absent(run_module, kernel):
    other = [{"address": "1.1.1.111", "port": 443, "lb_algo": "wlc", "persistence_timeout": 300,
              "real_servers": [{"address": "1.1.1.3"}]}]
    run_module(ipvs_module.main, _args(kernel, virtual_servers=SEED + other))
    assert "-A -t 1.1.1.111:443 -s wlc -p 300\n" in _save(kernel)

    result = run_module(ipvs_module.main, _args(kernel, virtual_servers=SEED))[0]
    assert result["changed"] is False          # without purge another service is left alone
    result = run_module(ipvs_module.main, _args(kernel, virtual_servers=SEED, purge=True))[0]
    assert result["commands"] == ["-D -t 1.1.1.111:443"]
    assert _save(kernel) == SEED_SAVE

    result, _failed = run_module(ipvs_module.main, _args(kernel, state="absent", virtual_servers=[
        {"address": "1.1.1.111", "port": 80, "real_servers": [{"address": "1.1.1.4"}]}]))
    assert result["commands"] == ["-d -t 1.1.1.111:80 -r 1.1.1.4:80"]
    result, _failed = run_module(ipvs_module.main, _args(kernel, state="absent", virtual_servers=[
        {"address": "1.1.1.111", "port": 80}]))
    assert result["commands"] == ["-D -t 1.1.1.111:80"]
    assert _save(kernel) == ""
    result, _failed = run_module(ipvs_module.main, _args(kernel, state="absent", virtual_servers=[
        {"address": "1.1.1.111", "port": 80}]))
    assert result["changed"] is False


def test_model_virtual_servers_pass_through(run_module, kernel):
    model_vs = dict(SEED[0], delay_loop=6, quorum=1, hysteresis=0, sorry_server=None, interface="eth0",
                    persistence_timeout=None, persistence_granularity=None,
                    real_servers=[dict(rs, name="web%d" % i, inhibit_on_failure=False,
                                       check={"type": "TCP_CHECK", "connect_timeout": 1})
                                  for i, rs in enumerate(SEED[0]["real_servers"], 1)])
    result, failed = run_module(ipvs_module.main, _args(kernel, virtual_servers=[model_vs]))
    assert not failed, result
    assert _save(kernel) == SEED_SAVE


def test_nat_ipv6_and_fwmark_services(run_module, kernel):
    vss = [{"address": "10.0.0.10", "port": 443, "lb_kind": "NAT", "persistence_timeout": 300,
            "persistence_granularity": "255.255.255.0",
            "real_servers": [{"address": "192.168.10.11", "port": 8443, "weight": 2}]},
           {"address": "2001:db8::111", "port": 80, "protocol": "UDP", "scheduler": "sh",
            "real_servers": [{"address": "2001:db8::3"}]},
           {"fwmark": 7, "scheduler": "rr", "real_servers": [{"address": "1.1.1.3"}]}]
    result, failed = run_module(ipvs_module.main, _args(kernel, virtual_servers=vss))
    assert not failed, result
    assert _save(kernel) == ("-A -t 10.0.0.10:443 -s wlc -p 300 -M 255.255.255.0\n"
                             "-a -t 10.0.0.10:443 -r 192.168.10.11:8443 -m -w 2\n"
                             "-A -u [2001:db8::111]:80 -s sh\n"
                             "-a -u [2001:db8::111]:80 -r [2001:db8::3]:80 -g -w 1\n"
                             "-A -f 7 -s rr\n"
                             "-a -f 7 -r 1.1.1.3:0 -g -w 1\n")
    result = run_module(ipvs_module.main, _args(kernel, virtual_servers=vss))[0]
    assert result["changed"] is False


def test_kernel_without_ipvs_is_a_clear_failure(run_module, kernel):
    kernel.no_ipvs()
    result, failed = run_module(ipvs_module.main, _args(kernel, virtual_servers=SEED))
    assert failed
    assert result["msg"] == NO_IPVS_MESSAGE
    assert "Protocol not available" in result["stderr"]


def test_real_ipvsadm_on_this_kernel(run_module, kernel):
    """The installed ipvsadm on a kernel without IPVS gives the same clear failure."""
    real = "/usr/sbin/ipvsadm"
    if not os.path.exists(real):
        pytest.skip("needs ipvsadm installed at /usr/sbin/ipvsadm")
    if os.path.exists("/proc/net/ip_vs"):
        pytest.skip("needs a kernel without IPVS (this one has /proc/net/ip_vs)")
    result, failed = run_module(ipvs_module.main, dict(virtual_servers=SEED, ipvsadm=real))
    assert failed and result["msg"] == NO_IPVS_MESSAGE


def test_missing_ipvsadm(run_module, kernel, tmp_path, monkeypatch):
    result, failed = run_module(ipvs_module.main, dict(virtual_servers=SEED, ipvsadm=str(tmp_path / "nope")))
    assert failed
    assert result["msg"].startswith("ipvsadm not found at %s" % (tmp_path / "nope"))
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(ipvs_module.AnsibleModule, "get_bin_path", lambda self, *a, **k: None)
    result, failed = run_module(ipvs_module.main, dict(virtual_servers=SEED))
    assert failed and result["msg"].startswith("ipvsadm not found: install the ipvsadm package")


def test_invalid_input_fails_before_touching_the_kernel(run_module, kernel):
    result, failed = run_module(ipvs_module.main, _args(kernel, virtual_servers=[
        {"address": "1.1.1.111", "port": 80, "lb_algo": "round-robin"}]))
    assert failed and "virtual_servers[0].scheduler" in result["msg"]
    result, failed = run_module(ipvs_module.main, _args(kernel, purge=True))
    assert failed and "purge needs virtual_servers" in result["msg"]
    result, failed = run_module(ipvs_module.main, _args(kernel, drain=["not-an-address"]))
    assert failed and result["msg"].startswith("drain[0]")
    assert kernel.calls() == []


def test_ipvsadm_restore_failure_is_reported(run_module, kernel):
    run_module(ipvs_module.main, _args(kernel, virtual_servers=SEED))
    state = kernel.state()
    state["services"][0]["sched"] = "wlc"
    kernel.write(state)
    # the kernel refuses the edit (as when the service vanished between our read and write)
    broken = kernel.state_path.parent / "ipvsadm-broken"
    broken.write_text("#!/bin/sh\ncase \"$1\" in -R) cat >/dev/null; echo 'No such service' >&2; exit 1;; esac\n"
                      "exec %s \"$@\"\n" % kernel.ipvsadm)
    broken.chmod(0o755)
    result, failed = run_module(ipvs_module.main, dict(virtual_servers=SEED, ipvsadm=str(broken)))
    assert failed
    assert result["msg"] == "ipvsadm -R failed: No such service"
    assert result["commands"] == ["-E -t 1.1.1.111:80 -s rr"]


def test_result_is_verified_against_the_kernel(run_module, kernel):
    """A kernel that accepts -R but ends up different (e.g. keepalived rewrote it) is a failure."""
    silent = kernel.state_path.parent / "ipvsadm-silent"
    silent.write_text("#!/bin/sh\ncase \"$1\" in -R) cat >/dev/null; exit 0;; esac\nexec %s \"$@\"\n"
                      % kernel.ipvsadm)
    silent.chmod(0o755)
    result, failed = run_module(ipvs_module.main, dict(virtual_servers=SEED, ipvsadm=str(silent)))
    assert failed
    assert result["msg"].startswith("the IPVS table differs from the expected one")
    assert result["expected"] == SEED_SAVE and result["actual"] == ""
