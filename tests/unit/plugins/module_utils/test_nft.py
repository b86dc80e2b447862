# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Bucket tables and ruleset text of the nftables DR plane.

Golden files live in tests/unit/fixtures/nft/; regenerate them after an intended change with
``LBHA_UPDATE_GOLDEN=1 pytest tests/unit/plugins/module_utils/test_nft.py`` and review the diff.
"""
from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import copy
import os
import random
from collections import Counter

import pytest

from ansible_collections.lbha.cluster.plugins.module_utils import nft
from ansible_collections.lbha.cluster.tests.unit.plugins.module_utils.checker_doubles import doc_dict as seed_doc
from ansible_collections.lbha.cluster.tests.unit.plugins.module_utils.checker_doubles import vs_dict as seed_vs

FIXTURES = os.path.join(os.path.dirname(__file__), "..", "..", "fixtures", "nft")


def render(doc, down=()):
    tables = {}
    for vs in doc["virtual_servers"]:
        members = [(rs["address"], rs["weight"], rs["address"] not in down) for rs in vs["real_servers"]]
        tables[nft.vs_key(vs)] = nft.vs_table(vs, members, size=doc["buckets"], seed=doc["seed"])
    return nft.render_ruleset(doc, tables)


def check_golden(name, text):
    path = os.path.join(FIXTURES, name)
    if os.environ.get("LBHA_UPDATE_GOLDEN"):
        with open(path, "w") as fh:
            fh.write(text)
    with open(path) as fh:
        assert text == fh.read(), "%s differs from the rendered ruleset" % name


# -- golden rulesets ---------------------------------------------------------------------------

def test_golden_seed():
    text = render(seed_doc())
    check_golden("seed.nft", text)
    assert 'meta pkttype host ip daddr 1.1.1.111 tcp dport 80' in text
    assert "jhash ip saddr . tcp sport mod 251 seed 0x5f5" in text
    assert "persist_" not in text


def test_golden_wrr():
    vs = seed_vs(lb_algo="wrr")
    vs["real_servers"][0]["weight"] = 3
    text = render(seed_doc(vs))
    check_golden("wrr.nft", text)
    assert text.count(": 0x01010103") == 188 and text.count(": 0x01010104") == 63


def test_golden_persistence():
    vs = seed_vs(persistence_timeout=600, persistence_granularity="255.255.255.0")
    text = render(seed_doc(vs))
    check_golden("persistence.nft", text)
    assert "timeout 600s" in text
    assert "jhash ip saddr & 255.255.255.0 mod 251 seed 0x5f5" in text
    assert "ip saddr & 255.255.255.0 map @persist_tcp_1_1_1_111_80 meta mark @live_tcp_1_1_1_111_80" in text
    assert "add element netdev lbha live_tcp_1_1_1_111_80 { 0x01010103, 0x01010104 }" in text


def test_golden_failed_server():
    text = render(seed_doc(), down=("1.1.1.4",))
    check_golden("failed.nft", text)
    # still in the servers map (its flows go on), in no bucket (no new flows)
    assert "0x01010104 : 1.1.1.4" in text
    assert text.count(": 0x01010104") == 0
    assert text.count(": 0x01010103") == 251


def test_golden_multi():
    dns = seed_vs(port=53, protocol="UDP", lb_algo="sh")
    for rs in dns["real_servers"]:
        rs["port"] = 53
    other = seed_vs(address="1.1.2.111", interface="eth1", real_servers=[
        {"address": "1.1.2.3", "port": 80, "weight": 2, "inhibit_on_failure": False, "name": None,
         "check": None}])
    text = render(seed_doc(seed_vs(), dns, other))
    check_golden("multi.nft", text)
    assert "jhash ip saddr mod 251 seed 0x5f5" in text          # sh: client address only
    assert "ip daddr 1.1.1.111 udp dport 53" in text
    assert 'hook ingress device "eth1"' in text


def _v6_vs(**over):
    vs = seed_vs(address="fd6c:6268:6100::111", real_servers=[
        dict(seed_vs()["real_servers"][0], address="fd6c:6268:6100::3"),
        dict(seed_vs()["real_servers"][1], address="fd6c:6268:6100::4")])
    vs.update(over)
    return vs


def test_golden_ipv6():
    text = render(seed_doc(_v6_vs(), _v6_vs(port=443, persistence_timeout=600, persistence_granularity=64)))
    check_golden("ipv6.nft", text)
    assert "meta pkttype host ip6 daddr fd6c:6268:6100::111 tcp dport 80 counter goto vs_tcp_fd6c_6268_6100__111_80" in text
    assert "type mark : ipv6_addr" in text and "ipv4_addr" not in text
    # the port first in the flow key: nft 1.0.6 aborts on an update with the address first
    assert "type inet_service . ipv6_addr : mark" in text
    assert "update @flows_tcp_fd6c_6268_6100__111_80 { tcp sport . ip6 saddr : meta mark }" in text
    assert 'fwd ip6 to meta mark map @servers_tcp_fd6c_6268_6100__111_80 device "eth0"' in text
    # persistence_granularity 64: the client's /64
    assert "jhash ip6 saddr & ffff:ffff:ffff:ffff:: mod 251 seed 0x5f5" in text


def test_ipv6_server_ids_are_stable_nonzero_32_bit_values():
    ids = set(nft.server_id("fd6c:6268:6100::%x" % i) for i in range(1, 2000))
    assert len(ids) == 1999 and all(0 < i < 2 ** 32 for i in ids)
    assert nft.server_id("FD6C:6268:6100:0::3") == nft.server_id("fd6c:6268:6100::3")
    assert nft.server_id("1.1.1.3") == 0x01010103


def test_two_real_servers_with_one_server_id_are_refused(monkeypatch):
    monkeypatch.setattr(nft, "server_id", lambda address: 7)
    with pytest.raises(ValueError, match="have the same server id 0x00000007"):
        nft.vs_table(_v6_vs(), [("fd6c:6268:6100::3", 1, True), ("fd6c:6268:6100::4", 1, True)])


# -- bucket table properties -------------------------------------------------------------------

WEIGHT_SETS = [(1, 1), (3, 1), (1, 1, 1), (5, 3, 2, 1), tuple(range(1, 11)), (1,) * 37, (100, 1), (7,)]


@pytest.mark.parametrize("weights", WEIGHT_SETS)
@pytest.mark.parametrize("size", [251, 64, 1021])
def test_balance_within_one_bucket_of_share(weights, size):
    servers = [("10.0.0.%d" % (i + 1), w, True) for i, w in enumerate(weights)]
    counts = Counter(nft.bucket_table(servers, size=size, seed=7))
    total = float(sum(weights))
    assert sum(counts.values()) == size
    for key, w, _a in servers:
        assert abs(counts[key] - size * w / total) < 1.0, (key, counts[key], size * w / total)


@pytest.mark.parametrize("weights", WEIGHT_SETS[:-1])
def test_server_down_moves_only_its_buckets_and_comes_back(weights):
    servers = [("10.0.0.%d" % (i + 1), w, True) for i, w in enumerate(weights)]
    base = nft.bucket_table(servers, seed=1525)
    for i, (key, w, _a) in enumerate(servers):
        down = list(servers)
        down[i] = (key, w, False)
        table = nft.bucket_table(down, seed=1525)
        moved = [b for b in range(len(base)) if base[b] != table[b]]
        assert moved == [b for b in range(len(base)) if base[b] == key]
        assert key not in table
        assert nft.bucket_table(servers, seed=1525) == base


def test_second_failure_moves_only_that_servers_buckets():
    servers = [("10.0.0.%d" % i, 1, i != 1) for i in range(1, 6)]
    one_down = nft.bucket_table(servers, seed=3)
    servers[1] = ("10.0.0.2", 1, False)
    two_down = nft.bucket_table(servers, seed=3)
    moved = {b for b in range(251) if one_down[b] != two_down[b]}
    assert moved == {b for b in range(251) if one_down[b] == "10.0.0.2"}


def test_failover_buckets_follow_weights():
    servers = [("a", 1, False), ("b", 3, True), ("c", 1, True)]
    base = nft.bucket_table([("a", 1, True), ("b", 3, True), ("c", 1, True)], size=1021, seed=11)
    table = nft.bucket_table(servers, size=1021, seed=11)
    gained = Counter(table[b] for b in range(1021) if base[b] == "a")
    assert gained["b"] > 2 * gained["c"] > 0


@pytest.mark.parametrize("n", [3, 4, 10, 50])
def test_configuration_removal_is_close_to_minimal(n):
    """Removing a server from the configuration re-apportions the quotas: its own buckets move,
    plus a few others (at most 8% of the table), never a reshuffle."""
    servers = [("10.0.1.%d" % i, 1, True) for i in range(n)]
    base = nft.bucket_table(servers, seed=1525)
    for k in range(n):
        smaller = nft.bucket_table(servers[:k] + servers[k + 1:], seed=1525)
        own = base.count(servers[k][0])
        moved = sum(1 for a, b in zip(base, smaller) if a != b)
        assert own <= moved <= own + 0.08 * 251, (n, k, own, moved)


def test_order_does_not_matter():
    servers = [("10.0.0.%d" % (i + 1), (i % 4) + 1, i != 3) for i in range(12)]
    expected = nft.bucket_table(servers, seed=99)
    rng = random.Random(5)
    for _attempt in range(5):
        shuffled = list(servers)
        rng.shuffle(shuffled)
        assert nft.bucket_table(shuffled, seed=99) == expected


def test_ruleset_does_not_depend_on_real_server_order():
    raw = seed_doc()
    rev = copy.deepcopy(raw)
    rev["virtual_servers"][0]["real_servers"].reverse()
    assert render(raw) == render(rev)


def test_seed_changes_the_table_deterministically():
    servers = [("a", 1, True), ("b", 1, True)]
    assert nft.bucket_table(servers, seed=1) == nft.bucket_table(servers, seed=1)
    assert nft.bucket_table(servers, seed=1) != nft.bucket_table(servers, seed=2)


def test_no_active_server_gives_an_empty_table():
    assert nft.bucket_table([("a", 1, False), ("b", 0, True)], size=16) == [None] * 16
    assert nft.bucket_table([], size=4) == [None] * 4


def test_weight_zero_is_drained():
    table = nft.bucket_table([("a", 0, True), ("b", 2, True)], size=32)
    assert set(table) == {"b"}


def test_bucket_table_rejects_bad_input():
    with pytest.raises(ValueError, match="listed twice"):
        nft.bucket_table([("a", 1, True), ("a", 2, True)])
    with pytest.raises(ValueError, match="negative"):
        nft.bucket_table([("a", -1, True)])
    with pytest.raises(ValueError, match="size"):
        nft.bucket_table([("a", 1, True)], size=0)


def test_rr_ignores_weights_wrr_uses_them():
    doc = seed_doc()
    vs = doc["virtual_servers"][0]
    members = [("1.1.1.3", 3, True), ("1.1.1.4", 1, True)]
    rr = Counter(nft.vs_table(vs, members)["buckets"])
    vs["lb_algo"] = "wrr"
    wrr = Counter(nft.vs_table(vs, members)["buckets"])
    assert sorted(rr.values()) == [125, 126]
    assert wrr[nft.server_id("1.1.1.3")] == 188


def test_sorry_server_takes_every_bucket():
    doc = seed_doc(seed_vs(sorry_server={"address": "1.1.1.5", "port": 80}))
    vs = doc["virtual_servers"][0]
    tab = nft.vs_table(vs, [("1.1.1.3", 1, False), ("1.1.1.4", 1, False)], use_sorry=True)
    assert set(tab["buckets"]) == {nft.server_id("1.1.1.5")}
    assert tab["servers"][nft.server_id("1.1.1.3")] == "1.1.1.3"   # old flows keep their server


# -- updates and fingerprints ------------------------------------------------------------------

def test_update_replaces_elements_only():
    doc = seed_doc(seed_vs(persistence_timeout=60))
    vs = doc["virtual_servers"][0]
    tab = nft.vs_table(vs, [("1.1.1.3", 1, True), ("1.1.1.4", 1, False)])
    text = nft.render_update(doc, {nft.vs_key(vs): tab})
    assert "flows_" not in text and "persist_" not in text and "delete" not in text
    assert text.splitlines()[0] == "flush map netdev lbha servers_tcp_1_1_1_111_80"
    assert "flush map netdev lbha buckets_tcp_1_1_1_111_80" in text
    assert "add element netdev lbha live_tcp_1_1_1_111_80 { 0x01010103 }" in text


def test_update_with_no_server_only_flushes():
    doc = seed_doc()
    vs = doc["virtual_servers"][0]
    tab = nft.vs_table(vs, [("1.1.1.3", 1, False), ("1.1.1.4", 1, False)])
    text = nft.render_update(doc, {nft.vs_key(vs): tab})
    assert "add element netdev lbha buckets_" not in text
    assert "flush map netdev lbha buckets_tcp_1_1_1_111_80" in text


def test_fingerprint_covers_structure_not_elements():
    doc = seed_doc()
    fp = nft.structure_fingerprint(doc)
    heavier = copy.deepcopy(doc)
    heavier["virtual_servers"][0]["real_servers"][0]["weight"] = 5
    assert nft.structure_fingerprint(heavier) == fp
    for key, value in (("flow_timeout", 60), ("seed", 1), ("buckets", 127)):
        changed = dict(doc, **{key: value})
        assert nft.structure_fingerprint(changed) != fp, key
    listing = 'table netdev lbha {\n\tcomment "lbha structure %s"\n\tmap x {\n' % fp
    assert nft.parse_fingerprint(listing) == fp
    assert nft.parse_fingerprint("table netdev lbha {\n}") is None
    assert nft.parse_fingerprint("") is None
