"""gunicorn settings: processes for the CPU-bound Argon2 work, threads for I/O waits.

Override with WEB_CONCURRENCY (processes), GUNICORN_THREADS and PORT. On the embedded default
(no REDIS_URL/REDIS_HOST) one process is used, so in-memory rate limits stay exact. Read like the
app's own settings: the process environment, over the `.env` file next to this one.
"""

import math
import os


def _environment() -> dict[str, str]:
    """The process environment over `.env`, as the app reads its settings (idp.config.environment_with_dotenv):
    PORT, HOST or REDIS_URL put in `.env` must mean the same to the server as to the app, whose issuer
    and rate limits follow them."""
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), ".env")
    if not os.path.exists(path):
        return dict(os.environ)
    from dotenv import dotenv_values

    return {**{k: v for k, v in dotenv_values(path).items() if v is not None}, **os.environ}


_env = _environment()

# A container's CPU limit (`docker run --cpus`, a Kubernetes CPU limit) is a CFS quota, seen inside
# the container as its own cgroup: cgroup v2, then v1.
CPU_MAX = "/sys/fs/cgroup/cpu.max"  # "<quota> <period>" or "max <period>"
CFS_QUOTA = "/sys/fs/cgroup/cpu/cpu.cfs_quota_us"  # -1 without a limit
CFS_PERIOD = "/sys/fs/cgroup/cpu/cpu.cfs_period_us"


def _read(path: str) -> list[str]:
    try:
        with open(path) as file:
            return file.read().split()
    except OSError:
        return []


def cpu_quota(cpu_max: str = CPU_MAX, cfs_quota: str = CFS_QUOTA, cfs_period: str = CFS_PERIOD) -> int | None:
    """The CPUs a CFS quota allows, rounded up (1.5 CPUs: 2 processes); None without a quota."""
    fields = _read(cpu_max)[:2] or [*_read(cfs_quota)[:1], *_read(cfs_period)[:1]]
    try:
        quota_us, period_us = (int(field) for field in fields)
    except ValueError:  # "max", or no quota files
        return None
    return max(1, math.ceil(quota_us / period_us)) if quota_us > 0 and period_us > 0 else None


def usable_cores(quota: int | None = None) -> int:
    """The cores this process may run on: its CPU set (taskset, `docker run --cpuset-cpus`, a
    Kubernetes static CPU policy) and its CPU quota (`docker run --cpus`, a Kubernetes CPU limit),
    not the machine's total (`multiprocessing.cpu_count()`). Two processes on one core only take
    turns, each with its own caches to refill; on a 64-core node under a 2-CPU limit, 64 processes
    would each hold database connections and Argon2 memory for nothing."""
    try:
        cores = max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # no affinity on this platform
        cores = os.cpu_count() or 1
    quota = cpu_quota() if quota is None else quota
    return min(cores, quota) if quota else cores


_embedded = not (_env.get("REDIS_URL") or _env.get("REDIS_HOST"))
_cores = usable_cores()

bind = f"{_env.get('HOST') or '127.0.0.1'}:{_env.get('PORT') or '3001'}"
worker_class = "idp.serving.BalancedThreadWorker"  # gthread, keeping connections even across processes
workers = int(_env.get("WEB_CONCURRENCY") or (1 if _embedded else _cores))
threads = int(_env.get("GUNICORN_THREADS") or 4)
keepalive = 5
timeout = 30
graceful_timeout = 20
max_requests = int(_env.get("GUNICORN_MAX_REQUESTS") or 0)
max_requests_jitter = max_requests // 10
accesslog = _env.get("GUNICORN_ACCESS_LOG") or None
errorlog = "-"
# Argon2 at once: the cores, shared among the processes (at least one each). More than one
# computation per core only makes them take turns, each with 19 MiB to keep in cache: with one per
# process on 2 cores the stress test's logins ran at 66-70/s, with one per core in each process at
# 61-63/s. This needs the processes to hold as many connections each (idp.serving): unbalanced
# (16 connections were seen to land 16/0 or 13/3) a limit of one per process left a core idle
# while logins queued on the busy process.
if not _env.get("ARGON2_CONCURRENCY"):  # the app reads an operator's from .env too; raw_env would win over it
    raw_env = [f"ARGON2_CONCURRENCY={max(1, _cores // workers)}"]
forwarded_allow_ips = _env.get("FORWARDED_ALLOW_IPS") or "127.0.0.1"

# /metrics adds up the counts of every worker process: prometheus_client keeps each process's values
# in files under PROMETHEUS_MULTIPROC_DIR, which must be in the environment before a worker starts
# (prometheus_client reads it when first imported). A dedicated directory; its *.db files are
# removed when gunicorn starts, so counts start from zero with the server.
_metrics_on = (_env.get("METRICS_ENABLED") or "true").strip().lower() not in ("0", "false", "no", "off")
_metrics_dir_made = None  # made here, so removed on exit
if _metrics_on and _env.get("PROMETHEUS_MULTIPROC_DIR"):
    # prometheus_client reads it from the process environment, in every worker
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = _env["PROMETHEUS_MULTIPROC_DIR"]
elif _metrics_on:
    import tempfile

    _metrics_dir_made = os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="idp-metrics-")


def on_starting(server):
    metrics_dir = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if metrics_dir:
        import glob

        os.makedirs(metrics_dir, exist_ok=True)
        for stale in glob.glob(os.path.join(metrics_dir, "*.db")):
            os.remove(stale)


def child_exit(server, worker):
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)


def on_exit(server):
    if _metrics_dir_made:
        import shutil

        shutil.rmtree(_metrics_dir_made, ignore_errors=True)


def post_fork(server, worker):
    _one_malloc_arena()


def post_worker_init(worker):
    """The application is loaded: what it built (about 150,000 objects: modules, classes, the
    routes, SQLAlchemy's mappings) lives as long as the process. gc.freeze() takes it out of the
    collector's view, so a full collection, which came every couple of thousand logins and then
    walked all of it (90 ms of one worker's time, with no request answered), looks only at what
    requests have made since."""
    import gc

    gc.freeze()


def _one_malloc_arena():
    """Each Argon2 computation takes 19 MiB from malloc. glibc gives every thread that allocates at
    the same time an arena of its own and keeps what it held, so a worker's resident memory grew
    from 106 to 188 MiB in a burst of logins; with one arena for the worker's threads (set before
    they start) the blocks are reused: 168 MiB. The price, in 3 paired runs of 15 s: about 1 ms more
    CPU per login (of 40; within this machine's noise). Returning the blocks to the system instead
    (a fixed mmap or trim threshold) cost up to a fifth of the logins: every hash faults its 19 MiB in.
    MALLOC_ARENA_MAX in the environment is glibc's own setting and is left to win."""
    if "MALLOC_ARENA_MAX" in os.environ:
        return
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.mallopt(-8, 1)  # M_ARENA_MAX (malloc.h); a C library without it ignores the call
    except (OSError, AttributeError):
        pass
