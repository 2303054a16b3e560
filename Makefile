# Two commands for a fresh machine:  `make run`  (start on the embedded default)  and  `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
FLASK := $(BIN)/flask --app wsgi
PORT ?= 3001

.PHONY: install install-dev run serve setup example test bench lint messages screenshots clean

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

## Install, migrate, seed the demo client and user, and start on http://localhost:$(PORT) (SQLite in
## instance/, no Redis needed). `demo seed` refuses in production; the leading `-` starts the server anyway.
run: setup
	-$(FLASK) demo seed
	$(BIN)/gunicorn -c gunicorn.conf.py wsgi:app

## The example relying party on http://localhost:5000 (examples/relying_app.py), signing in with the
## provider that `make run` serves (start that first, in another terminal; the same PORT=...).
example: install
	IDP_ISSUER="$${IDP_ISSUER:-http://localhost:$(PORT)}" $(BIN)/python examples/relying_app.py

## The whole test suite (after lint): PostgreSQL + Redis, the embedded SQLite mode, and the browser tests.
test: lint
	$(BIN)/python -m pytest $(PYTEST_ARGS)

## ruff and mypy over the code.
lint: install-dev
	$(BIN)/ruff check idp tests bench examples
	$(BIN)/mypy idp

## Benchmarks (not tests): gunicorn on PostgreSQL + Redis driven by wrk and an async client.
bench: install-dev
	$(BIN)/python -m bench $(BENCH_ARGS)

## Screenshots of every hosted page (desktop and phone, light and dark) into docs/screenshots/,
## taken by the browser tests as they walk the journeys.
screenshots: install-dev
	rm -rf docs/screenshots
	SCREENSHOTS=1 $(BIN)/python -m pytest tests/browser -q $(PYTEST_ARGS)

## Extract the hosted pages' text (templates, views) into translations/messages.pot, from which a
## language starts or is updated (README: "Translating the pages"). tests/web/test_i18n.py fails while it is stale.
messages: install
	$(BIN)/pybabel extract -F babel.cfg -k _l -k lazy_gettext -o translations/messages.pot .

clean:
	rm -rf $(VENV) .pytest_cache
