# Two commands for a fresh machine:  `make run`  (start on the embedded default)  and  `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
FLASK := $(BIN)/flask --app wsgi
PORT ?= 3001

.PHONY: install install-dev run serve setup test bench lint clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.runtime: requirements.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.dev: requirements.txt requirements-dev.txt $(VENV)/.runtime
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@

install: $(VENV)/.runtime
install-dev: $(VENV)/.dev

## Apply migrations and make sure signing keys exist (idempotent).
setup: install
	$(FLASK) db upgrade
	$(FLASK) keys ensure

## Install, migrate and start on http://localhost:$(PORT) (SQLite in instance/, no Redis needed).
run: setup
	$(BIN)/gunicorn -c gunicorn.conf.py wsgi:app

## The whole test suite (after lint): PostgreSQL + Redis, the embedded SQLite mode, and the browser tests.
test: lint
	$(BIN)/python -m pytest $(PYTEST_ARGS)

## ruff and mypy over the code.
lint: install-dev
	$(BIN)/ruff check idp tests bench
	$(BIN)/mypy idp

## Benchmarks (not tests): gunicorn on PostgreSQL + Redis driven by wrk and an async client.
bench: install-dev
	$(BIN)/python -m bench $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache
