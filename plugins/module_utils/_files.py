# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Files that hold secrets, written the way the modules of this collection write them.

* :func:`write_atomic` writes a temporary file in the target's directory, gives it its final
  mode and owner *before* the rename, and renames it over the target: the content is never
  visible under a looser mode, and a reader sees the old file or the new one, never half of one.
* :func:`backup` copies a file to ``<path>.<pid>.<date>~`` (Ansible's backup name) through a
  temporary file created ``0600``: a backup of a file that holds secrets is never readable by
  anyone but root, not even for a moment.
* :func:`prune_backups` keeps only the newest backups of a file (each holds old secrets) and
  gives the ones it keeps mode ``0600`` (backups of earlier releases may be looser).
"""
from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import glob
import os
import stat
import tempfile
import time


def read_text(path):
    """The file's text, or None when it does not exist or cannot be read."""
    try:
        with open(path, "rb") as fh:
            return fh.read().decode("utf-8", "replace")
    except (IOError, OSError):
        return None


def temp_file(directory, text, prefix):
    """A new 0600 file in ``directory`` holding ``text`` (str, or bytes as they are); returns its path."""
    if not os.path.isdir(directory):
        os.makedirs(directory, 0o755)
    fd, tmp = tempfile.mkstemp(prefix=prefix, dir=directory)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(text if isinstance(text, bytes) else text.encode("utf-8"))
            fh.flush()
            os.fsync(fh.fileno())
    except BaseException:
        os.unlink(tmp)
        raise
    return tmp


def install(tmp, path, mode, uid=-1, gid=-1):
    """Give ``tmp`` its final mode and owner, then rename it over ``path``."""
    try:
        if uid != -1 or gid != -1:
            os.chown(tmp, uid, gid)
        os.chmod(tmp, mode)
        os.rename(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_atomic(path, text, mode, uid=-1, gid=-1):
    """Replace ``path`` by ``text`` with ``mode`` (an int) and owner, atomically."""
    directory = os.path.dirname(path) or "."
    install(temp_file(directory, text, "." + os.path.basename(path) + "."), path, mode, uid, gid)


BACKUP_MODE = 0o600


def backup(path):
    """A copy of ``path`` as ``<path>.<pid>.<date>~``, mode 0600 from its creation; returns its path."""
    with open(path, "rb") as fh:
        data = fh.read()
    directory = os.path.dirname(path) or "."
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", dir=directory)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        st = os.stat(path)
        os.utime(tmp, (st.st_atime, st.st_mtime))
        dest = "%s.%d.%s~" % (path, os.getpid(), time.strftime("%Y-%m-%d@%H:%M:%S", time.localtime()))
        os.rename(tmp, dest)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return dest


def prune_backups(path, keep):
    """Delete all but the ``keep`` newest backups of ``path`` (Ansible's ``<path>.<pid>.<date>~``)
    and make the kept ones 0600.

    Returns the deleted paths.
    """
    backups = sorted(glob.glob(glob.escape(path) + ".*~"), key=os.path.getmtime, reverse=True)
    gone = backups[keep:] if keep >= 0 else []
    for old in gone:
        os.unlink(old)
    for kept in backups[:keep] if keep >= 0 else backups:
        st = os.lstat(kept)
        if stat.S_ISREG(st.st_mode) and stat.S_IMODE(st.st_mode) != BACKUP_MODE:
            os.chmod(kept, BACKUP_MODE)
    return gone


def replace_or_remove(path, text, mode):
    """A file a module owns as a whole: ``text`` written atomically with ``mode``, or the file
    removed when ``text`` is None."""
    if text is None:
        os.unlink(path)
    else:
        write_atomic(path, text, mode)


def text_diff(path, before, after):
    """Ansible's diff of one file (None for an absent file)."""
    return dict(before_header=path, after_header=path, before=before or "", after=after or "")
