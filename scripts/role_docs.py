# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Render every role's README.md from its meta/argument_specs.yml and its example playbook.

The argument specs are what Ansible validates role input against, so a README made from them
cannot drift from the code: what the role does (the spec's descriptions), every variable, and
the example playbook examples/roles/<role>.yml (which the tests syntax-check). Galaxy shows the
README on the role's page and refuses a role without one.

`python scripts/role_docs.py` rewrites the files; `python scripts/role_docs.py --check` exits 1
when one is out of date (the unit tests run it).
"""
from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import argparse
import os
import re
import sys

import yaml

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))

# Ansible's documentation markup (C(code), O(option), M(module), ...) as Markdown.
_MARKUP = re.compile(r"\b([CIOVMRLU])\(([^()]*)\)")


def _markdown(text):
    def sub(m):
        kind, value = m.group(1), m.group(2)
        if kind == "I":
            return "*%s*" % value
        if kind in ("L", "R"):
            return value.split(",", 1)[0]
        return "`%s`" % value
    return _MARKUP.sub(sub, text)


def _text(value):
    if isinstance(value, list):
        value = " ".join(str(v).strip() for v in value)
    return _markdown(str(value or "").strip())


def _cell(value):
    return _text(value).replace("|", "\\|").replace("\n", " ")


def _options_table(options):
    lines = ["| variable | type | default | description |", "|---|---|---|---|"]
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
    return lines


def render(role, specs, example=None):
    lines = ["# Role `lbha.cluster.%s`" % role, "",
             "<!-- Generated from roles/%s/meta/argument_specs.yml and examples/roles/%s.yml by "
             "scripts/role_docs.py: edit those, not this file. -->" % (role, role),
             ""]
    entries = sorted(specs.get("argument_specs", {}).items())
    for entry, spec in entries:
        if len(entries) > 1 or entry != "main":
            lines += ["## Entry point `%s`" % entry, ""]
        lines += ["%s." % _text(spec.get("short_description")).rstrip("."), ""]
        desc = spec.get("description")
        if desc:
            for para in desc if isinstance(desc, list) else [desc]:
                lines += [_text(para), ""]
        options = spec.get("options") or {}
        if options:
            lines += ["## Variables", ""] + _options_table(options) + [""]
    if example:
        lines += ["## Example", "", "```yaml", example.rstrip(), "```", ""]
    lines += ["`ansible-doc -t role lbha.cluster.%s` shows the same from the installed collection." % role]
    return "\n".join(lines).rstrip() + "\n"


def example_path(role):
    return os.path.join(ROOT, "examples", "roles", role + ".yml")


def targets():
    roles_dir = os.path.join(ROOT, "roles")
    for role in sorted(os.listdir(roles_dir)):
        spec_path = os.path.join(roles_dir, role, "meta", "argument_specs.yml")
        if not os.path.exists(spec_path):
            continue
        with open(spec_path) as fh:
            specs = yaml.safe_load(fh)
        example = None
        if os.path.exists(example_path(role)):
            with open(example_path(role)) as fh:
                example = fh.read()
        yield os.path.join(roles_dir, role, "README.md"), render(role, specs, example)


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
            with open(path, "w") as fh:
                fh.write(text)
            print("wrote %s" % os.path.relpath(path, ROOT))
    if stale:
        print("out of date (run: python scripts/role_docs.py): %s" % ", ".join(stale))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
