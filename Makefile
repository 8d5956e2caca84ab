# wa-gateway: `make run` runs the whole system locally, `make test` runs every check.
SHELL := /bin/bash
export JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION := 1
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
LOCALSTACK_VENV := .tools/localstack-venv
STAMPS := .tools/stamps
LOCALSTACK_PIN := localstack-core[runtime]==4.13.1 cbor2<6 pyopenssl<26 cryptography<47 service_identity

.PHONY: deps run test lint typecheck pytest bench clean

deps: $(STAMPS)/system $(STAMPS)/venv $(STAMPS)/localstack $(STAMPS)/npm

$(STAMPS)/system:
	@mkdir -p $(STAMPS)
	@missing=""; \
	command -v redis-server >/dev/null || missing="$$missing redis-server"; \
	[ -x /usr/lib/chromium/chromium-headless-shell ] || missing="$$missing chromium-headless-shell"; \
	command -v node >/dev/null || missing="$$missing nodejs"; \
	command -v npm >/dev/null || missing="$$missing npm"; \
	$(PYTHON) -c 'import venv, ensurepip' 2>/dev/null || missing="$$missing python3-venv"; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi
	@touch $@

$(STAMPS)/venv: pyproject.toml
	@mkdir -p $(STAMPS)
	@[ -x $(BIN)/python ] || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip 2>&1 | grep -v '^WARNING: Location' || true
	$(BIN)/pip install -q -e '.[dev]' 2>&1 | grep -v '^WARNING: Location' || true
	@$(BIN)/python -c 'import shared, fastapi, playwright, aws_cdk, standardwebhooks' 
	@touch $@

$(STAMPS)/localstack:
	@mkdir -p $(STAMPS)
	@[ -x $(LOCALSTACK_VENV)/bin/python ] || $(PYTHON) -m venv $(LOCALSTACK_VENV)
	$(LOCALSTACK_VENV)/bin/pip install -q $(foreach p,$(LOCALSTACK_PIN),'$(p)') 2>&1 | grep -v '^WARNING: Location' || true
	@$(LOCALSTACK_VENV)/bin/python -c 'import localstack.runtime.main'
	@touch $@

$(STAMPS)/npm: package.json
	@mkdir -p $(STAMPS)
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

lint: deps
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: deps
	$(BIN)/mypy shared functions session_workers infra bench wagw_local

# Three pytest processes: the browser-driving worker tests and the end-to-end tests (which start the whole
# system) each get a process of their own, so no state of the other tests' process can reach them.
pytest: deps
	$(BIN)/python -m pytest -p no:cacheprovider -q tests/unit tests/integration tests/infra \
		--ignore=tests/integration/session_workers --ignore=tests/integration/hardening/test_worker_liveness.py
	$(BIN)/python -m pytest -p no:cacheprovider -q tests/integration/session_workers \
		tests/integration/hardening/test_worker_liveness.py
	$(BIN)/python -m pytest -p no:cacheprovider -q tests/e2e

test: deps lint typecheck pytest

run: deps
	$(BIN)/wagw run

# Every benchmark in turn (each prints its figures; record them in docs/benchmarks.md). Takes about 40 minutes.
# sessions, delivery and failover also write docs/bench-data/*.json; bench/plots.py (not a benchmark) then redraws
# the pictures in docs/img/ from those files.
BENCHMARKS := throttle ingest delivery api cleanup sessions failover rolling e2e
# bench/sessions.py compares against the whatsapp-web.js model: one full Debian Chromium per session.
$(STAMPS)/bench-system:
	@mkdir -p $(STAMPS)
	@[ -x /usr/lib/chromium/chromium ] || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }
	@touch $@

bench: deps $(STAMPS)/bench-system
	@for name in $(BENCHMARKS); do echo "== bench/$$name.py"; $(BIN)/python bench/$$name.py; done
	@echo "== bench/plots.py"; $(BIN)/python bench/plots.py

clean:
	rm -rf $(VENV) .tools node_modules cdk.out
