# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The roles claim exactly the platforms a Molecule scenario of `make test` runs on."""
from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import glob
import os
import re

import yaml

IMAGE = re.compile(r"^lbha/debian:(?P<suite>[a-z]+)-systemd$")


def _scenario_suites(repo_root):
    """{scenario: set of Debian suites its hosts run}, from the container images and the guest image."""
    suites = {}
    for path in glob.glob(os.path.join(repo_root, "molecule", "*", "molecule.yml")):
        name = os.path.basename(os.path.dirname(path))
        with open(path) as fh:
            config = yaml.safe_load(fh)
        found = set()
        for platform in config["platforms"]:
            image = platform.get("image")
            if image:
                match = IMAGE.match(image)
                assert match, "%s: image %s is not one of scripts/build-images.sh" % (name, image)
                found.add(match.group("suite"))
            else:
                # QEMU guests: scripts/build-guest-image.sh's suite
                found.add(platform.get("suite", "bookworm"))
        suites[name] = found
    return suites


def test_roles_claim_exactly_the_debian_releases_the_scenarios_run(repo_root):
    tested = set().union(*_scenario_suites(repo_root).values())
    for meta in glob.glob(os.path.join(repo_root, "roles", "*", "meta", "main.yml")):
        with open(meta) as fh:
            platforms = yaml.safe_load(fh)["galaxy_info"]["platforms"]
        claimed = {(p["name"], str(v)) for p in platforms for v in p["versions"]}
        assert claimed == {("Debian", suite) for suite in tested}, (
            "%s claims %s; make test runs %s" % (os.path.relpath(meta, repo_root), sorted(claimed), sorted(tested)))


def test_the_guest_image_default_suite_is_what_the_claims_assume(repo_root):
    with open(os.path.join(repo_root, "scripts", "build-guest-image.sh")) as fh:
        assert "SUITE=${LBHA_GUEST_SUITE:-bookworm}" in fh.read()


def test_a_debian_13_scenario_and_a_mixed_cluster_are_part_of_make_test(repo_root):
    suites = _scenario_suites(repo_root)
    assert any(found == {"trixie"} for found in suites.values()), suites
    assert any(found == {"bookworm", "trixie"} for found in suites.values()), suites
