# The developer's front door: every workflow in the README is a target here,
# and CI (.ci/run) calls the same targets.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 5000
export FLASK_APP := wsgi
export PYTHONPATH := $(CURDIR)

RUNTIME := $(VENV)/.runtime-installed
DEV := $(VENV)/.dev-installed

.PHONY: help
help: ## List the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  \033[1m%-20s\033[0m %s\n", $$1, $$2}'

# --- setup -----------------------------------------------------------------

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(RUNTIME): requirements.txt | $(VENV)/bin/python
	$(BIN)/pip install -q -r requirements.txt
	touch $@

$(DEV): requirements.txt requirements-dev.txt $(RUNTIME)
	$(BIN)/pip install -q -r requirements-dev.txt
	touch $@

# The frontend's dependencies (npm ci) whenever the lockfile is newer than node_modules.
FRONTEND_DEPS := frontend/node_modules/.package-lock.json
$(FRONTEND_DEPS): frontend/package.json frontend/package-lock.json
	npm ci --prefix frontend --no-audit --no-fund --loglevel=error
	touch $@

.PHONY: install install-dev
install: $(RUNTIME) ## Create .venv and install the runtime dependencies
install-dev: $(DEV) ## Create .venv and install runtime and development dependencies

# --- run -------------------------------------------------------------------

.PHONY: run serve dev
run: install ## Migrate the SQLite database, build the web app (when node is there), serve both on http://127.0.0.1:5000
	$(BIN)/flask db run
	@if command -v node >/dev/null; then $(MAKE) --no-print-directory $(WEBAPP); \
	else echo "node is not installed: serving the API only (/ says how to get the web app)"; fi
	$(BIN)/flask run --host $(HOST) --port $(PORT)

DEV_PORT ?= 5173
dev: install $(FRONTEND_DEPS) ## The API on PORT and the web app with hot reload on http://127.0.0.1:5173 (DEV_PORT), proxying /api and /docs
	$(BIN)/flask db run
	@$(BIN)/flask run --host $(HOST) --port $(PORT) & api=$$!; trap 'kill $$api' EXIT; \
	CONDUIT_API=http://$(HOST):$(PORT) VITE_PORT=$(DEV_PORT) npm --prefix frontend run dev

serve: install ## Serve with gunicorn (gunicorn.conf.py: WEB_CONCURRENCY, HOST, PORT, LOG_LEVEL)
	$(BIN)/gunicorn -c gunicorn.conf.py wsgi:app

# --- quality ---------------------------------------------------------------

.PHONY: test lint format conformance
test: install-dev $(FRONTEND_DEPS) ## Run the whole test suite on SQLite and PostgreSQL, and the web app's unit tests
	$(BIN)/pytest -n 2
	npm --prefix frontend run --silent test

lint: install-dev ## ruff check, ruff format --check, mypy on app/
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: install-dev ## Format and autofix with ruff
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

conformance: install ## Run the public Postman suite against gunicorn on a throwaway SQLite database
	scripts/conformance.sh

# --- API contract ------------------------------------------------------------

.PHONY: openapi openapi-check
openapi: install ## Write openapi.json from the marshmallow schemas (no server, no database)
	$(BIN)/python scripts/generate_openapi.py

openapi-check: install ## Fail when the committed openapi.json is stale
	$(BIN)/python scripts/generate_openapi.py $(VENV)/openapi.check.json >/dev/null
	@cmp -s $(VENV)/openapi.check.json openapi.json || { \
	  echo "openapi.json is stale: run 'make openapi' and commit it"; \
	  diff -u openapi.json $(VENV)/openapi.check.json | head -40; exit 1; }
	@echo "openapi.json is current"

# api-diff's default base: the main branch as fetched, else as checked out, else HEAD.
API_DIFF_BASE = $(shell for ref in origin/main main HEAD; do \
  git rev-parse --verify -q "$$ref^{commit}" >/dev/null && { echo "$$ref"; break; }; done)

.PHONY: frontend-types frontend-build frontend-test e2e screenshots api-diff fuzz browser frontend-deps
frontend-types: $(FRONTEND_DEPS) ## Regenerate frontend/src/api/schema.d.ts from openapi.json
	npm --prefix frontend run --silent generate

# The built web app, rebuilt when its sources, its dependencies or the API contract change.
WEBAPP := frontend/dist/index.html
WEBAPP_SOURCES := $(shell find frontend/src frontend/public -type f -not -name schema.d.ts 2>/dev/null) \
	frontend/index.html frontend/vite.config.ts frontend/tsconfig.json frontend/eslint.config.js openapi.json
$(WEBAPP): $(FRONTEND_DEPS) $(WEBAPP_SOURCES)
	npm --prefix frontend run --silent build

frontend-build: $(FRONTEND_DEPS) ## Build the web app: generate the types from openapi.json, tsc --strict, eslint, vite build (frontend/dist)
	npm --prefix frontend run --silent build

frontend-test: $(FRONTEND_DEPS) ## The web app's unit tests (Vitest)
	npm --prefix frontend run --silent test

# scripts/e2e.sh installs the npm dependencies once it has found node (it skips without, unless CI=true).
e2e: install ## The web app in Debian's chromium against gunicorn on a throwaway database (Playwright)
	scripts/e2e.sh

screenshots: install ## Run the end-to-end journey and copy its home and article screenshots to docs/screenshots
	scripts/e2e.sh e2e/journey.spec.ts
	cp frontend/e2e-results/screenshots/home.png frontend/e2e-results/screenshots/article.png docs/screenshots/

frontend-deps: $(FRONTEND_DEPS)

api-diff: $(FRONTEND_DEPS) ## Breaking changes in openapi.json since base=<git ref> (default: origin/main, else main)
	scripts/api_diff.sh $(or $(base),$(API_DIFF_BASE))

fuzz: install-dev ## schemathesis, every check, against gunicorn on a throwaway SQLite database (FUZZ_SECONDS)
	scripts/fuzz.sh

browser: ## Install Debian's chromium (for the /docs page and end-to-end tests) unless it is there; needs root
	@if command -v chromium >/dev/null; then echo "chromium is installed"; \
	elif [ "$$(id -u)" = 0 ]; then \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	else echo "browser: install Debian's chromium package as root (apt-get install chromium)" >&2; exit 1; fi

# --- migrations --------------------------------------------------------------
# Thin calls to `flask db <subcommand>` (app/db/commands.py). docs/migrations.md
# has the workflow and the exit codes (make itself exits 2 when a
# command fails; scripts that branch on the code call `flask db …` directly).

FLASK_DB := $(BIN)/flask db
require = @test -n "$($(1))" || { echo "usage: make $@ $(1)=$(2)" >&2; exit 2; }

.PHONY: migration-generate migration-create migration-run migration-revert migration-show \
	migration-verify migration-accept migration-lint migration-review migration-check migration-sql \
	db-backup db-restore
migration-generate: install-dev ## Generate a migration from model changes: name=AddUserTable
	$(call require,name,AddUserTable)
	$(FLASK_DB) generate "$(name)"

migration-create: install-dev ## Create an empty migration: name=BackfillBios (data=1: data-migration template)
	$(call require,name,BackfillBios)
	$(FLASK_DB) create "$(name)" $(if $(data),--data)

migration-run: install ## Apply pending migrations (locked; verified; backed up first in production)
	$(FLASK_DB) run

migration-revert: install ## Revert the last applied migration (one step; repeat for more)
	$(FLASK_DB) revert

migration-show: install ## One line per revision: [X] applied [ ] pending [M] changed [?] missing
	$(FLASK_DB) status

migration-verify: install ## Fail if an applied migration's file changed or disappeared
	$(FLASK_DB) verify

migration-accept: install ## Accept a reviewed change to an applied migration: rev=<id> (or all=1)
	$(if $(all),$(FLASK_DB) accept --all,$(call require,rev,<revision id>))
	$(if $(all),,$(FLASK_DB) accept $(rev))

migration-lint: install-dev ## squawk over revisions not yet on main (all=1: every revision)
	$(FLASK_DB) lint $(if $(all),--all)

migration-review: install ## Record a checked lint finding in migrations/reviewed.txt: rev=<id> why="…"
	$(call require,rev,<revision id>)
	$(call require,why,<why it is safe>)
	$(FLASK_DB) review "$(rev)" "$(why)"

migration-check: install ## CI gate: one head (migrations/HEAD), models match, main's revisions untouched
	$(FLASK_DB) gate

migration-sql: install ## Print a revision's PostgreSQL SQL, offline: rev=<id> (default head)
	$(FLASK_DB) sql $(or $(rev),head)

db-backup: install ## Back up the database into backups/ (BACKUP_DIRECTORY)
	$(FLASK_DB) backup

db-restore: install ## Check a backup, back up the database, replace it: file=backups/… (yes=1: no question)
	$(call require,file,backups/<file>)
	$(FLASK_DB) restore "$(file)" $(if $(yes),--yes)

# --- serving and benchmarks ----------------------------------------------
# docs/deployment.md has the release step, docs/performance.md the numbers. Bench runs are
# bounded: BENCH_DURATION seconds per endpoint, BENCH_MAX_SECONDS in all.

BENCH := $(VENV)/.bench-installed

$(BENCH): bench/requirements.txt $(RUNTIME)
	$(BIN)/pip install -q -r bench/requirements.txt
	touch $@

.PHONY: seed bench bench-scale bench-replicas bench-workers deploy-demo
seed: install ## Fill the database with seed data (SEED_ARGS="--users 100 --articles 1000 ...")
	$(BIN)/flask seed $(SEED_ARGS)

bench: $(BENCH) ## wrk against gunicorn on PostgreSQL and SQLite, cache on and off, and the ceiling; bench-results/
	$(BIN)/python -m bench.run standard

bench-scale: $(BENCH) ## List, feed, tag and favorited latency at 1k, 10k and 100k articles
	$(BIN)/python -m bench.run scale --databases $${BENCH_DATABASES:-postgresql}

bench-replicas: $(BENCH) ## Two replicas on one PostgreSQL: how soon a write on one is seen on the other
	$(BIN)/python -m bench.run replicas

bench-workers: $(BENCH) ## Compare gunicorn worker classes and thread counts (GET /api/articles)
	$(BIN)/python -m bench.run workers

deploy-demo: install ## Two gunicorn replicas behind nginx on loopback; Postman suite while one dies
	deploy/demo.sh

# --- housekeeping ----------------------------------------------------------

.PHONY: clean
clean: ## Remove the virtual environment, caches and local tools
	rm -rf $(VENV) .tools .pytest_cache .mypy_cache .ruff_cache
