# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Kernel settings a role owns: one file under /etc/sysctl.d (read by systemd-sysctl at boot)
and the same values live under /proc/sys, compared and set in one call.

With ``exclusive`` the file is the caller's own (``key=value`` lines, sorted, under a header) and
is rewritten whole; otherwise (:func:`merge`) only the lines of the managed keys change, every
other line of the file stays as it is, and a missing key is appended.
A key is a dotted name (``net.ipv4.conf.lo.arp_ignore``); an interface whose name holds a dot is
written with ``/`` separators, as sysctl(8) accepts (``net/ipv4/conf/eth0.100/arp_ignore``).
Pure Python, no Ansible import.
"""
from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import os
import re

PROC = "/proc/sys"
KEY = re.compile(r"^[A-Za-z0-9_./-]+$")


class SysctlError(ValueError):
    """A setting that cannot be applied; the message names it."""


def proc_path(key, root=None):
    """The /proc/sys file of ``key``."""
    if not KEY.match(key) or ".." in key.split("/") or key.startswith(("/", ".")):
        raise SysctlError("%r is not a sysctl name" % key)
    relative = key if "/" in key else key.replace(".", "/")
    return os.path.join(root or PROC, relative)


def normalise(settings):
    """``{key: value}`` with values as the kernel prints them (whitespace collapsed)."""
    out = {}
    for key, value in (settings or {}).items():
        if isinstance(value, bool):
            raise SysctlError("%s: a boolean is not a sysctl value (use 0 or 1)" % key)
        proc_path(key)
        out[key] = " ".join(str(value).split())
        if not out[key]:
            raise SysctlError("%s: empty value" % key)
    return out


def render(settings, header):
    lines = ["# %s" % line for line in header.splitlines()]
    lines += ["%s=%s" % (key, settings[key]) for key in sorted(settings)]
    return "\n".join(lines) + "\n"


def _line_key(line):
    """The key a sysctl.d line sets (a leading ``-`` ignores errors), or None."""
    text = line.strip()
    if not text or text.startswith(("#", ";")) or "=" not in text:
        return None
    return text.split("=", 1)[0].strip().lstrip("-").strip()


def merge(text, settings, header):
    """``text`` (a sysctl.d file, or None) with the managed keys set to ``settings``: their lines
    replaced in place (a repeated one dropped), missing keys appended, every other line kept."""
    if text is None:
        return render(settings, header)
    out, seen = [], set()
    for line in text.splitlines():
        key = _line_key(line)
        if key in settings:
            if key not in seen:
                seen.add(key)
                out.append("%s=%s" % (key, settings[key]))
            continue
        out.append(line)
    out += ["%s=%s" % (key, settings[key]) for key in sorted(settings) if key not in seen]
    return "\n".join(out) + "\n"


def live(settings, root=None):
    """``{key: value}`` of what the kernel has now (None for a key it does not know)."""
    out = {}
    for key in settings:
        try:
            with open(proc_path(key, root)) as fh:
                out[key] = " ".join(fh.read().split())
        except (IOError, OSError):
            out[key] = None
    return out


def to_set(settings, have, allow_missing=False):
    """(keys whose live value differs, keys the kernel lacks); a key the kernel lacks is an error,
    or, with ``allow_missing``, one to set."""
    missing = sorted(k for k in settings if have.get(k) is None)
    if missing and not allow_missing:
        raise SysctlError("the kernel has no %s" % ", ".join(missing))
    return sorted(k for k in settings if have.get(k) != settings[k]), missing


def write_live(keys, settings, root=None):
    for key in keys:
        with open(proc_path(key, root), "w") as fh:
            fh.write(settings[key] + "\n")
