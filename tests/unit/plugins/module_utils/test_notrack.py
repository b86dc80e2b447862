# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The ipvs plane's host settings rendered from the model: the conntrack exemption (checked by
nft -c), the ipvsadm commands that remove the services after a clean stop."""
from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import os
import shutil
import subprocess

import pytest

from ansible_collections.lbha.cluster.plugins.module_utils import model, notrack
from ansible_collections.lbha.cluster.plugins.module_utils.ipvsadm import delete_commands

NFT = shutil.which("nft") or ("/usr/sbin/nft" if os.access("/usr/sbin/nft", os.X_OK) else None)
CLUSTER = {
    "vrrp_instances": [
        {"name": "VI_1", "interface": "eth0", "virtual_router_id": 51, "virtual_ipaddress": ["1.1.1.111/24"]},
        {"name": "VI_6", "interface": "eth0", "virtual_router_id": 52, "virtual_ipaddress": ["2001:db8::111/64"]},
    ],
    "virtual_servers": [
        {"address": "1.1.1.111", "port": 80, "real_servers": [{"address": "1.1.1.3"}]},
        {"address": "1.1.1.111", "port": 53, "protocol": "UDP", "real_servers": [{"address": "1.1.1.3"}]},
        {"address": "2001:db8::111", "port": 443, "real_servers": [{"address": "2001:db8::3"}]},
        {"fwmark": 7, "real_servers": [{"address": "1.1.1.4"}]},
    ],
}


def _model(dataplane="ipvs", cluster=None):
    return model.normalize(cluster or CLUSTER, {"name": "lb1", "priority": 100}, dataplane=dataplane)


def test_every_address_service_is_exempted_and_fwmark_is_not():
    text = notrack.render(_model())
    rules = [line.strip() for line in text.splitlines() if line.strip().endswith("notrack")]
    assert rules == ["ip daddr 1.1.1.111 tcp dport 80 notrack", "ip daddr 1.1.1.111 udp dport 53 notrack",
                     "ip6 daddr 2001:db8::111 tcp dport 443 notrack"]
    assert "type filter hook prerouting priority raw; policy accept;" in text
    # the file replaces the table in one transaction, also when it does not exist yet
    assert text.index("table inet lbha_ipvs\n") < text.index("delete table inet lbha_ipvs\n") < text.index(
        "table inet lbha_ipvs {")


def test_nothing_to_exempt():
    assert notrack.render(_model("nftables", {"vrrp_instances": CLUSTER["vrrp_instances"][:1],
                                              "virtual_servers": CLUSTER["virtual_servers"][:1]})) == ""
    fwmark_only = {"vrrp_instances": CLUSTER["vrrp_instances"][:1], "virtual_servers": CLUSTER["virtual_servers"][3:]}
    assert notrack.render(_model(cluster=fwmark_only)) == ""


def test_delete_commands():
    assert delete_commands(_model()["virtual_servers"]) == [
        "ipvsadm -D -t 1.1.1.111:80", "ipvsadm -D -u 1.1.1.111:53", "ipvsadm -D -t [2001:db8::111]:443",
        "ipvsadm -D -f 7"]


@pytest.mark.skipif(NFT is None or os.geteuid() != 0,
                    reason="nft -c needs the nft binary and root (the ipvs scenario's director role checks "
                           "the same file with nft -c before it loads it)")
def test_nft_accepts_the_exemption(tmp_path):
    path = tmp_path / "notrack.nft"
    path.write_text(notrack.render(_model()))
    proc = subprocess.run([NFT, "-c", "-f", str(path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True, check=False)
    assert proc.returncode == 0, proc.stderr
