"""gunicorn settings: processes for the CPU-bound Argon2 work, threads for I/O waits.

Override with WEB_CONCURRENCY (processes), GUNICORN_THREADS and PORT. On the embedded default
(no REDIS_URL/REDIS_HOST) one process is used, so in-memory rate limits stay exact.
"""

import multiprocessing
import os

_embedded = not (os.environ.get("REDIS_URL") or os.environ.get("REDIS_HOST"))

bind = f"{os.environ.get('HOST', '127.0.0.1')}:{os.environ.get('PORT', '3001')}"
worker_class = "gthread"
workers = int(os.environ.get("WEB_CONCURRENCY") or (1 if _embedded else multiprocessing.cpu_count()))
threads = int(os.environ.get("GUNICORN_THREADS") or 4)
keepalive = 5
timeout = 30
graceful_timeout = 20
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS") or 0)
max_requests_jitter = max_requests // 10
accesslog = os.environ.get("GUNICORN_ACCESS_LOG") or None
errorlog = "-"
# Let each process run one Argon2 per core. On the embedded default one process holds all the
# threads; with several, keep-alive connections are not spread evenly (the workers race to accept
# them: 16 connections were seen to land 16/0 or 13/3), and a limit of one computation per process
# then left a core idle while logins queued on the busy process (measured: 47-64 instead of 92
# verifications/s on 2 cores). Balanced, the processes together may run workers × cores at once,
# which costs a little (about a tenth, measured) against an exact limit; unbalanced, no core waits.
if "ARGON2_CONCURRENCY" not in os.environ:
    raw_env = [f"ARGON2_CONCURRENCY={multiprocessing.cpu_count()}"]
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
