"""Multi-step flows with a lean async client: the old service's stress test, and session seeding.

A flow is a sequence of phases; each phase runs one action per user (and per round) with a fixed
number of requests in flight, and is measured on its own.
"""

from __future__ import annotations

import asyncio
import http.cookiejar
import re
import secrets
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

from bench.measure import Measurement
from bench.services import BenchError

REFRESH_COOKIE = re.compile(r"refreshToken=([^;]+)")
REQUEST_TIMEOUT_S = 30.0


@dataclass
class BenchUser:
    email: str
    username: str
    password: str
    access_token: str | None = None
    refresh_token: str | None = None


def make_users(run_id: str, tag: str, count: int) -> list[BenchUser]:
    """Accounts that pass the password policy: 8+ characters, four classes, not common, no username."""
    users = []
    for i in range(count):
        username = f"b{run_id}{tag}{i}"
        users.append(BenchUser(f"{username}@example.com", username, f"Zq7!{secrets.token_urlsafe(9)}"))
    return users


def _client(base_url: str, concurrency: int) -> httpx.AsyncClient:
    no_cookies = http.cookiejar.CookieJar(policy=http.cookiejar.DefaultCookiePolicy(allowed_domains=[]))
    return httpx.AsyncClient(
        base_url=base_url,
        trust_env=False,
        cookies=no_cookies,
        timeout=REQUEST_TIMEOUT_S,
        limits=httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency),
    )


@dataclass
class Probe:
    """Sends the requests of one phase and keeps every latency and every unexpected outcome."""

    client: httpx.AsyncClient
    latencies: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)

    async def post(self, path: str, body: dict[str, Any], *, expect: int, headers: dict[str, str] | None = None) -> httpx.Response | None:
        began = time.perf_counter()
        try:
            response = await self.client.post(path, json=body, headers=headers)
        except httpx.HTTPError as exc:
            self.latencies.append(time.perf_counter() - began)
            self.errors[type(exc).__name__] += 1
            return None
        self.latencies.append(time.perf_counter() - began)
        if response.status_code != expect:
            self.errors[f"HTTP {response.status_code}"] += 1
            return None
        return response


def _signed_in(user: BenchUser, response: httpx.Response | None) -> None:
    if response is None:
        return
    user.access_token = response.json()["data"]["accessToken"]
    cookie = REFRESH_COOKIE.search(response.headers.get("set-cookie", ""))
    user.refresh_token = cookie.group(1) if cookie else None


async def register(probe: Probe, user: BenchUser) -> None:
    body = {"email": user.email, "username": user.username, "password": user.password}
    _signed_in(user, await probe.post("/api/auth/register", body, expect=201))


async def login(probe: Probe, user: BenchUser) -> None:
    body = {"emailOrUsername": user.username, "password": user.password}
    _signed_in(user, await probe.post("/api/auth/login", body, expect=200))


@dataclass(frozen=True)
class Phase:
    name: str
    action: Callable[[Probe, BenchUser], Awaitable[None]]
    rounds: int = 1


def old_service_stress(logins_per_user: int) -> tuple[Phase, ...]:
    return (
        Phase("register", register),
        Phase("login", login, rounds=logins_per_user),
    )


@dataclass
class PhaseResult:
    phase: Phase
    users: int
    m: Measurement
    latencies: list[float]


async def _run_phase(client: httpx.AsyncClient, phase: Phase, users: Sequence[BenchUser], concurrency: int, deadline: float) -> PhaseResult:
    jobs = iter([user for _ in range(phase.rounds) for user in users])
    probe = Probe(client)
    not_run = 0

    async def worker() -> None:
        nonlocal not_run
        for user in jobs:
            if time.monotonic() > deadline:
                not_run += 1
                continue
            await phase.action(probe, user)

    began = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(max(1, min(concurrency, len(users) * phase.rounds)))))
    elapsed = time.perf_counter() - began
    return PhaseResult(phase, len(users), Measurement.from_latencies(probe.latencies, elapsed, probe.errors, not_run), probe.latencies)


async def _run_flow(base_url: str, phases: Sequence[Phase], users: Sequence[BenchUser], concurrency: int, budget_s: float) -> list[PhaseResult]:
    deadline = time.monotonic() + budget_s
    async with _client(base_url, concurrency) as client:
        return [await _run_phase(client, phase, users, concurrency, deadline) for phase in phases]


def run_flow(base_url: str, phases: Sequence[Phase], users: Sequence[BenchUser], *, concurrency: int, budget_s: float) -> list[PhaseResult]:
    """Run the phases one after the other; jobs not started within `budget_s` are counted as not run."""
    return asyncio.run(_run_flow(base_url, phases, users, concurrency, budget_s))


def refresh_tokens(base_url: str, users: Sequence[BenchUser], count: int, *, concurrency: int, budget_s: float) -> list[str]:
    """`count` fresh sessions (one login each, spread over `users`); their refresh tokens."""
    rounds = -(-count // len(users))
    tokens: list[str] = []

    async def collect(probe: Probe, user: BenchUser) -> None:
        await login(probe, user)
        if user.refresh_token:
            tokens.append(user.refresh_token)
            user.refresh_token = None

    results = run_flow(base_url, [Phase("seed sessions", collect, rounds=rounds)], users, concurrency=concurrency, budget_s=budget_s)
    if results[0].m.errors or results[0].m.not_run:
        raise BenchError(f"logging in to seed sessions failed: {dict(results[0].m.errors)}, {results[0].m.not_run} not run")
    return tokens[:count]
