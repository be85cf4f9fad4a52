# The two commands of the README: `make serve` and `make test`. Each builds .venv itself.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
RUNTIME_STAMP := $(VENV)/.runtime-installed
DEV_STAMP := $(VENV)/.dev-installed

.PHONY: serve test check lint types unit install dev clean

$(BIN)/python:
	$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "taskgate needs Python 3.11+"'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(RUNTIME_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(DEV_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(RUNTIME_STAMP) $@

install: $(RUNTIME_STAMP)
dev: $(DEV_STAMP)

## Start the server on http://127.0.0.1:8000 with ./taskgate.db (settings: TASKGATE_*).
serve: $(RUNTIME_STAMP)
	$(BIN)/taskgate serve

## Lint, types and the whole test suite, exactly as CI runs them.
test: $(DEV_STAMP) lint types
	$(BIN)/coverage run -m pytest
	$(BIN)/coverage report --include='app/core/*,app/store/*' --fail-under=85

check: test

lint: $(DEV_STAMP)
	$(BIN)/ruff check app runners tests
	$(BIN)/ruff format --check app runners tests

types: $(DEV_STAMP)
	$(BIN)/mypy

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
