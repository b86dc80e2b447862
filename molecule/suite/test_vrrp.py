# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The VRRP instance each director runs is the one the scenario's inventory asks for: multicast or
unicast peers, preemption or nopreempt, mail on transitions or not (the wire itself is checked by
test_failover.py's advert capture)."""
from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import re

from lbha_suite.cluster import DIRECTORS, INSTANCE, SCENARIO

KEEPALIVED_CONF = "/etc/keepalived/keepalived.conf"


def _instance(director):
    conf = director.check("cat", KEEPALIVED_CONF)
    match = re.search(r"^vrrp_instance %s \{\n(.*?)^\}" % re.escape(INSTANCE), conf, re.MULTILINE | re.DOTALL)
    assert match, "no vrrp_instance %s in %s of %s" % (INSTANCE, KEEPALIVED_CONF, director.name)
    return match.group(1)


def test_the_transport_is_the_inventorys(director):
    block = _instance(director)
    peer_block = re.search(r"^\s*unicast_peer \{\n(.*?)^\s*\}", block, re.MULTILINE | re.DOTALL)
    if not SCENARIO.unicast:
        assert peer_block is None and "unicast_src_ip" not in block, block
        return
    own = DIRECTORS[director.name]
    peers = sorted(a for n, a in DIRECTORS.items() if n != director.name)
    assert re.search(r"^\s*unicast_src_ip %s$" % re.escape(own), block, re.MULTILINE), block
    assert peer_block and sorted(peer_block.group(1).split()) == peers, block


def test_preemption_and_the_initial_state_are_the_inventorys(director):
    block = _instance(director)
    nopreempt = re.search(r"^\s*nopreempt$", block, re.MULTILINE) is not None
    assert nopreempt is (not SCENARIO.preempt), block
    # with nopreempt every director starts as BACKUP; else the highest priority starts as MASTER
    expected = "MASTER" if SCENARIO.preempt and director.name == SCENARIO.master else "BACKUP"
    assert re.search(r"^\s*state %s$" % expected, block, re.MULTILINE), block
    assert re.search(r"^\s*priority %d$" % SCENARIO.priorities[director.name], block, re.MULTILINE), block


def test_mail_on_transitions_is_the_inventorys(director):
    block = _instance(director)
    alert = re.search(r"^\s*smtp_alert(\s+(true|yes|on))?$", block, re.MULTILINE) is not None
    assert alert is SCENARIO.smtp_alert, block
