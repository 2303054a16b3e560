"""A refresh token's rotation is committed without waiting for PostgreSQL's write-ahead-log flush
(REFRESH_SYNCHRONOUS_COMMIT=true makes it wait), scoped to that one statement: the pooled
connection, and every other write, keep `synchronous_commit = on`."""

from __future__ import annotations

import pytest
from sqlalchemy import literal_column, select

from idp.statements import HotStatement
from tests.api.test_sessions import refresh_with

SETTING = select(literal_column("current_setting('synchronous_commit')").label("value"), literal_column("pg_backend_pid()").label("pid"))


@pytest.mark.parametrize("backend", ["postgres"])
def test_a_statement_that_need_not_wait_runs_with_synchronous_commit_off_and_leaves_its_connection_as_it_was(app):
    engine = app.extensions["idp"].autocommit
    before = HotStatement(engine, SETTING).first({})
    during = HotStatement(engine, SETTING, wait_for_flush=False).first({})
    after = HotStatement(engine, SETTING).first({})
    assert before.pid == during.pid == after.pid  # one pooled connection, used three times
    assert (before.value, during.value, after.value) == ("on", "off", "on")


@pytest.mark.parametrize("backend", ["postgres"])
def test_rotations_do_not_wait_for_the_flush_unless_configured_and_nothing_else_skips_it(make_app):
    statements = make_app().extensions["idp"].session_statements
    assert not statements.rotate.waits_for_flush and not statements.rotate_with_claims.waits_for_flush
    assert statements.live_bearer.waits_for_flush and statements.live_session.waits_for_flush

    strict = make_app(REFRESH_SYNCHRONOUS_COMMIT="true").extensions["idp"].session_statements
    assert strict.rotate.waits_for_flush and strict.rotate_with_claims.waits_for_flush


@pytest.mark.parametrize("backend", ["postgres"])
def test_a_rotation_sent_with_its_setting_still_rotates_and_a_reuse_still_ends_the_session(api):
    api.register("alice")
    first = api.client.get_cookie("refreshToken", path="/api/auth").value
    assert api.client.post("/api/auth/refresh").status_code == 200
    second = api.client.get_cookie("refreshToken", path="/api/auth").value
    assert second != first
    assert refresh_with(api.client, first).status_code == 401  # reused
    assert refresh_with(api.client, second).status_code == 401  # and so the session has ended


def test_on_sqlite_the_flag_does_not_apply(make_app, backend):
    statements = make_app().extensions["idp"].session_statements
    assert statements.rotate.waits_for_flush is (backend == "embedded")
