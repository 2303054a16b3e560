"""Counts from other processes: gunicorn's workers (prometheus_client multiprocess mode) and the RQ workers
(delivery job counts kept in Redis), all visible in the /metrics of a web process."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import redis

from idp.observability.delivery_jobs import counts_key
from tests.conftest import Api
from tests.integration.test_processes import ROOT, base_env, serve
from tests.observability.conftest import parse_metrics, scrape, value
from tests.support.smtp import free_port

# One app in a process of its own, answering `count` requests; its metrics go to PROMETHEUS_MULTIPROC_DIR.
ANSWER_REQUESTS = """
import json, sys
from idp import create_app
env, instance, count = json.loads(sys.argv[1]), sys.argv[2], int(sys.argv[3])
client = create_app(env, instance_path=instance, dotenv=False).test_client()
for _ in range(count):
    assert client.get("/api/health/live").status_code == 200
"""


@pytest.fixture
def backend() -> str:
    return "postgres"  # other processes share the database and Redis with the test


def test_metrics_add_up_the_processes_that_share_a_multiprocess_directory(backend_config, instance_dir, make_app, tmp_path):
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)}
    settings = json.dumps(backend_config("postgres"))
    processes = [
        subprocess.Popen([sys.executable, "-c", ANSWER_REQUESTS, settings, str(instance_dir), str(count)], cwd=ROOT, env=env,
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        for count in (3, 4)
    ]
    for process in processes:
        _, errors = process.communicate(timeout=120)
        assert process.returncode == 0, errors.decode()[-2000:]
    assert len(list(metrics_dir.glob("histogram_*.db"))) == 2, "each process keeps its own file"

    samples = scrape(make_app(PROMETHEUS_MULTIPROC_DIR=str(metrics_dir)).test_client())
    assert value(samples, "idp_http_request_duration_seconds_count", route="/api/health/live", method="GET", status="200") == 7
    assert value(samples, "idp_http_request_duration_seconds_bucket", route="/api/health/live", method="GET", status="200", le="+Inf") == 7


def test_gunicorn_workers_that_come_and_go_are_all_counted(backend_config, instance_dir, tmp_path):
    """Each worker is replaced after 10 requests: only the files of every process, gone or alive, add up to 25."""
    env = {**base_env(tmp_path), **backend_config("postgres"), "INSTANCE_PATH": str(instance_dir), "GUNICORN_MAX_REQUESTS": "10"}
    with contextlib.contextmanager(serve)(env) as base:
        for _ in range(25):  # a connection each, so both workers take some; no process lives to answer more than 11
            assert httpx.get(f"{base}/api/health/live", timeout=10).status_code == 200
        scrapes = [parse_metrics(httpx.get(f"{base}/metrics", timeout=10).text) for _ in range(3)]
    for samples in scrapes:
        assert value(samples, "idp_http_request_duration_seconds_count", route="/api/health/live", method="GET", status="200") == 25


def worker_env(app, instance_dir: Path, backend_config, **overrides: str) -> dict[str, str]:
    """What `flask --app wsgi worker` on another host would be given: the same database, Redis and queue."""
    settings = app.extensions["idp"].settings
    return {
        **os.environ,
        **backend_config("postgres"),
        "INSTANCE_PATH": str(instance_dir),
        "DELIVERY_QUEUE": settings.delivery.queue_name,
        "OUTBOX_PATH": str(settings.delivery.outbox_path),
        **overrides,
    }


def run_worker_process(env: dict[str, str]) -> None:
    result = subprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", "worker", "--burst"], cwd=ROOT, env=env,
                            capture_output=True, timeout=120)
    assert result.returncode == 0, result.stderr.decode()[-2000:]


def test_delivery_jobs_done_and_failed_by_a_worker_process_show_in_the_web_metrics(make_app, backend_config, instance_dir, redis_url):
    app = make_app(DELIVERY_RETRY_INTERVALS="0")  # one retry
    key = counts_key(app.extensions["idp"].settings.delivery.queue_name)
    api = Api(app.test_client())
    token = api.token("alice")
    try:
        assert api.client.post("/api/email/send-verification", headers=api.bearer(token)).status_code == 200
        run_worker_process(worker_env(app, instance_dir, backend_config))  # console outbox: sent
        assert api.client.post("/api/email/send-verification", headers=api.bearer(token)).status_code == 200
        unreachable = {"EMAIL_BACKEND": "smtp", "EMAIL_HOST": "127.0.0.1", "EMAIL_PORT": str(free_port()),
                       "EMAIL_STARTTLS": "false", "EMAIL_FROM": "idp@example.com"}
        run_worker_process(worker_env(app, instance_dir, backend_config, **unreachable))  # refused twice

        samples = scrape(api.client)
        states = {state: value(samples, "idp_delivery_jobs_total", kind="email", state=state) for state in ("queued", "done", "retried", "failed")}
        assert states == {"queued": 2, "done": 1, "retried": 1, "failed": 1}
    finally:
        redis.Redis.from_url(redis_url).delete(key)
