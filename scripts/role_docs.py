# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Render every role's meta/argument_specs.yml into docs/roles/<role>.md.

The argument specs are what Ansible validates role input against, so docs made from them
cannot drift from the code. `python scripts/role_docs.py` rewrites the files;
`python scripts/role_docs.py --check` exits 1 when one is out of date (the unit tests run it).
"""
from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import argparse
import os
import sys

import yaml

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))


def _text(value):
    if isinstance(value, list):
        return " ".join(str(v).strip() for v in value)
    return str(value or "").strip()


def _cell(value):
    return _text(value).replace("|", "\\|").replace("\n", " ")


def render(role, specs):
    lines = ["# Role `lbha.cluster.%s`" % role, "",
             "<!-- Generated from roles/%s/meta/argument_specs.yml by scripts/role_docs.py: edit the spec, not this file. -->" % role,
             ""]
    for entry, spec in sorted(specs.get("argument_specs", {}).items()):
        title = "Entry point `%s`" % entry
        lines += ["## %s" % title, "", _text(spec.get("short_description")), ""]
        desc = spec.get("description")
        if desc:
            for para in desc if isinstance(desc, list) else [desc]:
                lines += [_text(para), ""]
        options = spec.get("options") or {}
        if options:
            lines += ["| variable | type | default | description |", "|---|---|---|---|"]
            for name, opt in sorted(options.items()):
                if opt.get("required"):
                    default = "required"
                elif "default" in opt:
                    default = "`%s`" % (opt["default"],) if opt["default"] not in ("", None) else '`""`'
                else:
                    default = ""
                kind = opt.get("type", "str")
                if opt.get("elements"):
                    kind += " of " + opt["elements"]
                desc = _cell(opt.get("description"))
                if opt.get("choices"):
                    desc += " Choices: %s." % ", ".join("`%s`" % c for c in opt["choices"])
                lines.append("| `%s` | %s | %s | %s |" % (name, kind, default, desc))
            lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def targets():
    roles_dir = os.path.join(ROOT, "roles")
    for role in sorted(os.listdir(roles_dir)):
        spec_path = os.path.join(roles_dir, role, "meta", "argument_specs.yml")
        if os.path.exists(spec_path):
            with open(spec_path) as fh:
                specs = yaml.safe_load(fh)
            yield os.path.join(ROOT, "docs", "roles", role + ".md"), render(role, specs)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    ap.add_argument("--check", action="store_true", help="fail when a generated file is out of date")
    args = ap.parse_args(argv)
    stale = []
    for path, text in targets():
        current = open(path).read() if os.path.exists(path) else None
        if current == text:
            continue
        if args.check:
            stale.append(os.path.relpath(path, ROOT))
        else:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "w") as fh:
                fh.write(text)
            print("wrote %s" % os.path.relpath(path, ROOT))
    if stale:
        print("out of date (run: python scripts/role_docs.py): %s" % ", ".join(stale))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
