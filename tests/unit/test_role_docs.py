# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""roles/*/README.md are generated from the roles' argument specs and example playbooks, and current."""
from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import os
import shutil
import subprocess

import pytest


@pytest.fixture()
def role_docs(load_script):
    return load_script("role_docs.py")


def test_generated_role_readmes_are_current(role_docs, capsys):
    rc = role_docs.main(["--check"])
    assert rc == 0, capsys.readouterr().out


def test_every_role_has_an_argument_spec_a_readme_and_an_example(role_docs, repo_root):
    roles = sorted(os.listdir(os.path.join(repo_root, "roles")))
    assert roles, "no roles found"
    pages = {os.path.relpath(path, repo_root) for path, _text in role_docs.targets()}
    assert pages == {os.path.join("roles", role, "README.md") for role in roles}
    for role in roles:
        assert os.path.exists(role_docs.example_path(role)), "no example playbook for role %s" % role


def test_readme_holds_description_variables_and_example(role_docs, repo_root):
    for path, text in role_docs.targets():
        role = os.path.basename(os.path.dirname(path))
        assert "## Variables" in text, path
        assert "## Example" in text and "lbha.cluster.%s" % role in text.split("## Example")[1], path


@pytest.mark.skipif(shutil.which("ansible-playbook") is None, reason="ansible-playbook is not on PATH (run through make unit)")
def test_example_playbooks_pass_syntax_check(role_docs, repo_root):
    for role in sorted(os.listdir(os.path.join(repo_root, "roles"))):
        result = subprocess.run(["ansible-playbook", "-i", "localhost,", "--syntax-check", role_docs.example_path(role)],
                                capture_output=True, text=True, check=False)
        assert result.returncode == 0, result.stdout + result.stderr


def test_render_marks_required_and_choices_and_converts_markup(role_docs):
    text = role_docs.render("demo", {"argument_specs": {"main": {
        "short_description": "A demo",
        "options": {"a": {"type": "int", "required": True, "description": "first, see O(b)"},
                    "b": {"type": "str", "default": "x", "choices": ["x", "y"], "description": ["second C(x)"]}}}}},
        example="- hosts: all\n")
    assert "| `a` | int | required | first, see `b` |" in text
    assert "| `b` | str | `x` | second `x` Choices: `x`, `y`. |" in text
    assert "```yaml\n- hosts: all\n```" in text
