# dcconsole: `make run` opens the console on the demo datacenter; `make test` passes the tests.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test install peers lint typecheck contracts unit bench screenshots clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Reinstall when the project's metadata changes (new dependency, new entry point).
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

run: install
	$(BIN)/dcc

# The real peers the tests run against (Debian packages; installed when root).
peers:
	bash scripts/install-peers.sh

lint: install
	$(BIN)/ruff check console plugins tests scripts

typecheck: install
	$(BIN)/mypy

contracts: install
	$(BIN)/lint-imports

test: install peers lint typecheck contracts
	$(BIN)/pytest -q -p no:cacheprovider

bench: install peers
	$(BIN)/python -m tests.bench

screenshots: install
	$(BIN)/python scripts/screenshots.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
