"""Multi-step flows with a lean async client (aiohttp): the old service's stress test, the
two-factor login, and session seeding.

The client shares the server's two cores, so what it costs per request is taken from the server
(PERFORMANCE.md: keep it lean). aiohttp, with its C parser, spends about 0.2 ms of CPU per
request here where httpx spent 1.0 ms.

A flow is a sequence of phases; each phase runs one action per user (and per round) with a fixed
number of requests in flight, and is measured on its own.

TOTP codes: the server accepts a code for the steps current - 1 .. current + 1, each step once per
user, and only steps after the last one used (API.md). Every code sent here is for a step after
the user's last one (`BenchUser.last_step`, reserved before the request goes out), and never for a
step that can leave the accepted window while the request waits: the previous step only with
SETUP_MARGIN_S to spare, otherwise the current or the next one.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import secrets
import time
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import aiohttp
import pyotp

from bench.measure import Measurement
from bench.services import BenchError

REFRESH_COOKIE = re.compile(r"refreshToken=([^;]+)")
LINK_TOKEN = re.compile(r"[?&]token=([^&\s]+)")
REQUEST_TIMEOUT_S = 30.0
MAIL_TIMEOUT_S = 60.0  # from send-verification to the message in the outbox
TOTP_STEP_S = 30
SETUP_MARGIN_S = 10.0  # the previous step's code is sent only while its window has this long left
SKIPPED = "skipped (an earlier step failed)"


@dataclass
class BenchUser:
    email: str
    username: str
    password: str
    access_token: str | None = None
    refresh_token: str | None = None
    email_verified: bool = False
    totp_secret: str | None = None  # from totp/setup (pending until verify-setup)
    totp_enabled: bool = False
    last_step: int = 0  # the last TOTP step a code was sent for: the next code must be for a later one

    def bearer(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access_token}"}

    def next_code(self, *, earliest_step: int) -> str:
        """A code for the first step after the last one used and not before `earliest_step`; reserved at once."""
        assert self.totp_secret is not None
        self.last_step = max(self.last_step + 1, earliest_step)
        return pyotp.TOTP(self.totp_secret).at(self.last_step * TOTP_STEP_S)


def make_users(run_id: str, tag: str, count: int) -> list[BenchUser]:
    """Accounts that pass the password policy: 8+ characters, four classes, not common, no username."""
    users = []
    for i in range(count):
        username = f"b{run_id}{tag}{i}"
        users.append(BenchUser(f"{username}@example.com", username, f"Zq7!{secrets.token_urlsafe(9)}"))
    return users


# An idle connection is dropped well before gunicorn's keep-alive (5 s) closes it: at the same
# expiry a request sent as the server closed the connection failed with a connection error, a
# race of the two clocks that no real client should be measured with.
KEEPALIVE_EXPIRY_S = 2.0


@dataclass(frozen=True)
class Answer:
    """What the flows read of a response: its status, its JSON body and its Set-Cookie headers."""

    status: int
    body: dict[str, Any]
    set_cookie: str

    def data(self) -> dict[str, Any]:
        """The envelope's `data`, or {} when the body has none."""
        return self.body.get("data") or {}


def user_client(base_url: str) -> aiohttp.ClientSession:
    """One simulated user: one keep-alive connection, no cookies kept."""
    return aiohttp.ClientSession(
        base_url,
        connector=aiohttp.TCPConnector(limit=1, keepalive_timeout=KEEPALIVE_EXPIRY_S),
        cookie_jar=aiohttp.DummyCookieJar(),
        timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S),
        trust_env=False,
    )


@contextlib.asynccontextmanager
async def user_clients(base_url: str, count: int) -> AsyncIterator[list[aiohttp.ClientSession]]:
    """A client of one connection for each simulated user in flight, as separate users have. With
    one pool of 100 connections, requests of the short phases (TOTP setup, email verification)
    waited in the pool for seconds while most connections were idle and the server was not busy."""
    async with contextlib.AsyncExitStack() as stack:
        yield [await stack.enter_async_context(user_client(base_url)) for _ in range(count)]


@dataclass
class Probe:
    """Sends the requests of one phase and keeps every latency and every unexpected outcome."""

    client: aiohttp.ClientSession | None = None
    latencies: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)

    def on(self, client: aiohttp.ClientSession) -> Probe:
        """This probe, sending with `client` (one user's), into the same records."""
        return Probe(client, self.latencies, self.errors)

    async def post(self, path: str, body: dict[str, Any], *, expect: int, headers: dict[str, str] | None = None) -> Answer | None:
        response, _ = await self.send(path, body, expect=expect, headers=headers)
        return response

    async def send(
        self, path: str, body: dict[str, Any], *, expect: int, headers: dict[str, str] | None = None
    ) -> tuple[Answer | None, str | None]:
        """The answer if its status is `expect`, else None and the kind of error (also counted)."""
        assert self.client is not None, "Probe.on(client) gives the probe a client to send with"
        began = time.perf_counter()
        try:
            async with self.client.post(path, json=body, headers=headers) as response:
                status = response.status
                raw = await response.read()
                cookies = ", ".join(response.headers.getall("Set-Cookie", ()))
        except (aiohttp.ClientError, TimeoutError) as exc:
            self.latencies.append(time.perf_counter() - began)
            return None, self.unexpected(type(exc).__name__)
        self.latencies.append(time.perf_counter() - began)
        if status != expect:
            return None, self.unexpected(f"HTTP {status}")
        try:
            parsed = json.loads(raw)
        except ValueError:
            return None, self.unexpected(f"HTTP {status} without a JSON body")
        return Answer(status, parsed if isinstance(parsed, dict) else {}, cookies), None

    def unexpected(self, kind: str) -> str:
        """Count an error of this kind (a status, an exception, a body that is not the expected one)."""
        self.errors[kind] += 1
        return kind


def _signed_in(user: BenchUser, response: Answer | None) -> None:
    if response is None:
        return
    user.access_token = response.data()["accessToken"]
    cookie = REFRESH_COOKIE.search(response.set_cookie)
    user.refresh_token = cookie.group(1) if cookie else None


async def register(probe: Probe, user: BenchUser) -> None:
    body = {"email": user.email, "username": user.username, "password": user.password}
    _signed_in(user, await probe.post("/api/auth/register", body, expect=201))


async def login(probe: Probe, user: BenchUser) -> None:
    body = {"emailOrUsername": user.username, "password": user.password}
    _signed_in(user, await probe.post("/api/auth/login", body, expect=200))


class Outbox:
    """The console outbox (OUTBOX_PATH) that the delivery worker appends to: one JSON object a line
    (kind, to, subject, text, html, at). Read as it grows; one poller serves every waiting user."""

    def __init__(self, path: Path, *, poll_s: float = 0.05) -> None:
        self.path = path
        self.poll_s = poll_s
        self._offset = 0
        self._partial = b""
        self._tokens: defaultdict[str, list[str]] = defaultdict(list)
        self._waiters: defaultdict[str, list[tuple[int, asyncio.Future[str]]]] = defaultdict(list)
        self._poller: asyncio.Task[None] | None = None

    def _read(self) -> None:
        try:
            with self.path.open("rb") as f:
                f.seek(self._offset)
                chunk = f.read()
        except FileNotFoundError:
            return
        if not chunk:
            return
        self._offset += len(chunk)
        *lines, self._partial = (self._partial + chunk).split(b"\n")
        for line in lines:
            try:
                record = json.loads(line)
            except ValueError:
                continue
            found = LINK_TOKEN.search(record.get("text") or "")
            if record.get("kind") == "email" and record.get("to") and found:
                self._tokens[str(record["to"]).lower()].append(unquote(found.group(1)))
        for address, waiting in list(self._waiters.items()):
            tokens = self._tokens[address]
            for after, future in waiting:
                if len(tokens) > after and not future.done():
                    future.set_result(tokens[-1])
            self._waiters[address] = [(a, f) for a, f in waiting if not f.done()]

    def count(self, address: str) -> int:
        """How many link tokens were mailed to `address` so far."""
        self._read()
        return len(self._tokens[address.lower()])

    async def token(self, address: str, *, after: int, timeout: float) -> str:
        """The newest link token mailed to `address`, once more than `after` have arrived."""
        key = address.lower()
        if self.count(address) > after:
            return self._tokens[key][-1]
        future: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._waiters[key].append((after, future))
        if self._poller is None or self._poller.done():
            self._poller = asyncio.create_task(self._poll())
        return await asyncio.wait_for(future, timeout)

    async def _poll(self) -> None:
        while any(not f.done() for waiting in self._waiters.values() for _, f in waiting):
            self._read()
            await asyncio.sleep(self.poll_s)


def verify_email(outbox: Outbox, delivery_delays: list[float]) -> Callable[[Probe, BenchUser], Awaitable[None]]:
    """send-verification (Bearer), the link token from the outbox, then email/verify."""

    async def action(probe: Probe, user: BenchUser) -> None:
        if not user.access_token:
            probe.unexpected(SKIPPED)
            return
        seen = outbox.count(user.email)
        if await probe.post("/api/email/send-verification", {}, expect=200, headers=user.bearer()) is None:
            return
        sent = time.perf_counter()
        try:
            token = await outbox.token(user.email, after=seen, timeout=MAIL_TIMEOUT_S)
        except TimeoutError:
            probe.unexpected(f"no email within {MAIL_TIMEOUT_S:.0f} s")
            return
        delivery_delays.append(time.perf_counter() - sent)
        if await probe.post("/api/email/verify", {"token": token}, expect=200) is not None:
            user.email_verified = True

    return action


async def totp_setup(probe: Probe, user: BenchUser) -> None:
    if not (user.access_token and user.email_verified):
        probe.unexpected(SKIPPED)
        return
    response = await probe.post("/api/2fa/totp/setup", {}, expect=200, headers=user.bearer())
    if response is None:
        return
    data = response.data()
    secret = data.get("secret")
    if not (secret and str(data.get("otpauthUrl", "")).startswith("otpauth://totp/") and str(data.get("qrCode", "")).startswith("data:image/")):
        probe.unexpected("200 without secret, otpauthUrl and qrCode")
        return
    user.totp_secret = secret


async def enable_totp(probe: Probe, user: BenchUser) -> None:
    """totp/verify-setup with the previous step's code while it is safely inside the window (the
    current step's stays free for the first login), else with the current step's."""
    if not (user.access_token and user.totp_secret):
        probe.unexpected(SKIPPED)
        return
    now = time.time()
    step = int(now // TOTP_STEP_S)
    if TOTP_STEP_S - now % TOTP_STEP_S > SETUP_MARGIN_S:
        step -= 1
    code = user.next_code(earliest_step=step)
    response = await probe.post("/api/2fa/totp/verify-setup", {"code": code}, expect=200, headers=user.bearer())
    if response is None:
        return
    if len(response.data().get("backupCodes") or []) != 10:
        probe.unexpected("200 without 10 backup codes")
        return
    user.totp_enabled = True


@dataclass(frozen=True)
class Phase:
    name: str
    action: Callable[[Probe, BenchUser], Awaitable[None]]
    rounds: int = 1


def old_service_stress(logins_per_user: int, outbox: Outbox, delivery_delays: list[float]) -> tuple[Phase, ...]:
    """Registration, the TOTP setup (email verification first: set-up, reported apart), then logins."""
    return (
        Phase("register", register),
        Phase("email verification", verify_email(outbox, delivery_delays)),
        Phase("totp/setup", totp_setup),
        Phase("login", login, rounds=logins_per_user),
    )


@dataclass
class PhaseResult:
    phase: Phase
    users: int
    m: Measurement
    latencies: list[float]


async def _run_jobs(
    jobs: Sequence[BenchUser], action: Callable[[aiohttp.ClientSession, BenchUser], Awaitable[None]], clients: Sequence[aiohttp.ClientSession], deadline: float
) -> tuple[float, int]:
    """Run `action` for every job, one in flight per client; (seconds taken, jobs not started by the deadline)."""
    queue = iter(jobs)
    not_run = 0

    async def worker(client: aiohttp.ClientSession) -> None:
        nonlocal not_run
        for user in queue:
            if time.monotonic() > deadline:
                not_run += 1
                continue
            await action(client, user)

    began = time.perf_counter()
    await asyncio.gather(*(worker(client) for client in clients[: max(1, len(jobs))]))
    return time.perf_counter() - began, not_run


async def _run_phase(clients: Sequence[aiohttp.ClientSession], phase: Phase, users: Sequence[BenchUser], deadline: float) -> PhaseResult:
    probe = Probe()

    async def action(client: aiohttp.ClientSession, user: BenchUser) -> None:
        await phase.action(probe.on(client), user)

    jobs = [user for _ in range(phase.rounds) for user in users]
    elapsed, not_run = await _run_jobs(jobs, action, clients, deadline)
    return PhaseResult(phase, len(users), Measurement.from_latencies(probe.latencies, elapsed, probe.errors, not_run), probe.latencies)


async def _run_flow(base_url: str, phases: Sequence[Phase], users: Sequence[BenchUser], concurrency: int, budget_s: float) -> list[PhaseResult]:
    deadline = time.monotonic() + budget_s
    async with user_clients(base_url, concurrency) as clients:
        return [await _run_phase(clients, phase, users, deadline) for phase in phases]


def run_flow(base_url: str, phases: Sequence[Phase], users: Sequence[BenchUser], *, concurrency: int, budget_s: float) -> list[PhaseResult]:
    """Run the phases one after the other; jobs not started within `budget_s` are counted as not run."""
    return asyncio.run(_run_flow(base_url, phases, users, concurrency, budget_s))


@dataclass
class TwoFactorLogins:
    """The two-factor login: each flow is a password login answered with a tempToken, then 2fa/verify."""

    flow: Measurement  # one "request" = one whole flow
    login: Measurement
    verify: Measurement
    waits: int  # flows that had to wait for a fresh TOTP step
    wait_s: float


async def _two_factor_logins(base_url: str, users: Sequence[BenchUser], flows_per_user: int, concurrency: int, budget_s: float) -> TwoFactorLogins:
    deadline = time.monotonic() + budget_s
    locks = {user.username: asyncio.Lock() for user in users}
    flow_latencies: list[float] = []
    flow_errors: Counter[str] = Counter()
    waits = 0
    wait_s = 0.0
    async with user_clients(base_url, concurrency) as clients:
        logins, verifies = Probe(), Probe()

        async def flow(client: aiohttp.ClientSession, user: BenchUser) -> None:
            nonlocal waits, wait_s
            async with locks[user.username]:  # one flow at a time per user: its steps are used in order
                # A fresh step is one the server accepts: at most the current step + 1, so the
                # current step must have reached the last one used. Waiting is not part of the flow.
                wait = user.last_step * TOTP_STEP_S - time.time()
                if wait > 0:
                    waits += 1
                    wait_s += wait
                    await asyncio.sleep(wait + 0.05)
                began = time.perf_counter()
                failed = await one_flow(logins.on(client), verifies.on(client), user)
                flow_latencies.append(time.perf_counter() - began)
                if failed:
                    flow_errors[failed] += 1

        async def one_flow(logins: Probe, verifies: Probe, user: BenchUser) -> str | None:
            body = {"emailOrUsername": user.username, "password": user.password}
            response, failed = await logins.send("/api/auth/login", body, expect=200)
            if response is None:
                return f"login {failed}"
            temp_token = response.data().get("tempToken")
            if not temp_token:
                return "login " + logins.unexpected("200 without tempToken")
            # the code is chosen when it is sent: the current step, or the next one if the current one was used
            code = user.next_code(earliest_step=int(time.time() // TOTP_STEP_S))
            response, failed = await verifies.send("/api/2fa/verify", {"tempToken": temp_token, "code": code}, expect=200)
            if response is None:
                return f"2fa/verify {failed}"
            if not response.data().get("accessToken"):
                return "2fa/verify " + verifies.unexpected("200 without accessToken")
            return None

        # Each user's flows far apart: every user's first flow, then every user's second, ...
        jobs = [user for _ in range(flows_per_user) for user in users]
        elapsed, not_run = await _run_jobs(jobs, flow, clients, deadline)
    return TwoFactorLogins(
        flow=Measurement.from_latencies(flow_latencies, elapsed, flow_errors, not_run),
        login=Measurement.from_latencies(logins.latencies, elapsed, logins.errors, not_run),
        verify=Measurement.from_latencies(verifies.latencies, elapsed, verifies.errors, not_run),
        waits=waits,
        wait_s=wait_s,
    )


def two_factor_logins(base_url: str, users: Sequence[BenchUser], *, flows_per_user: int, concurrency: int, budget_s: float) -> TwoFactorLogins:
    """`flows_per_user` two-factor logins for each user (TOTP enabled); flows not started within `budget_s` are not run."""
    return asyncio.run(_two_factor_logins(base_url, users, flows_per_user, concurrency, budget_s))


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
