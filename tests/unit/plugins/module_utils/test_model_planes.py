# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The rules of each forwarding plane are the model's: what the nftables plane refuses or serves
differently is refused or warned about here, before any document is written."""
from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import copy

import pytest

from ansible_collections.lbha.cluster.plugins.module_utils import model
from ansible_collections.lbha.cluster.plugins.module_utils.model import ValidationError


@pytest.fixture()
def seed(seed_definition):
    return seed_definition


def norm(seed, dataplane, change=None):
    cluster = copy.deepcopy(seed["cluster"])
    if change:
        change(cluster)
    return model.normalize(cluster, seed["directors"][0], seed["directors"], seed["real_server_hosts"],
                           dataplane=dataplane)


def vs0(cluster):
    return cluster["virtual_servers"][0]


@pytest.mark.parametrize("change, message", [
    (lambda c: vs0(c).update(lb_kind="NAT"), r"lb_kind: NAT is not supported by the nftables plane"),
    (lambda c: vs0(c).update(protocol="SCTP"), r"protocol: SCTP is not supported by the nftables plane"),
])
def test_the_nftables_plane_refuses_what_it_cannot_forward(seed, change, message):
    norm(seed, "ipvs", change)
    with pytest.raises(ValidationError, match=message):
        norm(seed, "nftables", change)


@pytest.mark.parametrize("algo", ["wlc", "lc"])
def test_connection_counting_schedulers_are_a_warning_on_nftables(seed, algo):
    ipvs = norm(seed, "ipvs", lambda c: vs0(c).update(lb_algo=algo))
    assert not any("lb_algo" in w for w in ipvs["warnings"])
    nft = norm(seed, "nftables", lambda c: vs0(c).update(lb_algo=algo))
    assert any("lb_algo: %s needs connection counting" % algo in w for w in nft["warnings"])


@pytest.mark.parametrize("dataplane", ["ipvs", "nftables"])
def test_direct_routing_refuses_a_different_port_on_both_planes(seed, dataplane):
    def real(c):
        vs0(c).pop("real_servers_group")
        vs0(c)["real_servers"] = [{"address": "1.1.1.3", "port": 8080}]

    def sorry(c):
        vs0(c)["sorry_server"] = {"address": "1.1.1.5", "port": 8080}
    with pytest.raises(ValidationError, match=r"real_servers\[0\]\.port: 8080 differs from the virtual server port 80"):
        norm(seed, dataplane, real)
    with pytest.raises(ValidationError, match=r"sorry_server\.port: 8080 differs from the virtual server port 80"):
        norm(seed, dataplane, sorry)


def test_a_real_server_listed_twice_is_refused(seed):
    def twice(c):
        vs0(c)["real_servers"] = [{"address": "1.1.1.3"}]
    with pytest.raises(ValidationError, match="1.1.1.3 port 80 is already a real server"):
        norm(seed, "nftables", twice)


def test_the_controller_validates_each_director_for_its_own_plane(seed):
    cluster = copy.deepcopy(seed["cluster"])
    vs0(cluster)["lb_kind"] = "NAT"
    vs0(cluster)["address"] = "1.1.1.111"
    args = (cluster, seed["directors"], seed["real_server_hosts"])
    # lb2 will use nftables: refused for lb2 only, before any host changes
    with pytest.raises(ValidationError) as err:
        model.validate_cluster(*args, dataplanes={"lb1": "ipvs", "lb2": "nftables"})
    assert any(e.startswith("lb2: ") and "lb_kind: NAT is not supported by the nftables plane" in e
               for e in err.value.errors), err.value.errors
    assert not any(e.startswith("lb1") for e in err.value.errors), err.value.errors
    # auto: valid for ipvs, the nftables refusal is a warning naming the fallback
    result = model.validate_cluster(*args, dataplanes={"lb1": "auto", "lb2": "auto"})
    assert any("lb_kind: NAT is not supported by the nftables plane" in w and "kernel has no IPVS" in w
               for w in result["warnings"]), result["warnings"]
    with pytest.raises(ValidationError, match="dataplane: 'lvs' is not one of"):
        model.validate_cluster(*args, dataplanes={"lb1": "lvs"})
