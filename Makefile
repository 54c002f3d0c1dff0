# Loomworks platform. `make test` is THE test command (README, CI).
SHELL := /bin/bash
.SHELLFLAGS := -Eeuo pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV ?= .venv
ODOO_TREE := $(shell $(PYTHON) tests/support/odoo_tree.py)
# Odoo's official source: the pinned 18.0 revision the image and `make odoo` use.
ODOO_REPO ?= https://github.com/odoo/odoo
ODOO_REF ?= 18.0
PYTEST_ARGS ?=

.PHONY: help test test-run venv odoo prepare lint up up-run dev down drills bench arm64 swarm-up swarm-down swarm-upgrade swarm-drills

help:
	@echo "make up      prepare the host, build and start the stack, wait until every service is healthy"
	@echo "make dev     the same with the development override (docker-compose.dev.yml)"
	@echo "make test    prepare the host, build the test venv and run the whole suite"
	@echo "make prepare what up/test do first: host packages + Docker (.ci/setup-host, as root), Odoo tree"
	@echo "make odoo    fetch Odoo $(ODOO_REF) from $(ODOO_REPO) into the cache"
	@echo "make drills  fault drills and security checks; rewrites README's drill table"
	@echo "make bench   every benchmark beside its anchor (bench/results/summary.md)"
	@echo "make arm64   build the four images for linux/arm64 (emulated) and start the ERP one to /web/health"
	@echo "make swarm-up       the stack on Docker Swarm (swarm init when needed), ODOO_REPLICAS Odoo replicas"
	@echo "make swarm-upgrade  IMAGE=...: migrations once (one-off job), then a rolling update"
	@echo "make swarm-down     remove the Swarm stack (and leave the swarm swarm-up created)"
	@echo "make swarm-drills   Swarm drills (rolling update, rollback, kill); rewrites README's Swarm table"
	@echo "make lint    ruff, shellcheck, hadolint"

# The venv is rebuilt when a requirements file changes or the Odoo tree moves.
VENV_STAMP := $(VENV)/.stamp-$(shell printf '%s' "$(ODOO_TREE)" | md5sum | cut -c1-8)
$(VENV_STAMP): requirements-test.txt docker/build-constraints.txt $(if $(ODOO_TREE),$(ODOO_TREE)/requirements.txt)
	@test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	export PIP_CONSTRAINT=$(CURDIR)/docker/build-constraints.txt PIP_DISABLE_PIP_VERSION_CHECK=1; \
	$(VENV)/bin/pip install -q $(if $(ODOO_TREE),-r $(ODOO_TREE)/requirements.txt) -r requirements-test.txt
	site=$$($(VENV)/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])'); \
	if [ -n "$(ODOO_TREE)" ]; then echo "$(ODOO_TREE)" > "$$site/odoo-tree.pth"; else rm -f "$$site/odoo-tree.pth"; fi
	rm -f $(VENV)/.stamp-* && touch $@

venv: $(VENV_STAMP)

# `make test` and `make up` first prepare what a fresh machine lacks, then run in a new
# make (so the Odoo tree fetched by `prepare` is the one the venv and the build see).
test: prepare
	@$(MAKE) --no-print-directory test-run

test-run: venv
	$(VENV)/bin/python -m pytest $(PYTEST_ARGS)

# As root: Debian packages, the Docker engine, buildx and Compose (.ci/setup-host, idempotent:
# quiet when everything is there). Then the Odoo tree, when none is found and Odoo's source
# answers (a missing tree is not an error here: the Odoo tests say once that they skip).
prepare:
	@if [ "$$(id -u)" = 0 ]; then .ci/setup-host; \
	else echo "make: not root: host setup skipped (run 'sudo .ci/setup-host' on a fresh Debian 12 host)"; fi
	@if [ -z "$(ODOO_TREE)" ]; then $(MAKE) --no-print-directory odoo ODOO_OPTIONAL=1; fi

# Odoo's official source into the cache the tests and `make up` look in. ODOO_OPTIONAL=1
# (used by `prepare`) turns "source unreachable" into a warning instead of an error.
odoo:
	@ODOO_REPO="$(ODOO_REPO)" ODOO_REF="$(ODOO_REF)" ODOO_OPTIONAL="$(ODOO_OPTIONAL)" \
		$(PYTHON) tests/support/odoo_tree.py fetch

lint: venv
	$(VENV)/bin/ruff check .
	shellcheck -x $$(git ls-files | xargs grep -lE '^#!.*(ba)?sh' 2>/dev/null)
	$(VENV)/bin/hadolint $$(git ls-files '*Dockerfile*')

# The README's start command. Works offline: builds debian:bookworm-slim from a Debian
# mirror when it cannot be pulled, builds Odoo from a local tree when one is found
# (ODOO_SRC or the cache) and otherwise from Odoo's official source, and trusts the
# host's CA bundle during builds (TLS-intercepting proxies). Waits until all healthy.
HOST_CA := $(wildcard /etc/ssl/certs/ca-certificates.crt)
COMPOSE_FILES ?= docker-compose.yml
up: prepare
	@$(MAKE) --no-print-directory up-run

up-run:
	docker/build-base-image
	$(if $(ODOO_TREE),$(PYTHON) -c 'import sys; from tests.support.images import prepare_odoo_context as p; p(sys.argv[1])' "$(ODOO_TREE)")
	COMPOSE_BAKE=false $(if $(HOST_CA),BUILD_CA_BUNDLE="$${BUILD_CA_BUNDLE:-$(HOST_CA)}") \
		docker compose $(foreach f,$(COMPOSE_FILES),-f $(f)) up -d --build --wait

# The development stack: live addons, debugpy on 127.0.0.1:5678, no limits.
dev:
	$(MAKE) up COMPOSE_FILES="docker-compose.yml docker-compose.dev.yml"

down:
	docker compose down

# Fault drills and security checks against real stacks; rewrites README's results table.
drills: venv
	$(VENV)/bin/python -m tests.support.drill_report

# Every benchmark beside its anchor: one Markdown table in bench/results/summary.md (+ .json).
# BENCH_QUICK=1 for shorter runs; BENCH_ONLY=health,proxy to select sections (bench/README.md).
bench: venv
	$(VENV)/bin/python -m bench $(if $(filter 1 true yes,$(BENCH_QUICK)),--quick) $(if $(BENCH_ONLY),--only $(BENCH_ONLY))

# The four images for linux/arm64 from the same Dockerfiles, on an amd64 host: qemu-user-static
# through binfmt_misc (.ci/arm64-emulation, as root), an arm64 debian:bookworm-slim from the
# Debian mirror, then tests/docker/test_build_arm64.py builds them (tagged loomworks/*:TAG-arm64)
# and starts the ERP image against the arm64 PostgreSQL to a passing /web/health. Emulated:
# slow. Offline (no GitHub), the ERP image is built with PDF_RENDERER=debian (tests/support/images.py).
ARM64_BASE_IMAGE ?= loomworks/debian-arm64:bookworm-slim
arm64: venv
	@if [ "$$(id -u)" = 0 ]; then .ci/arm64-emulation; \
	else echo "make: not root: arm64 emulation setup skipped (run 'sudo .ci/arm64-emulation')"; fi
	BASE_ARCH=arm64 docker/build-base-image $(ARM64_BASE_IMAGE)
	$(if $(ODOO_TREE),$(PYTHON) -c 'import sys; from tests.support.images import prepare_odoo_context as p; p(sys.argv[1])' "$(ODOO_TREE)")
	LWTEST_ARM64=1 ARM64_BASE_IMAGE=$(ARM64_BASE_IMAGE) $(VENV)/bin/python -m pytest tests/docker/test_build_arm64.py -v $(PYTEST_ARGS)
# Docker Swarm (swarm/docker-stack.yml, README "Scaling out"): builds the images as `up` does
# (a multi-node cluster pulls them from a registry instead), then swarm/stack does the rest.
swarm-up: prepare
	docker/build-base-image
	$(if $(ODOO_TREE),$(PYTHON) -c 'import sys; from tests.support.images import prepare_odoo_context as p; p(sys.argv[1])' "$(ODOO_TREE)")
	COMPOSE_BAKE=false $(if $(HOST_CA),BUILD_CA_BUNDLE="$${BUILD_CA_BUNDLE:-$(HOST_CA)}") docker compose build
	swarm/stack up

swarm-upgrade:
	swarm/stack upgrade $(IMAGE)

swarm-down:
	swarm/stack down

# The long Swarm drills; rewrites README's Swarm drill table.
swarm-drills: venv
	LWTEST_SWARM_DRILLS=1 $(VENV)/bin/python -m tests.support.drill_report --tests tests/swarm --section swarm-drills
