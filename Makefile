# The two commands: `make run` (the whole stack in the foreground) and `make test` (everything CI runs).
# Both install what is missing and are safe to run twice.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
WITH_ENV := ops/local/with-env
STACK := ops/local/stack.sh

.PHONY: run test up down status clean venv migrate lint unit integration e2e lock docs bench bench-overhead bench-timers bench-orders bench-relay bench-flash-sale bench-inventory chaos chaos-short help

help:
	@echo "make run     stack up, migrations, every process in the foreground (Ctrl-C stops them)"
	@echo "make test    stack up, migrations, ruff, mypy, pytest"
	@echo "make up | down | status | clean    the local stack alone (clean wipes var/)"
	@echo "make lint | unit | integration | e2e | lock"
	@echo "make docs    write docs/contract.md again from the gateway's OpenAPI document"
	@echo "make bench [SCENARIO='gateway orders inventory relay flash-sale timers']   the benchmarks (under 15 min)"
	@echo "make bench SCENARIO=orders-traced   the orders scenario with tracing on (10 % sampled, exported to Jaeger)"
	@echo "make bench-overhead | bench-orders | bench-inventory | bench-relay | bench-flash-sale | bench-timers   one, full size"
	@echo "make chaos | chaos-short   kill, crash and empty things under load, then check the invariants (bench/chaos)"
	@echo "SHOP_PROMETHEUS=0 make up   leave out Prometheus (on by default: 127.0.0.1:9090/consoles/index.html)"

run: up migrate
	$(WITH_ENV) $(BIN)/shop run all

test: up migrate lint
	$(WITH_ENV) $(BIN)/pytest -q -p no:cacheprovider

up: venv
	$(STACK) up

down:
	$(STACK) down

status:
	$(STACK) status

clean:
	$(STACK) clean

# The virtualenv is rebuilt only when the dependencies change; constraints.txt pins every version.
venv: $(VENV)/.installed

$(VENV)/.installed: setup.cfg constraints.txt pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "shop needs Python 3.11+"'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -c constraints.txt -e '.[dev]'
	touch $@

migrate: venv
	$(WITH_ENV) $(BIN)/shop migrate
	$(WITH_ENV) $(BIN)/shop topics

lint: venv
	$(BIN)/ruff check shop tests bench harness
	$(BIN)/ruff format --check shop tests bench harness
	$(BIN)/mypy

unit: venv
	$(BIN)/pytest -q -p no:cacheprovider tests/unit

integration: up migrate
	$(WITH_ENV) $(BIN)/pytest -q -p no:cacheprovider tests/integration

e2e: up migrate
	$(WITH_ENV) $(BIN)/pytest -q -p no:cacheprovider tests/e2e

# docs/contract.md is written from the OpenAPI document; tests/unit/http/test_contract_doc.py fails
# while it is out of step.
docs: venv
	$(BIN)/python -m shop.http.contract_doc

# Re-pin every dependency after changing setup.cfg.
lock:
	rm -rf .lockenv && $(PYTHON) -m venv .lockenv
	.lockenv/bin/pip install -q -e '.[dev]'
	{ echo '# Exact versions of every dependency (and theirs) that installs use: `pip install -c constraints.txt -e .[dev]`.'; \
	  echo '# Regenerate after changing setup.cfg: make lock'; \
	  .lockenv/bin/pip freeze --exclude-editable; } > constraints.txt
	rm -rf .lockenv

# Every scenario (under 15 minutes), or some: make bench SCENARIO="orders relay"
bench: up migrate
	$(WITH_ENV) $(BIN)/python -m bench $(SCENARIO)

bench-overhead: up
	$(WITH_ENV) $(BIN)/python -m bench.overhead

bench-timers: up migrate
	$(WITH_ENV) $(BIN)/python -m bench.timers

bench-orders: up migrate
	$(WITH_ENV) $(BIN)/python -m bench.orders

bench-relay: up migrate
	$(WITH_ENV) $(BIN)/python -m bench.relay

bench-flash-sale: up migrate
	$(WITH_ENV) $(BIN)/python -m bench.flash_sale

bench-inventory: up migrate
	$(WITH_ENV) $(BIN)/python -m bench.inventory

# Faults under load, then the invariants (bench/chaos): every fault twice (about 15 minutes), or once, briefly.
chaos: up migrate
	$(WITH_ENV) $(BIN)/python -m bench.chaos

chaos-short: up migrate
	$(WITH_ENV) $(BIN)/python -m bench.chaos --short
