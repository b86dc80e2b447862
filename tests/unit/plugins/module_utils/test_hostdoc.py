# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The host document: built from the model, checked by shape and version, drain as admin state."""
from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import json

import pytest

from ansible_collections.lbha.cluster.plugins.module_utils import hostdoc, keepalived, model
from ansible_collections.lbha.cluster.plugins.module_utils.hostdoc import HostDocumentError


@pytest.fixture()
def seed_model(seed_definition):
    seed = seed_definition
    return model.normalize(seed["cluster"], seed["directors"][0], seed["directors"], seed["real_server_hosts"])


@pytest.fixture()
def doc(seed_model):
    return hostdoc.build(seed_model, "ipvs")[0]


def test_build_holds_plane_model_paths_and_no_warnings(doc, seed_model):
    assert doc["format"] == hostdoc.FORMAT and doc["version"] == hostdoc.VERSION
    assert doc["director"] == "lb1" and doc["plane"] == "ipvs" and doc["nftables"] is None
    assert doc["paths"]["checker_state"] == "/run/lbha/checker.json"
    assert "warnings" not in doc["model"] and doc["model"]["virtual_servers"] == seed_model["virtual_servers"]
    assert hostdoc.check(json.loads(hostdoc.dumps(doc))) == doc


def test_the_seed_is_the_same_on_every_director_and_follows_the_instances(seed_definition):
    seed = seed_definition

    def doc(name, nftables=None):
        host = next(d for d in seed["directors"] if d["name"] == name)
        m = model.normalize(seed["cluster"], host, seed["directors"], seed["real_server_hosts"], dataplane="nftables")
        return hostdoc.build(m, "nftables", nftables=nftables)[0]
    assert doc("lb1")["nftables"]["seed"] == doc("lb2")["nftables"]["seed"]
    first = doc("lb1")["nftables"]["seed"]
    seed["cluster"]["vrrp_instances"][0]["name"] = "VI_9"
    assert doc("lb1")["nftables"]["seed"] != first
    assert doc("lb1", {"seed": 7, "buckets": 13, "flow_timeout": 5})["nftables"]["seed"] == 7


@pytest.mark.parametrize("settings, message", [
    ({"buckets": 0}, "nftables.buckets: 0 is not an integer 1-8192"),
    ({"table": "bad name"}, "nftables.table: 'bad name'"),
    ({"flow_timeout": 10 ** 8}, "nftables.flow_timeout"),
    ({"seed": -1}, "nftables.seed"),
])
def test_nftables_settings_are_checked(seed_model, settings, message):
    with pytest.raises(HostDocumentError, match=message):
        hostdoc.build(seed_model, "nftables", nftables=settings)


def test_nftables_settings_and_the_shared_seed(seed_model):
    doc = hostdoc.build(seed_model, "nftables", nftables={"flow_timeout": 60, "seed": None})[0]
    assert doc["nftables"] == {"table": "lbha", "buckets": 251, "flow_timeout": 60, "flow_size": 65536,
                               "seed": model.default_seed(seed_model)}
    nft_doc = hostdoc.nft_document(doc)
    assert nft_doc["seed"] == doc["nftables"]["seed"] and nft_doc["virtual_servers"][0]["address"] == "1.1.1.111"
    with pytest.raises(HostDocumentError, match="not nftables"):
        hostdoc.nft_document(hostdoc.build(seed_model, "ipvs")[0])


@pytest.mark.parametrize("mutate, message", [
    (lambda d: d.update(version=2), "version 2; this code reads version 1"),
    (lambda d: d.update(format="x"), "not an lbha.cluster host document"),
    (lambda d: d.update(plane="auto"), "plane: 'auto'"),
    (lambda d: d["paths"].pop("checker_state"), "paths: checker_state: expected a string"),
    (lambda d: d.update(drained=["1.1.1.3\n"]), r"drained\[0\]"),
    (lambda d: d["model"]["virtual_servers"][0].update(real_servers=None), "real_servers: expected a list"),
    (lambda d: d.update(plane="nftables"), "nftables: expected a mapping"),
])
def test_check_refuses_shape_and_version_it_does_not_know(doc, mutate, message):
    mutate(doc)
    with pytest.raises(HostDocumentError, match=message):
        hostdoc.check(doc, "/etc/lbha/cluster.json")


def test_loads_names_the_file(tmp_path):
    path = tmp_path / "cluster.json"
    path.write_text("{")
    with pytest.raises(HostDocumentError, match="cluster.json: not valid JSON"):
        hostdoc.load(str(path))
    with pytest.raises(HostDocumentError, match="cannot read"):
        hostdoc.load(str(tmp_path / "missing.json"))


def test_drain_renders_weight_0_and_undrain_restores(doc):
    drained, changed = hostdoc.set_drained(doc, ["1.1.1.3"])
    assert drained["drained"] == ["1.1.1.3"] and changed == ["1.1.1.3"]
    assert doc["drained"] == [], "the input document is not modified"
    weights = {rs["address"]: rs["weight"] for rs in hostdoc.render_model(drained)["virtual_servers"][0]["real_servers"]}
    assert weights == {"1.1.1.3": 0, "1.1.1.4": 1}
    text = keepalived.render(hostdoc.render_model(drained))
    assert "real_server 1.1.1.3 80 {\n        weight 0" in text and "real_server 1.1.1.4 80 {\n        weight 1" in text
    again, changed = hostdoc.set_drained(drained, ["1.1.1.3"])
    assert changed == [] and again["drained"] == ["1.1.1.3"]
    with_port, _c = hostdoc.set_drained(drained, ["1.1.1.4:80"])
    back, changed = hostdoc.set_drained(with_port, ["1.1.1.3", "1.1.1.4"], drained=False)
    assert back["drained"] == [] and changed == ["1.1.1.3", "1.1.1.4:80"]


def test_drain_refuses_what_is_not_a_real_server(doc):
    with pytest.raises(HostDocumentError, match="not a real server of lb1.*1.1.1.9, 1.1.1.3:81"):
        hostdoc.set_drained(doc, ["1.1.1.9", "1.1.1.3:81"])
    with pytest.raises(HostDocumentError, match="scope id"):
        hostdoc.set_drained(doc, ["fe80::1%eth0"])


def test_a_converge_keeps_the_admin_state_and_drops_servers_that_left(seed_model):
    doc, dropped = hostdoc.build(seed_model, "ipvs", drained=["1.1.1.3", "1.1.1.4:80", "1.1.1.9"])
    assert doc["drained"] == ["1.1.1.3", "1.1.1.4:80"] and dropped == ["1.1.1.9"]


@pytest.mark.parametrize("text, expected", [
    ("1.1.1.3", ("1.1.1.3", None)), ("1.1.1.3:80", ("1.1.1.3", 80)),
    ("[2001:db8::3]:443", ("2001:db8::3", 443)), ("2001:db8::3", ("2001:db8::3", None)),
])
def test_server_refs(text, expected):
    assert hostdoc.parse_server_ref(text) == expected
    assert hostdoc.server_ref(*expected) == text


@pytest.mark.parametrize("text", ["1.1.1.3:0", "1.1.1.3:x", " 1.1.1.3", "[2001:db8::3]443", "host", "", None, 5])
def test_bad_server_refs(text):
    with pytest.raises(ValueError):
        hostdoc.parse_server_ref(text)


def test_instances_and_vips(doc):
    assert hostdoc.instances(doc) == [{"name": "VI_1", "interface": "eth0", "virtual_router_id": 51,
                                       "vips": ["1.1.1.111"], "state": "MASTER", "priority": 100,
                                       "nopreempt": False}]
    assert hostdoc.vips(doc) == ["1.1.1.111"]
