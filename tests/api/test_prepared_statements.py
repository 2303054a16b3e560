"""The hot statements are prepared once per PostgreSQL connection (idp.statements)."""

from __future__ import annotations

import logging

import pytest
from sqlalchemy import text

from tests.conftest import Api

pytestmark = pytest.mark.parametrize("backend", ["postgres"])  # SQLite has no server-side statements


def prepared_on_the_pool(app) -> list[str]:
    """The statements prepared on the autocommit engine's one pooled connection."""
    with app.extensions["idp"].autocommit.connect() as connection:
        return sorted(connection.execute(text("SELECT statement FROM pg_prepared_statements")).scalars())


def test_a_sign_in_prepares_its_statements_once_and_then_executes_them(make_app):
    app = make_app(DATABASE_URL=make_app().config["SQLALCHEMY_DATABASE_URI"] + "?connection_limit=1")
    api = Api(app.test_client())
    api.register("alice")
    assert api.login("alice").status_code == 200
    prepared = prepared_on_the_pool(app)
    assert any("FROM users" in sql for sql in prepared) and any("INSERT INTO sessions" in sql for sql in prepared)
    assert api.login("alice").status_code == 200
    assert prepared_on_the_pool(app) == prepared  # executed again, not prepared again


def test_behind_pgbouncer_nothing_is_prepared(make_app):
    app = make_app(DATABASE_URL=make_app().config["SQLALCHEMY_DATABASE_URI"] + "?connection_limit=1&pgbouncer=true")
    api = Api(app.test_client())
    api.register("alice")
    assert api.login("alice").status_code == 200
    assert prepared_on_the_pool(app) == []


def test_a_statement_lost_by_its_connection_runs_unprepared_from_then_on(make_app, caplog):
    """As behind a pooler in transaction mode that moves the connection between server sessions."""
    app = make_app(DATABASE_URL=make_app().config["SQLALCHEMY_DATABASE_URI"] + "?connection_limit=1")
    api = Api(app.test_client())
    api.register("alice")
    assert api.login("alice").status_code == 200
    with app.extensions["idp"].autocommit.connect() as connection:
        connection.execute(text("DEALLOCATE ALL"))
    with caplog.at_level(logging.WARNING, logger="idp.statements"):
        assert api.login("alice").status_code == 200
        assert api.login("alice").status_code == 200
    assert "running it unprepared from now on" in caplog.text
    assert not any("FROM users" in sql for sql in prepared_on_the_pool(app))
