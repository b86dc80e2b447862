# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Drained real servers of the host document: weight 0 for them, read at start and on reload."""
from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import json
import logging

import pytest

from ansible_collections.lbha.cluster.plugins.module_utils import checker, nft
from ansible_collections.lbha.cluster.tests.unit.plugins.module_utils.checker_doubles import (
    Clock, FakePlane, bucket_counts, host_document, rs_dict, vs_dict)


def ok():
    return True, None, None


def doc_dict(**over):
    """One virtual server over web1 and web2, whose checks never retry."""
    rss = [rs_dict("1.1.1.3", retry=0, delay_before_retry=1), rs_dict("1.1.1.4", retry=0, delay_before_retry=1)]
    vs = vs_dict(real_servers=rss)
    vs.update(over)
    return {"plane": "nftables", "seed": 1525, "table": "lbha", "buckets": 251, "flow_timeout": 300,
            "flow_size": 65536, "virtual_servers": [vs]}


def write(tmp_path, doc=None, drained=()):
    path = tmp_path / "cluster.json"
    path.write_text(json.dumps(host_document(doc or doc_dict(), drained)))
    return path


def make_daemon(tmp_path, doc=None, drained=()):
    path = write(tmp_path, doc, drained)
    c = checker.Checker(FakePlane(), str(path), str(tmp_path / "state.json"), clock=Clock(),
                        probe_factory=lambda rs, check: ok)
    c.start_threads = lambda: None      # no real threads in a unit test
    nft_doc, drain = checker.load_document(str(path))
    c.set_drain(drain)
    c.configure(nft_doc)
    return c


def servers(c):
    return {rs["address"]: rs for rs in c.state()["virtual_servers"][0]["real_servers"]}


WEB1, WEB2 = nft.server_id("1.1.1.3"), nft.server_id("1.1.1.4")


def test_nothing_drained(tmp_path):
    c = make_daemon(tmp_path)
    c.apply()
    assert bucket_counts(c) == {WEB1: 126, WEB2: 125} or bucket_counts(c) == {WEB1: 125, WEB2: 126}
    assert [rs["drained"] for rs in servers(c).values()] == [False, False]


@pytest.mark.parametrize("entry", ["1.1.1.3", "1.1.1.3:80"])
def test_a_drained_server_gets_no_buckets_and_reports_weight_0(tmp_path, entry):
    c = make_daemon(tmp_path, drained=[entry])
    c.apply()
    assert bucket_counts(c) == {WEB2: 251}
    state = servers(c)
    assert state["1.1.1.3"]["drained"] is True and state["1.1.1.3"]["weight"] == 0
    assert state["1.1.1.3"]["healthy"] is True and state["1.1.1.3"]["buckets"] == 0
    assert state["1.1.1.4"]["drained"] is False and state["1.1.1.4"]["weight"] == 1
    # the server stays in the servers map, so its pinned flows keep being forwarded
    assert c.tables["TCP/1.1.1.111:80"]["servers"][WEB1] == "1.1.1.3"


def test_a_drain_on_another_port_does_not_match(tmp_path):
    c = make_daemon(tmp_path, drained=["1.1.1.3:443"])
    c.apply()
    assert set(bucket_counts(c)) == {WEB1, WEB2}


def test_reload_drains_and_undrains_without_touching_the_flow_maps(tmp_path, caplog):
    c = make_daemon(tmp_path)
    c.apply()
    write(tmp_path, drained=["1.1.1.3"])
    with caplog.at_level(logging.INFO, logger="lbha-checker"):
        assert c.reload()
    assert "Draining service [1.1.1.3]:tcp:80 of VS [1.1.1.111]:tcp:80" in caplog.text
    assert c.apply() == "updated"
    update = c.plane.loaded[-1]
    assert "flows_" not in update and "delete" not in update
    assert bucket_counts(c) == {WEB2: 251}

    write(tmp_path)
    with caplog.at_level(logging.INFO, logger="lbha-checker"):
        assert c.reload()
    assert "Undraining service [1.1.1.3]:tcp:80 to VS [1.1.1.111]:tcp:80" in caplog.text
    c.apply()
    assert set(bucket_counts(c)) == {WEB1, WEB2}
    assert servers(c)["1.1.1.3"]["weight"] == 1


def test_a_broken_document_refuses_the_reload_and_keeps_the_drain(tmp_path, caplog):
    c = make_daemon(tmp_path, drained=["1.1.1.3"])
    (tmp_path / "cluster.json").write_text("{broken")
    with caplog.at_level(logging.ERROR, logger="lbha-checker"):
        assert not c.reload()
    assert "Reload refused" in caplog.text and "cluster.json: not valid JSON" in caplog.text
    c.apply()
    assert bucket_counts(c) == {WEB2: 251}


def test_draining_every_server_loses_quorum_and_uses_the_sorry_server(tmp_path):
    doc = doc_dict(sorry_server={"address": "1.1.1.5", "port": 80})
    c = make_daemon(tmp_path, doc=doc)
    c.apply()
    c.set_drain(frozenset(["1.1.1.3", "1.1.1.4"]))
    assert c.dirty and not c.vss[0].quorum_up
    c.apply()
    assert bucket_counts(c) == {nft.server_id("1.1.1.5"): 251}


def test_main_check_config_renders_without_the_drained_server(tmp_path, capsys, checkerd):
    path = write(tmp_path, drained=["1.1.1.4"])
    assert checkerd.main(["--document", str(path), "--state", str(tmp_path / "s.json"), "--check-config"]) == 0
    out = capsys.readouterr().out
    assert "0x%08x" % WEB1 in out
    elements = out.split("add element netdev lbha buckets_", 1)[1].split("}", 1)[0]
    assert elements.count("0x%08x" % WEB1) == 251
    assert "0x%08x" % WEB2 not in elements
