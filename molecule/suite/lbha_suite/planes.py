# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Where each forwarding plane keeps its state, as the suite reads it from a director.

The tests are the same for both planes; what differs is which units run and where the live
table of real servers is read: the nftables checker's state file, or the kernel's IPVS table.
"""
from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import json
import re

from .scenario import current

_IPVS_RS = re.compile(r"^\s+->\s+(?P<address>[0-9a-fA-F.:\[\]]+):(?P<port>\d+)\s+\S+\s+(?P<weight>\d+)\s+"
                      r"(?P<active>\d+)\s+(?P<inactive>\d+)")


class NftablesPlane(object):
    """keepalived does VRRP; lbha-checker checks the real servers and programs the netdev table."""

    name = "nftables"
    units = ("keepalived", "lbha-checker")

    def servers(self, host):
        """``{address: {healthy, weight, drained, buckets}}`` from the checker's state file."""
        result = host.run("cat", current().checker_state)
        if result.returncode != 0:
            return {}
        data = json.loads(result.stdout)
        return dict((rs["address"], {"healthy": rs["healthy"], "weight": rs["weight"], "drained": rs["drained"],
                                     "buckets": rs.get("buckets")})
                    for vs in data.get("virtual_servers", []) for rs in vs.get("real_servers", []))


class IpvsPlane(object):
    """keepalived drives the kernel's IPVS table; a failed real server leaves it (weight 0 with
    inhibit_on_failure), a drained one stays with weight 0."""

    name = "ipvs"
    units = ("keepalived",)

    def servers(self, host):
        """``{address: {healthy, weight, drained, active}}`` from ``ipvsadm -L -n`` and the document."""
        listing = host.run("ipvsadm", "-L", "-n")
        if listing.returncode != 0:
            return {}
        doc = host.run("cat", current().document)
        drained = set(json.loads(doc.stdout).get("drained", [])) if doc.returncode == 0 else set()
        out = {}
        for line in listing.stdout.splitlines():
            match = _IPVS_RS.match(line)
            if match:
                address = match.group("address").strip("[]")
                weight = int(match.group("weight"))
                out[address] = {"healthy": True, "weight": weight, "active": int(match.group("active")),
                                "drained": address in drained or "%s:%s" % (address, match.group("port")) in drained}
        return out


def nftables_table_loaded(host):
    """Whether the nftables plane's netdev table is in the host's kernel (whatever the scenario's plane)."""
    return host.run("nft", "list", "table", "netdev", "lbha").returncode == 0


def plane():
    """The plane of the scenario under test."""
    return NftablesPlane() if current().plane == "nftables" else IpvsPlane()
