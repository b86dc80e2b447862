# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""lbha.cluster.host_files on a temporary directory: one call, all or nothing, tags of what changed."""
from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import base64
import os
import stat

import pytest

from ansible_collections.lbha.cluster.plugins.modules import host_files


@pytest.fixture()
def files(tmp_path, run_module):
    def run(entries, **kw):
        return run_module(host_files.main, dict(files=entries, **kw))
    return run


def mode(path):
    return stat.S_IMODE(os.stat(str(path)).st_mode)


def test_creates_directories_files_and_binary_files_then_is_idempotent(tmp_path, files):
    lib = tmp_path / "lib" / "sub"
    blob = bytes(range(256))
    entries = [
        dict(path=str(lib / "hook"), content="#!/bin/sh\nexit 0\n", mode="0755", tags=["hook"]),
        dict(path=str(lib), state="directory", mode="0750"),
        dict(path=str(lib / "model.zip"), content_b64=base64.b64encode(blob).decode(), tags=["checker"]),
    ]
    result, failed = files(entries)
    assert not failed
    assert result["changed"]
    assert result["changed_tags"] == ["checker", "hook"]
    assert sorted(result["changed_paths"]) == sorted(e["path"] for e in entries)
    assert (lib / "hook").read_text() == "#!/bin/sh\nexit 0\n"
    assert mode(lib / "hook") == 0o755 and mode(lib) == 0o750 and mode(lib / "model.zip") == 0o644
    assert (lib / "model.zip").read_bytes() == blob
    again, _failed = files(entries)
    assert not again["changed"] and again["changed_paths"] == [] and again["changed_tags"] == []


def test_content_is_kept_byte_for_byte(tmp_path, files):
    path = tmp_path / "unit"
    files([dict(path=str(path), content="a\n\n  trailing  \n\n")])
    assert path.read_bytes() == b"a\n\n  trailing  \n\n"


def test_a_mode_change_alone_is_a_change_of_that_path_only(tmp_path, files):
    a, b = tmp_path / "a", tmp_path / "b"
    entries = [dict(path=str(a), content="x", mode="0644", tags=["a"]), dict(path=str(b), content="y", tags=["b"])]
    files(entries)
    os.chmod(str(a), 0o600)
    result, _failed = files(entries)
    assert result["changed_paths"] == [str(a)] and result["changed_tags"] == ["a"]
    assert mode(a) == 0o644


def test_a_refused_file_leaves_every_target_as_it_was(tmp_path, files):
    good, bad = tmp_path / "good", tmp_path / "bad"
    good.write_text("old good\n")
    result, failed = files([
        dict(path=str(good), content="new good\n"),
        dict(path=str(bad), content="broken\n", validate="grep -q valid %s"),
        dict(path=str(tmp_path / "newdir"), state="directory"),
    ])
    assert failed
    assert str(bad) in result["msg"] and "refused" in result["msg"]
    assert good.read_text() == "old good\n"
    assert not bad.exists() and not (tmp_path / "newdir").exists()
    assert sorted(os.listdir(str(tmp_path))) == ["good"]     # no temporary file left behind


def test_validate_sees_the_new_content(tmp_path, files):
    path = tmp_path / "conf"
    result, failed = files([dict(path=str(path), content="valid\n", validate="grep -q valid %s")])
    assert not failed and path.read_text() == "valid\n"


def test_absent_removes_files_and_whole_directories(tmp_path, files):
    old_dir = tmp_path / "pkg"
    (old_dir / "inner").mkdir(parents=True)
    (old_dir / "inner" / "x.py").write_text("x")
    old_file = tmp_path / "wrapper"
    old_file.write_text("w")
    entries = [dict(path=str(old_dir), state="absent"), dict(path=str(old_file), state="absent"),
               dict(path=str(tmp_path / "never"), state="absent")]
    result, _failed = files(entries)
    assert sorted(result["changed_paths"]) == sorted([str(old_dir), str(old_file)])
    assert not old_dir.exists() and not old_file.exists()
    assert not files(entries)[0]["changed"]


def test_check_mode_and_diff_report_and_change_nothing(tmp_path, files):
    path = tmp_path / "unit"
    path.write_text("before\n")
    result, failed = files([dict(path=str(path), content="after\n"), dict(path=str(tmp_path / "d"), state="directory")],
                           _ansible_check_mode=True, _ansible_diff=True)
    assert not failed and result["changed"]
    assert path.read_text() == "before\n" and not (tmp_path / "d").exists()
    by_path = {d["after_header"]: d for d in result["diff"]}
    assert by_path[str(path)]["before"] == "before\n" and by_path[str(path)]["after"] == "after\n"
    assert by_path[str(tmp_path / "d")]["before"] == "(absent)\n"


@pytest.mark.parametrize("entry, message", [
    (dict(path="relative/x", content="x"), "absolute path"),
    (dict(path="/", state="directory"), "absolute path"),
    (dict(path="/tmp/x"), "exactly one of content and content_b64"),
    (dict(path="/tmp/x", content="a", content_b64="YQ=="), "exactly one of content and content_b64"),
    (dict(path="/tmp/x", content_b64="not base64!"), "not base64"),
    (dict(path="/tmp/x", state="directory", content="a"), "only for state 'file'"),
    (dict(path="/tmp/x", content="a", mode="644x"), "octal"),
    (dict(path="/tmp/x", content="a", mode="rw-r--r--"), "octal"),
    (dict(path="/tmp/x", content="a", validate="nft -c -f"), "%s"),
    (dict(path="/tmp/x", content="a", owner="no-such-user-lbha"), "no such user"),
])
def test_bad_entries_are_refused_with_the_path_named(entry, message, files):
    result, failed = files([entry])
    assert failed and message in result["msg"]


def test_a_path_listed_twice_is_refused(tmp_path, files):
    path = str(tmp_path / "x")
    result, failed = files([dict(path=path, content="a"), dict(path=path + "/", state="absent")])
    assert failed and "listed twice" in result["msg"]


def test_a_directory_where_a_file_belongs_is_refused(tmp_path, files):
    (tmp_path / "x").mkdir()
    result, failed = files([dict(path=str(tmp_path / "x"), content="a")])
    assert failed and "is a directory on the host" in result["msg"]


def checker(tmp_path, refuse):
    """A check command that reads the files in place (like nginx -t) and fails when a file holds ``refuse``."""
    script = tmp_path / "check.sh"
    script.write_text("#!/bin/sh\ngrep -rq %s %s && { echo 'bad directive' >&2; exit 1; }\nexit 0\n"
                      % (refuse, tmp_path / "etc"))
    script.chmod(0o755)
    return str(script)


def test_a_check_that_passes_keeps_the_change(tmp_path, files):
    etc = tmp_path / "etc"
    etc.mkdir()
    result, failed = files([dict(path=str(etc / "site.conf"), content="good\n")], check=checker(tmp_path, "bad"))
    assert not failed and result["changed"]
    assert (etc / "site.conf").read_text() == "good\n"


def test_a_check_that_fails_puts_every_entry_back_as_it_was(tmp_path, files):
    etc = tmp_path / "etc"
    (etc / "sites").mkdir(parents=True)
    (etc / "site.conf").write_text("old\n")
    os.chmod(str(etc / "site.conf"), 0o640)
    (etc / "gone.conf").write_text("kept\n")
    (etc / "target").write_text("t\n")
    os.symlink(str(etc / "target"), str(etc / "sites" / "default"))
    (etc / "mode.conf").write_text("m\n")
    os.chmod(str(etc / "mode.conf"), 0o600)
    entries = [
        dict(path=str(etc / "site.conf"), content="bad\n", mode="0644"),
        dict(path=str(etc / "new" / "extra.conf"), content="new\n"),
        dict(path=str(etc / "new"), state="directory"),
        dict(path=str(etc / "gone.conf"), state="absent"),
        dict(path=str(etc / "sites" / "default"), state="absent"),
        dict(path=str(etc / "mode.conf"), content="m\n", mode="0644"),
    ]
    result, failed = files(entries, check=checker(tmp_path, "bad"))
    assert failed and "refused the new files" in result["msg"] and "bad directive" in result["msg"]
    assert (etc / "site.conf").read_text() == "old\n" and mode(etc / "site.conf") == 0o640
    assert not (etc / "new").exists()
    assert (etc / "gone.conf").read_text() == "kept\n"
    assert os.readlink(str(etc / "sites" / "default")) == str(etc / "target")
    assert mode(etc / "mode.conf") == 0o600
    assert sorted(p.name for p in etc.iterdir()) == ["gone.conf", "mode.conf", "site.conf", "sites", "target"]


def test_a_check_does_not_run_when_nothing_changes(tmp_path, files):
    etc = tmp_path / "etc"
    etc.mkdir()
    (etc / "site.conf").write_text("bad\n")
    os.chmod(str(etc / "site.conf"), 0o644)
    result, failed = files([dict(path=str(etc / "site.conf"), content="bad\n", mode="0644")],
                           check=checker(tmp_path, "bad"))
    assert not failed and not result["changed"]


def test_a_directory_removal_is_refused_with_a_check_before_anything_changes(tmp_path, files):
    etc = tmp_path / "etc"
    (etc / "old").mkdir(parents=True)
    result, failed = files([dict(path=str(etc / "a.conf"), content="x\n"), dict(path=str(etc / "old"), state="absent")],
                           check=checker(tmp_path, "bad"))
    assert failed and "cannot be put back" in result["msg"]
    assert (etc / "old").is_dir() and not (etc / "a.conf").exists()
