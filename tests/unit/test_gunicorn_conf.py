"""gunicorn.conf.py sizes the server from the cores the process may run on, not the machine's count."""

from __future__ import annotations

import os
import runpy
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

CONF = Path(__file__).resolve().parents[2] / "gunicorn.conf.py"
ALL_CORES = os.sched_getaffinity(0)


@contextmanager
def environment(**values: str) -> Iterator[None]:
    saved = dict(os.environ)
    try:
        for name in ("WEB_CONCURRENCY", "GUNICORN_THREADS", "ARGON2_CONCURRENCY", "REDIS_URL", "REDIS_HOST"):
            os.environ.pop(name, None)
        os.environ.update(values)
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def load(cores: set[int] | None = None, dotenv: str | None = None, **env: str) -> dict[str, Any]:
    """The config's settings as gunicorn would read them, in a process limited to `cores`. The
    config runs from a folder of its own, with `dotenv` as the `.env` beside it (the project's own
    `.env`, if a developer has one, stays out)."""
    with tempfile.TemporaryDirectory() as folder, environment(METRICS_ENABLED="false", **env):
        conf = Path(folder) / CONF.name
        shutil.copy(CONF, conf)
        if dotenv is not None:
            (Path(folder) / ".env").write_text(dotenv)
        try:
            if cores is not None:
                os.sched_setaffinity(0, cores)
            return runpy.run_path(str(conf))
        finally:
            os.sched_setaffinity(0, ALL_CORES)


def test_one_process_per_core_the_server_may_use():
    """Under taskset or a container's CPU set, two processes on one core would only take turns."""
    one_core = {min(ALL_CORES)}
    pinned = load(one_core, REDIS_URL="redis://127.0.0.1:6379/0")
    assert pinned["workers"] == 1
    assert pinned["raw_env"] == ["ARGON2_CONCURRENCY=1"]
    whole = load(REDIS_URL="redis://127.0.0.1:6379/0")
    assert whole["workers"] == len(ALL_CORES)
    assert whole["raw_env"] == ["ARGON2_CONCURRENCY=1"]  # a core each: one computation per process


def test_argon2_computations_share_the_cores_among_the_processes():
    """One process (the embedded default) runs as many at once as there are cores; more processes than cores, one each."""
    assert load()["raw_env"] == [f"ARGON2_CONCURRENCY={len(ALL_CORES)}"]
    assert load(REDIS_URL="redis://127.0.0.1:6379/0", WEB_CONCURRENCY=str(4 * len(ALL_CORES)))["raw_env"] == ["ARGON2_CONCURRENCY=1"]
    assert load(REDIS_URL="redis://127.0.0.1:6379/0", WEB_CONCURRENCY="1")["raw_env"] == [f"ARGON2_CONCURRENCY={len(ALL_CORES)}"]


def test_operators_settings_win():
    conf = load(REDIS_URL="redis://127.0.0.1:6379/0", WEB_CONCURRENCY="3", GUNICORN_THREADS="8", ARGON2_CONCURRENCY="2")
    assert (conf["workers"], conf["threads"]) == (3, 8)
    assert "raw_env" not in conf  # the app reads ARGON2_CONCURRENCY from the environment itself


def test_embedded_default_runs_one_process():
    """Without Redis the rate limits are in memory: one process keeps them exact."""
    assert load()["workers"] == 1


def test_a_containers_cpu_limit_counts(tmp_path):
    """`docker run --cpus` and Kubernetes CPU limits are CFS quotas, in cgroup v2 or v1 files."""
    conf = load()
    cpu_quota = conf["cpu_quota"]

    def files(v2: str | None = None, quota: str | None = None, period: str | None = None) -> dict[str, str]:
        paths = {}
        for name, text in (("cpu_max", v2), ("cfs_quota", quota), ("cfs_period", period)):
            path = tmp_path / name
            if text is None:
                path.unlink(missing_ok=True)
            else:
                path.write_text(text + "\n")
            paths[name] = str(path)
        return paths

    assert cpu_quota(**files(v2="200000 100000")) == 2
    assert cpu_quota(**files(v2="150000 100000")) == 2  # 1.5 CPUs: two processes, each often waiting
    assert cpu_quota(**files(v2="50000 100000")) == 1
    assert cpu_quota(**files(v2="max 100000")) is None
    assert cpu_quota(**files(quota="300000", period="100000")) == 3  # cgroup v1
    assert cpu_quota(**files(quota="-1", period="100000")) is None
    assert cpu_quota(**files()) is None  # no cgroup files at all
    assert cpu_quota(**files(v2="garbage")) is None

    assert conf["usable_cores"](quota=1) == 1
    assert conf["usable_cores"](quota=10_000) == len(ALL_CORES)  # the CPU set still bounds it


def test_a_worker_freezes_what_loading_the_application_made():
    import gc

    settings = load()
    assert gc.get_freeze_count() == 0
    try:
        settings["post_worker_init"](None)
        assert gc.get_freeze_count() > 0  # the objects that exist now are never collected nor walked again
    finally:
        gc.unfreeze()


def test_the_server_reads_the_dotenv_file_as_the_app_does():
    """The app reads `.env` (PORT for its issuer, REDIS_URL for its limits and queue), gunicorn.conf.py
    did not: PORT=8000 in .env made the issuer http://localhost:8000 while gunicorn listened on 3001,
    HOST=0.0.0.0 listened on loopback only, REDIS_URL there still ran one process, and an
    ARGON2_CONCURRENCY there was overridden by the computed one. The process environment still wins."""
    dotenv = "PORT=8000\nHOST=0.0.0.0\nREDIS_URL=redis://127.0.0.1:6379/0\nWEB_CONCURRENCY=3\nARGON2_CONCURRENCY=2\n"
    conf = load(dotenv=dotenv)
    assert conf["bind"] == "0.0.0.0:8000"
    assert conf["workers"] == 3
    assert "raw_env" not in conf  # the app reads ARGON2_CONCURRENCY=2 from .env itself
    assert load(dotenv="REDIS_URL=redis://127.0.0.1:6379/0\n")["workers"] == len(ALL_CORES)
    assert load(dotenv=dotenv, PORT="9000", WEB_CONCURRENCY="2")["bind"] == "0.0.0.0:9000"
