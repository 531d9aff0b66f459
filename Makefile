# Followthrough: `make run` runs the whole system, `make test` runs the checks and tests.
# Both set up their own environment: uv (pinned) in .tools/, the locked install in .venv/.

PYTHON ?= python3
UV_VERSION := 0.13.8
TOOLS := .tools
UV := $(TOOLS)/bin/uv
VENV := .venv
BIN := $(VENV)/bin
ARGS ?=
# Branch coverage of events, scheduler, workers and followthrough in `make test` (measured 83 %); it only rises.
COVERAGE_FLOOR := 80

.PHONY: run test check lint typecheck unit k8s-validate devnet bench-eventlog bench-rebuild bench-projector bench-dispatch bench-worker-cpu bench-worker-instructions bench-worker-opcodes bench-api bench-audit bench-desk grafana screenshots soak clean

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

$(VENV)/.synced: $(UV) pyproject.toml uv.lock
	$(UV) sync --frozen --python $(PYTHON)
	@touch $@ $(VENV)/.synced-run

# `make run` needs no dev tools: only the runtime dependencies (--inexact leaves alone
# the dev tools that `make test` installed).
$(VENV)/.synced-run: $(UV) pyproject.toml uv.lock
	$(UV) sync --frozen --no-dev --inexact --python $(PYTHON)
	@touch $@

## run: every role on this machine (embedded PostgreSQL and Redis unless DATABASE_URL / BROKER_URL are set)
run: $(VENV)/.synced-run
	$(BIN)/followthrough up $(ARGS)

# pytest-xdist workers of `make test`, a test file to a worker, the fault and end-to-end files
# first (tests/conftest.py). Each worker has its own PostgreSQL cluster (started from the
# machine's binaries with DATABASE_URL set, the embedded one without), queue prefixes and
# temporary folders. 3 on this 2-core machine: 4 left fault tests short of CPU.
TEST_WORKERS ?= 3
XDIST := -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder

## test: lint, type-check, then every test (unit, contract, integration, end-to-end, faults) on TEST_WORKERS workers, with coverage; prints the 25 slowest
test: lint typecheck k8s-validate devnet
	$(BIN)/pytest $(XDIST) --cov --cov-report=term:skip-covered --cov-fail-under=$(COVERAGE_FLOOR) --durations=25 $(ARGS)

## check: the quick loop: lint, type-check, every test but the fault and slow ones
check: lint typecheck
	$(BIN)/pytest -m "not faults and not slow" $(ARGS)

lint: $(VENV)/.synced
	$(BIN)/ruff check .
	$(BIN)/lint-imports --no-cache

typecheck: $(VENV)/.synced
	$(BIN)/mypy

# The Kubernetes versions the manifests are validated against (kubernetes-validate --strict).
K8S_VERSIONS := 1.33.0 1.34.0 1.35.0 1.36.0 1.37.0
K8S_RENDERED := $(VENV)/k8s-rendered

## k8s-validate: render every overlay (kustomize inside the locked kubectl wheel) and validate it strictly
# Kubernetes' own objects with kubernetes-validate, for each version; the Prometheus Operator's
# (monitoring.coreos.com: CRDs, no schema there, it would only warn) against the Operator's
# models first, taken out of what kubernetes-validate reads (tests/support/k8s_manifests.py).
k8s-validate: $(VENV)/.synced
	@rm -rf $(K8S_RENDERED) && mkdir -p $(K8S_RENDERED)
	@for overlay in k8s/overlays/*/; do \
	  name=$$(basename $$overlay); \
	  $(BIN)/kubectl kustomize $$overlay > $(K8S_RENDERED)/$$name.yaml || exit 1; \
	  $(BIN)/python -m tests.support.k8s_manifests split $(K8S_RENDERED)/$$name.yaml $(K8S_RENDERED)/$$name.core.yaml \
	    || exit 1; \
	  for version in $(K8S_VERSIONS); do \
	    $(BIN)/kubernetes-validate --strict --quiet -k $$version $(K8S_RENDERED)/$$name.core.yaml || exit 1; \
	  done; \
	  echo "k8s/overlays/$$name: valid (strict) for Kubernetes $(K8S_VERSIONS)"; \
	done
	$(BIN)/pytest -q -p no:cacheprovider --no-cov tests/integration/test_k8s_manifests.py

## devnet: the AT Protocol development network (PLC, PDS, AppView) and its Node 22, pinned in
## tests/devnet/package-lock.json, installed once per pin in a cache outside the clone
## (${XDG_CACHE_HOME:-~/.cache}/followthrough/devnet-<hash>); prints that folder
devnet:
	@bash tests/devnet/install.sh

unit: $(VENV)/.synced
	$(BIN)/pytest tests/unit $(ARGS)

bench-eventlog: $(VENV)/.synced
	$(BIN)/python bench/eventlog.py $(ARGS)

bench-rebuild: $(VENV)/.synced
	$(BIN)/python bench/rebuild.py $(ARGS)

bench-dispatch: $(VENV)/.synced
	$(BIN)/python bench/dispatch.py $(ARGS)

## bench-worker-cpu: the worker's CPU a published share in one process (no broker), one group thread against several
bench-worker-cpu: $(VENV)/.synced
	$(BIN)/python bench/worker_cpu.py $(ARGS)

## bench-worker-instructions: the worker's instructions a published share, counted by valgrind (repeatable to ~1 %)
bench-worker-instructions: $(VENV)/.synced
	$(BIN)/python bench/worker_instructions.py $(ARGS)

## bench-worker-opcodes: the worker's Python opcodes a published share, by function (a profile that names Python code)
bench-worker-opcodes: $(VENV)/.synced
	$(BIN)/python bench/worker_opcodes.py $(ARGS)

## bench-projector: the live shares projector against the rebuild on 500,000 events, then its lag in a burst
bench-projector: $(VENV)/.synced
	$(BIN)/python bench/projector.py $(ARGS)

## grafana: regenerate the Grafana dashboards (k8s/base/grafana/*.json) from k8s/grafana.py
grafana: $(VENV)/.synced
	$(BIN)/python k8s/grafana.py

## screenshots: run the dashboard's browser test and copy its screenshots to docs/screenshots/
screenshots: $(VENV)/.synced
	FOLLOWTHROUGH_UPDATE_SCREENSHOTS=1 $(BIN)/pytest tests/e2e/test_dashboard.py tests/e2e/test_dashboard_replies.py \
	  tests/integration/test_dashboard_calendar.py -k "real_run or desk or week_and_the_month" $(ARGS)

bench-api: $(VENV)/.synced
	$(BIN)/python bench/api.py $(ARGS)

bench-audit: $(VENV)/.synced
	$(BIN)/python -m bench.audit $(ARGS)

## bench-desk: the replies page and GET /v1/replies over 20,000 replies, 8 concurrent clients
bench-desk: $(VENV)/.synced
	$(BIN)/python bench/desk.py $(ARGS)

soak: $(VENV)/.synced
	$(BIN)/python -m bench.soak $(ARGS)

clean:
	rm -rf $(VENV) $(TOOLS) .pytest_cache .mypy_cache .ruff_cache
