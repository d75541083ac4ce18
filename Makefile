# Two commands on a fresh machine:  `make demo` (set up + run the default sweep)  and  `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup demo test lint ui bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP)

## Set up and run the full default sweep on the embedded default (SQLite + local files), print the summary.
demo: setup
	$(BIN)/cvn demo

## Set up and run the linter and the whole test suite (starts its own PostgreSQL and S3 endpoint).
test: setup
	bash deploy/ensure-postgres.sh
	$(BIN)/ruff check cvn_assets cvn_assets_tests bench
	$(BIN)/python -m pytest

lint: setup
	$(BIN)/ruff check cvn_assets cvn_assets_tests bench
	$(BIN)/ruff format --check cvn_assets cvn_assets_tests bench

## The Dagster UI over the demo's instance and results.
ui: setup
	DAGSTER_HOME=$(CURDIR)/.cvn_home/dagster CVN_HOME=$(CURDIR)/.cvn_home $(BIN)/cvn ui

## Every bench, full size (tens of minutes on 2 cores; the figures). `make bench BENCH_ARGS=--quick`: each on
## tiny inputs, to check they run (what test_benches.py does).
BENCH_ARGS ?=
bench: setup
	$(BIN)/python bench/harness_overhead.py $(BENCH_ARGS)
	$(BIN)/python bench/hpo_throughput.py $(BENCH_ARGS)
	$(BIN)/python bench/orchestration_overhead.py $(BENCH_ARGS)
	$(BIN)/python bench/random_baselines.py $(BENCH_ARGS)
	$(BIN)/python bench/ui_vs_cli.py $(BENCH_ARGS)
	$(BIN)/python bench/feature_set_cost.py $(BENCH_ARGS)
	$(BIN)/python bench/code_location_load.py $(BENCH_ARGS)
	$(BIN)/python bench/memory_estimate.py $(BENCH_ARGS)
	$(BIN)/python bench/diagnostics_reuse.py $(BENCH_ARGS)

clean:
	rm -rf .cvn_home .pytest_cache .ruff_cache

## The production topology on one machine: code server, webserver and daemon as separate processes over
## PostgreSQL (deploy/dagster.yaml), S3 (moto) and an MLflow server (a few minutes; `make test` runs it too).
.PHONY: topology
topology: setup
	bash deploy/ensure-postgres.sh
	$(BIN)/python -m pytest cvn_assets_tests/test_production_topology.py
