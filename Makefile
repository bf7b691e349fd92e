# CityFleet: the front door. `make demo` runs the whole pipeline; `make test` runs every test.
# Each target installs what it needs first (idempotent, fast the second time).

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
SCENARIO ?= london-birmingham
# `make up TOPOLOGY=cluster`: three Kafka brokers and a Spark standalone cluster (README
# "Running on a cluster"); `.env` remembers it, so `make status`, `make down` and the rest follow.
ifdef TOPOLOGY
export CITYFLEET_TOPOLOGY := $(TOPOLOGY)
endif

.DEFAULT_GOAL := help
.PHONY: help install up down status demo live test test-unit test-integration lint fmt bench bench-quick bench-scaleout chaos clean

help: ## Show the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-17s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	@# Debian's python3 may lack venv (ensurepip): install python3-venv with apt-get then
	@test -x $(VENV)/bin/pip || $(PYTHON) -m venv --clear $(VENV) >/dev/null 2>&1 || { \
	  echo "==> installing python3-venv (apt-get; Debian's python3 ships without it)"; \
	  apt-get update -q >/dev/null && apt-get install -y -q python3-venv >/dev/null && \
	  $(PYTHON) -m venv --clear $(VENV); }
	@echo "==> installing Python dependencies into $(VENV) (first time ~1 min)"
	@$(PY) -m pip install -q --disable-pip-version-check --upgrade pip
	@$(PY) -m pip install -q --disable-pip-version-check -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP) ## Install the Python environment (.venv)

up: $(STAMP) ## Install (first time) and start Mosquitto, Kafka, the S3 server; write .env
	@$(PY) -m stack up

down: $(STAMP) ## Stop the local servers (data is kept)
	@$(PY) -m stack down

status: $(STAMP) ## Health of each local server, by a real protocol call
	@$(PY) -m stack status

demo: $(STAMP) ## The whole pipeline on London to Birmingham, ending in a report
	@$(PY) -m drills demo --scenario $(SCENARIO)

live: $(STAMP) ## The live map in a browser while the scenario's devices run (Ctrl-C stops)
	@$(PY) -m stack up
	@$(PY) -m live --scenario $(SCENARIO) --run-devices

test: $(STAMP) ## Every test: unit, then integration against the real local stack
	@$(PY) -m stack up
	@$(PY) -m pytest

test-unit: $(STAMP) ## Unit tests only (no servers)
	@$(PY) -m pytest -m "not integration"

test-integration: $(STAMP) ## Integration tests only (starts the stack)
	@$(PY) -m stack up
	@$(PY) -m pytest -m integration

lint: $(STAMP) ## ruff check and format check
	@$(VENV)/bin/ruff check .
	@$(VENV)/bin/ruff format --check .

fmt: $(STAMP) ## Format the code
	@$(VENV)/bin/ruff format .
	@$(VENV)/bin/ruff check --fix .

bench: $(STAMP) ## Every benchmark; prints a table, writes benchmarks/results/
	@$(PY) -m stack up
	@$(PY) -m benchmarks

bench-quick: $(STAMP) ## A shorter benchmark run (about 11 minutes on two cores)
	@$(PY) -m stack up
	@$(PY) -m benchmarks --quick

# No `stack up` here: it would start whichever topology .env names; the stage says which it needs.
bench-scaleout: $(STAMP) ## Scale-out on the cluster topology (after make up TOPOLOGY=cluster)
	@$(PY) -m benchmarks.scaleout

chaos: $(STAMP) ## Fault drill: kill and restart every component under load, then audit
	@$(PY) -m stack up
	@$(PY) -m drills $(if $(filter cluster,$(TOPOLOGY)),cluster,chaos)

clean: ## Stop the servers and delete all local state (.cityfleet/, .env)
	-@test -x $(PY) && $(PY) -m stack down
	rm -rf .cityfleet .env
