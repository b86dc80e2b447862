# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Test doubles and dataplane documents shared by the checker's unit tests."""
from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

from ansible_collections.lbha.cluster.plugins.module_utils import hostdoc, nft


class Clock(object):
    """A clock the test moves by hand."""

    def __init__(self, now=1000.0):
        self.now = now

    def __call__(self):
        return self.now


class FakePlane(object):
    """Records the rulesets the checker loads instead of running nft."""

    def __init__(self):
        self.fp = None
        self.loaded = []

    def fingerprint(self, table):
        return self.fp

    def load(self, text):
        self.loaded.append(text)
        fp = nft.parse_fingerprint(text)
        if fp:
            self.fp = fp

    def delete_table(self, table):
        self.fp = None


def rs_dict(address, weight=1, inhibit=False, retry=3, delay_before_retry=2):
    return {"address": address, "port": 80, "weight": weight, "inhibit_on_failure": inhibit,
            "name": None, "check": {"type": "TCP_CHECK", "connect_timeout": 1, "retry": retry,
                                    "delay_before_retry": delay_before_retry, "connect_port": 80,
                                    "connect_ip": None}}


def vs_dict(**over):
    vs = {"address": "1.1.1.111", "port": 80, "protocol": "TCP", "lb_algo": "rr", "lb_kind": "DR",
          "delay_loop": 6, "persistence_timeout": None, "persistence_granularity": None,
          "quorum": 1, "hysteresis": 0, "sorry_server": None, "interface": "eth0",
          "real_servers": [rs_dict("1.1.1.3"), rs_dict("1.1.1.4")]}
    vs.update(over)
    return vs


def doc_dict(*vss):
    """The nftables plane's document (hostdoc.nft_document's shape)."""
    return {"plane": "nftables", "seed": 1525, "table": "lbha", "buckets": 251, "flow_timeout": 300,
            "flow_size": 65536, "virtual_servers": list(vss) or [vs_dict()]}


def host_document(nft_doc, drained=()):
    """A host document (/etc/lbha/cluster.json) of the nftables plane around ``nft_doc``."""
    return {"format": hostdoc.FORMAT, "version": hostdoc.VERSION, "director": "lb1", "plane": "nftables",
            "paths": dict(hostdoc.DEFAULT_PATHS), "services": dict(hostdoc.DEFAULT_SERVICES),
            "nftables": dict((k, nft_doc[k]) for k in ("table", "seed", "buckets", "flow_timeout", "flow_size")),
            "drained": sorted(drained),
            "model": {"vrrp_instances": [], "virtual_servers": nft_doc["virtual_servers"]}}


def bucket_counts(c, key="TCP/1.1.1.111:80"):
    """{server id: buckets it owns} of one virtual server of a checker."""
    return nft.tables_summary(c.tables[key])
