# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""lbha-checker: the nftables plane's daemon on an lbha.cluster director.

The health-check state machine, the tables and the documents are the collection's model
(``module_utils``, installed beside this file as the package ``lbha_cluster`` in the archive
``lbha_cluster.zip``, imported in place); this program
adds what only a process does: running ``nft`` and MISC_CHECK programs, logging to the journal,
and the command line. The unit ``lbha-checker.service`` runs
``python3 /usr/lib/lbha-cluster/lbha_checkerd.py --document /etc/lbha/cluster.json --state ...``.
"""
from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import argparse
import functools
import logging
import os
import pwd
import shlex
import subprocess
import sys

sys.path.insert(1, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lbha_cluster.zip"))

from lbha_cluster.checker import (DEFAULT_DOCUMENT, DEFAULT_STATE, LOG, Checker, NftError, load_document,
                                  read_previous_state)
from lbha_cluster.hostdoc import HostDocumentError, load
from lbha_cluster.model import DEFAULT_SCRIPT_USER
from lbha_cluster.nft import parse_fingerprint, render_ruleset
from lbha_cluster.probes import make_probe

DEFAULT_NFT = "/usr/sbin/nft"
SCRIPT_ENV = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C"}


def _script_identity(user):
    """``(uid, gid)`` of keepalived's script user; KeyError when it does not exist."""
    entry = pwd.getpwnam(user)
    return entry.pw_uid, entry.pw_gid


def misc_probe(command, timeout, dynamic=False, user=DEFAULT_SCRIPT_USER, run=None):
    """A MISC_CHECK: ``command`` exits 0 (up), 2..255 with ``dynamic`` (up, weight code - 2).

    It runs as keepalived's script user (global_defs ``script_user``), as keepalived runs it on
    the ipvs plane: no supplementary groups, no capabilities (they go with the uid), ``/`` as its
    directory and a minimal environment. A script user that does not exist fails the check: it
    never runs as root instead.
    """
    argv = shlex.split(command)

    def probe():
        try:
            uid, gid = _script_identity(user)
        except KeyError:
            return False, "Misc check to [%s] not run: script user %s does not exist" % (command, user), None
        try:
            runner = run or subprocess.run
            rc = runner(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                        timeout=timeout, check=False, cwd="/", env=dict(SCRIPT_ENV), user=uid, group=gid,
                        extra_groups=[]).returncode
        except subprocess.TimeoutExpired:
            return False, "Misc check to [%s] timed out" % command, None
        except (OSError, subprocess.SubprocessError) as exc:
            return False, "Misc check to [%s] could not run: %s" % (command, exc), None
        if rc == 0:
            return True, None, None
        if dynamic and 2 <= rc <= 255:
            return True, None, rc - 2
        return False, "Misc check to [%s] exited with status %d" % (command, rc), None
    return probe


class ProbeFactory(object):
    """The probes of a host document's checks; MISC_CHECK runs as the document's script user
    (read again on every reload, as the checks are)."""

    def __init__(self, document):
        self.document = document

    def script_user(self):
        try:
            return load(self.document)["model"]["global_defs"].get("script_user") or DEFAULT_SCRIPT_USER
        except (HostDocumentError, KeyError, TypeError):
            return DEFAULT_SCRIPT_USER

    def __call__(self, rs, check):
        user = self.script_user() if check and check.get("type") == "MISC_CHECK" else DEFAULT_SCRIPT_USER
        return make_probe(rs, check, misc_probe=functools.partial(misc_probe, user=user))


class NftPlane(object):
    """Runs ``nft``; ``run`` is injectable (``subprocess.run`` signature)."""

    def __init__(self, nft=DEFAULT_NFT, run=subprocess.run):
        self.nft = nft
        self.run = run

    def fingerprint(self, table):
        res = self.run([self.nft, "-t", "list", "table", "netdev", table],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True,
                       check=False)
        if res.returncode != 0:
            return None
        return parse_fingerprint(res.stdout)

    def load(self, text):
        res = self.run([self.nft, "-f", "-"], input=text, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, universal_newlines=True, check=False)
        if res.returncode != 0:
            raise NftError((res.stderr or res.stdout or "nft exited with %d" % res.returncode).strip())

    def delete_table(self, table):
        self.run([self.nft, "delete", "table", "netdev", table], stdout=subprocess.PIPE,
                 stderr=subprocess.PIPE, universal_newlines=True, check=False)


class _JournalFormatter(logging.Formatter):
    """Prefix records with syslog priorities when stderr goes to the journal."""
    LEVELS = {logging.DEBUG: 7, logging.INFO: 6, logging.WARNING: 4, logging.ERROR: 3, logging.CRITICAL: 2}

    def format(self, record):
        return "<%d>%s" % (self.LEVELS.get(record.levelno, 6), super(_JournalFormatter, self).format(record))


def _setup_logging(verbose=False):
    handler = logging.StreamHandler(sys.stderr)
    if os.environ.get("JOURNAL_STREAM"):
        handler.setFormatter(_JournalFormatter("%(message)s"))
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s lbha-checker: %(message)s"))
    LOG.handlers[:] = [handler]
    LOG.setLevel(logging.DEBUG if verbose else logging.INFO)
    LOG.propagate = False


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="lbha-checker",
        description="Health-check real servers and program the nftables DR plane (lbha.cluster).")
    parser.add_argument("--document", default=DEFAULT_DOCUMENT,
                        help="the director's host document (%(default)s), re-read on SIGHUP")
    parser.add_argument("--state", default=DEFAULT_STATE, help="state file written on every change (%(default)s)")
    parser.add_argument("--nft", default=DEFAULT_NFT, help="nft binary (%(default)s)")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--once", action="store_true",
                      help="read the document, install the table, write the state file and exit")
    mode.add_argument("--check-config", action="store_true",
                      help="read the document and print the ruleset; change nothing")
    parser.add_argument("--verbose", action="store_true", help="log debug messages")
    args = parser.parse_args(argv)
    _setup_logging(args.verbose)

    try:
        doc, drained = load_document(args.document)
    except HostDocumentError as exc:
        LOG.error("Cannot use the host document: %s", exc)
        return 2

    previous, quorum = read_previous_state(args.state)
    checker = Checker(NftPlane(args.nft), args.document, args.state, probe_factory=ProbeFactory(args.document))
    checker.set_drain(drained)
    checker.configure(doc, previous, quorum)

    if args.check_config:
        sys.stdout.write(render_ruleset(doc, checker.compute_tables()))
        return 0
    if args.once:
        try:
            checker.apply(force=True)
        except (NftError, OSError) as exc:
            LOG.error("Cannot program nftables: %s", exc)
            return 1
        checker.write_state()
        return 0
    LOG.info("Starting with %d virtual server(s) from %s", len(doc["virtual_servers"]), args.document)
    return checker.serve()


if __name__ == "__main__":
    sys.exit(main())
