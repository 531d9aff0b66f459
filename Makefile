# Followthrough: `make run` runs the whole system, `make test` runs the checks and tests.
# Both set up their own environment: uv (pinned) in .tools/, the locked install in .venv/.

PYTHON ?= python3
UV_VERSION := 0.13.8
TOOLS := .tools
UV := $(TOOLS)/bin/uv
VENV := .venv
BIN := $(VENV)/bin
ARGS ?=
# Branch coverage of events, scheduler, workers and followthrough in `make test`; it only rises.
COVERAGE_FLOOR := 80

.PHONY: run test check lint typecheck unit devnet bench-eventlog bench-dispatch clean

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

$(VENV)/.synced: $(UV) pyproject.toml uv.lock
	$(UV) sync --frozen --python $(PYTHON)
	@touch $@

## run: every role on this machine (embedded PostgreSQL and Redis unless DATABASE_URL / BROKER_URL are set)
run: $(VENV)/.synced
	$(BIN)/followthrough up $(ARGS)

## test: lint, type-check, then every test (unit, contract, integration, end-to-end, faults) with coverage
test: lint typecheck devnet
	$(BIN)/pytest --cov --cov-report=term:skip-covered --cov-fail-under=$(COVERAGE_FLOOR) $(ARGS)

## check: the quick loop: lint, type-check, every test but the fault and slow ones
check: lint typecheck
	$(BIN)/pytest -m "not faults and not slow" $(ARGS)

lint: $(VENV)/.synced
	$(BIN)/ruff check .
	$(BIN)/lint-imports --no-cache

typecheck: $(VENV)/.synced
	$(BIN)/mypy

## devnet: the AT Protocol development network (PLC, PDS, AppView) and its Node 22, pinned in
## tests/devnet/package-lock.json, installed once per pin in a cache outside the clone
## (${XDG_CACHE_HOME:-~/.cache}/followthrough/devnet-<hash>); prints that folder
devnet:
	@bash tests/devnet/install.sh

unit: $(VENV)/.synced
	$(BIN)/pytest tests/unit $(ARGS)

bench-eventlog: $(VENV)/.synced
	$(BIN)/python bench/eventlog.py $(ARGS)

bench-dispatch: $(VENV)/.synced
	$(BIN)/python bench/dispatch.py $(ARGS)

clean:
	rm -rf $(VENV) $(TOOLS) .pytest_cache .mypy_cache .ruff_cache
