# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A director switched from the ipvs plane to nftables and back (what ``lbha_director_dataplane:
auto`` does after a kernel change) keeps nothing of the plane it left.

Run only in scenarios whose plane is ipvs (conftest.py): a director there can run both planes.
make test leaves it out (two converges of a director under emulation, about 10 minutes);
``molecule test -s ipvs`` runs it.
"""
from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import json

from lbha_suite.cluster import CLIENT, DIRECTOR_BACKUP, REAL_SERVERS, SCENARIO, run_requests, vrrp_state, wait_for
from lbha_suite.planes import nftables_table_loaded
from lbha_suite.playbooks import run_playbook
from test_plane_ipvs import REQUESTS, SERVICE, members, service


def converge(inventory, host, plane):
    """site.yml on one director with the plane forced (what `auto` does after a kernel change)."""
    result = run_playbook(inventory, "site", {"lbha_director_dataplane": plane}, extra_args=("--limit", host))
    assert result.returncode == 0, result.tail()
    return result


def plane_left_behind(host):
    """What each plane leaves on a director, by plane: the names of what is present."""
    present = {"ipvs": [], "nftables": []}
    if service(host):
        present["ipvs"].append("IPVS service %s" % SERVICE)
    if host.run("nft", "list", "table", "inet", "lbha_ipvs").returncode == 0:
        present["ipvs"].append("table inet lbha_ipvs")
    if host.run("test", "-e", "/etc/sysctl.d/90-lbha-ipvs.conf").returncode == 0:
        present["ipvs"].append("/etc/sysctl.d/90-lbha-ipvs.conf")
    if nftables_table_loaded(host):
        present["nftables"].append("table netdev lbha")
    if host.is_active("lbha-checker") or host.is_enabled("lbha-checker"):
        present["nftables"].append("lbha-checker.service")
    if host.run("test", "-e", SCENARIO.checker_state).returncode == 0:
        present["nftables"].append(SCENARIO.checker_state)
    return present


def test_a_plane_switch_leaves_nothing_of_the_other_plane(topology, steady_cluster, inventory):
    """The BACKUP director goes to the nftables plane and back to ipvs: each time the document
    names the new plane, the new plane is complete, nothing of the old one stays, lb2 stays
    BACKUP and the client is served through the MASTER throughout."""
    lb2 = topology[DIRECTOR_BACKUP]
    try:
        converge(inventory, DIRECTOR_BACKUP, "nftables")
        assert json.loads(lb2.check("cat", SCENARIO.document))["plane"] == "nftables"
        expected = {"ipvs": [], "nftables": ["table netdev lbha", "lbha-checker.service", SCENARIO.checker_state]}
        wait_for(lambda: plane_left_behind(lb2) == expected, 30,
                 lambda: "lb2 on the nftables plane alone (%s)" % plane_left_behind(lb2))
        assert vrrp_state(lb2) == "BACKUP"
        polls = run_requests(topology[CLIENT], REQUESTS)
        assert all(p["ok"] for p in polls), [p.get("error") or p.get("status") for p in polls if not p["ok"]]
    finally:
        converge(inventory, DIRECTOR_BACKUP, "ipvs")
    assert json.loads(lb2.check("cat", SCENARIO.document))["plane"] == "ipvs"
    expected = {"ipvs": ["IPVS service %s" % SERVICE, "table inet lbha_ipvs", "/etc/sysctl.d/90-lbha-ipvs.conf"],
                "nftables": []}
    wait_for(lambda: plane_left_behind(lb2) == expected, 30,
             lambda: "lb2 on the ipvs plane alone (%s)" % plane_left_behind(lb2))
    assert members(lb2) == sorted(REAL_SERVERS.values())
    assert vrrp_state(lb2) == "BACKUP"
    polls = run_requests(topology[CLIENT], REQUESTS)
    assert all(p["ok"] for p in polls), [p.get("error") or p.get("status") for p in polls if not p["ok"]]
