# ecg-stream developer entry points. The local stack (ClickHouse, a
# Kafka-compatible broker, the three services) is run by dev/stack.sh without
# Docker; all its state is under .local/. Ports and the build profile come
# from the environment, e.g. `ECG_INGEST_PORT=9080 ECG_PROFILE=debug make run`
# (see the top of dev/stack.sh for the full list). The services are release
# builds unless ECG_PROFILE=debug; the tests are always debug builds.
# System packages the build or the tests need are installed when missing by
# dev/system-packages.sh (apt-get), from `up`, `run`, `lint` and `test`.

SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

STACK := dev/stack.sh
SYSTEM_PACKAGES := dev/system-packages.sh
PYTHON := .local/venv/bin/python
CARGO ?= cargo
ECG_PROFILE ?= release
CARGO_PROFILE_FLAG := $(if $(filter release,$(ECG_PROFILE)),--release,)

.PHONY: help run up down status logs install system-packages infra-up test lint fmt build clean-data sim bench chaos analyst
.PHONY: deploy deploy-ingest deploy-processor deploy-query-api deploy-logs deploy-down deploy-secrets deploy-analysts

# `docker compose` (v2) where it exists, else the standalone docker-compose.
# KAFKA_CLUSTER=1 adds docker-compose.kafka-cluster.yml (three Kafka brokers,
# replication factor 3) to every deploy-* target.
COMPOSE_CMD ?= $(shell docker compose version >/dev/null 2>&1 && echo "docker compose" || echo docker-compose)
KAFKA_CLUSTER ?=
COMPOSE ?= $(COMPOSE_CMD) -f docker-compose.yml$(if $(KAFKA_CLUSTER), -f docker-compose.kafka-cluster.yml)

help: ## list the targets
	@echo "usage: make TARGET   (ports/profile via ECG_* environment, see dev/stack.sh)"
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/^([a-z-]+):.*## (.*)/\1\t\2/' | awk -F '\t' '{ printf "  %-18s %s\n", $$1, $$2 }'

run: up ## start the whole stack and stream the sample ECG through it
	$(PYTHON) dev/demo.py

up: ## install, start infra, build (release), migrate, start the services
	$(SYSTEM_PACKAGES) build
	$(STACK) up

down: ## stop everything the stack started
	$(STACK) down

status: ## what runs, by pid file and port
	$(STACK) status

logs: ## the last 50 lines of each log in .local/logs
	$(STACK) logs

install: ## create .local/venv with ClickHouse (chdb) and the broker (tansu)
	$(STACK) install

system-packages: ## apt-get install what the build and the tests need, if missing
	$(SYSTEM_PACKAGES) test

infra-up: ## start only ClickHouse and the broker, create the topics
	$(STACK) infra-up

# The infra is stopped afterwards only if this run started it; the tests'
# exit status is kept either way.
test: ## install what the tests need, then cargo test against a real ClickHouse and broker
	$(SYSTEM_PACKAGES) test
	$(STACK) with-infra $(CARGO) test --workspace --all-targets

lint: ## rustfmt check and clippy with warnings as errors
	$(SYSTEM_PACKAGES) build
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

fmt: ## format the workspace
	$(CARGO) fmt --all

build: ## build the workspace's binaries (release unless ECG_PROFILE=debug)
	$(CARGO) build --workspace --bins $(CARGO_PROFILE_FLAG)

# A read-only ClickHouse login that sees only one tenant's rows, on the local
# stack: password in .local/secrets/analyst-<tenant> (made if missing),
# ClickHouse restarted with it (clickhouse/README.md, "Analyst logins").
# TENANT=acme, optionally ANALYST_USER=name (default analyst_<tenant>).
TENANT ?=
ANALYST_USER ?=
analyst: ## read-only ClickHouse login for one tenant: make analyst TENANT=acme
	@[[ -n "$(TENANT)" ]] || { echo "usage: make analyst TENANT=<tenant> [ANALYST_USER=<name>]" >&2; exit 2; }
	$(STACK) analyst "$(TENANT)" $(ANALYST_USER)

clean-data: down ## stop everything and delete .local/data (keeps the venv)
	rm -rf .local/data

deploy-secrets: ## create the missing deployment secrets in deploy/secrets (keys, passwords, Kafka CA and certificate)
	deploy/secrets.sh

deploy-analysts: ## write deploy/clickhouse/users.d/analysts.xml from deploy/secrets/analysts.toml
	deploy/analysts.sh

deploy: deploy-secrets ## build and start the Docker deployment (docker-compose.yml; KAFKA_CLUSTER=1: three brokers)
	$(COMPOSE) up -d --build

deploy-ingest: ## rolling update of the two ingest replicas
	COMPOSE="$(COMPOSE)" deploy/roll.sh ingest-1 ingest-2

deploy-processor: ## rolling update of the two processors
	COMPOSE="$(COMPOSE)" deploy/roll.sh processor-1 processor-2

deploy-query-api: ## rebuild and restart query-api
	COMPOSE="$(COMPOSE)" deploy/roll.sh query-api

deploy-logs: ## follow the deployment's logs (SERVICES="ingest-1 nginx" for some)
	$(COMPOSE) logs -f --tail=100 $(SERVICES)

deploy-down: ## stop the deployment (its volumes, i.e. the data, stay)
	$(COMPOSE) down

# A fleet against the local stack (started if needed). SIM_ARGS adds to or
# overrides the defaults, e.g. `make sim SIM_ARGS="--devices 2000 --chunk-ms 2000"`.
SIM_ARGS ?=
sim: up ## load-test the local stack with ecg-sim (200 devices, 12 leads, 500 Hz, 30 s) and verify
	$(CARGO) run -q --release -p ecg-sim -- \
	  --ingest http://127.0.0.1:$${ECG_INGEST_PORT:-8080} --query http://127.0.0.1:$${ECG_QUERY_PORT:-8081} \
	  --devices 200 --leads 12 --rate 500 --duration 30 --ramp-up 10 --verify $(SIM_ARGS)

# The end-to-end benchmark (BENCHMARKS.md, "Pipeline, end to end"): the
# release-built services as separate processes on the local ClickHouse and broker.
# BENCH_ARGS narrows it, e.g. BENCH_ARGS="--parts scale --devices 1,10".
BENCH_ARGS ?=
bench: install ## end-to-end benchmark: fleets of 1-1000 devices, sustained rate, 24 h Holter; prints tables
	$(CARGO) build --release --bins
	$(CARGO) build --release -p ecg-ingest --example holter_csv
	$(STACK) with-infra $(CARGO) run -q --release -p ecg-e2e --example pipeline -- $(BENCH_ARGS)

# Its own ClickHouse, durable broker and processor (killed on schedule):
# nothing of the local stack is used or touched. CHAOS_ARGS narrows it, e.g.
# CHAOS_ARGS="--devices 20 --duration 120".
CHAOS_ARGS ?=
chaos: install ## chaos run: 100 devices for 10 min through processor, ClickHouse and broker kills; checks every ECG
	$(CARGO) build --release --bins
	$(CARGO) run -q --release -p ecg-e2e --example chaos -- $(CHAOS_ARGS)
