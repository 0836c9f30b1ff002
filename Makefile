# Transakt developer tasks. A fresh machine needs only python3 (3.11+) and make:
# `make run` and `make test` create the virtualenv and install everything on first use.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# Records that the editable install matches pyproject.toml; reinstall only when that changes.
STAMP := $(VENV)/.transakt-installed
PYTEST_ARGS ?=
# `make bench BENCH=bench/transfers.py BENCH_ARGS=--quick`: one script, a smoke run.
BENCH ?= bench/*.py
BENCH_ARGS ?=

.DEFAULT_GOAL := help
.PHONY: help venv run test chromium lint bench clean distclean

help:
	@echo "make venv       create $(VENV) and install Transakt with its dev tools and embedded servers"
	@echo "make run        run the whole system on embedded PostgreSQL and Redis (transakt up)"
	@echo "make test       run the test suite (PYTEST_ARGS='-k ledger -x' to narrow it)"
	@echo "make chromium   install Debian's Chromium for the browser tests (as root, with apt)"
	@echo "make lint       ruff check, ruff format --check, mypy, the layer contracts (lint-imports)"
	@echo "make bench      run every benchmark script in bench/ (BENCH=bench/x.py BENCH_ARGS=--quick)"
	@echo "make clean      remove caches and build output (keeps $(VENV) and .transakt data)"
	@echo "make distclean  clean, and remove $(VENV) too"

venv: $(STAMP)

# The target is pip, not python: a venv made without ensurepip has a python but no pip,
# and must be made again rather than trusted.
$(BIN)/pip:
	@if ! $(PYTHON) -c 'import venv, ensurepip' >/dev/null 2>&1; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
			echo "$(PYTHON) lacks the venv module; installing python3-venv"; \
			apt-get update -qq; \
			DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv </dev/null; \
		else \
			echo "error: $(PYTHON) lacks the venv module: install python3-venv (Debian/Ubuntu) and retry" >&2; \
			exit 1; \
		fi; \
	fi
	rm -rf $(VENV)
	$(PYTHON) -m venv $(VENV)

# The embedded extra: the PostgreSQL and Redis wheels that `make run` (transakt up) runs on and
# the tests fall back on when no local service answers.
$(STAMP): pyproject.toml | $(BIN)/pip
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,embedded]'
	@touch $(STAMP)

run: venv
	$(BIN)/transakt up

test: venv chromium
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# The dashboard's browser tests drive the system Chromium. Installed here when we can (root
# with apt-get); otherwise those tests skip on a laptop (and fail in CI, which installs it).
chromium:
	@if ! command -v chromium >/dev/null 2>&1 && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "installing chromium for the browser tests"; \
		{ apt-get update -qq </dev/null && \
		  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium </dev/null >/dev/null; } || \
		echo "could not install chromium; the browser tests will skip (outside CI)"; \
	fi

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

# A benchmark script is a file in bench/ that runs as a program; the others are its modules.
bench: venv
	@shopt -s nullglob; ran=0; \
	for script in $(BENCH); do \
		grep -q '^if __name__ == "__main__":' "$$script" || continue; \
		echo "== $$script"; \
		$(BIN)/python "$$script" $(BENCH_ARGS); \
		ran=$$((ran + 1)); \
	done; \
	echo "$$ran benchmark script(s) run"

clean:
	rm -rf build dist .pytest_cache .mypy_cache .ruff_cache .hypothesis artifacts
	find . -path ./$(VENV) -prune -o \( -name __pycache__ -o -name '*.egg-info' \) -type d \
		-prune -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV)
