# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The checker's drain file: weight 0 for listed real servers, read at start and on reload."""
from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import json
import logging

import pytest

from ansible_collections.lbha.cluster.plugins.module_utils import checker, nft
from ansible_collections.lbha.cluster.tests.unit.plugins.module_utils.checker_doubles import (
    Clock, FakePlane, bucket_counts, rs_dict, vs_dict)


def ok():
    return True, None, None


def doc_dict(**over):
    """One virtual server over web1 and web2, whose checks never retry."""
    rss = [rs_dict("1.1.1.3", retry=0, delay_before_retry=1), rs_dict("1.1.1.4", retry=0, delay_before_retry=1)]
    vs = vs_dict(real_servers=rss)
    vs.update(over)
    return {"plane": "nftables", "seed": 1525, "table": "lbha", "buckets": 251, "flow_timeout": 300,
            "virtual_servers": [vs]}


def make_daemon(tmp_path, doc=None, drain=None):
    cfg = tmp_path / "dataplane.json"
    cfg.write_text(json.dumps(doc or doc_dict()))
    if drain is not None:
        (tmp_path / "drain.json").write_text(json.dumps(drain))
    c = checker.Checker(FakePlane(), str(cfg), str(tmp_path / "state.json"), clock=Clock(),
                        probe_factory=lambda rs, check: ok)
    c.start_threads = lambda: None      # no real threads in a unit test
    c.set_drain(checker.load_drain(c.drain_path))
    docv, _warnings = checker.load_config(str(cfg))
    c.configure(docv)
    return c


def servers(c):
    return {rs["address"]: rs for rs in c.state()["virtual_servers"][0]["real_servers"]}


WEB1, WEB2 = nft.server_id("1.1.1.3"), nft.server_id("1.1.1.4")


def test_drain_file_defaults_to_the_configurations_directory():
    assert checker.default_drain_path("/etc/lbha/dataplane.json") == "/etc/lbha/drain.json"
    assert checker.default_drain_path("dataplane.json") == "./drain.json"


def test_missing_drain_file_drains_nothing(tmp_path):
    assert checker.load_drain(str(tmp_path / "drain.json")) == frozenset()
    c = make_daemon(tmp_path)
    c.apply()
    assert bucket_counts(c) == {WEB1: 126, WEB2: 125} or bucket_counts(c) == {WEB1: 125, WEB2: 126}
    assert [rs["drained"] for rs in servers(c).values()] == [False, False]


@pytest.mark.parametrize("entry", ["1.1.1.3", "1.1.1.3:80", " 1.1.1.3 "])
def test_a_drained_server_gets_no_buckets_and_reports_weight_0(tmp_path, entry):
    c = make_daemon(tmp_path, drain={"drain": [entry]})
    c.apply()
    assert bucket_counts(c) == {WEB2: 251}
    state = servers(c)
    assert state["1.1.1.3"]["drained"] is True and state["1.1.1.3"]["weight"] == 0
    assert state["1.1.1.3"]["healthy"] is True and state["1.1.1.3"]["buckets"] == 0
    assert state["1.1.1.4"]["drained"] is False and state["1.1.1.4"]["weight"] == 1
    # the server stays in the servers map, so its pinned flows keep being forwarded
    assert c.tables["TCP/1.1.1.111:80"]["servers"][WEB1] == "1.1.1.3"


def test_a_drain_on_another_port_does_not_match(tmp_path):
    c = make_daemon(tmp_path, drain={"drain": ["1.1.1.3:443"]})
    c.apply()
    assert set(bucket_counts(c)) == {WEB1, WEB2}


def test_reload_drains_and_undrains_without_touching_the_flow_maps(tmp_path, caplog):
    c = make_daemon(tmp_path)
    c.apply()
    (tmp_path / "drain.json").write_text(json.dumps({"drain": ["1.1.1.3"]}))
    with caplog.at_level(logging.INFO, logger="lbha-checker"):
        assert c.reload()
    assert "Draining service [1.1.1.3]:tcp:80 of VS [1.1.1.111]:tcp:80" in caplog.text
    assert c.apply() == "updated"
    update = c.plane.loaded[-1]
    assert "flows_" not in update and "delete" not in update
    assert bucket_counts(c) == {WEB2: 251}

    (tmp_path / "drain.json").write_text(json.dumps({"drain": []}))
    with caplog.at_level(logging.INFO, logger="lbha-checker"):
        assert c.reload()
    assert "Undraining service [1.1.1.3]:tcp:80 to VS [1.1.1.111]:tcp:80" in caplog.text
    c.apply()
    assert set(bucket_counts(c)) == {WEB1, WEB2}
    assert servers(c)["1.1.1.3"]["weight"] == 1


def test_an_invalid_drain_file_refuses_the_reload_and_keeps_the_drain(tmp_path, caplog):
    c = make_daemon(tmp_path, drain={"drain": ["1.1.1.3"]})
    (tmp_path / "drain.json").write_text("{broken")
    with caplog.at_level(logging.ERROR, logger="lbha-checker"):
        assert not c.reload()
    assert "Reload refused" in caplog.text and "drain.json: not valid JSON" in caplog.text
    c.apply()
    assert bucket_counts(c) == {WEB2: 251}


@pytest.mark.parametrize("doc, message", [
    (["1.1.1.3"], "expected {\"drain\""),
    ({"drain": "1.1.1.3"}, "expected {\"drain\""),
    ({"drain": ["web1"]}, "drain[0]: 'web1' is not an IPv4 address"),
    ({"drain": ["1.1.1.3:0"]}, "drain[0]: '1.1.1.3:0'"),
    ({"drain": ["1.1.1.3:http"]}, "drain[0]: '1.1.1.3:http'"),
    ({"drain": [None]}, "drain[0]: None"),
])
def test_load_drain_rejects_bad_documents(tmp_path, doc, message):
    path = tmp_path / "drain.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(nft.DataplaneError) as err:
        checker.load_drain(str(path))
    assert message in str(err.value)


def test_draining_every_server_loses_quorum_and_uses_the_sorry_server(tmp_path):
    doc = doc_dict(sorry_server={"address": "1.1.1.5", "port": 80})
    c = make_daemon(tmp_path, doc=doc)
    c.apply()
    c.set_drain(frozenset(["1.1.1.3", "1.1.1.4"]))
    assert c.dirty and not c.vss[0].quorum_up
    c.apply()
    assert bucket_counts(c) == {nft.server_id("1.1.1.5"): 251}


def test_main_refuses_an_invalid_drain_file(tmp_path, checkerd):
    cfg = tmp_path / "dataplane.json"
    cfg.write_text(json.dumps(doc_dict()))
    (tmp_path / "drain.json").write_text(json.dumps({"drain": ["nope"]}))
    assert checkerd.main(["--config", str(cfg), "--state", str(tmp_path / "s.json"), "--check-config"]) == 2


def test_main_check_config_renders_without_the_drained_server(tmp_path, capsys, checkerd):
    cfg = tmp_path / "dataplane.json"
    cfg.write_text(json.dumps(doc_dict()))
    drain = tmp_path / "elsewhere.json"
    drain.write_text(json.dumps({"drain": ["1.1.1.4"]}))
    assert checkerd.main(["--config", str(cfg), "--state", str(tmp_path / "s.json"),
                         "--drain", str(drain), "--check-config"]) == 0
    out = capsys.readouterr().out
    assert "0x%08x" % WEB1 in out
    elements = out.split("add element netdev lbha buckets_", 1)[1].split("}", 1)[0]
    assert elements.count("0x%08x" % WEB1) == 251
    assert "0x%08x" % WEB2 not in elements
