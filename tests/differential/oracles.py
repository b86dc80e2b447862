# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The oracles of the differential test: keepalived's config test and nft's dry run.

``keepalived -t`` exits non-zero on an error, but it also prints a line (and still exits 0)
when it ignores, rewrites or truncates something: in config-test mode every message of
keepalived's parser goes to stderr through ``report_config_error`` (its ``log_message`` is
silent then), so any output at all is a disagreement.

Each program runs in a private network namespace (``unshare -n``) that holds the interfaces
the generated definitions may name (``INTERFACES``), so the result does not depend on this
machine's interfaces. Needs root, ``unshare`` and ``ip``.
"""
from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import glob
import os
import shutil
import subprocess
import tempfile

from ansible_collections.lbha.cluster.plugins.module_utils import keepalived, model

INTERFACES = ("eth0", "eth1")
HOST_KEEPALIVED = shutil.which("keepalived") or next(
    (p for p in ("/usr/sbin/keepalived", "/sbin/keepalived") if os.access(p, os.X_OK)), None)
CHROOT_GLOB = os.environ.get("LBHA_KEEPALIVED_CHROOTS", "/var/cache/lbha/chroot/*")
NFT = shutil.which("nft") or next((p for p in ("/usr/sbin/nft", "/sbin/nft") if os.access(p, os.X_OK)), None)
# What the differential test saw (printed at the end of the run).
STATS = {"examples": 0, "accepted": 0, "keepalived_runs": 0, "nft_runs": 0, "nft_ipv6_runs": 0, "disagreements": 0}
# The script user of the rendered file must exist here: the director role creates
# keepalived_script, 'nobody' stands in for it.
STAND_IN_USER = "nobody"
PLANE_CHECK_PROGRAM = model.DEFAULT_PLANE_CHECK.split()[0]


def chroots():
    """Roots of other keepalived versions (e.g. Debian 13's), each with usr/sbin/keepalived."""
    return sorted(r for r in glob.glob(CHROOT_GLOB)
                  if os.path.isdir(r) and os.access(os.path.join(r, "usr/sbin/keepalived"), os.X_OK))


def missing():
    """Why the oracles cannot run here, or None."""
    if os.geteuid() != 0:
        return "the oracles need root (network namespaces, chroot)"
    for tool in ("unshare", "ip"):
        if not shutil.which(tool):
            return "%s is not installed" % tool
    if HOST_KEEPALIVED is None:
        return "keepalived is not installed"
    if not chroots():
        return "no second keepalived version in %s" % CHROOT_GLOB
    if NFT is None:
        return "nft is not installed"
    return None


def _netns_argv(argv):
    links = " && ".join("ip link add %s type veth peer name lbhap%d" % (name, i)
                        for i, name in enumerate(INTERFACES))
    return ["unshare", "-n", "sh", "-c", "ip link set lo up && %s && exec \"$@\"" % links, "lbha-netns"] + list(argv)


def _run(argv):
    proc = subprocess.run(_netns_argv(argv), capture_output=True, timeout=60, check=False)
    return proc.returncode, proc.stdout.decode("utf-8", "replace"), proc.stderr.decode("utf-8", "replace")


class _ChrootRunner(object):
    """``run(argv)`` for keepalived.config_test that runs keepalived inside ``root``."""

    def __init__(self, root):
        self.root = root

    def __call__(self, argv):
        binary, rest, path = argv[0], argv[1:-1], argv[-1]
        assert binary == "keepalived" and rest == ["-t", "-f"], argv
        tmpdir = tempfile.mkdtemp(prefix="lbha-diff-", dir=os.path.join(self.root, "tmp"))
        try:
            inner = os.path.join(tmpdir, "keepalived.conf")
            shutil.copyfile(path, inner)
            inside = "/" + os.path.relpath(inner, self.root)
            rc, out, err = _run(["chroot", self.root, "/usr/sbin/keepalived", "-t", "-f", inside])
            return rc, out, err.replace(inside, path)
        finally:
            shutil.rmtree(tmpdir, ignore_errors=True)


def testable(text):
    """The rendered file with the script user replaced by one that exists here, and the nftables
    plane's health check (installed by the director role, not here) by a program that exists in
    every root (keepalived disables a track script it cannot find, and says so)."""
    text = text.replace("script_user keepalived_script\n", "script_user %s\n" % STAND_IN_USER)
    return text.replace('script "%s ' % PLANE_CHECK_PROGRAM, 'script "/usr/bin/true ')


def keepalived_verdicts(text):
    """``[(version, ok, messages)]`` for every keepalived oracle; ok means exit 0 and silence."""
    out = []
    tmpdir = tempfile.mkdtemp(prefix="lbha-diff-")
    try:
        path = os.path.join(tmpdir, "keepalived.conf")
        with open(path, "w") as fh:
            fh.write(testable(text))
        rc_ok, messages, _notes = keepalived.config_test(path, _run, HOST_KEEPALIVED)
        out.append(("host", rc_ok and not messages, messages))
        for root in chroots():
            rc_ok, messages, _notes = keepalived.config_test(path, _ChrootRunner(root), "keepalived")
            out.append((os.path.basename(root), rc_ok and not messages, messages))
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)
    return out


def nft_verdict(ruleset):
    """``(ok, messages)`` of ``nft -c -f`` on ``ruleset`` (nothing is loaded)."""
    tmpdir = tempfile.mkdtemp(prefix="lbha-diff-")
    try:
        path = os.path.join(tmpdir, "ruleset.nft")
        with open(path, "w") as fh:
            fh.write(ruleset)
        rc, out, err = _run([NFT, "-c", "-f", path])
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)
    messages = "\n".join(x for x in (err.strip(), out.strip()) if x)
    return rc == 0 and not messages, messages
