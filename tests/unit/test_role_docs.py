# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""docs/roles/*.md are generated from the roles' argument specs and must be current."""
from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import importlib.util
import os

import pytest


@pytest.fixture()
def role_docs(repo_root):
    spec = importlib.util.spec_from_file_location("role_docs", os.path.join(repo_root, "scripts", "role_docs.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_generated_role_docs_are_current(role_docs, capsys):
    rc = role_docs.main(["--check"])
    assert rc == 0, capsys.readouterr().out


def test_every_role_has_an_argument_spec_and_a_page(role_docs, repo_root):
    roles = sorted(os.listdir(os.path.join(repo_root, "roles")))
    assert roles, "no roles found"
    pages = {os.path.basename(path) for path, _text in role_docs.targets()}
    assert pages == {role + ".md" for role in roles}


def test_render_marks_required_and_choices(role_docs):
    text = role_docs.render("demo", {"argument_specs": {"main": {
        "short_description": "A demo",
        "options": {"a": {"type": "int", "required": True, "description": "first"},
                    "b": {"type": "str", "default": "x", "choices": ["x", "y"], "description": ["second"]}}}}})
    assert "| `a` | int | required | first |" in text
    assert "| `b` | str | `x` | second Choices: `x`, `y`. |" in text
