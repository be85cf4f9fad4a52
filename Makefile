# The two commands of the README: `make serve` and `make test`. Each builds .venv itself.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
RUNTIME_STAMP := $(VENV)/.runtime-installed
DEV_STAMP := $(VENV)/.dev-installed

.PHONY: serve test check lint types unit install dev clean bench bench-backends

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

## Lint, types and the whole test suite, exactly as CI runs them, in TEST_PROCESSES
## processes (pytest-xdist; a test file's tests stay in one process).
TEST_PROCESSES ?= 2
test: $(DEV_STAMP) lint types
	$(BIN)/pytest -n $(TEST_PROCESSES) --dist loadfile --cov --cov-report=
	$(BIN)/coverage report --include='app/core/*,app/store/*' --fail-under=85

check: test

lint: $(DEV_STAMP)
	$(BIN)/ruff check app runners tests
	$(BIN)/ruff format --check app runners tests

types: $(DEV_STAMP)
	$(BIN)/mypy

## Every scenario of docs/benchmarks.md against spawned servers, median of 3 runs
## (about 20 minutes; JSON and logs in $(BENCH_DIR), the plot in docs/).
BENCH_DIR ?= bench-results
BENCH := $(BIN)/taskgate bench
bench: $(DEV_STAMP)
	mkdir -p $(BENCH_DIR)
	$(BENCH) submit --spawn --workers 1 --concurrency 1,4,16,64 --duration 5 --repeat 3 --json $(BENCH_DIR)/submit-w1.json
	$(BENCH) submit --spawn --workers 2 --concurrency 1,4,16,64 --duration 5 --repeat 3 --json $(BENCH_DIR)/submit-w2.json
	$(BENCH) submit --spawn --workers 2 --durability normal --concurrency 64 --duration 5 --repeat 3 --json $(BENCH_DIR)/submit-w2-normal.json
	$(BENCH) submit --spawn --workers 2 --concurrency 64 --rate 5000 --duration 5 --repeat 3 --json $(BENCH_DIR)/submit-w2-rate5000.json
	$(BENCH) submit --spawn --workers 2 --concurrency 64 --rate 2000 --duration 5 --repeat 3 --json $(BENCH_DIR)/submit-w2-rate2000.json
	$(BENCH) submit-batch --spawn --workers 2 --batch-size 1000 --concurrency 4 --tasks 200000 --repeat 3 --json $(BENCH_DIR)/batch-w2.json
	$(BENCH) e2e --spawn --workers 2 --tasks 50000 --repeat 3 --json $(BENCH_DIR)/e2e-w2.json
	$(BENCH) e2e-single --spawn --workers 2 --tasks 10000 --repeat 3 --json $(BENCH_DIR)/e2e-single-w2.json
	$(BENCH) wake --spawn --workers 1 --samples 50 --repeat 3 --json $(BENCH_DIR)/wake-w1.json
	$(BENCH) wake --spawn --workers 2 --samples 50 --repeat 3 --json $(BENCH_DIR)/wake-w2.json
	$(BENCH) backlog --spawn --workers 2 --backlog 1000000 --repeat 3 --json $(BENCH_DIR)/backlog-w2.json
	$(BENCH) plot $(BENCH_DIR)/submit-w1.json $(BENCH_DIR)/submit-w2.json -o docs/bench-throughput.png

## Both backends side by side (docs/benchmarks.md): the same five commands on SQLite and
## on PostgreSQL. TASKGATE_BENCH_DATABASE_URL names a PostgreSQL server on which each run
## gets a fresh database, e.g. postgresql://postgres@127.0.0.1:5432/postgres (~15 minutes).
BACKEND_RUNS = \
	"submit --concurrency 64 --tasks 20000" \
	"submit-batch --batch-size 1000 --concurrency 4 --tasks 200000" \
	"e2e --tasks 50000" \
	"e2e-single --tasks 10000" \
	"wake --samples 50"
bench-backends: $(DEV_STAMP)
	@test -n "$$TASKGATE_BENCH_DATABASE_URL" || { echo "set TASKGATE_BENCH_DATABASE_URL=postgresql://…"; exit 2; }
	mkdir -p $(BENCH_DIR)
	@for run in $(BACKEND_RUNS); do \
	  name=$$(echo $$run | cut -d' ' -f1); \
	  set -x; \
	  env -u TASKGATE_BENCH_DATABASE_URL $(BENCH) $$run --spawn --workers 2 --repeat 3 --json $(BENCH_DIR)/sqlite-$$name.json --no-progress || exit 1; \
	  $(BENCH) $$run --spawn --workers 2 --repeat 3 --database-url "$$TASKGATE_BENCH_DATABASE_URL" --json $(BENCH_DIR)/postgres-$$name.json --no-progress || exit 1; \
	  set +x; \
	done

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
