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
    """A model change without a migration fails here (run `flask db migrate`)."""
    with app.app_context(), db.engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), db.metadata)
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


def test_an_embedded_database_holding_clashing_usernames_is_told_which(tmp_path, capfd):
    """Before 0012 an embedded database could take 'Bob' and 'bob'; the upgrade names them rather
    than failing on the index with SQLite's bare 'UNIQUE constraint failed'."""
    from flask_migrate import upgrade

    from idp import create_app

    env = {"DATABASE_URL": f"sqlite:///{tmp_path / 'old.db'}", "REDIS_URL": "", "IDP_ENV": "test"}
    app = create_app(env, instance_path=str(tmp_path), dotenv=False)
    with app.app_context():
        upgrade(revision="0011")
        with db.engine.begin() as connection:
            for n, username in enumerate(("Bob", "bob")):
                connection.execute(
                    text(
                        "INSERT INTO users (id, email, username, password_hash, email_verified, two_factor_enabled, is_active,"
                        " is_admin, created_at, updated_at, password_changed_at) VALUES (:id, :email, :username, 'x', 0, 0, 1, 0,"
                        " '2026-01-01', '2026-01-01', '2026-01-01')"
                    ),
                    {"id": str(n), "email": f"{n}@example.com", "username": username},
                )
        with pytest.raises(SystemExit):  # `flask db upgrade` exits with the message
            upgrade()
        assert "usernames held by more than one account (differing only in case): bob." in capfd.readouterr().err
        db.engine.dispose()
