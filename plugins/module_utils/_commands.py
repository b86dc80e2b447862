# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Running a program from a module: its output, or the module fails with the program named."""
from __future__ import (absolute_import, division, print_function)
__metaclass__ = type


def run_or_fail(module, argv, what=None, **result):
    """``module.run_command(argv)``; on a non-zero exit ``fail_json`` says ``<what> failed:`` and the
    program's error (``what`` defaults to the command without its path), with ``result``."""
    rc, out, err = module.run_command(argv)
    if rc != 0:
        module.fail_json(msg="%s failed: %s" % (what or " ".join(argv[1:]), (err or out).strip()), **result)
    return out
