# Konstruct — developer entry points. `make help` lists them.
#
# Services run natively (scripts/services.sh): PostgreSQL 15 + pgvector 0.8,
# Redis, the Temporal dev server (settings: temporal-dev.yaml) and
# stripe-mock; Chromium for browser tests. Local state, logs, pids and tools
# live in .konstruct/ (git-ignored). With Docker instead: docker-compose.yml.
#
# TEMPORAL=server (make dev|test|bench|services TEMPORAL=server) uses the
# Temporal Server on PostgreSQL (temporal-server.yaml,
# scripts/temporal-server.sh) instead of the dev server; both can run at once.

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help
MAKEFLAGS += --no-print-directory

GO       ?= go
BIN      := .konstruct/bin
KONSTRUCT := $(BIN)/konstruct
FUZZTIME ?= 20s
# Extra flags, e.g. make test TESTFLAGS='-run TestX -v' PKGS=./internal/...
PKGS     ?= ./...
TESTFLAGS ?=
BENCHFLAGS ?=
# Temporal back end: dev (the CLI's dev server) or server (Temporal Server on
# PostgreSQL); scripts/services.sh and scripts/env.sh read it.
TEMPORAL ?= $(or $(KONSTRUCT_TEMPORAL_BACKEND),dev)
export KONSTRUCT_TEMPORAL_BACKEND := $(TEMPORAL)

# Every recipe that talks to the services sources this first.
ENV := source scripts/env.sh

.PHONY: help services build dev test bench lint fuzz stop clean distclean

help: ## List the targets
	@echo "Konstruct make targets:"
	@grep -hE '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  %-10s %s\n", $$1, $$2}'
	@echo "Variables: FUZZTIME=$(FUZZTIME) PKGS=$(PKGS) TESTFLAGS=... BENCHFLAGS=... TEMPORAL=$(TEMPORAL) (dev|server)"

services: ## Install (if missing) and start Postgres+pgvector, Redis, Temporal (dev server, or TEMPORAL=server), stripe-mock
	@scripts/services.sh

build: ## Build the konstruct binary into .konstruct/bin/konstruct
	@mkdir -p $(BIN)
	$(GO) build -o $(KONSTRUCT) ./cmd/konstruct

dev: services build ## Start services, migrate, and run API + worker locally (konstruct dev)
	@$(ENV); \
	echo ""; \
	echo "  Portal:          $$KONSTRUCT_PUBLIC_URL"; \
	echo "  Temporal Web UI: $$KONSTRUCT_TEMPORAL_UI_URL"; \
	echo "  Admin login:     $$KONSTRUCT_BOOTSTRAP_ADMIN_EMAIL / $$KONSTRUCT_BOOTSTRAP_ADMIN_PASSWORD"; \
	echo "                   (generated once, kept in .konstruct/dev.env)"; \
	echo ""; \
	$(KONSTRUCT) migrate up; \
	exec $(KONSTRUCT) dev

test: ## Start services (with Chromium) and run all tests with -race
	@scripts/services.sh --with-browser
	@$(ENV); $(GO) test -race -count=1 -timeout 60m $(TESTFLAGS) $(PKGS)

# The platform rows run against both Temporal back ends in one table (both
# are started; BENCH_TEMPORAL=dev or =server measures one).
BENCH_TEMPORAL ?= dev server
bench: services build ## Micro-benchmarks, then the platform load driver (BenchmarkPlatform: the real binary under load against the dev server and the Temporal Server, one table with same-run baselines)
	@for be in $(BENCH_TEMPORAL); do KONSTRUCT_TEMPORAL_BACKEND=$$be scripts/services.sh; done
	@$(ENV); $(GO) test -p 1 -run '^$$' -bench . -benchmem $(BENCHFLAGS) $$($(GO) list ./... | grep -v /internal/e2e)
	@spec=""; for be in $(BENCH_TEMPORAL); do \
		addr=$$(unset KONSTRUCT_TEMPORAL_ADDRESS KONSTRUCT_TEMPORAL_UI_URL; KONSTRUCT_TEMPORAL_BACKEND=$$be; source scripts/env.sh; echo "$$KONSTRUCT_TEMPORAL_ADDRESS"); \
		spec="$${spec:+$$spec,}$$be=$$addr"; done; \
	$(ENV); KONSTRUCT_BENCH_TEMPORAL="$$spec" $(GO) test -run '^$$' -bench BenchmarkPlatform -benchtime 1x -timeout 60m -v $(BENCHFLAGS) ./internal/e2e/

lint: ## go vet and Temporal's workflowcheck over ./workflows/...
	@scripts/lint.sh

fuzz: ## Run each Fuzz* target for FUZZTIME (default 20s), one at a time
	@$(ENV); FUZZTIME='$(FUZZTIME)' scripts/fuzz.sh $(filter-out ./...,$(PKGS))

stop: ## Stop the Temporal dev server, Temporal Server + UI and stripe-mock started by the scripts
	@scripts/temporal.sh stop
	@scripts/temporal-server.sh stop
	@scripts/stripe-mock.sh stop

clean: ## Remove build and test outputs (keeps .konstruct state, tools and dev.env)
	rm -f $(KONSTRUCT) coverage.out coverage.html cover.out *.coverprofile
	find . -name '*.test' -type f -not -path './.konstruct/*' -print -delete

distclean: stop clean ## clean, and remove all of .konstruct/ (tools, Temporal DB, dev.env keys!)
	rm -rf .konstruct
