# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The test client: learns MACs from gratuitous ARP and receives notification e-mails."""
from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import uuid

from lbha_suite.cluster import DRIVER, REAL_SERVERS


def test_client_accepts_gratuitous_arp(client):
    assert client.sysctl("net.ipv4.conf.all.arp_accept") == "1"
    assert client.sysctl("net.ipv4.conf.%s.arp_accept" % client.interface) == "1"


def test_smtp_receiver_stores_a_message(topology, client, scenario):
    subject = "lbha-test-%s" % uuid.uuid4().hex
    # sent from a real server, as keepalived on a director would send it
    script = (
        "import smtplib; s = smtplib.SMTP('%s', 25, timeout=5); "
        "s.sendmail('keepalived@lbha.test', ['sysadmin@lbha.test'], "
        "'Subject: %s\\r\\n\\r\\nbody\\r\\n'); s.quit()" % (scenario.client_address, subject))
    topology[sorted(REAL_SERVERS)[0]].check("python3", "-c", script)
    found = client.run("grep", "-rl", "Subject: %s" % subject, DRIVER.maildir + "/new")
    assert found.returncode == 0 and found.stdout.strip(), "message %s not in %s/new" % (subject, DRIVER.maildir)
