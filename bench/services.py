"""What a run needs around the service: wrk, a throw-away database, a Redis key space, gunicorn
and the delivery worker.

Everything started here is stopped by its own process id; nothing listens beyond 127.0.0.1.
"""

from __future__ import annotations

import os
import runpy
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import IO, Any

import httpx
import psycopg2
import redis
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"


class BenchError(RuntimeError):
    """The benchmark cannot go on; the message says why."""


def ensure_wrk() -> str:
    """The wrk binary, installed from the Debian package when missing (needs root)."""
    found = shutil.which("wrk")
    if found:
        return found
    if os.geteuid() != 0:
        raise BenchError("wrk is not installed and this is not root: apt-get install -y wrk")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-qq", "wrk"]
    print("installing wrk (apt-get install -y wrk) ...", flush=True)
    if subprocess.run(install, env=env, capture_output=True, timeout=300).returncode != 0:
        subprocess.run(["apt-get", "update", "-qq"], env=env, capture_output=True, timeout=300)
        done = subprocess.run(install, env=env, capture_output=True, text=True, timeout=300)
        if done.returncode != 0:
            raise BenchError(f"apt-get install wrk failed: {done.stderr.strip()[-500:]}")
    found = shutil.which("wrk")
    if not found:
        raise BenchError("wrk is still not on PATH after apt-get install")
    return found


def run_checked(args: list[str], env: dict[str, str], *, timeout: float = 120) -> str:
    done = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise BenchError(f"{' '.join(args[2:])} failed ({done.returncode}):\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    return done.stdout


def gunicorn_shape(env: dict[str, str], cpus: str | None = None) -> tuple[int, int]:
    """(workers, threads) that gunicorn.conf.py gives under this environment, on these CPUs (a
    taskset list such as "0"; the config counts the cores it may run on)."""
    saved = dict(os.environ)
    affinity = os.sched_getaffinity(0)
    try:
        os.environ.clear()
        os.environ.update(env)
        if cpus:
            os.sched_setaffinity(0, {int(c) for c in cpus.split(",")})
        conf = runpy.run_path(str(ROOT / "gunicorn.conf.py"))
    finally:
        os.sched_setaffinity(0, affinity)
        os.environ.clear()
        os.environ.update(saved)
    return int(conf["workers"]), int(conf["threads"])


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def cpu_ticks(pid: int, *, with_children: bool = False) -> int:
    """User + system clock ticks of a process (and of its waited-for children), 0 if it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0
    return sum(int(f) for f in fields[11 : 15 if with_children else 13])


def log_tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def stop_process(process: subprocess.Popen[bytes], stop_signal: signal.Signals, *, timeout: float) -> None:
    """Ask politely with `stop_signal`, then kill the process group this run created for it."""
    if process.poll() is not None:
        return
    try:
        os.kill(process.pid, stop_signal)
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=5)
    except ProcessLookupError:
        pass


class Database:
    """A fresh PostgreSQL database for one run, dropped (with its connections) at the end."""

    def __init__(self, admin_url: str, name: str) -> None:
        self._admin = make_url(admin_url).set(drivername="postgresql")
        self.name = name
        self.created = False

    @property
    def url(self) -> str:
        return self._admin.set(database=self.name).render_as_string(hide_password=False)

    def _execute(self, statement: str) -> None:
        conn = psycopg2.connect(self._admin.render_as_string(hide_password=False), connect_timeout=10)
        try:
            conn.autocommit = True
            with conn.cursor() as cur:
                cur.execute(statement)
        finally:
            conn.close()

    def create(self) -> None:
        self._execute(f'CREATE DATABASE "{self.name}"')
        self.created = True

    def drop(self) -> None:
        if self.created:
            self._execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
            self.created = False

    def server_version(self) -> str:
        conn = psycopg2.connect(self.url, connect_timeout=10)
        try:
            with conn.cursor() as cur:
                cur.execute("SHOW server_version")
                return f"PostgreSQL {cur.fetchone()[0].split()[0]}"
        finally:
            conn.close()


class RedisSpace:
    """Rate-limit keys of this run live under a unique prefix and are deleted at the end."""

    def __init__(self, url: str, prefix: str) -> None:
        self.url = url
        self.prefix = prefix
        self._client: Any = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)

    def version(self) -> str:
        return f"Redis {self._client.info('server').get('redis_version', '?')}"

    def clean(self, *, max_rounds: int = 10_000) -> int:
        deleted = 0
        cursor = 0
        for _ in range(max_rounds):
            cursor, keys = self._client.scan(cursor=cursor, match=f"*{self.prefix}*", count=1000)
            if keys:
                deleted += int(self._client.delete(*keys))
            if cursor == 0:
                break
        return deleted


class Server:
    """One gunicorn master (and its workers) started with `-c gunicorn.conf.py`, optionally pinned."""

    def __init__(self, name: str, app: str, env: dict[str, str], log_dir: Path, *, cpus: str | None) -> None:
        self.name = name
        self.app = app
        self.port = free_port()
        self.env = {**env, "HOST": HOST, "PORT": str(self.port)}
        self.cpus = cpus
        self.workers, self.threads = gunicorn_shape(self.env, cpus)
        self.log_path = log_dir / f"{name}-{'pinned' if cpus else 'shared'}-{self.port}.log"
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def start(self, ready_path: str, *, timeout: float = 45) -> None:
        command = [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", self.app]
        if self.cpus:
            command = ["taskset", "-c", self.cpus, *command]
        self._log = open(self.log_path, "ab")
        self._process = subprocess.Popen(
            command, cwd=ROOT, env=self.env, stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True
        )
        deadline = time.monotonic() + timeout
        with httpx.Client(base_url=self.base_url, trust_env=False, timeout=2) as client:
            while time.monotonic() < deadline:
                if self._process.poll() is not None:
                    raise BenchError(f"{self.name} exited with {self._process.returncode}:\n{self.log_tail()}")
                try:
                    if client.get(ready_path).status_code == 200 and len(self.worker_pids()) == self.workers:
                        return
                except httpx.HTTPError:
                    pass
                time.sleep(0.2)
        raise BenchError(f"{self.name} did not become ready within {timeout:.0f} s:\n{self.log_tail()}")

    def worker_pids(self) -> list[int]:
        if self._process is None:
            return []
        try:
            children = Path(f"/proc/{self._process.pid}/task/{self._process.pid}/children").read_text().split()
        except OSError:
            return []
        return [int(pid) for pid in children]

    def worker_rss_mib(self) -> list[float]:
        sizes = []
        for pid in self.worker_pids():
            try:
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        sizes.append(int(line.split()[1]) / 1024)
            except OSError:
                continue
        return sizes

    def cpu_seconds(self) -> float:
        """User + system CPU time of the master and its workers so far."""
        pids = ([self._process.pid] if self._process else []) + self.worker_pids()
        return sum(cpu_ticks(pid) for pid in pids) / os.sysconf("SC_CLK_TCK")

    def log_tail(self, lines: int = 40) -> str:
        return log_tail(self.log_path, lines)

    def stop(self, *, timeout: float = 15) -> None:
        workers = self.worker_pids()
        process, self._process = self._process, None
        if process is not None:
            stop_process(process, signal.SIGINT, timeout=timeout)  # gunicorn: quick shutdown
            for pid in workers:  # a worker that outlived its master
                try:
                    if os.getpgid(pid) == process.pid:
                        os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        if self._log is not None:
            self._log.close()
            self._log = None


class DeliveryWorker:
    """One `flask --app wsgi worker` process (the RQ worker that sends the queued email), same environment."""

    def __init__(self, env: dict[str, str], log_dir: Path) -> None:
        self.env = {**env, "PYTHONUNBUFFERED": "1"}
        self.log_path = log_dir / "worker.log"
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    def start(self, *, timeout: float = 45) -> None:
        command = [sys.executable, "-m", "flask", "--app", "wsgi", "worker"]
        self._log = open(self.log_path, "ab")
        self._process = subprocess.Popen(
            command, cwd=ROOT, env=self.env, stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise BenchError(f"the delivery worker exited with {self._process.returncode}:\n{self.log_tail()}")
            text = self.log_path.read_text(errors="replace")
            if "delivery worker on queue" in text and "Listening on" in text:
                return
            time.sleep(0.2)
        raise BenchError(f"the delivery worker did not start within {timeout:.0f} s:\n{self.log_tail()}")

    def cpu_seconds(self) -> float:
        """User + system CPU time of the worker and its finished children (the per-job work horses)."""
        if self._process is None:
            return 0.0
        return cpu_ticks(self._process.pid, with_children=True) / os.sysconf("SC_CLK_TCK")

    def log_tail(self, lines: int = 40) -> str:
        return log_tail(self.log_path, lines)

    def stop(self, *, timeout: float = 15) -> None:
        process, self._process = self._process, None
        if process is not None:
            stop_process(process, signal.SIGTERM, timeout=timeout)  # RQ: warm shutdown, the current job finishes
        if self._log is not None:
            self._log.close()
            self._log = None
