# lbha.cluster — the two commands a newcomer runs are `make demo` and `make test`.
# Each installs what it needs: Debian packages, the Docker engine, test images, the venv.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
PYTHON ?= python3
VENV := $(CURDIR)/.venv
STAMP := $(VENV)/.requirements.sha256
REQ_SHA := $(shell sha256sum requirements.txt | cut -c1-16)
COLLECTIONS := $(CURDIR)/.cache/collections
SCENARIOS ?= $(sort $(notdir $(patsubst %/molecule.yml,%,$(wildcard molecule/*/molecule.yml))))
REPORTS := $(CURDIR)/build/reports
# ansible-core releases: the one the venv pins, the oldest requires_ansible claims, the newest
# (2.20 and later need Python >= 3.12: they run in a Debian 13 root with its Python 3.13).
CORE_DEV := $(shell sed -n 's/^ansible-core==\([0-9]*\.[0-9]*\).*/\1/p' requirements.txt)
CORE_OLDEST := 2.16
CORE_NEWEST := 2.21
CORE_MATRIX := 2.16 2.17 2.18 2.19 2.20 2.21

export PATH := $(VENV)/bin:/usr/sbin:/sbin:$(PATH)
export ANSIBLE_COLLECTIONS_PATH := $(COLLECTIONS)
export ANSIBLE_FORCE_COLOR := 0
export PY_COLORS := 0
export ANSIBLE_NOCOLOR := 1
export MOLECULE_NO_LOG := false

.PHONY: help test demo demo-down host venv collection reports lint sanity compat matrix unit differential integration galaxy molecule bench clean

help:
	@echo "make demo       bring the seed topology up in local containers and deploy it"
	@echo "make demo-down  remove it"
	@echo "make test       run the whole suite: lint, sanity, compat, unit, differential, integration, galaxy, molecule"
	@echo "make matrix     sanity and unit tests on every ansible-core release from $(CORE_OLDEST) to $(CORE_NEWEST)"
	@echo "make bench      run the benchmarks (JSON under benchmarks/results/)"

## Host: Debian packages, Docker engine (started if none answers), test images.
host:
	@scripts/bootstrap-host.sh

## Project venv, rebuilt only when requirements.txt changes.
venv: $(STAMP)
$(STAMP): requirements.txt
	@if ! $(PYTHON) -m venv --help >/dev/null 2>&1 || ! $(PYTHON) -c 'import ensurepip' 2>/dev/null; then \
	  apt-get install -y -q python3-venv >/dev/null 2>&1 \
	    || { apt-get update -q >/dev/null && apt-get install -y -q python3-venv >/dev/null; }; fi
	@test -x $(VENV)/bin/pip || $(PYTHON) -m venv $(VENV)
	@$(VENV)/bin/pip install -q --disable-pip-version-check -r requirements.txt
	@echo $(REQ_SHA) > $@

## The working tree, importable as lbha.cluster (symlink, so edits are live).
collection:
	@mkdir -p $(COLLECTIONS)/ansible_collections/lbha
	@ln -sfn $(CURDIR) $(COLLECTIONS)/ansible_collections/lbha/cluster

## Test reports of this run (JUnit XML, skipped suites), read by scripts/test-summary.py.
reports:
	@rm -rf $(REPORTS) && mkdir -p $(REPORTS)

lint: venv collection
	ansible-lint --profile production --offline

## ansible-test sanity on the pinned ansible-core.
sanity: venv
	scripts/core-test.sh $(CORE_DEV) sanity

## Sanity and unit tests on the oldest and the newest ansible-core the collection claims.
compat: venv host
	scripts/core-test.sh $(CORE_OLDEST)
	scripts/core-test.sh $(CORE_NEWEST)

## Every ansible-core release from the oldest to the newest (not part of make test: time).
matrix: venv host
	@for v in $(CORE_MATRIX); do scripts/core-test.sh $$v; done

unit: venv collection
	@mkdir -p $(REPORTS)
	pytest -q -rs tests/unit --junitxml=$(REPORTS)/unit.xml

## The model against its oracles: keepalived 2.2.7 (this host), keepalived 2.3.3 (a Debian 13
## root) and nft, over property-based definitions (LBHA_DIFF_EXAMPLES, default 2500).
differential: venv host
	@mkdir -p $(REPORTS)
	@scripts/build-chroot.sh trixie >/dev/null
	pytest -q -rs tests/differential --junitxml=$(REPORTS)/differential.xml

## Integration tests in network namespaces (root, nft, ip), the execution-environment build
## context and ansible-runner; they say why when they skip.
integration: venv
	@mkdir -p $(REPORTS)
	pytest -q -rs tests/integration --junitxml=$(REPORTS)/integration.xml

galaxy: venv
	scripts/galaxy-check.sh

## make test runs a scenario without the suite files that another scenario of make test already
## runs on the same code path (its 60-minute budget): the fault drills are plane- and
## transport-agnostic and run in default (Debian 12) and trixie (Debian 13); the day-2 playbooks
## run in ipvs (Debian 12 guests) and unicast (the mixed 12/13 cluster: a Debian 13 director and
## real server); the plane switch (two converges of a director under emulation, ~10 min) runs in
## molecule test -s ipvs; active-active runs only its own drills (molecule/suite/conftest.py).
## `molecule test -s NAME` on its own runs the whole suite (LBHA_SUITE_EXCLUDE empty).
SUITE_EXCLUDE_default := test_operations.py
SUITE_EXCLUDE_trixie := test_operations.py
SUITE_EXCLUDE_unicast := test_faults.py
SUITE_EXCLUDE_ipvs := test_faults.py test_plane_ipvs_switch.py

molecule: venv collection host
	@mkdir -p $(REPORTS)
	@for s in $(SCENARIOS); do \
	  if [ "$$s" = ipvs ] && ! reason=$$(scripts/ipvs-scenario-available.sh 2>&1); then \
	    echo "$$reason"; \
	    echo "=== SKIPPED molecule scenario ipvs: this host cannot run its QEMU guests (reason above)"; \
	    echo "molecule ipvs: $${reason#SKIP molecule ipvs: }" >> $(REPORTS)/skipped-suites.txt; \
	    continue; \
	  fi; \
	  case "$$s" in default) ex="$(SUITE_EXCLUDE_default)";; unicast) ex="$(SUITE_EXCLUDE_unicast)";; \
	    trixie) ex="$(SUITE_EXCLUDE_trixie)";; \
	    ipvs) ex="$(SUITE_EXCLUDE_ipvs)";; *) ex="";; esac; \
	  if [ -n "$$ex" ]; then \
	    echo "molecule $$s: without $$ex (time budget: the Makefile's SUITE_EXCLUDE_$$s says why; molecule test -s $$s runs them)" \
	      >> $(REPORTS)/scoped-suites.txt; fi; \
	  echo "=== molecule test -s $$s$${ex:+ (without $$ex)}"; \
	  start=$$(date +%s); \
	  LBHA_SUITE_EXCLUDE="$$ex" molecule test -s $$s; \
	  echo "=== molecule scenario $$s passed in $$(( $$(date +%s) - start )) s"; \
	done

test: reports host venv lint sanity compat unit differential integration galaxy molecule
	@$(VENV)/bin/python scripts/test-summary.py $(REPORTS)

demo: host venv collection
	molecule create -s default
	molecule converge -s default
	@scripts/demo-report.sh

demo-down: venv collection
	molecule destroy -s default

## Every benchmark (results under benchmarks/results/), then the pictures drawn from them.
bench: host venv collection
	$(VENV)/bin/pip install -q -r benchmarks/requirements.txt
	@for b in benchmarks/*.py; do case $$b in */suite.py|*/plots.py) continue;; esac; \
	  echo "=== $$b"; $(VENV)/bin/python $$b || exit 1; done
	$(VENV)/bin/python benchmarks/plots.py

clean:
	rm -rf build .cache/collections
