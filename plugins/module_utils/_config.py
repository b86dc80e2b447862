# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""keepalived.conf and the host document as the modules change them (keepalived_config, drain).

One place for: reading the previous document (the administrative state it holds must never be
lost silently), the masked diff, the ``keepalived -t`` test of a new keepalived.conf before it
replaces the live one, and the writes (mode and owner set before the rename, a bounded number
of backups).
"""
from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import grp
import os
import pwd
import re
import stat

from ._files import backup as make_backup
from ._files import install, prune_backups, read_text, temp_file, write_atomic
from .hostdoc import HostDocumentError, dumps, loads
from .keepalived import MASK, config_test

DOCUMENT_MODE = 0o600
_AUTH_PASS_RE = re.compile(r"^(\s*auth_pass\s+)\S+", re.M)
_AUTH_PASS_JSON_RE = re.compile(r'("auth_pass":\s*)"(?:[^"\\]|\\.)*"')


def mask_conf(text):
    """Every auth_pass of a keepalived.conf text masked (also an old one, whose secret may differ)."""
    return _AUTH_PASS_RE.sub(r"\g<1>" + MASK, text or "")


def mask_document(text):
    """Every auth_pass of a host document's text masked."""
    return _AUTH_PASS_JSON_RE.sub(r'\g<1>"' + MASK + '"', text or "")


def test_keepalived_conf(module, text, dest, fail_result, directory=None, what=None):
    """``keepalived -t`` on ``text`` (when keepalived is installed); fail_json with its messages if
    refused. Returns whether keepalived ran. The text is tested in a temporary file in ``directory``
    (default: beside ``dest``)."""
    binary = module.get_bin_path("keepalived", opt_dirs=["/usr/sbin", "/sbin"])
    if not binary:
        return False
    tmp = temp_file(directory or os.path.dirname(dest) or ".", text, "." + os.path.basename(dest) + ".test.")
    try:
        ok, messages, notes = config_test(tmp, module.run_command, binary)
    finally:
        os.unlink(tmp)
    for n in notes:
        module.warn(n)
    if not ok:
        messages = messages.replace(tmp, dest + " (new)")
        module.fail_json(msg="keepalived -t refused the new configuration; %s\n%s"
                             % (what or "%s is unchanged:" % dest, messages),
                         keepalived_messages=messages.splitlines(), **fail_result)
    return True


_SCRIPT_USER_LINE_RE = re.compile(r"^(\s*script_user\s+)(\S+)$", re.M)


def preflight_text(text, own_programs, user_exists, program_exists):
    """The keepalived.conf text to test before the director role has installed anything: the
    collection's own programs (the notify hook, the plane check) that are not on the host yet are
    replaced by /usr/bin/true, and a script user the role has not created yet by root. Everything of
    the user's (scripts, MISC_CHECK, interfaces, addresses) is tested as it is."""
    for program in own_programs:
        if program and not program_exists(program):
            text = text.replace('"%s"' % program, '"/usr/bin/true"').replace('"%s ' % program, '"/usr/bin/true ')
    match = _SCRIPT_USER_LINE_RE.search(text)
    if match and not user_exists(match.group(2)):
        text = _SCRIPT_USER_LINE_RE.sub(r"\g<1>root", text)
    return text


class ConfigFiles(object):
    """keepalived.conf (``conf_path``) and the host document (``doc_path``) of one director."""

    def __init__(self, module, conf_path, doc_path):
        self.module = module
        self.conf_path = conf_path
        self.doc_path = doc_path
        self.backup_file = None
        self._old_conf = read_text(conf_path)
        self._old_doc = read_text(doc_path)

    def previous_document(self):
        """The document on disk (checked), None when there is none; fails when it cannot be read."""
        if self._old_doc is None:
            return None
        try:
            return loads(self._old_doc, self.doc_path)
        except HostDocumentError as exc:
            self.module.fail_json(msg="%s; it holds the administrative state (drained real servers), which "
                                      "must not be lost: fix or remove the file" % exc,
                                  dest=self.conf_path, document=self.doc_path, conf_changed=False,
                                  document_changed=False)

    def compare(self, conf, doc):
        """``(conf changed, document changed, diffs)`` of the new texts against the files."""
        doc_text = dumps(doc) if doc is not None else None
        conf_changed = conf is not None and conf != self._old_conf
        doc_changed = doc_text is not None and doc_text != self._old_doc
        diffs = []
        if conf_changed:
            diffs.append(dict(before_header=self.conf_path, after_header=self.conf_path,
                              before=mask_conf(self._old_conf), after=mask_conf(conf)))
        if doc_changed:
            diffs.append(dict(before_header=self.doc_path, after_header=self.doc_path,
                              before=mask_document(self._old_doc), after=mask_document(doc_text)))
        return conf_changed, doc_changed, diffs

    def _owner(self):
        """``(uid, gid)`` of the owner and group options (-1: leave as created)."""
        owner, group = self.module.params.get("owner"), self.module.params.get("group")
        try:
            uid = -1 if not owner else int(owner) if str(owner).isdigit() else pwd.getpwnam(owner).pw_uid
            gid = -1 if not group else int(group) if str(group).isdigit() else grp.getgrnam(group).gr_gid
        except KeyError as exc:
            self.module.fail_json(msg="unknown owner or group: %s" % exc)
        return uid, gid

    def _conf_mode(self):
        mode = self.module.params.get("mode") or "0640"
        return int(str(mode), 8) if not isinstance(mode, int) else mode

    def write(self, conf=None, doc=None, backup=True, keep_backups=3):
        """Install the new keepalived.conf (text) and document (dict) given; None leaves a file alone."""
        if conf is not None:
            directory = os.path.dirname(self.conf_path) or "."
            tmp = temp_file(directory, conf, "." + os.path.basename(self.conf_path) + ".")
            if backup and os.path.exists(self.conf_path):
                self.backup_file = make_backup(self.conf_path)
            uid, gid = self._owner()
            install(tmp, self.conf_path, self._conf_mode(), uid, gid)
            if keep_backups is not None:
                prune_backups(self.conf_path, keep_backups)
        if doc is not None:
            directory = os.path.dirname(self.doc_path)
            if directory and not os.path.isdir(directory):
                os.makedirs(directory, 0o750)
            write_atomic(self.doc_path, dumps(doc), DOCUMENT_MODE)

    def attributes_differ(self):
        """Whether keepalived.conf is missing or its mode, owner or group differs from the options
        (a mode that is not an octal string counts as different); changes nothing."""
        p = self.module.params
        try:
            st = os.stat(self.conf_path)
        except OSError:
            return True
        mode = p.get("mode")
        if mode is not None:
            text = str(mode)
            if not text.isdigit() or any(c not in "01234567" for c in text) or stat.S_IMODE(st.st_mode) != int(text, 8):
                return True
        try:
            for name, have, lookup in ((p.get("owner"), st.st_uid, lambda n: pwd.getpwnam(n).pw_uid),
                                       (p.get("group"), st.st_gid, lambda n: grp.getgrnam(n).gr_gid)):
                if name is not None and have != (int(name) if str(name).isdigit() else lookup(name)):
                    return True
        except KeyError:
            return True
        return False

    def set_attributes(self, changed):
        """Mode, owner and group of keepalived.conf as asked (changed when they differed)."""
        if not os.path.exists(self.conf_path):
            return changed
        p = self.module.params
        args = self.module.load_file_common_arguments(dict(path=self.conf_path, mode=p.get("mode"),
                                                           owner=p.get("owner"), group=p.get("group")))
        return self.module.set_fs_attributes_if_different(args, changed)
