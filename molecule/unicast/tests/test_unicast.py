# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What makes this scenario different: VRRP over unicast peers, and nopreempt."""
from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import re

import pytest

from conftest import DIRECTORS, KEEPALIVED_CONF


@pytest.fixture(params=sorted(DIRECTORS))
def director(request, topology):
    return topology[request.param]


def _instance(conf):
    match = re.search(r"^vrrp_instance VI_1 \{\n(.*?)^\}", conf, re.MULTILINE | re.DOTALL)
    assert match, "no vrrp_instance VI_1 in %s" % KEEPALIVED_CONF
    return match.group(1)


def test_instance_uses_unicast_peers(director):
    block = _instance(director.check("cat", KEEPALIVED_CONF))
    own = DIRECTORS[director.name]
    peers = sorted(a for n, a in DIRECTORS.items() if n != director.name)
    assert re.search(r"^\s*unicast_src_ip %s$" % re.escape(own), block, re.MULTILINE)
    peer_block = re.search(r"^\s*unicast_peer \{\n(.*?)^\s*\}", block, re.MULTILINE | re.DOTALL)
    assert peer_block, block
    assert sorted(peer_block.group(1).split()) == peers


def test_instance_is_nopreempt_and_starts_as_backup(director):
    block = _instance(director.check("cat", KEEPALIVED_CONF))
    assert re.search(r"^\s*nopreempt$", block, re.MULTILINE)
    assert re.search(r"^\s*state BACKUP$", block, re.MULTILINE)


def test_instance_mails_its_transitions(director):
    block = _instance(director.check("cat", KEEPALIVED_CONF))
    assert re.search(r"^\s*smtp_alert(\s+(true|yes|on))?$", block, re.MULTILINE)
