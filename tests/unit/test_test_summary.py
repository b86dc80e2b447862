# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""scripts/test-summary.py: the verdict line of `make test` names every skip and its reason."""
from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import pytest

PASSED = '<testsuites><testsuite><testcase classname="t" name="a"/></testsuite></testsuites>'
SKIPPED = ('<testsuites><testsuite><testcase classname="t" name="a"/><testcase classname="t" name="b">'
           '<skipped message="keepalived is not installed"/></testcase></testsuite></testsuites>')
FAILED = '<testsuite><testcase classname="t" name="a"><failure message="x"/></testcase></testsuite>'


@pytest.fixture()
def summary(load_script):
    return load_script("test-summary.py")


def test_all_passed_only_without_any_skip(summary, tmp_path):
    (tmp_path / "unit.xml").write_text(PASSED)
    _lines, verdict, rc = summary.summarize(str(tmp_path))
    assert (verdict, rc) == ("make test: all suites passed", 0)


def test_a_skipped_test_is_named_with_its_reason(summary, tmp_path):
    (tmp_path / "unit.xml").write_text(SKIPPED)
    lines, verdict, rc = summary.summarize(str(tmp_path))
    assert rc == 0 and "all suites passed" not in verdict
    assert "1 test(s) (keepalived is not installed)" in verdict
    assert any("t::b" in line for line in lines)


def test_a_skipped_suite_is_the_last_line(summary, tmp_path):
    (tmp_path / "unit.xml").write_text(PASSED)
    (tmp_path / "skipped-suites.txt").write_text("molecule ipvs: /dev/net/tun is missing\n")
    _lines, verdict, rc = summary.summarize(str(tmp_path))
    assert rc == 0 and verdict == "make test: passed, but skipped: suite molecule ipvs: /dev/net/tun is missing"


def test_failures_and_empty_runs_fail(summary, tmp_path):
    assert summary.summarize(str(tmp_path))[2] == 1
    (tmp_path / "unit.xml").write_text(FAILED)
    assert summary.summarize(str(tmp_path))[2] == 1


def test_a_scoped_scenario_is_listed_and_is_not_a_skip(summary, tmp_path):
    (tmp_path / "unit.xml").write_text(PASSED)
    (tmp_path / "scoped-suites.txt").write_text("molecule ipvs: test_faults.py not run here (...)\n")
    lines, verdict, rc = summary.summarize(str(tmp_path))
    assert (verdict, rc) == ("make test: all suites passed", 0)
    assert "SCOPED         molecule ipvs: test_faults.py not run here (...)" in lines
