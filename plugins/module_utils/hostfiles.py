# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The files, directories and leftovers a role keeps on a host, as one list applied in one call.

A role used to spend a task (one round trip to the host) per file; :func:`entries` checks a list
of them, :func:`plan` compares it with what the host has and :func:`apply` carries the plan out:

* every file is written to a temporary file beside its target and validated (``validate``, with
  ``%s`` for the temporary file) before *any* target changes: one refused file leaves the host as
  it was;
* directories are created parents first, files are renamed over their targets with their final
  mode and owner already set (:mod:`._files`), leftovers (``state: absent``) go last;
* each entry may carry ``tags``: the result names the tags of what changed, so a role notifies
  a handler only for the files that concern it;
* a ``check`` command may test the whole result in place (``nginx -t``, which reads every file
  it includes): when it fails, every entry is put back as it was and the error is raised.

Pure Python, no Ansible import: the module is a thin wrapper and the unit tests run this directly.
"""
from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import base64
import grp
import os
import pwd
import shutil
import stat

from ._files import install, temp_file

STATES = ("file", "directory", "absent")


class HostFilesError(ValueError):
    """An entry that cannot be applied; the message names its path and field."""


def _mode(value, path):
    text = str(value).strip()
    if len(text) not in (3, 4) or any(c not in "01234567" for c in text):
        raise HostFilesError("%s: mode must be an octal string such as '0644' (is %r)" % (path, value))
    return int(text, 8)


def entries(items):
    """The entries, checked and normalised: ``path``, ``state``, ``data`` (bytes or None),
    ``mode`` (int or None), ``owner``, ``group``, ``validate``, ``tags``.

    Raises HostFilesError naming the first wrong entry."""
    out, seen = [], set()
    for index, item in enumerate(items or []):
        if not isinstance(item, dict):
            raise HostFilesError("files[%d] must be a mapping (is %r)" % (index, item))
        path = item.get("path")
        if not isinstance(path, str) or not path.startswith("/") or path.rstrip("/") in ("", "/"):
            raise HostFilesError("files[%d].path must be an absolute path below / (is %r)" % (index, path))
        path = os.path.normpath(path)
        if path in seen:
            raise HostFilesError("%s: listed twice" % path)
        seen.add(path)
        state = item.get("state") or "file"
        if state not in STATES:
            raise HostFilesError("%s: state must be one of %s (is %r)" % (path, ", ".join(STATES), state))
        content, content_b64 = item.get("content"), item.get("content_b64")
        data = None
        if state == "file":
            if (content is None) == (content_b64 is None):
                raise HostFilesError("%s: a file takes exactly one of content and content_b64" % path)
            if content is not None:
                data = str(content).encode("utf-8")
            else:
                try:
                    data = base64.b64decode(content_b64, validate=True)
                except (TypeError, ValueError) as exc:
                    raise HostFilesError("%s: content_b64 is not base64 (%s)" % (path, exc))
        elif content is not None or content_b64 is not None:
            raise HostFilesError("%s: content is only for state 'file' (state is %r)" % (path, state))
        mode = item.get("mode")
        validate = item.get("validate")
        if validate is not None and (state != "file" or "%s" not in validate):
            raise HostFilesError("%s: validate is for files and must hold %%s (is %r)" % (path, validate))
        tags = item.get("tags") or []
        if isinstance(tags, str):
            tags = [tags]
        out.append(dict(path=path, state=state, data=data,
                        mode=None if mode is None or state == "absent" else _mode(mode, path),
                        owner=item.get("owner"), group=item.get("group"), validate=validate,
                        tags=sorted(set(str(t) for t in tags))))
    return out


def ids(entry):
    """(uid, gid) of the entry's owner and group, -1 where not given."""
    uid = gid = -1
    try:
        if entry["owner"] is not None:
            owner = str(entry["owner"])
            uid = int(owner) if owner.isdigit() else pwd.getpwnam(owner).pw_uid
        if entry["group"] is not None:
            group = str(entry["group"])
            gid = int(group) if group.isdigit() else grp.getgrnam(group).gr_gid
    except KeyError as exc:
        raise HostFilesError("%s: no such user or group %s" % (entry["path"], exc))
    return uid, gid


def _current(path):
    """What the host has at ``path``: None, or (kind, mode, uid, gid, data-or-None)."""
    try:
        st = os.lstat(path)
    except OSError:
        return None
    if stat.S_ISDIR(st.st_mode):
        kind = "directory"
    elif stat.S_ISREG(st.st_mode):
        kind = "file"
    else:
        kind = "other"
    data = None
    if kind == "file":
        with open(path, "rb") as fh:
            data = fh.read()
    return kind, stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid, data


def plan(items):
    """The changes the entries need on this host: a list of dicts with ``path``, ``action``
    (``create``, ``update``, ``attributes``, ``remove``) and the entry."""
    steps = []
    for entry in items:
        have = _current(entry["path"])
        if entry["state"] == "absent":
            if have is not None:
                steps.append(dict(path=entry["path"], action="remove", entry=entry, before=have,
                                  link=os.readlink(entry["path"]) if os.path.islink(entry["path"]) else None))
            continue
        uid, gid = ids(entry)
        if have is None:
            steps.append(dict(path=entry["path"], action="create", entry=entry, before=None))
            continue
        kind, mode, have_uid, have_gid, data = have
        if kind != entry["state"]:
            raise HostFilesError("%s: is a %s on the host, not a %s; remove it first"
                                 % (entry["path"], kind, entry["state"]))
        if entry["state"] == "file" and data != entry["data"]:
            steps.append(dict(path=entry["path"], action="update", entry=entry, before=have))
        elif ((entry["mode"] is not None and mode != entry["mode"]) or uid not in (-1, have_uid)
              or gid not in (-1, have_gid)):
            steps.append(dict(path=entry["path"], action="attributes", entry=entry, before=have))
    return steps


def _text(data):
    if data is None:
        return ""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return "<binary data, %d bytes>\n" % len(data)


def diffs(steps):
    """Ansible diffs (before/after with headers) of the files and directories that change."""
    out = []
    for step in steps:
        entry, before = step["entry"], step["before"]
        if step["action"] == "remove":
            out.append(dict(before_header=step["path"], after_header=step["path"],
                            before=_text(before[4]) if before[0] == "file" else "(%s)\n" % before[0],
                            after="(absent)\n"))
        elif entry["state"] == "directory":
            out.append(dict(before_header=step["path"], after_header=step["path"],
                            before="(absent)\n" if before is None else "(directory %04o)\n" % before[1],
                            after="(directory %s)\n" % ("%04o" % entry["mode"] if entry["mode"] is not None else "")))
        elif step["action"] == "attributes":
            out.append(dict(before_header=step["path"], after_header=step["path"],
                            before="(mode %04o, uid %d, gid %d)\n" % before[1:4],
                            after="(mode %s, owner %s, group %s)\n" % (
                                "%04o" % entry["mode"] if entry["mode"] is not None else "-",
                                entry["owner"], entry["group"])))
        else:
            out.append(dict(before_header=step["path"], after_header=step["path"],
                            before=_text(before[4]) if before else "", after=_text(entry["data"])))
    return out


def apply(steps, run_validate, check=None):
    """Carry out ``steps`` (from :func:`plan`).

    ``run_validate(command)`` runs a validate command (``%s`` already replaced) or the ``check``
    command and returns (rc, output). Every new file content is written and validated before any
    target changes; raises HostFilesError (with nothing changed) when a validation fails. Then
    ``check``, when given, runs once everything is applied; when it fails, :func:`restore` puts
    every entry back as it was and HostFilesError is raised."""
    if check and any(s["action"] == "remove" and s["before"][0] == "directory" for s in steps):
        raise HostFilesError("%s: a directory removed cannot be put back if the check fails; remove it "
                             "without a check" % next(s["path"] for s in steps if s["action"] == "remove"
                                                      and s["before"][0] == "directory"))
    _apply(steps, run_validate)
    if check:
        rc, output = run_validate(check)
        if rc != 0:
            restore(steps)
            raise HostFilesError("'%s' refused the new files (rc %d), they were put back as they were: %s"
                                 % (check, rc, output.strip()))


def restore(steps):
    """Undo applied ``steps`` (from :func:`plan`), last first: files and links get their former
    content, mode and owner back, new files and new (then empty) directories go (deepest first)."""
    for step in sorted(reversed(steps), key=lambda s: (s["entry"]["state"] == "directory", -s["path"].count("/"))):
        entry, before = step["entry"], step["before"]
        if step["action"] == "create":
            if entry["state"] == "directory":
                if os.path.isdir(entry["path"]) and not os.listdir(entry["path"]):
                    os.rmdir(entry["path"])
            elif os.path.lexists(entry["path"]):
                os.unlink(entry["path"])
        elif step["action"] == "remove" and step.get("link") is not None:
            os.symlink(step["link"], entry["path"])
        elif before[0] == "file" and step["action"] in ("update", "remove"):
            tmp = temp_file(os.path.dirname(entry["path"]), before[4], "." + os.path.basename(entry["path"]) + ".")
            install(tmp, entry["path"], before[1], before[2], before[3])
        elif step["action"] == "attributes":
            os.chmod(entry["path"], before[1])
            os.chown(entry["path"], before[2], before[3])


def _apply(steps, run_validate):
    writes = [s for s in steps if s["action"] in ("create", "update") and s["entry"]["state"] == "file"]
    staged = []
    try:
        for step in writes:
            entry = step["entry"]
            directory = os.path.dirname(entry["path"])
            if not os.path.isdir(directory):
                # its directory is created by an entry of this list (or refused below)
                directory = _nearest_existing(directory)
            tmp = temp_file(directory, entry["data"], "." + os.path.basename(entry["path"]) + ".")
            staged.append((step, tmp))
            if entry["validate"]:
                rc, output = run_validate(entry["validate"].replace("%s", tmp))
                if rc != 0:
                    raise HostFilesError("%s: '%s' refused the new content (rc %d): %s"
                                         % (entry["path"], entry["validate"], rc, output.strip()))
        for step in sorted((s for s in steps if s["entry"]["state"] == "directory"), key=lambda s: s["path"].count("/")):
            entry = step["entry"]
            uid, gid = ids(entry)
            if step["action"] == "create":
                os.makedirs(entry["path"], entry["mode"] if entry["mode"] is not None else 0o755)
            if entry["mode"] is not None:
                os.chmod(entry["path"], entry["mode"])
            if uid != -1 or gid != -1:
                os.chown(entry["path"], uid, gid)
        for step, tmp in staged:
            entry = step["entry"]
            uid, gid = ids(entry)
            if os.path.dirname(tmp) != os.path.dirname(entry["path"]):
                moved = os.path.join(os.path.dirname(entry["path"]), os.path.basename(tmp))
                shutil.move(tmp, moved)
                tmp = moved
            mode = entry["mode"] if entry["mode"] is not None else (
                step["before"][1] if step["before"] else 0o644)
            install(tmp, entry["path"], mode, uid, gid)
        staged = []
        for step in steps:
            entry = step["entry"]
            if step["action"] == "attributes" and entry["state"] == "file":
                uid, gid = ids(entry)
                if entry["mode"] is not None:
                    os.chmod(entry["path"], entry["mode"])
                if uid != -1 or gid != -1:
                    os.chown(entry["path"], uid, gid)
            elif step["action"] == "remove":
                if step["before"][0] == "directory":
                    shutil.rmtree(entry["path"])
                else:
                    os.unlink(entry["path"])
    finally:
        for _step, tmp in staged:
            if os.path.exists(tmp):
                os.unlink(tmp)


def _nearest_existing(directory):
    while not os.path.isdir(directory):
        directory = os.path.dirname(directory)
    return directory


def changed_tags(steps):
    """The sorted tags of the entries that change."""
    return sorted(set(t for s in steps for t in s["entry"]["tags"]))
