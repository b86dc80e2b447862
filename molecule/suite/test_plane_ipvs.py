# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What only the ipvs plane has: the kernel's IPVS table that keepalived programs, direct-routing
counters, health checks that take a real server out of the table on both directors, and
firewalld admitting the services on a director that forwards with IPVS.

Run only in scenarios whose plane is ipvs (conftest.py); the other suite files run on
every plane. The table is read with the collection's own parser (plugins/module_utils/ipvsadm.py);
every expectation comes from the scenario's inventory.
"""
from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import importlib.util
import os

from lbha_suite.cluster import (CLIENT, DIRECTORS, DIRECTOR_BACKUP, DIRECTOR_MASTER, PAGES, REAL_SERVERS,
                                SCENARIO, run_requests, wait_for)
from lbha_suite.scenario import PROJECT_DIR

VS = SCENARIO.cluster["virtual_servers"][0]
SERVICE = "%s/%s:%d" % (VS.get("protocol", "TCP").upper(), VS["address"], int(VS["port"]))
COUNTER_REFRESH = 15     # IPVS folds its per-CPU counters into the listed ones about every 2 s
REQUESTS = 20


def _parser():
    path = os.path.join(PROJECT_DIR, "plugins", "module_utils", "ipvsadm.py")
    spec = importlib.util.spec_from_file_location("lbha_suite_ipvsadm", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


IPVSADM = _parser()


def service(director):
    """The scenario's virtual service in the director's live IPVS table (None when absent)."""
    return IPVSADM.parse_list(director.check("ipvsadm", "-L", "-n")).get(SERVICE)


def stats(director):
    return IPVSADM.parse_stats(director.check("ipvsadm", "-L", "-n", "--stats", "--exact")).get(SERVICE)


def members(director):
    svc = service(director)
    return sorted(rs["address"] for rs in svc["real_servers"].values()) if svc else []


def test_the_ipvs_table_is_the_inventorys(director, steady_cluster):
    svc = wait_for(lambda: service(director), 30, "%s in the IPVS table of %s" % (SERVICE, director.name))
    assert svc["scheduler"] == VS["lb_algo"], svc
    live = dict((rs["address"], rs) for rs in svc["real_servers"].values())
    assert sorted(live) == sorted(REAL_SERVERS.values()), live
    kind = VS.get("lb_kind", "DR").upper()
    assert all(rs["forward"] == kind and rs["weight"] >= 1 for rs in live.values()), live
    assert all(rs["port"] == int(VS["port"]) for rs in live.values()), live
    persistence = int(VS.get("persistence_timeout") or 0)
    assert (svc.get("persistence_timeout") or 0) == persistence, svc


def test_direct_routing_replies_bypass_the_director(topology, steady_cluster):
    """The MASTER forwards every request (its connection counter grows by the requests sent) and
    sends nothing back (OutPkts 0): the real servers answer the client directly, and see its
    own address."""
    lb1 = topology[DIRECTOR_MASTER]
    before = stats(lb1)
    base = before["counters"]["conns"] if before else 0
    polls = run_requests(topology[CLIENT], REQUESTS)
    failed = [p.get("error") or p.get("status") for p in polls if not p["ok"]]
    assert len(polls) == REQUESTS and not failed, failed
    assert {p["page"] for p in polls} == set(PAGES.values())

    def grown_enough():
        now = stats(lb1)
        return now if now and now["counters"]["conns"] >= base + REQUESTS else None

    after = wait_for(grown_enough, COUNTER_REFRESH, "the connection counter of %s to grow by %d" % (DIRECTOR_MASTER, REQUESTS))
    counters = after["counters"]
    assert counters["in_packets"] > 0 and counters["out_packets"] == 0 and counters["out_bytes"] == 0, counters
    grown = dict((key, rs["conns"] - ((before or {}).get("real_servers", {}).get(key, {}).get("conns", 0)))
                 for key, rs in after["real_servers"].items())
    assert len(grown) == len(REAL_SERVERS) and all(v > 0 for v in grown.values()), grown
    client = SCENARIO.client_address
    for name in REAL_SERVERS:
        log = topology[name].check("tail", "-n", str(4 * REQUESTS), "/var/log/nginx/access.log")
        assert any(line.startswith(client + " ") for line in log.splitlines()), (
            "%s logged no request from the client %s (DR keeps the client's address)" % (name, client))


def test_a_failing_real_server_leaves_both_tables_and_returns(topology, steady_cluster):
    """keepalived on the BACKUP checks the real servers too: its table is current when it takes over."""
    name = sorted(REAL_SERVERS)[-1]
    address = REAL_SERVERS[name]
    others = sorted(a for n, a in REAL_SERVERS.items() if n != name)
    check = steady_cluster.checks[name]
    bound = (steady_cluster.delay_loop + check["connect_timeout"]
             + check["retry"] * check["delay_before_retry"] + 5)
    topology[name].check("systemctl", "stop", "nginx", timeout=60)
    try:
        for director in (DIRECTOR_MASTER, DIRECTOR_BACKUP):
            wait_for(lambda d=director: members(topology[d]) == others, bound,
                     lambda d=director: "%s to leave the IPVS table of %s (now %s)" % (address, d, members(topology[d])))
    finally:
        topology[name].check("systemctl", "start", "nginx", timeout=60)
    for director in (DIRECTOR_MASTER, DIRECTOR_BACKUP):
        wait_for(lambda d=director: members(topology[d]) == sorted(REAL_SERVERS.values()),
                 steady_cluster.delay_loop + check["connect_timeout"] + 5,
                 lambda d=director: "%s back in the IPVS table of %s" % (address, d))


def test_firewalld_on_the_director_admits_the_service(director):
    assert director.is_active("firewalld")
    for permanent in (False, True):
        argv = ["firewall-cmd", "--list-ports"] + (["--permanent"] if permanent else [])
        assert "%d/%s" % (int(VS["port"]), VS.get("protocol", "TCP").lower()) in director.check(*argv).split()
    rules = director.check("firewall-cmd", "--list-rich-rules")
    for name, address in DIRECTORS.items():
        if name != director.name:
            assert 'source address="%s"' % address in rules and 'protocol value="vrrp"' in rules, rules


def test_a_connection_the_client_closes_is_closed_on_the_real_server(topology, steady_cluster, director):
    """The director sees one direction of each connection: without the conntrack exemption,
    connection tracking marks the client's FIN invalid, firewalld drops it, and the real server
    keeps the connection half closed (FIN-WAIT-2 / LAST-ACK) until a new connection that reuses
    the client's port meets it and times out."""
    rules = director.check("nft", "list", "table", "inet", "lbha_ipvs")
    assert "ip daddr %s %s dport %d notrack" % (VS["address"], VS.get("protocol", "TCP").lower(),
                                                int(VS["port"])) in rules, rules
    polls = run_requests(topology[CLIENT], REQUESTS)
    assert len(polls) == REQUESTS and all(p["ok"] for p in polls), [p.get("error") for p in polls if not p["ok"]]
    client = SCENARIO.client_address

    def half_closed():
        out = {}
        for name in REAL_SERVERS:
            lines = topology[name].check("ss", "-Htn", "state", "fin-wait-2", "state", "last-ack",
                                         "dst", client).splitlines()
            if lines:
                out[name] = len(lines)
        return out
    wait_for(lambda: not half_closed(), 10,
             lambda: "the real servers to close the client's connections (half closed: %s)" % half_closed())
