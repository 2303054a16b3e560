"""The schema comes from the migrations, and the migrations match the models."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text
from sqlalchemy.exc import IntegrityError

from idp.accounts.models import User
from idp.clock import utcnow
from idp.extensions import db


def test_migrations_built_every_table(app):
    with app.app_context():
        tables = set(inspect(db.engine).get_table_names())
    assert {"users", "sessions", "audit_logs", "signing_keys", "alembic_version"} <= tables


def test_models_and_migrations_do_not_drift(app):
    """A model change without a migration fails here (run `flask db migrate`); server defaults too
    (a migration's default the model does not declare: sessions.scope's, from 0004)."""
    with app.app_context(), db.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True, "compare_server_default": True})
        differences = compare_metadata(context, db.metadata)
    assert differences == []


def _index_names() -> set[str]:
    """Every index in the database, by name, read from the catalogue: SQLite's reflection (and so
    compare_metadata) skips expression indexes such as uq_users_username_lower."""
    if db.engine.dialect.name == "sqlite":
        query = "SELECT name FROM sqlite_master WHERE type = 'index'"
    else:
        query = "SELECT indexname FROM pg_indexes WHERE schemaname = current_schema()"
    with db.engine.connect() as connection:
        return set(connection.execute(text(query)).scalars())


def test_every_index_the_models_declare_is_in_the_database(app):
    """0007 rebuilt the users table on SQLite and lost the expression index on lower(username)."""
    with app.app_context():
        declared = {index.name for table in db.metadata.tables.values() for index in table.indexes}
        assert declared - _index_names() == set()


def test_the_database_refuses_a_username_differing_only_in_case(app):
    """The registration's check and the database's index together: two registrations at once
    both pass the check, and only the index keeps the second one out."""
    with app.app_context():
        now = utcnow()
        for email, username in (("bob@example.com", "Bob"), ("other@example.com", "bOB")):
            db.session.add(
                User(email=email, username=username, password_hash="x", created_at=now, updated_at=now, password_changed_at=now)
            )
            if username == "Bob":
                db.session.commit()
        with pytest.raises(IntegrityError):
            db.session.commit()
        db.session.rollback()


@pytest.fixture
def embedded_app(tmp_path):
    """An app on an SQLite database of its own, which a test migrates as far as it wants."""
    from idp import create_app

    env = {"DATABASE_URL": f"sqlite:///{tmp_path / 'old.db'}", "REDIS_URL": "", "IDP_ENV": "test"}
    app = create_app(env, instance_path=str(tmp_path), dotenv=False)
    with app.app_context():
        yield app
        db.engine.dispose()


def _insert(connection, table: str, **row: object) -> None:
    names = ", ".join(row)
    connection.execute(text(f"INSERT INTO {table} ({names}) VALUES ({', '.join(':' + n for n in row)})"), row)


def _insert_user(connection, user_id: str, username: str) -> None:
    when = "2026-01-01 00:00:00"
    _insert(
        connection, "users", id=user_id, email=f"{user_id}@example.com", username=username, password_hash="x",
        email_verified=False, two_factor_enabled=False, is_active=True, created_at=when, updated_at=when, password_changed_at=when,
    )  # fmt: skip


def test_an_embedded_database_holding_clashing_usernames_is_told_which(embedded_app, capfd):
    """Before 0012 an embedded database could take 'Bob' and 'bob'; the upgrade names them rather
    than failing on the index with SQLite's bare 'UNIQUE constraint failed'."""
    from flask_migrate import upgrade

    upgrade(revision="0011")
    with db.engine.begin() as connection:
        connection.exec_driver_sql("DROP INDEX uq_users_username_lower")  # as 0007 did before it made it again
        for n, username in enumerate(("Bob", "bob")):
            _insert_user(connection, str(n), username)
    with pytest.raises(SystemExit):  # `flask db upgrade` exits with the message
        upgrade()
    assert "usernames held by more than one account (differing only in case): bob." in capfd.readouterr().err


def test_upgrading_an_embedded_database_keeps_the_rows_referring_to_a_rebuilt_table(embedded_app):
    """0007 rebuilds `users` on SQLite (drops it and renames a copy): with the app's foreign keys on,
    the drop deleted every session, code and audit event of every account."""
    from flask_migrate import upgrade

    upgrade(revision="0006")
    when = "2026-01-01 00:00:00"
    with db.engine.begin() as connection:
        _insert_user(connection, "u1", "ada")
        _insert(
            connection, "sessions", id="s1", user_id="u1", client_id="api", token_hash="h", auth_time=when, amr="pwd",
            scope="", created_at=when, last_used_at=when, expires_at=when,
        )  # fmt: skip
    upgrade()
    with db.engine.connect() as connection:
        assert connection.execute(text("SELECT user_id FROM sessions")).scalars().all() == ["u1"]
        assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1  # on again for the app


def test_the_upgrade_runs_the_deletions_sqlite_skipped(embedded_app):
    """A client deleted while the embedded database's foreign keys were off left its consents: a
    client registered again under its id skipped the consent page. 0013 deletes them (and sets
    to NULL what ON DELETE SET NULL would have)."""
    from flask_migrate import upgrade

    upgrade(revision="0012")
    when = "2026-01-01 00:00:00"
    with db.engine.connect() as connection:
        connection.exec_driver_sql("PRAGMA foreign_keys = OFF")  # as every connection was
        connection.commit()
        _insert_user(connection, "u1", "ada")
        _insert_user(connection, "u2", "bea")
        _insert(connection, "oauth_clients", client_id="gone", name="Gone", redirect_uris="[]", post_logout_redirect_uris="[]",
                grant_types="[]", scopes="[]", token_endpoint_auth_method="none", first_party=False, require_mfa=False, created_at=when)  # fmt: skip
        for user_id in ("u1", "u2"):
            _insert(connection, "oauth_consents", id=f"c-{user_id}", user_id=user_id, client_id="gone", scopes="[]", created_at=when, updated_at=when)
        _insert(connection, "webhooks", id="w1", user_id="u1", url="https://x.example", events="[]", secret="s", is_active=True,
                consecutive_failures=0, created_at=when, updated_at=when)  # fmt: skip
        _insert(connection, "webhook_deliveries", id="d1", webhook_id="w1", event="e", body="{}", status="pending", attempts=1, created_at=when)
        _insert(connection, "webhook_attempts", id="a1", delivery_id="d1", attempt=1, success=False, duration_ms=1, created_at=when)
        _insert(connection, "audit_logs", user_id="u2", event="login", success=True, details="{}", created_at=when)
        for table, key in (("oauth_clients", "client_id"), ("webhooks", "id"), ("users", "id")):
            connection.execute(text(f"DELETE FROM {table} WHERE {key} IN ('gone', 'w1', 'u2')"))
        connection.commit()
    upgrade()
    with db.engine.connect() as connection:
        for table in ("oauth_consents", "webhook_deliveries", "webhook_attempts"):
            assert connection.execute(text(f"SELECT count(*) FROM {table}")).scalar() == 0, table
        assert connection.execute(text("SELECT user_id FROM audit_logs")).scalars().all() == [None]
        assert connection.exec_driver_sql("PRAGMA foreign_key_check").all() == []


def test_the_database_runs_the_on_delete_actions(app):
    """Deleting a client deletes its consents on both backends (SQLite only if asked, on each connection)."""
    from idp.oidc.models import Consent, OAuthClient

    with app.app_context():
        now = utcnow()
        user = User(email="ada@example.com", username="ada", password_hash="x", created_at=now, updated_at=now, password_changed_at=now)
        client = OAuthClient(client_id="notes", name="Notes", token_endpoint_auth_method="none", created_at=now)
        db.session.add_all([user, client])
        db.session.flush()
        db.session.add(Consent(user_id=user.id, client_id="notes", scopes=["openid"], created_at=now, updated_at=now))
        db.session.commit()
        db.session.execute(OAuthClient.__table__.delete())
        db.session.commit()
        assert db.session.execute(text("SELECT count(*) FROM oauth_consents")).scalar() == 0
        with app.extensions["idp"].autocommit.connect() as connection:  # the hot paths' engine too
            if connection.dialect.name == "sqlite":
                assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1


@pytest.fixture(params=["postgres", "embedded"])
def blank_database(request, tmp_path):
    """The URL of an empty database of the backend, for a test that migrates it itself."""
    if request.param == "embedded":
        yield f"sqlite:///{tmp_path / 'blank.db'}"
    else:
        from tests.conftest import temporary_database

        with temporary_database() as url:
            yield url


def test_every_migration_goes_down_and_up_again(blank_database, tmp_path):
    """`flask db downgrade` one step at a time down to an empty database, then up again, with the
    schema matching the models at the end. On SQLite 0007's downgrade rebuilt `users` without the
    index on lower(username), and 0001's downgrade then failed to drop it."""
    from flask_migrate import downgrade, upgrade

    from idp import create_app

    env = {"DATABASE_URL": blank_database, "REDIS_URL": "", "IDP_ENV": "test"}
    app = create_app(env, instance_path=str(tmp_path), dotenv=False)
    with app.app_context():
        upgrade()
        while _revision() is not None:
            before = _revision()
            downgrade(revision="-1")
            assert _revision() != before
        assert set(inspect(db.engine).get_table_names()) <= {"alembic_version"}
        upgrade()
        assert db.metadata.tables.keys() <= set(inspect(db.engine).get_table_names())
        assert {index.name for table in db.metadata.tables.values() for index in table.indexes} <= _index_names()
        db.engine.dispose()


def _revision() -> str | None:
    with db.engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()
