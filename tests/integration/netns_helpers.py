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

    def ipv6_lan(self, net, hosts, mac):
        """A bridge (in namespace ``sw``) and one namespace per host of ``hosts`` ({name: number})
        with ``eth0`` on it: MAC ``mac % number``, address ``net`` + number /64, and no duplicate
        address detection, so every address (the link-local one too) is usable at once."""
        for ns in ["sw"] + list(hosts):
            self.add(ns)
        self.ip("sw", "link", "add", "br0", "type", "bridge")
        self.ip("sw", "link", "set", "br0", "up")
        for ns, num in hosts.items():
            self.ip("sw", "link", "add", "p-" + ns, "type", "veth", "peer", "name", "eth0", "netns", self.netns(ns))
            self.ip("sw", "link", "set", "p-" + ns, "master", "br0", "up")
            self.exec(ns, "sysctl", "-q", "-w", "net.ipv6.conf.eth0.accept_dad=0")
            self.ip(ns, "link", "set", "eth0", "address", mac % num)
            self.ip(ns, "-6", "addr", "add", "%s%d/64" % (net, num), "dev", "eth0", "nodad")
            self.ip(ns, "link", "set", "eth0", "up")
        for ns in hosts:
            until("a link-local address on %s" % ns, lambda ns=ns: "scope link" in self.ip(
                ns, "-6", "addr", "show", "dev", "eth0").stdout)
