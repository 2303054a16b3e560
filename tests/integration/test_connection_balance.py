"""gunicorn's processes hold about as many connections each (idp.serving.BalancedThreadWorker).

gunicorn's processes race to accept, and the one that is quicker to do so takes the connections:
in the stress benchmark 90 of 100 keep-alive connections sat on one of two processes, whose
requests then waited nine times as long as the other's. Here one process is made slow to accept
(stopped for a moment) while 20 connections open at once: the other may take only its share.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
from collections import Counter
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import httpx

from tests.integration.test_processes import base_env, run_flask, serve

T = TypeVar("T")
CONNECTIONS = 20
ESTABLISHED, CLOSE_WAIT, LISTEN = "01", "08", "0A"


def sockets_on(port: int, state: str) -> set[str]:
    """Inodes of the loopback TCP sockets on local port `port` in `state` (/proc/net/tcp)."""
    inodes = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[3] == state and int(fields[1].rsplit(":", 1)[1], 16) == port:
            inodes.add(fields[9])
    return inodes


def holders(inodes: set[str]) -> Counter[int]:
    """How many of these sockets each process holds open."""
    held: Counter[int] = Counter()
    for fd in Path("/proc").glob("[0-9]*/fd/*"):
        try:
            found = re.fullmatch(r"socket:\[(\d+)\]", os.readlink(fd))
        except OSError:
            continue
        if found and found.group(1) in inodes:
            held[int(fd.parts[2])] += 1
    return held


def parent(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def pooled_client(base: str) -> httpx.AsyncClient:
    limits = httpx.Limits(max_connections=CONNECTIONS, max_keepalive_connections=CONNECTIONS)
    return httpx.AsyncClient(base_url=base, limits=limits, timeout=20, trust_env=False)


async def both_serving(base: str, port: int, workers: list[int]) -> None:
    """Until each process has taken a connection: the server answers once one process has loaded the app."""
    for _ in range(50):
        async with pooled_client(base) as warm_up:
            await asyncio.gather(*(warm_up.get("/api/health/live") for _ in range(CONNECTIONS)))
            served = all(holders(sockets_on(port, ESTABLISHED))[pid] for pid in workers)
        await settled(port)
        if served:
            return
        await asyncio.sleep(0.2)
    raise AssertionError("a gunicorn process took no connection")


async def settled(port: int) -> None:
    """Until the server has closed its side of every connection the client closed (each process
    counts a connection until it does)."""
    for _ in range(100):
        if not sockets_on(port, CLOSE_WAIT):
            await asyncio.sleep(0.1)  # and has looked at its count again
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the server kept connections the client had closed")


async def open_connections(base: str, port: int, slow_worker: int) -> Counter[int]:
    async with pooled_client(base) as client:
        os.kill(slow_worker, signal.SIGSTOP)
        try:
            requests = asyncio.gather(*(client.get("/api/health/live") for _ in range(CONNECTIONS)))
            await asyncio.sleep(0.5)  # every connection is open by now: the kernel queues what nobody accepts
        finally:
            os.kill(slow_worker, signal.SIGCONT)
        answers = await requests
        assert [a.status_code for a in answers] == [200] * CONNECTIONS
        return holders(sockets_on(port, ESTABLISHED))  # still open: kept alive by the client


def run_apart(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run on an event loop of its own thread: the browser tests leave one running on this one."""
    with ThreadPoolExecutor(1) as thread:
        return thread.submit(asyncio.run, coroutine).result()


def test_a_process_slow_to_accept_still_gets_its_share_of_connections(tmp_path: Path):
    env = base_env(tmp_path)  # two processes of two threads
    run_flask(env, "db", "upgrade")
    run_flask(env, "keys", "ensure")
    for base in serve(env):
        port = urlsplit(base).port
        assert port is not None
        listening = set(holders(sockets_on(port, LISTEN)))
        workers = sorted(pid for pid in listening if parent(pid) in listening)
        assert len(workers) == 2
        run_apart(both_serving(base, port, workers))
        held = run_apart(open_connections(base, port, slow_worker=workers[1]))
        first, second = (held[pid] for pid in workers)
        assert first + second == CONNECTIONS
        assert abs(first - second) <= 2, held  # plain gthread: 20 and 0
