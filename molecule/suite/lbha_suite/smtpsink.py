# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A minimal SMTP receiver that stores every message in a Maildir (the test client's mailbox).

    python3 smtpsink.py ADDRESS PORT MAILDIR

It speaks the part of SMTP that keepalived's notifier and Python's smtplib use (HELO/EHLO, MAIL,
RCPT, DATA, RSET, NOOP, QUIT), accepts every sender and recipient, and prepends ``X-Peer``,
``X-MailFrom`` and ``X-RcptTo`` headers before storing the message, as aiosmtpd's Mailbox
handler does in the container scenario. It prints ``listening ADDRESS:PORT`` once it accepts
connections. Standard library only: it runs with the host's python3 inside a network namespace.
"""
from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import mailbox
import socketserver
import sys

MAX_LINE = 4096
MAX_MESSAGE = 1 << 20


class SmtpHandler(socketserver.StreamRequestHandler):
    timeout = 60

    def reply(self, text):
        self.wfile.write((text + "\r\n").encode("ascii"))
        self.wfile.flush()

    def read_data(self):
        """The message after DATA, dot-unstuffed; None when the peer went away or sent too much."""
        lines, size = [], 0
        while True:
            line = self.rfile.readline(MAX_LINE + 2)
            if not line:
                return None
            if line in (b".\r\n", b".\n"):
                return b"".join(lines)
            if line.startswith(b"."):
                line = line[1:]
            size += len(line)
            if size > MAX_MESSAGE:
                return None
            lines.append(line)

    def handle(self):
        self.reply("220 lbha-smtp-sink ESMTP")
        sender, recipients = None, []
        while True:
            raw = self.rfile.readline(MAX_LINE + 2)
            if not raw:
                return
            line = raw.decode("latin-1").rstrip("\r\n")
            verb = line.split(" ", 1)[0].upper()
            if verb in ("HELO", "EHLO"):
                self.reply("250 lbha-smtp-sink")
            elif verb == "MAIL":
                sender, recipients = line.partition(":")[2].strip(), []
                self.reply("250 OK")
            elif verb == "RCPT":
                recipients.append(line.partition(":")[2].strip())
                self.reply("250 OK")
            elif verb == "DATA":
                if sender is None or not recipients:
                    self.reply("503 MAIL and RCPT first")
                    continue
                self.reply("354 End data with <CR><LF>.<CR><LF>")
                body = self.read_data()
                if body is None:
                    return
                peer = "%s:%d" % self.client_address[:2]
                head = "X-Peer: %s\r\nX-MailFrom: %s\r\nX-RcptTo: %s\r\n" % (
                    peer, sender, ", ".join(recipients))
                self.server.maildir.add(head.encode("latin-1") + body)
                sender, recipients = None, []
                self.reply("250 OK stored")
            elif verb == "RSET":
                sender, recipients = None, []
                self.reply("250 OK")
            elif verb == "NOOP":
                self.reply("250 OK")
            elif verb == "QUIT":
                self.reply("221 Bye")
                return
            else:
                self.reply("502 Command not implemented")


class SmtpServer(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True

    def __init__(self, address, maildir):
        socketserver.ThreadingTCPServer.__init__(self, address, SmtpHandler)
        self.maildir = mailbox.Maildir(maildir, create=True)


def main(argv):
    if len(argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    address, port, maildir = argv[0], int(argv[1]), argv[2]
    server = SmtpServer((address, port), maildir)
    print("listening %s:%d" % (address, port), flush=True)
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
