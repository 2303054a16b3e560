"""The service as operators run it: gunicorn with gunicorn.conf.py, production settings, real PostgreSQL and Redis,
and the embedded default with no database or Redis configured."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from cryptography.fernet import Fernet

from tests.conftest import temporary_database

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "Correct-Horse-9!"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run_flask(env: dict[str, str], *args: str) -> None:
    subprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", *args], cwd=ROOT, env=env, check=True, timeout=120, capture_output=True)


def serve(env: dict[str, str]) -> Iterator[str]:
    """Start gunicorn on a free loopback port; yield its base URL once it is ready; stop it."""
    port = free_port()
    env = {**env, "PORT": str(port), "HOST": "127.0.0.1"}
    process = subprocess.Popen([sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "wsgi:app"], cwd=ROOT, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if process.poll() is not None:
                pytest.fail("gunicorn exited:\n" + process.stdout.read().decode())  # type: ignore[union-attr]
            try:
                if httpx.get(f"{base}/api/health/ready", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        else:
            pytest.fail("gunicorn did not become ready")
        yield base
    finally:
        process.terminate()
        process.wait(timeout=30)


def base_env(tmp_path: Path) -> dict[str, str]:
    keep = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "VIRTUAL_ENV")}
    return {**keep, "INSTANCE_PATH": str(tmp_path / "instance"), "WEB_CONCURRENCY": "2", "GUNICORN_THREADS": "2"}


@pytest.fixture
def own_database() -> Iterator[str]:
    """A database of its own: production keeps its signing keys under its own encryption key."""
    with temporary_database() as url:
        yield url


@pytest.fixture
def production(tmp_path: Path, own_database: str, redis_url: str) -> Iterator[str]:
    host, port = redis_url.split("//")[1].split("/")[0].split(":")
    env = {
        **base_env(tmp_path),
        "NODE_ENV": "production",
        "SECRET_KEY": "Zr8Tn1Wc6Hy5Bf0Gs-k3Jd9Qm2Xv7Lp4-production",
        "ENCRYPTION_KEYS": Fernet.generate_key().decode(),
        # exactly the shape the old service's users have in their .env
        "DATABASE_URL": own_database + "?schema=public&connection_limit=5&pool_timeout=10",
        "REDIS_HOST": host,
        "REDIS_PORT": port,
        "RATE_LIMIT_KEY_PREFIX": f"proc-{os.getpid()}-{time.monotonic_ns()}",
        "RATE_LIMIT_REGISTER": "100 per hour",
    }
    run_flask(env, "db", "upgrade")
    run_flask(env, "keys", "ensure")
    yield from serve(env)


def journey(base: str) -> None:
    with httpx.Client(base_url=base, timeout=10) as client:
        name = f"u{time.monotonic_ns()}"
        registered = client.post("/api/auth/register", json={"email": f"{name}@example.com", "username": name, "password": PASSWORD})
        assert registered.status_code == 201, registered.text
        login = client.post("/api/auth/login", json={"emailOrUsername": name, "password": PASSWORD})
        assert login.status_code == 200
        access = login.json()["data"]["accessToken"]
        assert client.get("/api/auth/me", headers={"Authorization": f"Bearer {access}"}).status_code == 200
        refreshed = client.post("/api/auth/refresh", json={"refreshToken": login.cookies["refreshToken"]})
        assert refreshed.status_code == 200, refreshed.text
        assert client.get("/.well-known/jwks.json").status_code == 200


def test_production_under_gunicorn_on_postgres_and_redis(production: str):
    health = httpx.get(f"{production}/api/health").json()
    assert health["status"] == "healthy" and health["checks"]["redis"]["status"] == "up"
    journey(production)


def test_production_refuses_to_start_without_secrets(tmp_path: Path):
    env = {**base_env(tmp_path), "IDP_ENV": "production"}
    result = subprocess.run([sys.executable, "-c", "import wsgi"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 4
    assert "SECRET_KEY is required in production" in result.stderr
    # the message alone, no traceback to read it out of, for the CLI and for gunicorn, which stops
    # at once ("App failed to load") instead of starting workers again and again
    assert "Traceback" not in result.stderr
    command = subprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", "keys", "ensure"], cwd=ROOT, env=env,
                             capture_output=True, text=True, timeout=60)
    assert command.returncode == 4 and "Traceback" not in command.stderr
    assert "Configuration error: SECRET_KEY is required in production" in command.stderr
    env["PORT"] = str(free_port())
    server = subprocess.run([sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "wsgi:app"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=60)
    assert server.returncode != 0 and "App failed to load" in server.stderr
    assert server.stderr.count("Configuration error: SECRET_KEY is required in production") <= 2  # one per worker, not a loop


def test_embedded_default_runs_with_nothing_configured(tmp_path: Path):
    env = base_env(tmp_path)
    run_flask(env, "db", "upgrade")
    run_flask(env, "keys", "ensure")
    for base in serve(env):
        health = httpx.get(f"{base}/api/health").json()
        assert health["checks"]["redis"]["mode"] == "embedded"
        journey(base)
    assert (tmp_path / "instance" / "idp.db").exists()
    assert (tmp_path / "instance" / "secret_key.secret").exists()
