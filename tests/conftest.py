"""Test harness: real PostgreSQL and Redis, and the embedded SQLite mode, schemas built by the migrations.

The API tests run twice, once per backend:
- `postgres`: PostgreSQL + Redis (rate limits in Redis), as in production;
- `embedded`: SQLite under a temporary instance folder and no Redis, the one-command default.

A missing PostgreSQL or Redis is an error, never a skip: CI must fail when a service is down.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg2
import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from idp import create_app
from idp.extensions import db

ADMIN_DATABASE_URL = os.environ.get("TEST_DATABASE_URL", "postgresql://root@127.0.0.1:5432/test")
TEST_REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")

# Generous limits for tests that are not about limits; rate-limit tests set their own.
ROOMY_LIMITS = {
    "RATE_LIMIT_LOGIN": "1000 per minute",
    "RATE_LIMIT_LOGIN_ACCOUNT": "1000 per minute",
    "RATE_LIMIT_REGISTER": "1000 per minute",
    "RATE_LIMIT_GENERAL": "10000 per minute",
}
KEEP_TABLES = {"alembic_version", "signing_keys"}
BACKENDS = ("postgres", "embedded")


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh database for this run, dropped at the end."""
    admin = make_url(ADMIN_DATABASE_URL)
    name = f"idp_test_{uuid.uuid4().hex[:10]}"
    try:
        conn = psycopg2.connect(ADMIN_DATABASE_URL.replace("postgresql+psycopg2", "postgresql"))
    except psycopg2.OperationalError as exc:
        pytest.fail(f"PostgreSQL is required for the tests ({ADMIN_DATABASE_URL}): {exc}", pytrace=False)
    conn.autocommit = True
    conn.cursor().execute(f'CREATE DATABASE "{name}"')
    try:
        yield admin.set(database=name).render_as_string(hide_password=False)
    finally:
        conn.cursor().execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.close()


@pytest.fixture(scope="session")
def redis_url() -> str:
    try:
        redis.Redis.from_url(TEST_REDIS_URL, socket_connect_timeout=2).ping()
    except redis.RedisError as exc:
        pytest.fail(f"Redis is required for the tests ({TEST_REDIS_URL}): {exc}", pytrace=False)
    return TEST_REDIS_URL


@pytest.fixture(scope="session")
def instance_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("instance")


@pytest.fixture(scope="session")
def backend_config(request: pytest.FixtureRequest, instance_dir: Path) -> Callable[[str], dict[str, str]]:
    """Environment for a backend, with its schema migrated once per run."""
    migrated: dict[str, dict[str, str]] = {}

    def config(backend: str) -> dict[str, str]:
        if backend not in migrated:
            if backend == "postgres":
                env = {
                    "DATABASE_URL": request.getfixturevalue("postgres_url"),
                    "REDIS_URL": request.getfixturevalue("redis_url"),
                }
            else:
                env = {"DATABASE_URL": f"sqlite:///{instance_dir / 'embedded.db'}", "REDIS_URL": ""}
            env["IDP_ENV"] = "test"
            app = create_app(env, instance_path=str(instance_dir), dotenv=False)
            with app.app_context():
                from flask_migrate import upgrade

                upgrade()
                db.engine.dispose()
            migrated[backend] = env
        return migrated[backend]

    return config


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def make_app(backend: str, backend_config: Callable[[str], dict[str, str]], instance_dir: Path) -> Iterator[Callable[..., Flask]]:
    """Build an app on the current backend; keyword arguments override settings."""
    apps: list[Flask] = []

    def make(**overrides: str) -> Flask:
        env = {**backend_config(backend), **ROOMY_LIMITS, "RATE_LIMIT_KEY_PREFIX": f"test-{uuid.uuid4().hex}", **overrides}
        app = create_app(env, instance_path=str(instance_dir), dotenv=False)
        app.config["TESTING"] = True
        apps.append(app)
        return app

    yield make
    for app in apps:
        with app.app_context():
            db.engine.dispose()
    _clean(backend_config(backend)["DATABASE_URL"])


def _clean(database_url: str) -> None:
    """Empty every table a test may have written (the migrated schema and signing keys stay)."""
    tables = [t for t in reversed(db.metadata.sorted_tables) if t.name not in KEEP_TABLES]
    engine = create_engine(database_url.replace("postgresql://", "postgresql+psycopg2://", 1), poolclass=NullPool)
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text("TRUNCATE " + ", ".join(t.name for t in tables) + " RESTART IDENTITY CASCADE"))
        else:
            for table in tables:
                conn.execute(table.delete())
    engine.dispose()


@pytest.fixture
def app(make_app: Callable[..., Flask]) -> Flask:
    return make_app()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


class Api:
    """A thin helper over the test client for the JSON API."""

    PASSWORD = "Correct-Horse-9!"

    def __init__(self, client: FlaskClient) -> None:
        self.client = client

    def register(self, username: str = "alice", email: str | None = None, password: str = PASSWORD) -> Any:
        return self.client.post(
            "/api/auth/register", json={"email": email or f"{username}@example.com", "username": username, "password": password}
        )

    def login(self, identifier: str = "alice", password: str = PASSWORD, **extra: Any) -> Any:
        return self.client.post("/api/auth/login", json={"emailOrUsername": identifier, "password": password, **extra})

    def token(self, username: str = "alice") -> str:
        """Register and return an access token."""
        response = self.register(username)
        assert response.status_code == 201, response.json
        return response.json["data"]["accessToken"]

    @staticmethod
    def bearer(token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def api(client: FlaskClient) -> Api:
    return Api(client)
