"""Test harness: real PostgreSQL and Redis, and the embedded SQLite mode, schemas built by the migrations.

The API tests run twice, once per backend:
- `postgres`: PostgreSQL + Redis (rate limits in Redis), as in production;
- `embedded`: SQLite under a temporary instance folder and no Redis, the one-command default.

A missing PostgreSQL or Redis is an error, never a skip: CI must fail when a service is down.
"""

from __future__ import annotations

import contextlib
import os
import re
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg2
import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient
from jinja2 import StrictUndefined
from rq import SimpleWorker
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool
from werkzeug.test import TestResponse

from idp import create_app
from idp.extensions import db

pytest_plugins = ["tests.support.fixtures"]  # live server, Chromium (tests/support)

ADMIN_DATABASE_URL = os.environ.get("TEST_DATABASE_URL", "postgresql://root@127.0.0.1:5432/test")
TEST_REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")

# Generous limits for tests that are not about limits; rate-limit tests set their own.
ROOMY_LIMITS = {
    "RATE_LIMIT_LOGIN": "1000 per minute",
    "RATE_LIMIT_LOGIN_ACCOUNT": "1000 per minute",
    "RATE_LIMIT_REGISTER": "1000 per minute",
    "RATE_LIMIT_GENERAL": "10000 per minute",
    "RATE_LIMIT_TWO_FACTOR": "1000 per minute",
    "RATE_LIMIT_CODE_SEND": "1000 per minute",
    "RATE_LIMIT_LOGIN_CODE": "1000 per minute",
}
KEEP_TABLES = {"alembic_version", "signing_keys"}
BACKENDS = ("postgres", "embedded")


@contextlib.contextmanager
def temporary_database() -> Iterator[str]:
    """A new, empty PostgreSQL database (its URL), dropped afterwards."""
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
def postgres_url() -> Iterator[str]:
    """The run's database for the postgres backend."""
    with temporary_database() as url:
        yield url


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


class ServedClient(FlaskClient):
    """Flask's test client, reading each answer whole and closing it as a WSGI server does: the work
    a request leaves for after its answer (idp.after_response) has run when the call returns."""

    def open(self, *args: Any, buffered: bool = True, **kwargs: Any) -> TestResponse:
        return super().open(*args, buffered=buffered, **kwargs)


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def make_app(
    backend: str, backend_config: Callable[[str], dict[str, str]], instance_dir: Path, tmp_path: Path
) -> Iterator[Callable[..., Flask]]:
    """Build an app on the current backend; keyword arguments override settings. Each test has its
    own rate-limit keys, delivery queue and console outbox."""
    apps: list[Flask] = []
    isolation = {
        "RATE_LIMIT_KEY_PREFIX": f"test-{uuid.uuid4().hex}",
        "DELIVERY_QUEUE": f"test-{uuid.uuid4().hex}",
        "DELIVERY_RETRY_INTERVALS": "0,0,0,0,0",
        "OUTBOX_PATH": str(tmp_path / "outbox.jsonl"),
    }

    def make(**overrides: str) -> Flask:
        env = {**backend_config(backend), **ROOMY_LIMITS, **isolation, **overrides}
        app = create_app(env, instance_path=str(instance_dir), dotenv=False)
        app.config["TESTING"] = True
        app.test_client_class = ServedClient
        app.jinja_env.undefined = StrictUndefined  # every page and message of every test renders strictly
        apps.append(app)
        return app

    yield make
    for app in apps:
        with app.app_context():
            db.engine.dispose()
        app.extensions["idp"].autocommit.dispose()
        for queue in getattr(app.extensions["idp"].delivery_queue, "queues", []):
            with contextlib.suppress(redis.RedisError):  # some tests point the app at a dead Redis
                queue.delete(delete_jobs=True)
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


class BurstWorker(SimpleWorker):
    """RQ's in-process worker without its remote-control pubsub thread, whose shutdown costs a second per run."""

    def subscribe(self) -> None:
        self.pubsub_thread = None


class Outbox:
    """Messages the app sent through its console outbox; queued jobs are run first (an RQ burst
    worker on the real Redis), so the postgres backend delivers exactly as in production."""

    def __init__(self, app: Flask) -> None:
        self.app = app

    def messages(self, to: str | None = None) -> list[dict[str, Any]]:
        from idp.delivery.outbox import ConsoleOutbox

        components = self.app.extensions["idp"]
        queues = getattr(components.delivery_queue, "queues", None)
        if queues:
            with self.app.app_context():
                BurstWorker(queues, connection=queues[0].connection).work(burst=True)
        found = ConsoleOutbox(components.settings.delivery.outbox_path).messages(limit=1000)
        return [m for m in found if to is None or m["to"] == to]

    def last(self, to: str) -> dict[str, Any]:
        found = self.messages(to)
        assert found, f"no message to {to}"
        return found[0]

    def code(self, to: str) -> str:
        """The 6-digit code of the newest message to `to`."""
        message = self.last(to)
        match = re.search(r"\b(\d{6})\b", message.get("text") or message.get("body") or "")
        assert match, message
        return match.group(1)

    def link_token(self, to: str) -> str:
        match = re.search(r"token=([A-Za-z0-9_\-]+)", self.last(to)["text"])
        assert match
        return match.group(1)


class Api:
    """A thin helper over the test client for the JSON API."""

    PASSWORD = "Correct-Horse-9!"

    def __init__(self, client: FlaskClient) -> None:
        self.client = client
        self.outbox = Outbox(client.application)

    def register(self, username: str = "alice", email: str | None = None, password: str = PASSWORD, **request: Any) -> Any:
        """POST /api/auth/register; `request` goes to the test client (environ_base=..., headers=...)."""
        return self.client.post(
            "/api/auth/register",
            json={"email": email or f"{username}@example.com", "username": username, "password": password},
            **request,
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

    def verified_token(self, username: str = "alice") -> str:
        """Register, verify the email through the emailed link, and return an access token."""
        token = self.token(username)
        assert self.client.post("/api/email/send-verification", headers=self.bearer(token)).status_code == 200
        link_token = self.outbox.link_token(f"{username}@example.com")
        assert self.client.post("/api/email/verify", json={"token": link_token}).status_code == 200
        return token

    def enable_totp(self, token: str) -> tuple[str, list[str]]:
        """Set up TOTP with a code computed by pyotp; returns the secret and the backup codes.

        The setup code is the previous step's (inside the drift window), so the current step's code
        is still unused for the login that follows: each code is accepted only once."""
        import time

        import pyotp

        secret = self.client.post("/api/2fa/totp/setup", headers=self.bearer(token)).json["data"]["secret"]
        if 30 - time.time() % 30 < 2:  # a step boundary now would make the previous step's code too old
            time.sleep(30 - time.time() % 30)
        code = pyotp.TOTP(secret).at(time.time() - 30)
        response = self.client.post("/api/2fa/totp/verify-setup", headers=self.bearer(token), json={"code": code})
        assert response.status_code == 200, response.json
        return secret, response.json["data"]["backupCodes"]

    def challenge(self, username: str = "alice", **extra: Any) -> dict[str, Any]:
        response = self.login(username, **extra)
        assert response.status_code == 200 and response.json["data"].get("requiresTwoFactor"), response.json
        return response.json["data"]


@pytest.fixture
def api(client: FlaskClient) -> Api:
    return Api(client)
