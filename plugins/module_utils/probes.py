# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Health probes of the nftables plane's checker, with keepalived's semantics.

A probe is a callable that returns ``(ok, error, weight)``; ``weight`` is None unless a
MISC_CHECK with ``misc_dynamic`` set it. The checks come from the model with keepalived's
defaults already filled in (``connect_timeout``, ``retry``, ``delay_before_retry``, ...):

* TCP_CHECK connects to ``connect_ip`` (default: the real server) ``connect_port`` (default:
  its port) within ``connect_timeout``;
* HTTP_GET / SSL_GET fetch every ``url`` path with a ``Host`` header (``virtualhost``, else the
  address) and compare the status with ``status_code`` (any 2xx when empty) and, when set, the
  MD5 ``digest`` of the body;
* MISC_CHECK runs ``misc_path``: running a program is the daemon's business
  (``lbha_checkerd.py``), which hands its factory to :func:`make_probe`.
"""
from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import hashlib
import http.client
import socket
import ssl

MAX_BODY = 16 * 1024 * 1024


class ProbeError(ValueError):
    """A check this checker cannot run."""


def service_name(address, port, protocol):
    """keepalived's way of naming a service in its log: ``[1.1.1.3]:tcp:80``."""
    return "[%s]:%s:%d" % (address, protocol.lower(), port)


def tcp_probe(host, port, timeout):
    def probe():
        try:
            sock = socket.create_connection((host, port), timeout=timeout)
        except socket.timeout:
            return False, "TCP connection to [%s]:tcp:%d timeout" % (host, port), None
        except OSError as exc:
            return False, "TCP connection to [%s]:tcp:%d failed: %s" % (
                host, port, exc.strerror or exc), None
        sock.close()
        return True, None, None
    return probe


def http_probe(host, port, timeout, urls, virtualhost=None, tls=False):
    name = "[%s]" % host if ":" in host else host       # an IPv6 literal in a Host header is bracketed
    host_header = virtualhost or (name if port in (80, 443) else "%s:%d" % (name, port))
    kind = "SSL" if tls else "HTTP"

    def fetch(path):
        if tls:
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            conn = http.client.HTTPSConnection(host, port, timeout=timeout, context=ctx)
        else:
            conn = http.client.HTTPConnection(host, port, timeout=timeout)
        try:
            conn.request("GET", path, headers={"Host": host_header, "User-Agent": "lbha-checker",
                                               "Connection": "close"})
            resp = conn.getresponse()
            body = resp.read(MAX_BODY)
            return resp.status, body
        finally:
            conn.close()

    def probe():
        for url in urls:
            path = url.get("path") or "/"
            try:
                status, body = fetch(path)
            except socket.timeout:
                return False, "%s request to [%s]:tcp:%d url(%s) timeout" % (kind, host, port, path), None
            except (OSError, http.client.HTTPException) as exc:
                return False, "%s request to [%s]:tcp:%d url(%s) failed: %s" % (
                    kind, host, port, path, getattr(exc, "strerror", None) or exc), None
            codes = url.get("status_code") or []
            if (codes and status not in codes) or (not codes and not 200 <= status < 300):
                return False, "HTTP status code error to [%s]:tcp:%d url(%s), status_code [%d]" % (
                    host, port, path, status), None
            digest = url.get("digest")
            if digest:
                got = hashlib.md5(body).hexdigest()
                if got.lower() != str(digest).lower():
                    return False, "MD5 digest error to [%s]:tcp:%d url[%s], MD5SUM [%s]" % (
                        host, port, path, got), None
        return True, None, None
    return probe


def make_probe(rs, check, misc_probe=None):
    """The probe of one real server's check (as the model normalised it; None: always up).

    ``misc_probe(command, timeout, dynamic)`` builds MISC_CHECK probes; without it a MISC_CHECK
    is refused (ProbeError).
    """
    if check is None:
        return lambda: (True, None, None)
    kind = check["type"]
    if kind == "MISC_CHECK":
        if misc_probe is None:
            raise ProbeError("MISC_CHECK needs the daemon's program runner")
        return misc_probe(check["misc_path"], float(check["misc_timeout"]), bool(check.get("misc_dynamic")))
    host = check.get("connect_ip") or rs["address"]
    port = int(check.get("connect_port") or rs["port"])
    timeout = float(check["connect_timeout"])
    if kind == "TCP_CHECK":
        return tcp_probe(host, port, timeout)
    if kind in ("HTTP_GET", "SSL_GET"):
        return http_probe(host, port, timeout, check.get("url") or [{"path": "/"}], check.get("virtualhost"),
                          tls=kind == "SSL_GET")
    raise ProbeError("check type %r is not supported by lbha-checker" % kind)
