# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""lookup model_bundle: one reproducible archive of the model that the checker daemon imports in place."""
from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import os
import subprocess
import sys
import zipfile

from ansible_collections.lbha.cluster.plugins.lookup import model_bundle


def test_the_archive_is_reproducible_and_holds_every_module(repo_root):
    first = model_bundle.LookupModule().run([])[0]
    second = model_bundle.LookupModule().run([])[0]
    assert first == second, "the same collection gives the same archive (content-addressed)"
    with zipfile.ZipFile(first) as archive:
        names = archive.namelist()
        assert all(i.date_time == model_bundle.EPOCH for i in archive.infolist())
    expected = sorted("lbha_cluster/" + n for n in os.listdir(os.path.join(repo_root, "plugins", "module_utils"))
                      if n.endswith(".py"))
    assert sorted(names) == sorted(expected + ["lbha_cluster/__init__.py"])


def test_the_daemon_imports_the_package_from_the_archive(tmp_path, repo_root):
    lib = tmp_path / "lib"
    lib.mkdir()
    (lib / "lbha_cluster.zip").write_bytes(open(model_bundle.LookupModule().run([])[0], "rb").read())
    daemon = os.path.join(repo_root, "roles", "director", "files", "lbha_checkerd.py")
    (lib / "lbha_checkerd.py").write_text(open(daemon).read())
    result = subprocess.run([sys.executable, str(lib / "lbha_checkerd.py"), "--help"], capture_output=True, text=True,
                            env={"PATH": os.environ.get("PATH", "")}, check=False, cwd=str(tmp_path))
    assert result.returncode == 0 and "--document" in result.stdout, result.stderr


def test_base64_output_is_the_same_archive():
    import base64
    path = model_bundle.LookupModule().run([])[0]
    encoded = model_bundle.LookupModule().run([], output="base64")[0]
    with open(path, "rb") as fh:
        assert base64.b64decode(encoded) == fh.read()


def test_an_unknown_output_is_refused():
    import pytest
    from ansible.errors import AnsibleLookupError
    with pytest.raises(AnsibleLookupError, match="output=path|base64"):
        model_bundle.LookupModule().run([], output="hex")
