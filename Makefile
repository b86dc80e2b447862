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

export PATH := $(VENV)/bin:/usr/sbin:/sbin:$(PATH)
export ANSIBLE_COLLECTIONS_PATH := $(COLLECTIONS)
export ANSIBLE_FORCE_COLOR := 0
export PY_COLORS := 0
export ANSIBLE_NOCOLOR := 1
export MOLECULE_NO_LOG := false

.PHONY: help test demo demo-down host venv collection lint sanity unit integration galaxy molecule bench clean

help:
	@echo "make demo       bring the seed topology up in local containers and deploy it"
	@echo "make demo-down  remove it"
	@echo "make test       run the whole suite: lint, sanity, unit, integration, galaxy, molecule"
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

lint: venv collection
	ansible-lint --profile production --offline

sanity: venv
	scripts/sanity.sh

unit: venv collection
	pytest -q tests/unit

## Integration tests in network namespaces (root, nft, ip); they say why when they skip.
integration: venv
	pytest -q -rs tests/integration

galaxy: venv
	scripts/galaxy-check.sh

molecule: venv collection host
	@for s in $(SCENARIOS); do \
	  if [ "$$s" = ipvs ] && ! scripts/ipvs-scenario-available.sh; then \
	    echo "=== SKIPPED molecule scenario ipvs: this host cannot run its QEMU guests (reason above)"; \
	    continue; \
	  fi; \
	  echo "=== molecule test -s $$s"; \
	  start=$$(date +%s); \
	  molecule test -s $$s; \
	  echo "=== molecule scenario $$s passed in $$(( $$(date +%s) - start )) s"; \
	done

test: host venv lint sanity unit integration galaxy molecule
	@echo "make test: all suites passed"

demo: host venv collection
	molecule create -s default
	molecule converge -s default
	@scripts/demo-report.sh

demo-down: venv collection
	molecule destroy -s default

bench: host venv collection
	@for b in benchmarks/*.py; do echo "=== $$b"; $(VENV)/bin/python $$b; done

clean:
	rm -rf build .cache/collections
