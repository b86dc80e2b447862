# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the network-namespace tests share: running a command and waiting for a condition."""
from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import subprocess
import time


def run(*cmd, check=True, timeout=30, **kw):
    """``subprocess.run`` of ``cmd`` with text output captured."""
    return subprocess.run(list(cmd), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True, check=check, timeout=timeout, **kw)


def until(what, fn, deadline=20.0, interval=0.1):
    """Poll ``fn`` until it returns a true value; fail naming ``what`` after ``deadline`` s."""
    end = time.monotonic() + deadline
    last = None
    while time.monotonic() < end:
        last = fn()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError("timed out after %gs waiting for %s (last: %r)" % (deadline, what, last))


class Namespaces(object):
    """Network namespaces named ``prefix + name``, created by :meth:`add`, removed by :meth:`delete_all`."""

    def __init__(self, prefix):
        self.prefix = prefix
        self.ns = []

    def netns(self, name):
        return self.prefix + name

    def add(self, name):
        run("ip", "netns", "add", self.netns(name))
        self.ns.append(self.netns(name))
        self.ip(name, "link", "set", "lo", "up")

    def ip(self, ns, *args, check=True):
        return run("ip", "-n", self.netns(ns), *args, check=check)

    def exec(self, ns, *args, check=True, timeout=60):
        return run("ip", "netns", "exec", self.netns(ns), *args, check=check, timeout=timeout)

    def popen(self, ns, *args, **kw):
        return subprocess.Popen(["ip", "netns", "exec", self.netns(ns)] + list(args), **kw)

    def delete_all(self):
        for ns in reversed(self.ns):
            run("ip", "netns", "del", ns, check=False)
        self.ns = []
