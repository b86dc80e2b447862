# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The last word of `make test`: what ran, what was skipped and why.

Reads the JUnit XML files the suites wrote under the reports directory (pytest: unit,
integration, the core matrix, Molecule's testinfra verifiers) and ``skipped-suites.txt``, where
a suite that could not run on this machine wrote one line, ``<suite>: <reason>``, and
``scoped-suites.txt``, where a scenario that make test runs without some of the suite's files
(another of its scenarios runs them on the same code path) says which: printed, not a skip.

Prints one line per report, then the verdict as the last line: ``make test: all suites passed``
only when no suite and no test was skipped; otherwise which were skipped and why. Exits 0 in
both cases (a skip is not a failure), 1 when a report holds a failure or an error, or when no
report was written at all (then nothing was proven).
"""
from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import argparse
import glob
import os
import sys
import xml.etree.ElementTree as ET


def read_report(path):
    """``(tests, failures, errors, [(test id, skip reason)])`` of one JUnit XML file."""
    root = ET.parse(path).getroot()
    suites = [root] if root.tag == "testsuite" else root.findall("testsuite")
    tests = failures = errors = 0
    skipped = []
    for suite in suites:
        for case in suite.iter("testcase"):
            tests += 1
            if case.find("failure") is not None:
                failures += 1
            if case.find("error") is not None:
                errors += 1
            skip = case.find("skipped")
            if skip is not None:
                reason = (skip.get("message") or skip.text or "no reason given").strip()
                skipped.append(("%s::%s" % (case.get("classname"), case.get("name")), reason))
    return tests, failures, errors, skipped


def summarize(reports_dir):
    """``(lines, verdict, rc)``."""
    lines = []
    skipped_tests = []
    bad = 0
    paths = sorted(glob.glob(os.path.join(reports_dir, "*.xml")))
    for path in paths:
        name = os.path.splitext(os.path.basename(path))[0]
        tests, failures, errors, skipped = read_report(path)
        bad += failures + errors
        lines.append("%-24s %4d tests, %d failed, %d errors, %d skipped" % (name, tests, failures, errors, len(skipped)))
        skipped_tests += [(name, test, reason) for test, reason in skipped]
    suites = []
    skip_file = os.path.join(reports_dir, "skipped-suites.txt")
    if os.path.exists(skip_file):
        with open(skip_file) as fh:
            suites = [line.strip() for line in fh if line.strip()]
    for suite in suites:
        lines.append("SKIPPED SUITE  %s" % suite)
    scoped_file = os.path.join(reports_dir, "scoped-suites.txt")
    if os.path.exists(scoped_file):
        with open(scoped_file) as fh:
            lines += ["SCOPED         %s" % line.strip() for line in fh if line.strip()]
    for name, test, reason in skipped_tests:
        lines.append("SKIPPED TEST   %s %s: %s" % (name, test, reason))
    if bad:
        return lines, "make test: FAILED (%d failed or erroneous tests in the reports above)" % bad, 1
    if not paths and not suites:
        return lines, "make test: FAILED (no test report was written under %s)" % reports_dir, 1
    if not suites and not skipped_tests:
        return lines, "make test: all suites passed", 0
    parts = ["suite %s" % s for s in suites]
    reasons = sorted(set(reason for _n, _t, reason in skipped_tests))
    if skipped_tests:
        parts.append("%d test(s) (%s)" % (len(skipped_tests), "; ".join(reasons)))
    return lines, "make test: passed, but skipped: %s" % "; ".join(parts), 0


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    ap.add_argument("reports", help="directory of the JUnit XML reports and skipped-suites.txt")
    args = ap.parse_args(argv)
    lines, verdict, rc = summarize(args.reports)
    for line in lines:
        print(line)
    print(verdict)
    return rc


if __name__ == "__main__":
    sys.exit(main())
