# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Notification mail: which server mails (the model, keepalived's rule), what keepalived.conf
says, and the nftables checker's mails (alerts.py) through a real SMTP exchange."""
from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import email
import logging
import mailbox
import os
import socket
import subprocess
import sys
import threading

import pytest
from email import policy

from ansible_collections.lbha.cluster.plugins.module_utils import alerts, checker, hostdoc, keepalived, model
from ansible_collections.lbha.cluster.tests.unit.plugins.module_utils.checker_doubles import (
    Clock, FakePlane, doc_dict, rs_dict, vs_dict)

SINK = os.path.join(os.path.dirname(__file__), "..", "..", "..", "..", "molecule", "suite", "lbha_suite",
                    "smtpsink.py")
MAIL = {"notification_email": ["ops@example.com"], "notification_email_from": "lb@example.com",
        "smtp_server": "127.0.0.1"}
DIRECTORS = [{"name": "lb1", "address": "10.0.0.1", "priority": 100},
             {"name": "lb2", "address": "10.0.0.2", "priority": 90}]


def cluster(gd=None, vs_alert=None, rs_alert=None):
    vs = {"address": "10.0.0.100", "port": 80,
          "real_servers": [{"address": "10.0.0.11", "name": "web1"}, {"address": "10.0.0.12"}]}
    if vs_alert is not None:
        vs["smtp_alert"] = vs_alert
    if rs_alert is not None:
        vs["real_servers"][0]["smtp_alert"] = rs_alert
    return {"global_defs": dict(gd if gd is not None else MAIL),
            "vrrp_instances": [{"name": "VI_1", "interface": "eth0", "virtual_router_id": 51,
                                "virtual_ipaddress": ["10.0.0.100/24"]}],
            "virtual_servers": [vs]}


def norm(definition, dataplane="ipvs"):
    return model.normalize(definition, DIRECTORS[0], DIRECTORS, dataplane=dataplane)


# -- which server mails ----------------------------------------------------------------------------

@pytest.mark.parametrize("global_alerts,vs_alert,rs_alert,expected", [
    # keepalived: a real server mails unless told not to; a virtual server only when told to
    ({}, None, None, (False, True, True)),
    ({"smtp_alert": False}, None, None, (False, False, False)),
    ({"smtp_alert": True}, None, None, (True, True, True)),
    # smtp_alert_checker overrides smtp_alert for the checker; smtp_alert_vrrp does not concern it
    ({"smtp_alert": True, "smtp_alert_checker": False}, None, None, (False, False, False)),
    ({"smtp_alert": False, "smtp_alert_checker": True}, None, None, (True, True, True)),
    ({"smtp_alert_vrrp": False}, None, None, (False, True, True)),
    # the server's own setting wins
    ({"smtp_alert_checker": False}, True, True, (True, True, False)),
    ({}, False, False, (False, False, True)),
])
def test_who_mails_follows_keepalived(global_alerts, vs_alert, rs_alert, expected):
    gd = dict(MAIL, **global_alerts)
    m = norm(cluster(gd, vs_alert, rs_alert))
    vs = m["virtual_servers"][0]
    assert (vs["mail"], vs["real_servers"][0]["mail"], vs["real_servers"][1]["mail"]) == expected
    assert m["warnings"] == []


def test_nothing_mails_without_a_recipient_and_a_server():
    for gd in ({}, {"notification_email": ["ops@example.com"]}, {"smtp_server": "127.0.0.1"}):
        m = norm(cluster(dict(gd, smtp_alert=True)))
        vs = m["virtual_servers"][0]
        assert not vs["mail"] and not any(rs["mail"] for rs in vs["real_servers"])
        assert any("smtp_alert" in w and "to send anything" in w for w in m["warnings"]), m["warnings"]


def test_a_server_that_asks_for_mail_without_settings_is_warned_about():
    m = norm(cluster({}, vs_alert=True))
    assert any("virtual_servers[0].smtp_alert" in w for w in m["warnings"]), m["warnings"]
    m = norm(cluster({}, rs_alert=True))
    assert any("real server web1" in w for w in m["warnings"]), m["warnings"]


@pytest.mark.parametrize("where", ["global", "vs", "rs"])
def test_smtp_alert_must_be_a_boolean(where):
    gd, vs_alert, rs_alert = dict(MAIL), None, None
    if where == "global":
        gd["smtp_alert_checker"] = "sometimes"
    elif where == "vs":
        vs_alert = "sometimes"
    else:
        rs_alert = "sometimes"
    with pytest.raises(model.ValidationError, match="smtp_alert"):
        norm(cluster(gd, vs_alert, rs_alert))


# -- keepalived.conf -----------------------------------------------------------------------------

def test_explicit_values_are_rendered_false_included():
    gd = dict(MAIL, smtp_alert=False, smtp_alert_vrrp=True, smtp_alert_checker=False)
    text = keepalived.render(norm(cluster(gd, vs_alert=True, rs_alert=False)))
    globals_block = text.split("global_defs {")[1].split("\n}")[0]
    for line in ("smtp_alert false", "smtp_alert_vrrp true", "smtp_alert_checker false"):
        assert "\n    %s\n" % line in globals_block + "\n", line
    vs_block = text.split("virtual_server 10.0.0.100 80 {")[1]
    assert vs_block.split("real_server")[0].count("smtp_alert true") == 1
    first_rs = vs_block.split("real_server 10.0.0.11 80 {")[1].split("}")[0]
    second_rs = vs_block.split("real_server 10.0.0.12 80 {")[1].split("}")[0]
    assert "smtp_alert false" in first_rs
    assert "smtp_alert" not in second_rs


def test_unset_values_are_not_rendered():
    """Unset means "inherit" to keepalived, which is not false: nothing may be written."""
    text = keepalived.render(norm(cluster()))
    assert "smtp_alert" not in text


def test_an_instance_that_says_false_renders_false():
    definition = cluster(dict(MAIL, smtp_alert=True))
    definition["vrrp_instances"][0]["smtp_alert"] = False
    text = keepalived.render(norm(definition))
    assert "smtp_alert false" in text.split("vrrp_instance VI_1 {")[1].split("\n}")[0]


# -- the nftables checker ------------------------------------------------------------------------

class Recorder(object):
    """A Mailer double: what was submitted."""

    def __init__(self):
        self.messages = []

    def submit(self, mail, subject, body):
        self.messages.append((mail, subject, body))
        return True

    def stop(self, wait=0.0):
        pass


class Flip(object):
    """A probe that fails or succeeds as told."""

    def __init__(self):
        self.ok = True

    def __call__(self):
        return (True, None, None) if self.ok else (False, "TCP connection to [1.1.1.3]:tcp:80 refused", None)


def mail_settings(**over):
    s = alerts.settings(dict(MAIL, router_id="master"))
    s.update(over)
    return s


def checker_with(doc, probes, recorder):
    c = checker.Checker(FakePlane(), "/nonexistent/cluster.json", "/nonexistent/state.json", clock=Clock(),
                        probe_factory=lambda rs, check: probes[rs["address"]], mailer=recorder)
    c.configure(doc)
    return c


def mailing_vs(vs_mail=False, rs_mail=(True, True), quorum=1):
    rss = [rs_dict("1.1.1.3", retry=0), rs_dict("1.1.1.4", retry=0)]
    rss[0]["name"] = "web1"
    for rs, flag in zip(rss, rs_mail):
        rs["mail"] = flag
    return vs_dict(real_servers=rss, mail=vs_mail, quorum=quorum)


def test_a_real_server_that_fails_and_recovers_is_mailed_like_keepalived():
    probes = {"1.1.1.3": Flip(), "1.1.1.4": Flip()}
    doc = dict(doc_dict(mailing_vs()), mail=mail_settings())
    rec = Recorder()
    c = checker_with(doc, probes, rec)
    c.run_all_once()
    assert rec.messages == []
    probes["1.1.1.3"].ok = False
    c.run_all_once()
    probes["1.1.1.3"].ok = True
    c.run_all_once()
    subjects = [s for _m, s, _b in rec.messages]
    assert subjects == ["[master] Realserver [1.1.1.3]:tcp:80 of virtual server [1.1.1.111]:tcp:80 - DOWN",
                        "[master] Realserver [1.1.1.3]:tcp:80 of virtual server [1.1.1.111]:tcp:80 - UP"]
    down, up = rec.messages[0][2], rec.messages[1][2]
    assert "=> TCP CHECK failed on service <=" in down and "web1" in down and "refused" in down
    assert "=> TCP CHECK succeed on service <=" in up and "refused" not in up
    assert all(m is doc["mail"] for m, _s, _b in rec.messages)


def test_a_real_server_that_does_not_mail_is_silent():
    probes = {"1.1.1.3": Flip(), "1.1.1.4": Flip()}
    rec = Recorder()
    c = checker_with(dict(doc_dict(mailing_vs(rs_mail=(False, True))), mail=mail_settings()), probes, rec)
    probes["1.1.1.3"].ok = False
    c.run_all_once()
    assert rec.messages == []
    probes["1.1.1.4"].ok = False
    c.run_all_once()
    assert [s.split(" of ")[0] for _m, s, _b in rec.messages] == ["[master] Realserver [1.1.1.4]:tcp:80"]


def test_no_settings_no_mail():
    probes = {"1.1.1.3": Flip(), "1.1.1.4": Flip()}
    rec = Recorder()
    c = checker_with(dict(doc_dict(mailing_vs(vs_mail=True)), mail=None), probes, rec)
    probes["1.1.1.3"].ok = probes["1.1.1.4"].ok = False
    c.run_all_once()
    assert rec.messages == []


def test_a_virtual_server_that_loses_its_quorum_is_mailed():
    probes = {"1.1.1.3": Flip(), "1.1.1.4": Flip()}
    rec = Recorder()
    c = checker_with(dict(doc_dict(mailing_vs(vs_mail=True, rs_mail=(False, False), quorum=2)),
                          mail=mail_settings()), probes, rec)
    probes["1.1.1.3"].ok = False
    c.run_all_once()
    probes["1.1.1.3"].ok = True
    c.run_all_once()
    assert [(s, b) for _m, s, b in rec.messages] == [
        ("[master] Virtualserver [1.1.1.111]:tcp:80 - DOWN", "=> Lost quorum 2-0=2 > 1 <=\n"),
        ("[master] Virtualserver [1.1.1.111]:tcp:80 - UP", "=> Gained quorum 2+0=2 <= 2 <=\n")]


def test_the_host_document_carries_the_mail_settings():
    m = norm(cluster(dict(MAIL, smtp_port=2525, smtp_helo_name="lb1.example.com", smtp_connect_timeout=5)),
             dataplane="nftables")
    doc = hostdoc.nft_document({"plane": "nftables", "nftables": dict(hostdoc.NFTABLES_DEFAULTS, seed=1),
                                "model": m, "paths": dict(hostdoc.DEFAULT_PATHS)})
    assert doc["mail"] == {"to": ["ops@example.com"], "from": "lb@example.com", "server": "127.0.0.1",
                           "port": 2525, "helo": "lb1.example.com", "timeout": 5, "router_id": "lb1"}
    assert doc["virtual_servers"][0]["real_servers"][0]["mail"] is True
    m = norm(cluster({}), dataplane="nftables")
    assert hostdoc.nft_document({"plane": "nftables", "nftables": {}, "model": m,
                                 "paths": dict(hostdoc.DEFAULT_PATHS)})["mail"] is None


# -- delivery ------------------------------------------------------------------------------------

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def smtp_sink(tmp_path):
    """The test suite's SMTP receiver on 127.0.0.1; yields (port, Maildir path)."""
    port = free_port()
    maildir = str(tmp_path / "mail")
    proc = subprocess.Popen([sys.executable, SINK, "127.0.0.1", str(port), maildir],
                            stdout=subprocess.PIPE, universal_newlines=True)
    try:
        assert proc.stdout.readline().startswith("listening"), "the SMTP receiver did not start"
        yield port, maildir
    finally:
        proc.terminate()
        proc.wait(10)


def test_the_mailer_delivers_through_smtp(smtp_sink):
    port, maildir = smtp_sink
    mailer = alerts.Mailer()
    settings = mail_settings(port=port, to=["ops@example.com", "Night Shift <night@example.com>"],
                             **{"from": "Director <lb@example.com>"})
    assert mailer.submit(settings, "[master] Realserver [1.1.1.3]:tcp:80 of virtual server "
                         "[1.1.1.111]:tcp:80 - DOWN", "=> TCP CHECK failed on service <=\n")
    mailer.stop(wait=10)
    assert (mailer.sent, mailer.failed, mailer.dropped) == (1, 0, 0)
    messages = list(mailbox.Maildir(maildir, create=False,
                                    factory=lambda f: email.message_from_binary_file(f, policy=policy.default)))
    assert len(messages) == 1
    msg = messages[0]
    assert msg["Subject"].endswith("of virtual server [1.1.1.111]:tcp:80 - DOWN")
    assert msg["X-MailFrom"] == "<lb@example.com>"
    assert sorted(r.strip() for r in msg["X-RcptTo"].split(",")) == ["<night@example.com>", "<ops@example.com>"]
    assert "TCP CHECK failed" in msg.get_body().get_content()


@pytest.mark.parametrize("subject", [
    "[lb2] Realserver [1.1.1.3]:tcp:80 of virtual server [1.1.1.112]:tcp:80 - DOWN",
    "[master] Realserver [1.1.1.3]:tcp:80 of virtual server [1.1.1.111]:tcp:80 - DOWN",
    "[a-router-id-of-sixty-four-characters-is-what-keepalived-accepts-] Realserver "
    "[2001:db8:ffff:ffff:ffff:ffff:ffff:ffff]:tcp:65535 of virtual server "
    "[2001:db8:ffff:ffff:ffff:ffff:ffff:fffe]:tcp:65535 - DOWN",
])
def test_the_subject_is_one_line_as_keepalived_writes_it(smtp_sink, subject):
    port, maildir = smtp_sink
    mailer = alerts.Mailer()
    mailer.submit(mail_settings(port=port), subject, "body\n")
    mailer.stop(wait=10)
    assert (mailer.sent, mailer.failed) == (1, 0)
    raw = [mailbox.Maildir(maildir, create=False).get_bytes(key) for key in mailbox.Maildir(maildir, create=False).keys()]
    assert len(raw) == 1
    assert ("Subject: %s" % subject).encode("ascii") in raw[0].splitlines()
    msg = email.message_from_bytes(raw[0], policy=policy.default)
    assert str(msg["Subject"]) == subject


def test_an_unreachable_server_is_logged_and_does_not_stop_the_mailer(caplog):
    mailer = alerts.Mailer()
    closed = mail_settings(port=free_port(), timeout=2)
    with caplog.at_level(logging.ERROR, logger="lbha-checker"):
        mailer.submit(closed, "first", "body")
        mailer.submit(closed, "second", "body")
        mailer.stop(wait=10)
    assert (mailer.sent, mailer.failed) == (0, 2)
    assert "Cannot mail first through 127.0.0.1" in caplog.text


def test_a_full_queue_drops_the_oldest(caplog):
    sent = []
    mailer = alerts.Mailer(sender=lambda mail, msg: sent.append(msg["Subject"]), limit=2)
    mailer.start = lambda: None           # no thread: deliver by hand
    with caplog.at_level(logging.ERROR, logger="lbha-checker"):
        for subject in ("one", "two", "three"):
            mailer.submit(mail_settings(), subject, "body")
    while mailer.deliver_one():
        pass
    assert sent == ["two", "three"] and mailer.dropped == 1
    assert "dropped: one" in caplog.text


def test_a_slow_server_does_not_delay_the_checks():
    """submit() returns while the sender is stuck in a delivery; the thread sends afterwards."""
    release = threading.Event()
    delivering = threading.Event()

    def stuck(mail, msg):
        delivering.set()
        release.wait(30)

    mailer = alerts.Mailer(sender=stuck)
    mailer.submit(mail_settings(), "one", "body")
    assert delivering.wait(10), "the mailer thread did not start a delivery"
    mailer.submit(mail_settings(), "two", "body")
    assert mailer.sent == 0 and len(mailer.queue) == 1
    release.set()
    mailer.stop(wait=10)
    assert mailer.sent == 2 and not mailer.queue
