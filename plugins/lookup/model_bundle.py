# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

DOCUMENTATION = r'''
name: model_bundle
version_added: 0.2.0
short_description: The collection's cluster model as one archive a director imports in place
description:
  - Builds, on the controller, a zip archive of the collection's C(plugins/module_utils) as the
    Python package C(lbha_cluster) and returns its path. The director role copies that one file to
    a director, where the nftables plane's checker imports the package from it (Python's
    zipimport). That is one transfer instead of one per file, and the daemon runs the very model
    the modules run.
  - The archive is reproducible - entries sorted, fixed timestamps and modes - so the same
    collection always gives the same bytes and copying it again changes nothing.
author:
  - lbha.cluster maintainers (@lbha)
options:
  output:
    description:
      - V(path) returns the archive's path on the controller (for M(ansible.builtin.copy)),
        V(base64) its bytes base64-encoded (for M(lbha.cluster.host_files), which installs it in the
        same call as the role's other files).
    type: str
    choices: [path, base64]
    default: path
'''

EXAMPLES = r'''
- name: Install the cluster model package
  ansible.builtin.copy:
    src: "{{ lookup('lbha.cluster.model_bundle') }}"
    dest: /usr/lib/lbha-cluster/lbha_cluster.zip
    mode: "0644"

- name: The same archive among other files, in one call
  lbha.cluster.host_files:
    files:
      - path: /usr/lib/lbha-cluster/lbha_cluster.zip
        content_b64: "{{ lookup('lbha.cluster.model_bundle', output='base64') }}"
'''

RETURN = r'''
_raw:
  description:
    - The path of the archive on the controller (content-addressed, in the temporary directory),
      or with O(output=base64) its bytes, base64-encoded.
  type: list
  elements: str
'''

import base64
import hashlib
import io
import os
import tempfile
import zipfile

from ansible.errors import AnsibleLookupError
from ansible.plugins.lookup import LookupBase

PACKAGE = "lbha_cluster"
EPOCH = (1980, 1, 1, 0, 0, 0)


def bundle(source_dir):
    """The zip bytes of every ``*.py`` of ``source_dir`` as the package ``lbha_cluster``."""
    names = sorted(n for n in os.listdir(source_dir) if n.endswith(".py") and n != "__init__.py")
    if not names:
        raise AnsibleLookupError("model_bundle: no Python files in %s" % source_dir)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as archive:
        entries = [("__init__.py", b"# The lbha.cluster model, shared with the collection's modules.\n")]
        for name in names:
            with open(os.path.join(source_dir, name), "rb") as fh:
                entries.append((name, fh.read()))
        for name, data in entries:
            info = zipfile.ZipInfo("%s/%s" % (PACKAGE, name), date_time=EPOCH)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, data)
    return buf.getvalue()


class LookupModule(LookupBase):
    def run(self, terms, variables=None, **kwargs):
        output = kwargs.pop("output", "path")
        if kwargs or output not in ("path", "base64"):
            raise AnsibleLookupError("model_bundle takes only output=path|base64 (got %r)" % dict(kwargs, output=output))
        source_dir = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "module_utils")
        data = bundle(source_dir)
        if output == "base64":
            return [base64.b64encode(data).decode("ascii")]
        path = os.path.join(tempfile.gettempdir(), "lbha-cluster-model-%s.zip" % hashlib.sha256(data).hexdigest()[:16])
        if not os.path.exists(path):
            fd, tmp = tempfile.mkstemp(prefix=".lbha-cluster-model-", dir=os.path.dirname(path))
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            os.chmod(tmp, 0o644)
            os.replace(tmp, path)
        return [path]
