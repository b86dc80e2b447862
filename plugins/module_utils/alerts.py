# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Notification mail of the nftables plane's checker, as keepalived's checker sends it.

On the ipvs plane keepalived mails when a real server fails or recovers, and when a virtual
server loses or regains its quorum (``smtp_alert``, see ``model._resolve_alerts`` for which
server mails). The nftables plane's checker sends the same mails through the same
``global_defs`` settings, with keepalived's subjects::

    [ROUTER_ID] Realserver [1.1.1.3]:tcp:80 of virtual server [1.1.1.111]:tcp:80 - DOWN
    [ROUTER_ID] Virtualserver [1.1.1.111]:tcp:80 - UP

and a body that also names the real server's inventory host and the check's last error.

:class:`Mailer` sends from a thread of its own, so a slow or absent SMTP server never delays a
health check: messages wait in a bounded queue (the oldest is dropped, and logged, when it is
full) and each one is tried once, as keepalived does. Pure Python 3, standard library only.
"""
from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import collections
import email.message
import email.policy
import email.utils
import smtplib
import socket
import threading

from .health import LOG
from .probes import service_name

DEFAULT_SMTP_PORT = 25
# Headers on one line, as keepalived writes them (RFC 5322's limit is 998 characters): the
# standard library folds at 78, and Python 3.11 folds a subject of 70-odd characters right
# after "Subject:", which some readers (Python's own parser among them) take for an empty one.
POLICY = email.policy.default.clone(max_line_length=998)
DEFAULT_CONNECT_TIMEOUT = 30       # keepalived's smtp_connect_timeout default
QUEUE_LIMIT = 64


def settings(global_defs):
    """The mail settings of a normalised model's ``global_defs``; None when it cannot mail."""
    if not global_defs.get("notification_email") or not global_defs.get("smtp_server"):
        return None
    router_id = global_defs.get("router_id")
    return {"to": list(global_defs["notification_email"]),
            "from": global_defs.get("notification_email_from") or "keepalived@%s" % (router_id or "localhost"),
            "server": global_defs["smtp_server"],
            "port": global_defs.get("smtp_port") or DEFAULT_SMTP_PORT,
            "helo": global_defs.get("smtp_helo_name") or "localhost",
            "timeout": global_defs.get("smtp_connect_timeout") or DEFAULT_CONNECT_TIMEOUT,
            "router_id": router_id}


def _subject(router_id, text):
    return "[%s] %s" % (router_id, text) if router_id else text


def real_server_message(mail, vs, rs, up, kind, error=None):
    """``(subject, body)`` of a real server's transition (``kind``: the check type)."""
    name = service_name(rs["address"], rs["port"], vs["protocol"])
    subject = _subject(mail.get("router_id"), "Realserver %s of virtual server %s - %s" % (
        name, service_name(vs["address"], vs["port"], vs["protocol"]), "UP" if up else "DOWN"))
    lines = ["=> %s %s on service <=" % (kind.replace("_", " "), "succeed" if up else "failed")]
    if rs.get("name"):
        lines.append("Real server: %s (%s)" % (rs["name"], name))
    if not up and error:
        lines.append("Last error: %s" % error)
    return subject, "\n".join(lines) + "\n"


def quorum_message(mail, vs, up, alive_weight):
    """``(subject, body)`` of a virtual server that gained or lost its quorum."""
    subject = _subject(mail.get("router_id"), "Virtualserver %s - %s" % (
        service_name(vs["address"], vs["port"], vs["protocol"]), "UP" if up else "DOWN"))
    if up:
        body = "=> Gained quorum %d+%d=%d <= %d <=\n" % (
            vs["quorum"], vs["hysteresis"], vs["quorum"] + vs["hysteresis"], alive_weight)
    else:
        body = "=> Lost quorum %d-%d=%d > %d <=\n" % (
            vs["quorum"], vs["hysteresis"], vs["quorum"] - vs["hysteresis"], alive_weight)
    return subject, body


def build(mail, subject, body, now=None):
    """The message as an ``email.message.EmailMessage``."""
    msg = email.message.EmailMessage(policy=POLICY)
    msg["From"] = mail["from"]
    msg["To"] = ", ".join(mail["to"])
    msg["Subject"] = subject
    msg["Date"] = email.utils.formatdate(now, localtime=True)
    msg["X-Mailer"] = "lbha-checker"
    msg.set_content(body)
    return msg


def send(mail, msg, smtp_factory=smtplib.SMTP):
    """Deliver ``msg`` once; raises OSError or smtplib.SMTPException when it cannot."""
    with smtp_factory(mail["server"], mail["port"], local_hostname=mail["helo"], timeout=mail["timeout"]) as smtp:
        smtp.send_message(msg, from_addr=email.utils.parseaddr(mail["from"])[1] or mail["from"],
                          to_addrs=[email.utils.parseaddr(t)[1] or t for t in mail["to"]])


class Mailer(object):
    """A queue of messages and the thread that sends them."""

    def __init__(self, sender=send, limit=QUEUE_LIMIT):
        self.sender = sender
        self.limit = limit
        self.queue = collections.deque()
        self.cond = threading.Condition()
        self.thread = None
        self.stopping = False
        self.sent = 0
        self.failed = 0
        self.dropped = 0

    def submit(self, mail, subject, body):
        """Queue one message for ``mail`` (settings); False (and nothing queued) when mail is None."""
        if not mail:
            return False
        with self.cond:
            if len(self.queue) >= self.limit:
                _old_mail, old_subject, _old_body = self.queue.popleft()
                self.dropped += 1
                LOG.error("Mail queue full (%d); dropped: %s", self.limit, old_subject)
            self.queue.append((mail, subject, body))
            self.cond.notify()
        self.start()
        return True

    def start(self):
        with self.cond:
            if self.thread is None or not self.thread.is_alive():
                self.stopping = False
                self.thread = threading.Thread(target=self._run, name="mailer", daemon=True)
                self.thread.start()

    def stop(self, wait=0.0):
        """Stop the thread after the messages already queued (waiting at most ``wait`` seconds)."""
        with self.cond:
            self.stopping = True
            self.cond.notify()
        if self.thread is not None:
            self.thread.join(wait)

    def deliver_one(self):
        """Send the oldest queued message (tests and the thread); False when none is queued."""
        with self.cond:
            if not self.queue:
                return False
            mail, subject, body = self.queue.popleft()
        try:
            self.sender(mail, build(mail, subject, body))
            self.sent += 1
            LOG.info("Mail sent to %s: %s", ", ".join(mail["to"]), subject)
        except (OSError, smtplib.SMTPException, socket.timeout) as exc:
            self.failed += 1
            LOG.error("Cannot mail %s through %s:%d: %s", subject, mail["server"], mail["port"], exc)
        return True

    def _run(self):
        while True:
            with self.cond:
                while not self.queue and not self.stopping:
                    self.cond.wait()
                if not self.queue and self.stopping:
                    return
            self.deliver_one()
