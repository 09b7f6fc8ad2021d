# The front door: every workflow in the README and docs/ is a target here, and
# CI (.ci/run) calls the same targets. `make help` lists them by section.
#
# Settings (PORT, HOST, DATABASE_URL, ...) are not Make variables: every entry
# point reads them itself, from the environment, then .env, then defaults
# (app/config.py). `make run PORT=6203` and `PORT=6203 make run` both work.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
MAKEFLAGS += --no-print-directory

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export FLASK_APP := wsgi
export PYTHONPATH := $(CURDIR)
# The app reads .env itself (app/config.py); the flask command must not load it
# a second time into the environment, where it would outrank ENV_FILE.
export FLASK_SKIP_DOTENV := 1

RUNTIME := $(VENV)/.runtime-installed
DEV := $(VENV)/.dev-installed
FRONTEND_DEPS := frontend/node_modules/.package-lock.json

##@ Getting started

.PHONY: help
help: ## List the targets by section
	@bold=; reset=; if [ -t 1 ] && [ -z "$${NO_COLOR:-}" ]; then bold=$$'\033[1m'; reset=$$'\033[0m'; fi; \
	awk -v bold="$$bold" -v reset="$$reset" 'BEGIN { FS = ":[^#]*## " } \
	  /^##@ / { printf "\n%s%s%s\n", bold, substr($$0, 5), reset; next } \
	  /^[a-zA-Z0-9_-]+:.*## / { printf "  %s%-20s%s %s\n", bold, $$1, reset, $$2 }' $(MAKEFILE_LIST)

.PHONY: run dev serve throwaway settings install install-dev python-version node-version
run: install ## Set up, migrate, build the web app (with node 20+), serve both with reload on http://127.0.0.1:5000 (PORT, HOST, .env)
	$(BIN)/flask db run
	@if scripts/prerequisites.sh node 2>/dev/null; then $(MAKE) $(WEBAPP); \
	else echo "node 20 or newer is not installed: serving the API only (/ says how to get the web app)"; fi
	$(BIN)/python -m app.web.devserver

# The API where the settings put it (flask settings: environment, .env, defaults).
DEV_PORT ?= 5173
dev: install $(FRONTEND_DEPS) ## The API on PORT and the web app with hot reload on http://127.0.0.1:5173 (DEV_PORT), proxying /api and /docs
	$(BIN)/flask db run
	@eval "$$($(BIN)/flask settings HOST PORT)"; \
	$(BIN)/python -m app.web.devserver & api=$$!; trap 'kill $$api' EXIT; \
	CONDUIT_API=http://$$HOST:$$PORT VITE_PORT=$(DEV_PORT) npm --prefix frontend run dev

serve: install ## Serve with gunicorn as in production (gunicorn.conf.py: WEB_CONCURRENCY, PORT, ...)
	$(BIN)/gunicorn -c gunicorn.conf.py wsgi:app

DATABASE ?= sqlite
throwaway: install ## The app on a fresh, migrated database (DATABASE=postgresql) on a free loopback port (PORT) until Ctrl-C (a clean exit); removed after
	$(BIN)/python -m scripts.throwaway --database $(DATABASE) --port $${PORT:-0}

settings: install ## The settings in effect and where each comes from (environment, .env, default)
	@$(BIN)/flask settings

install: python-version ## Create .venv (Python 3.11+) and install the runtime dependencies
	@$(MAKE) -q $(RUNTIME) || $(MAKE) $(RUNTIME)

install-dev: python-version ## Create .venv and install runtime and development dependencies
	@$(MAKE) -q $(DEV) || $(MAKE) $(DEV)

# Checked before anything is installed; a .venv built by another interpreter is rebuilt.
python-version:
	@scripts/prerequisites.sh python "$(PYTHON)" $(VENV)

node-version:
	@scripts/prerequisites.sh node

$(VENV)/bin/python:
	@scripts/prerequisites.sh python "$(PYTHON)" $(VENV)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(RUNTIME): requirements.txt | $(VENV)/bin/python
	$(BIN)/pip install -q -r requirements.txt
	touch $@

$(DEV): requirements.txt requirements-dev.txt $(RUNTIME)
	$(BIN)/pip install -q -r requirements-dev.txt
	touch $@

# The frontend's dependencies (npm ci) whenever the lockfile is newer than node_modules.
$(FRONTEND_DEPS): frontend/package.json frontend/package-lock.json
	@scripts/prerequisites.sh node
	npm ci --prefix frontend --no-audit --no-fund --loglevel=error
	touch $@

##@ Tests and quality

.PHONY: test test-quick lint format conformance fuzz browser
# With ARGS, make test runs only what ARGS asked pytest for; FRONTEND=1 adds the web app's tests.
FRONTEND ?= $(if $(ARGS),0,1)
test: install-dev $(if $(filter 1,$(FRONTEND)),$(FRONTEND_DEPS)) ## Every test, on SQLite and PostgreSQL, and the web app's unit tests; ARGS="-k follow" runs only what it asks pytest for (FRONTEND=1: the web app's too)
	$(BIN)/pytest -n 2 $(ARGS)
	$(if $(filter 1,$(FRONTEND)),npm --prefix frontend run --silent test)

test-quick: install-dev ## The inner loop (under a minute): SQLite only; no PostgreSQL, browser, node, served (subprocess servers) or slow (fuzz, gates) tests (ARGS too)
	$(BIN)/pytest -n 2 --databases sqlite -m "not browser and not node and not served and not slow" $(ARGS)

lint: install-dev ## ruff check, ruff format --check, mypy on app/, bench/ and scripts/, the layer contract (lint-imports)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

format: install-dev ## Format and autofix with ruff
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

conformance: install ## The public Postman suite against gunicorn on a throwaway SQLite database (PORT)
	scripts/conformance.sh

fuzz: install-dev ## schemathesis, every check, against a throwaway gunicorn (PORT, FUZZ_SECONDS)
	scripts/fuzz.sh

browser: ## Install Debian's chromium (for the /docs page and end-to-end tests) unless it is there; needs root
	@if command -v chromium >/dev/null; then echo "chromium is installed"; \
	elif [ "$$(id -u)" = 0 ]; then \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	else echo "browser: install Debian's chromium package as root (apt-get install chromium)" >&2; exit 1; fi

##@ API contract

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

.PHONY: frontend-types frontend-build frontend-test e2e screenshots api-diff frontend-deps
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
e2e: install ## The web app in Debian's chromium against gunicorn on a throwaway database (Playwright; ARGS="e2e/xss.spec.ts" or ARGS="-g journey")
	scripts/e2e.sh $(ARGS)

screenshots: install ## Run the end-to-end journey and copy its home and article screenshots to docs/screenshots
	scripts/e2e.sh e2e/journey.spec.ts
	cp frontend/e2e-results/screenshots/home.png frontend/e2e-results/screenshots/article.png docs/screenshots/

frontend-deps: $(FRONTEND_DEPS)

api-diff: $(FRONTEND_DEPS) ## Breaking changes in openapi.json since base=<git ref> (default: origin/main, else main)
	scripts/api_diff.sh $(or $(base),$(API_DIFF_BASE))

##@ Database and migrations
# Thin calls to `flask db <subcommand>` (app/db/commands.py). docs/migrations.md
# has the workflow and the exit codes (make itself exits 2 when a
# command fails; scripts that branch on the code call `flask db …` directly).

FLASK_DB := $(BIN)/flask db
require = @test -n "$($(1))" || { echo "usage: make $@ $(1)=$(2)" >&2; exit 2; }

.PHONY: migration-generate migration-create migration-run migration-revert migration-show \
	migration-verify migration-accept migration-discard migration-lint migration-review migration-check migration-sql \
	migration-release db-backup db-restore db-reset
migration-generate: install-dev ## Generate a migration from model changes: name=AddUserTable
	$(call require,name,AddUserTable)
	$(FLASK_DB) generate "$(name)"

migration-create: install-dev ## Create an empty migration: name=BackfillBios (data=1: data-migration template; phase=contract)
	$(call require,name,BackfillBios)
	$(FLASK_DB) create "$(name)" $(if $(data),--data) $(if $(phase),--phase $(phase))

migration-run: install ## Apply pending migrations (locked; verified; backed up first in production; phase=expand|contract)
	$(FLASK_DB) run $(if $(phase),--phase $(phase))

migration-revert: install ## Revert the last applied migration (one step; repeat for more)
	$(FLASK_DB) revert

migration-discard: install-dev ## Delete the head revision if never applied and not on main: rev=<id> (HEAD moves back)
	$(call require,rev,<revision id>)
	$(FLASK_DB) discard "$(rev)"

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

migration-check: install ## CI gate: one head, models match, main's revisions untouched, the previous release (migrations/RELEASED) serves on the new expand schema
	$(FLASK_DB) gate
	$(BIN)/python -m scripts.release_conformance

migration-release: install ## Record the deployed commit and its head revision in migrations/RELEASED (after the contract phase ran)
	$(FLASK_DB) release

migration-sql: install ## Print a revision's PostgreSQL SQL, offline: rev=<id> (default head)
	$(FLASK_DB) sql $(or $(rev),head)

db-backup: install ## Back up the database into backups/ (BACKUP_DIRECTORY)
	$(FLASK_DB) backup

db-restore: install ## Check a backup, back up the database, replace it: file=backups/… (yes=1: no question)
	$(call require,file,backups/<file>)
	$(FLASK_DB) restore "$(file)" $(if $(yes),--yes)

db-reset: install ## Development: drop every table, migrate, seed (SEED_ARGS); refuses in production
	$(BIN)/flask drop-tables
	$(FLASK_DB) run
	$(BIN)/flask seed $(SEED_ARGS)

##@ Seed data, benchmarks, deployment
# docs/deployment.md has the release step, docs/performance.md the numbers. Bench runs are
# bounded: BENCH_DURATION seconds per endpoint, BENCH_MAX_SECONDS in all.

BENCH := $(VENV)/.bench-installed

$(BENCH): bench/requirements.txt $(RUNTIME)
	$(BIN)/pip install -q -r bench/requirements.txt
	touch $@

.PHONY: seed bench bench-scale bench-replicas bench-workers bench-migration bench-abuse deploy-demo release-demo bench-install
bench-install: install ## The bench tools: bench/requirements.txt, and wrk and pgbench (apt-get when missing)
	@$(MAKE) -q $(BENCH) || $(MAKE) $(BENCH)
	@$(BIN)/python -c 'from bench.harness import ensure_pgbench, ensure_wrk; ensure_wrk(); ensure_pgbench()'

seed: install ## Fill the database with seed data (SEED_ARGS="--users 100 --articles 1000 ...")
	$(BIN)/flask seed $(SEED_ARGS)

bench: bench-install ## wrk against gunicorn on PostgreSQL and SQLite, cache on and off, and the ceiling; bench-results/
	$(BIN)/python -m bench.run standard

bench-scale: bench-install ## List, feed, tag and favorited latency at 1k, 10k and 100k articles
	$(BIN)/python -m bench.run scale --databases $${BENCH_DATABASES:-postgresql}

bench-replicas: bench-install ## Two app replicas on one PostgreSQL: how soon a write on one is seen on the other; then a streaming replica: list, feed and 95/5 mix with and without it (cache off), read-your-writes across two app servers under load
	$(BIN)/python -m bench.run replicas

bench-workers: bench-install ## Compare gunicorn worker classes and thread counts (GET /api/articles)
	$(BIN)/python -m bench.run workers

bench-migration: bench-install ## p99 before and during an index + validated check on 1M comments, safe and plain forms
	$(BIN)/python -m bench.run migration

bench-abuse: bench-install ## Worker memory after 24,000 distinct URLs, a request among 32 silent connections, /healthz while a table is locked
	$(BIN)/python -m bench.run abuse

deploy-demo: install ## Two gunicorn replicas behind nginx on loopback; Postman suite while one dies (as root, apt-installs nginx-light and wrk if missing, saying so first; DEMO_NO_INSTALL=1 refuses)
	deploy/demo.sh

release-demo: install ## A rolling release under load: previous release (migrations/RELEASED) → expand, replicas, contract (apt-installs nginx-light if missing, as deploy-demo)
	deploy/release-demo.sh

##@ Housekeeping

.PHONY: clean
clean: ## Remove what the Makefile built: .venv, caches, tools, node_modules, the web app's generated types, build and test output, bench results (keeps instance/ and backups/: your data)
	rm -rf $(VENV) .tools .pytest_cache .mypy_cache .ruff_cache .import_linter_cache bench-results \
	  frontend/node_modules frontend/src/api/schema.d.ts frontend/dist frontend/e2e-results frontend/test-results
