"""`python -m bench`: set up, measure every scenario, print the table, rewrite docs/performance.md."""

from __future__ import annotations

import argparse
import base64
import json
import os
import platform
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

import aiohttp
import httpx
from cryptography.fernet import Fernet

from bench.argon2_floor import Floor, measure_floor
from bench.measure import IDLE_TIMEOUT_S, Measurement, Round, Row, Target, error_text, median_round, neighbours, wait_until_idle
from bench.oauth_flow import REDIRECT_URI, RelyingParty, relying_party_sessions
from bench.report import facts_text, text_table, write_markdown
from bench.services import ROOT, BenchError, Database, DeliveryWorker, RedisSpace, Server, ensure_wrk, gunicorn_shape, run_checked
from bench.stress import (
    BenchUser,
    Outbox,
    Phase,
    PhaseResult,
    enable_totp,
    make_users,
    old_service_stress,
    refresh_tokens,
    register,
    run_flow,
    two_factor_logins,
)
from bench.wrk import run_wrk

if TYPE_CHECKING:
    from idp.config import Argon2Settings

ROOMY_LIMIT = "1000000 per minute"
JWKS = "/.well-known/jwks.json"
DISCOVERY = "/.well-known/openid-configuration"
TOKEN = "/oauth/token"
INTROSPECT = "/oauth/introspect"
USERINFO = "/oauth/userinfo"
READY = "/api/health/ready"
FLASK_CLI = [sys.executable, "-m", "flask", "--app", "wsgi"]
SEED_ACCOUNTS = 8
SERVER_CPU, CLIENT_CPU = "0", "1"  # the 1-core configuration: gunicorn on one core, wrk on the other
KEEP_RESULTS = 10  # newest run folders kept under bench/results (logs, token pools)
PROXY_VARIABLES = ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY")

JWKS_TARGET = Target("≥ 0.80 of bare (aim 0.95)", ratio_floor=0.80)
CLIENT_CREDENTIALS_TARGET = Target("≥ 0.30 of bare (aim 0.60)", ratio_floor=0.30)
INTROSPECT_TARGET = Target("≥ 0.40 of bare (aim 0.60)", ratio_floor=0.40)
REFRESH_TARGET = Target("≥ 0.20 of bare (aim 0.30; issue 0.35)", ratio_floor=0.20, issue_ratio=0.35)
# PERFORMANCE.md's refresh floor (calibrated) holds; issue 4 asks 0.30 of the OAuth grant
OAUTH_REFRESH_TARGET = Target("≥ 0.20 of bare (aim 0.30; issue 0.30)", ratio_floor=0.20, issue_ratio=0.30)
USERINFO_TARGET = Target("≥ 0.40 of bare (aim 0.60)", ratio_floor=0.40)
LOGIN_TARGET = Target("≥ 0.85 of floor (aim 0.95)", ratio_floor=0.85)
STRESS_TARGET = Target("no unexpected error, p99 < 2 s", p99_below_ms=2000)
NO_ERROR_TARGET = Target("no unexpected error")
ROOMY_LIMITS = ("login", "login_account", "register", "two_factor", "code_send")
ONLY = ("endpoints", "login", "stress")
# Lua patterns (bench/wrk.lua, BENCH_EXPECT_BODY) that a 200 answer must match
TOKEN_BODY = '"access_token"%s*:%s*"'
ACTIVE_BODY = '"active"%s*:%s*true'
ROTATED_BODY = '"refresh_token"%s*:%s*"'
CLAIMS_BODY = '"email"%s*:%s*"'


def general_limit_setting() -> str:
    """"off" (API.md: the general limit is off in benchmarks), or a roomy limit where the app predates "off"."""
    try:
        from idp.ratelimits import is_on
    except ImportError:
        return ROOMY_LIMIT
    return "off" if not is_on("off") else ROOMY_LIMIT


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--seconds", type=int, default=6, help="duration of each wrk run (default 6)")
    parser.add_argument("--rounds", type=int, default=3, help="runs of each single-endpoint scenario, the median one shown (default 3)")
    parser.add_argument("--round-seconds", type=int, default=3, help="duration of each of those runs and of the bare runs between them (default 3)")
    parser.add_argument("--connections", type=int, default=16, help="wrk connections (default 16)")
    parser.add_argument("--floor-seconds", type=float, default=4.0, help="each Argon2 floor measurement (default 4)")
    parser.add_argument("--users", type=int, default=500, help="stress test accounts (default 500)")
    parser.add_argument("--logins-per-user", type=int, default=15, help="stress test logins per account (default 15)")
    parser.add_argument("--concurrency", type=int, default=100, help="stress test requests in flight (default 100)")
    parser.add_argument("--stress-budget", type=float, default=220.0, help="seconds after which the stress test stops starting requests (default 220)")
    parser.add_argument("--twofa-users", type=int, default=200, help="accounts of the stress test that enable TOTP for the 2FA login (default 200)")
    parser.add_argument("--twofa-flows-per-user", type=int, default=2, help="2FA logins per account (default 2: no wait for a fresh TOTP step)")
    parser.add_argument("--twofa-concurrency", type=int, default=16, help="2FA login flows in flight (default 16)")
    parser.add_argument("--twofa-budget", type=float, default=120.0, help="seconds after which the 2FA scenario stops starting flows (default 120)")
    parser.add_argument("--no-pin", action="store_true", help="skip the 1-core (pinned) configuration")
    parser.add_argument(
        "--only", choices=ONLY,
        help="endpoints: only the single-endpoint wrk scenarios (bare route, JWKS, discovery, API refresh, OAuth "
        "refresh_token and client_credentials grants, introspection, userinfo), in both configurations; login: only "
        "password login against its Argon2 floor, on both cores; stress: only the old service's stress test and the 2FA "
        "login, on both cores. Partial runs (about 6, 1 and 3 minutes) that print their table and leave docs/performance.md alone",
    )
    parser.add_argument("--no-doc", action="store_true", help="print only; leave docs/performance.md alone")
    parser.add_argument(
        "--database-url",
        default=os.environ.get("BENCH_DATABASE_URL") or os.environ.get("TEST_DATABASE_URL") or "postgresql://root@127.0.0.1:5432/test",
        help="an existing PostgreSQL database to connect to for CREATE/DROP DATABASE",
    )
    parser.add_argument("--redis-url", default=os.environ.get("BENCH_REDIS_URL") or os.environ.get("TEST_REDIS_URL") or "redis://127.0.0.1:6379/0")
    args = parser.parse_args(argv)
    for name in ("seconds", "rounds", "round_seconds", "connections", "users", "logins_per_user", "concurrency", "twofa_users", "twofa_flows_per_user", "twofa_concurrency"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    return args


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def _log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


class Bench:
    def __init__(self, args: argparse.Namespace, wrk: str, run_id: str, out_dir: Path) -> None:
        self.args = args
        self.wrk_bin = wrk
        self.run_id = run_id
        self.out = out_dir
        self.db = Database(args.database_url, f"idp_bench_{run_id}")
        self.redis = RedisSpace(args.redis_url, f"bench-{run_id}")
        self.servers: list[Server] = []
        self.worker: DeliveryWorker | None = None
        self.outbox_path = out_dir / "outbox.jsonl"
        self.stress_users: list[BenchUser] = []
        self.rows: list[Row] = []
        self.facts: list[tuple[str, str]] = []
        self.notes: list[str] = []
        self.env: dict[str, str] = {}
        self.argon2: Argon2Settings | None = None
        self.client_authorization = ""  # "Basic ..." of the confidential client registered for the OAuth scenarios
        self.relying_party: RelyingParty | None = None  # the first-party client of the code flow (refresh, userinfo)
        self.es256_party: RelyingParty | None = None  # the same, registered with --id-token-alg ES256

    # -- set-up and tear-down ----------------------------------------------------------------

    def server_environment(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in PROXY_VARIABLES}
        env.update(
            IDP_ENV="test",
            DATABASE_URL=self.db.url,
            REDIS_URL=self.redis.url,
            RATE_LIMIT_KEY_PREFIX=self.redis.prefix,
            RATE_LIMIT_GENERAL=general_limit_setting(),
            SECRET_KEY=secrets.token_urlsafe(48),
            ENCRYPTION_KEYS=Fernet.generate_key().decode(),
            # mail: no EMAIL_HOST, so IDP_ENV=test writes it to the console outbox, delivered by the RQ worker
            OUTBOX_PATH=str(self.outbox_path),
            DELIVERY_QUEUE=f"{self.redis.prefix}-delivery",
        )
        env.update({f"RATE_LIMIT_{name.upper()}": ROOMY_LIMIT for name in ROOMY_LIMITS})
        for name in ("EMAIL_HOST", "EMAIL_BACKEND", "TWILIO_ACCOUNT_SID", "SMS_BACKEND"):
            env.pop(name, None)
        return env

    def prepare(self) -> None:
        self.db.create()
        self.env = self.server_environment()
        run_checked([*FLASK_CLI, "db", "upgrade"], self.env)
        run_checked([*FLASK_CLI, "keys", "ensure"], self.env)
        created = run_checked(
            [*FLASK_CLI, "clients", "create", "--name", "Bench", "--grant", "client_credentials", "--scope", "openid", "--json"], self.env
        )
        try:
            client = json.loads(created)
            pair = f"{client['clientId']}:{client['clientSecret']}"
        except (ValueError, KeyError, TypeError) as exc:
            raise BenchError(f"clients create did not print the client's JSON ({exc!r}):\n{created[-500:]}") from None
        self.client_authorization = "Basic " + base64.b64encode(pair.encode()).decode()
        self.relying_party = self.register_relying_party("Bench RP")
        self.es256_party = self.register_relying_party("Bench RP ES256", "--id-token-alg", "ES256")

    def register_relying_party(self, name: str, *options: str) -> RelyingParty:
        created = run_checked(
            [
                *FLASK_CLI, "clients", "create", "--name", name, "--first-party", "--redirect-uri", REDIRECT_URI,
                "--grant", "authorization_code", "--grant", "refresh_token",
                "--scope", "openid", "--scope", "profile", "--scope", "email", "--json", *options,
            ],
            self.env,
        )
        try:
            client = json.loads(created)
            return RelyingParty(client["clientId"], client["clientSecret"])
        except (ValueError, KeyError, TypeError) as exc:
            raise BenchError(f"clients create did not print the relying party's JSON ({exc!r}):\n{created[-500:]}") from None

    def serve(self, cpus: str | None) -> tuple[Server, Server]:
        idp = Server("idp", "wsgi:app", self.env, self.out, cpus=cpus)
        bare = Server("bare", "bench.bare_app:app", self.env, self.out, cpus=cpus)
        for server, ready in ((idp, READY), (bare, "/")):
            self.servers.append(server)
            server.start(ready)
        return idp, bare

    def start_worker(self) -> None:
        self.worker = DeliveryWorker(self.env, self.out)
        self.worker.start()

    def stop_servers(self) -> None:
        try:
            if self.worker is not None:
                self.worker.stop()
                self.worker = None
        finally:
            while self.servers:
                self.servers.pop().stop()

    def clean_up(self) -> None:
        try:
            self.stop_servers()
        finally:
            try:
                self.db.drop()
            finally:
                self.redis.clean()

    # -- the record ---------------------------------------------------------------------------

    def record_configuration(self, pinned: bool) -> tuple[int, int]:
        from idp.config import Settings, environment_with_dotenv

        with tempfile.TemporaryDirectory() as instance:
            settings = Settings.load(environment_with_dotenv(self.env, str(ROOT / ".env")), Path(instance))
        self.argon2 = settings.argon2
        workers, threads = gunicorn_shape(self.env)
        on_one_core = ", {} × {} on 1 core".format(*gunicorn_shape(self.env, SERVER_CPU)) if pinned else ""
        cpu_model = next((ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines() if ln.startswith("model name")), "?")
        wrk_version = subprocess.run([self.wrk_bin, "--version"], capture_output=True, text=True).stdout.split(" [")[0]
        import gunicorn

        self.facts = [
            ("cores", f"{os.cpu_count()} ({cpu_model}); {'1 core = server on core 0, wrk on core 1' if pinned else 'not pinned'}"),
            ("Argon2", f"argon2id m={self.argon2.memory_kib} KiB, t={self.argon2.time_cost}, p={self.argon2.parallelism}"),
            ("access-token signing", settings.access_token_alg),
            ("database", f"{self.db.server_version()} (fresh database per run); {self.redis.version()} for rate limits"),
            ("gunicorn", f"{gunicorn.__version__}, gthread, {workers} workers × {threads} threads on {len(os.sched_getaffinity(0))} cores"
             f"{on_one_core} (gunicorn.conf.py: a process per usable core)"),
            ("rate limits", f"general {self.env['RATE_LIMIT_GENERAL']}; login, per-account login, register, two-factor and code send {ROOMY_LIMIT} (Redis)"),
            ("mail", f"console outbox (OUTBOX_PATH in the run's folder), queued on RQ ({self.env['DELIVERY_QUEUE']}), one `flask --app wsgi worker`"),
            ("load generators", f"{wrk_version}, 1 thread, {self.args.connections} connections, {self.args.seconds} s per run ({self.args.rounds} rounds of {self.args.round_seconds} s for single endpoints); aiohttp {aiohttp.__version__} for the flows"),
            ("Python", f"{platform.python_version()}, IDP_ENV=test"),
            ("load average at start", " / ".join(f"{x:.2f}" for x in os.getloadavg()) + " (1 / 5 / 15 min; other processes share these cores)"),
        ]
        return workers, threads

    def add(self, scenario: str, cores: str, m: Measurement, *, base: Measurement | None = None, base_name: str = "", target: Target | None = None) -> Row:
        ratio = m.rate / base.rate if base is not None and base.rate else None
        row = Row(scenario, cores, m, ratio, base_name, target)
        self.rows.append(row)
        _log(f"{scenario} [{cores}]: {m.rate:,.1f} req/s, p99 {m.p99_ms or 0:.1f} ms, errors {error_text(m.errors)}"
             + (f", ratio {ratio:.2f}" if ratio is not None else ""))
        return row

    # -- scenarios ----------------------------------------------------------------------------

    def wrk(
        self, server: Server, path: str, *, cpus: str | None, mode: str = "get", data: Path | None = None, seconds: int | None = None,
        expect_body: str | None = None, authorization: str | None = None,
    ) -> Measurement:
        cpu_before = server.cpu_seconds()
        m = run_wrk(
            self.wrk_bin, server.base_url + path, mode=mode, data=data, seconds=seconds or self.args.seconds,
            connections=self.args.connections, cpus=cpus, expect_body=expect_body, authorization=authorization, log=self.out / "wrk.log",
        )
        if m.requests:
            m.server_cpu_ms = (server.cpu_seconds() - cpu_before) / m.requests * 1000
        if not wait_until_idle(server.cpu_seconds):  # the next run starts on quiet cores
            _log(f"{server.name} was still busy {IDLE_TIMEOUT_S:.0f} s after wrk stopped ({path})")
        return m

    def flow(self, server: Server, phase: Phase, users: list[BenchUser], *, concurrency: int, budget_s: float) -> PhaseResult:
        cpu_before = server.cpu_seconds()
        [result] = run_flow(server.base_url, [phase], users, concurrency=concurrency, budget_s=budget_s)
        if result.m.requests:
            result.m.server_cpu_ms = (server.cpu_seconds() - cpu_before) / result.m.requests * 1000
        return result

    def seed(self, idp: Server, pools: int) -> tuple[list[BenchUser], list[Path]]:
        """Accounts for the login scenario and, per API refresh run (a round of a configuration), a pool of fresh sessions."""
        seeds = make_users(self.run_id, "s", SEED_ACCOUNTS)
        [reg] = run_flow(idp.base_url, [Phase("register", register)], seeds, concurrency=SEED_ACCOUNTS, budget_s=60)
        if reg.m.errors or reg.m.not_run:
            raise BenchError(f"registering the seed accounts failed: {error_text(reg.m.errors)}")
        size = 4 * self.args.connections
        tokens = refresh_tokens(idp.base_url, seeds, size * pools, concurrency=self.args.connections, budget_s=120)
        if len(tokens) < size * pools:
            raise BenchError(f"only {len(tokens)} of {size * pools} sessions could be opened")
        return seeds, self.token_pools(tokens, size, pools, "refresh-tokens")

    def token_pools(self, tokens: list[str], size: int, count: int, stem: str) -> list[Path]:
        """`count` files of `size` refresh tokens each (one a line, none in two files), for as many runs."""
        paths = []
        for n in range(count):
            path = self.out / f"{stem}-{n}.txt"
            path.write_text("".join(token + "\n" for token in tokens[n * size : (n + 1) * size]))
            paths.append(path)
        return paths

    def access_token(self, idp: Server) -> str:
        """One client_credentials access token, for the introspection scenario (valid for the token TTL)."""
        answer = httpx.post(
            idp.base_url + TOKEN, data={"grant_type": "client_credentials"}, headers={"Authorization": self.client_authorization}, timeout=10,
            trust_env=False,
        )
        token = answer.json().get("access_token") if answer.status_code == 200 else None
        if not isinstance(token, str):
            raise BenchError(f"POST {TOKEN} (client_credentials) answered {answer.status_code}: {answer.text[:300]}")
        return token

    def relying_party_tokens(self, idp: Server, party: RelyingParty, seeds: list[BenchUser], tag: str) -> tuple[list[Path], str]:
        """Sessions of a relying party for one configuration, from the authorization code flow: a
        pool of refresh tokens per round (files, one token a line) and one more session's access
        token for userinfo."""
        size = 4 * self.args.connections
        wanted = size * self.args.rounds + 1
        answers = relying_party_sessions(idp.base_url, party, seeds, wanted, concurrency=self.args.connections)
        if len(answers) < wanted:
            raise BenchError(f"only {len(answers)} of {wanted} relying-party sessions could be opened")
        refresh = [a["refresh_token"] for a in answers[1:]]
        return self.token_pools(refresh, size, self.args.rounds, f"oauth-refresh-tokens-{tag}"), answers[0]["access_token"]

    def endpoints(
        self, idp: Server, bare: Server, cores: str, cpus: str | None, api_pools: list[Path], judged: bool, seeds: list[BenchUser]
    ) -> None:
        """The single-endpoint scenarios, each run `--rounds` times, round-robin (every scenario's
        first round, then every second one...), each run between two runs of the bare route. Each
        round is compared with the mean of its two bare neighbours, and the table shows a
        scenario's median round: the machine's speed drifts and stalls for a second or two at a
        time (other tenants of the host, the disk's flushes), which one long run took in whole."""
        assert self.relying_party is not None and self.es256_party is not None, "prepare() registers the relying parties"
        tag = "pinned" if cpus else "shared"
        rs256_pools, user_access_token = self.relying_party_tokens(idp, self.relying_party, seeds, tag)
        es256_pools, _ = self.relying_party_tokens(idp, self.es256_party, seeds, f"{tag}-es256")
        grant = self.out / "form-client-credentials.txt"
        grant.write_text("grant_type=client_credentials\n")
        introspected = self.out / "form-introspect.txt"
        introspected.write_text(f"token={self.access_token(idp)}\n")  # a JWT: URL-safe as it is
        es256, rs256 = self.es256_party, self.relying_party
        # (scenario, path, target, wrk options of round n). OAuth: the same form body and Basic client
        # authentication every time; refresh grants spend a token never sent before with every
        # request (a fresh pool each round), judged with the client that registered ES256 ID tokens
        # (the rotation is the same), the default client's RS256 signature shown beside it.
        scenarios: list[tuple[str, str, Target | None, Callable[[int], dict[str, Any]]]] = [
            ("GET " + JWKS, JWKS, JWKS_TARGET, lambda n: {}),
            ("GET " + DISCOVERY, DISCOVERY, JWKS_TARGET, lambda n: {}),
            ("POST /api/auth/refresh", "/api/auth/refresh", REFRESH_TARGET, lambda n: {"mode": "refresh", "data": api_pools[n]}),
            (f"POST {TOKEN} client_credentials", TOKEN, CLIENT_CREDENTIALS_TARGET,
             lambda n: {"mode": "form", "data": grant, "expect_body": TOKEN_BODY, "authorization": self.client_authorization}),
            (f"POST {TOKEN} refresh_token (rotation, ES256 ID token)", TOKEN, OAUTH_REFRESH_TARGET,
             lambda n: {"mode": "oauth-refresh", "data": es256_pools[n], "expect_body": ROTATED_BODY, "authorization": es256.authorization}),
            (f"POST {TOKEN} refresh_token (rotation, RS256 ID token)", TOKEN, None,
             lambda n: {"mode": "oauth-refresh", "data": rs256_pools[n], "expect_body": ROTATED_BODY, "authorization": rs256.authorization}),
            (f"POST {INTROSPECT} (access token)", INTROSPECT, INTROSPECT_TARGET,
             lambda n: {"mode": "form", "data": introspected, "expect_body": ACTIVE_BODY, "authorization": self.client_authorization}),
            (f"GET {USERINFO} (Bearer, openid profile email)", USERINFO, USERINFO_TARGET,
             lambda n: {"expect_body": CLAIMS_BODY, "authorization": f"Bearer {user_access_token}"}),
        ]
        seconds = self.args.round_seconds
        self.wrk(bare, "/", cpus=cpus, seconds=1)
        self.wrk(idp, JWKS, cpus=cpus, seconds=1)
        bare_runs = [self.wrk(bare, "/", cpus=cpus, seconds=seconds)]
        rounds: dict[str, list[Round]] = {scenario: [] for scenario, *_ in scenarios}
        for n in range(self.args.rounds):
            for scenario, path, _, options in scenarios:
                m = self.wrk(idp, path, cpus=cpus, seconds=seconds, **options(n))
                bare_runs.append(self.wrk(bare, "/", cpus=cpus, seconds=seconds))
                rounds[scenario].append(Round(m, neighbours(bare_runs[-2], bare_runs[-1])))
        self.add("bare route GET /", cores, bare_runs[0])
        for scenario, _, target, _ in scenarios:
            shown = median_round(rounds[scenario])
            self.add(scenario, cores, shown.m, base=shown.base, base_name="bare", target=target if judged else None)
        rates = sorted(m.rate for m in bare_runs)
        spread = "; ".join(f"{scenario} " + ", ".join(f"{r.ratio:.2f}" for r in rounds[scenario]) for scenario, *_ in scenarios)
        self.notes.append(
            f"[{cores}] {self.args.rounds} rounds of {seconds} s per scenario, round-robin, each run between two bare-route "
            f"runs ({len(rates)} of them: {rates[0]:,.0f}–{rates[-1]:,.0f} req/s); the table shows each scenario's median "
            f"round against the mean of its two bare neighbours. The rounds' ratios, in order: {spread}."
        )

    def floor(self, processes: int) -> Floor:
        a2 = self.argon2
        assert a2 is not None, "record_configuration() reads the Argon2 parameters first"
        return measure_floor(memory_kib=a2.memory_kib, time_cost=a2.time_cost, parallelism=a2.parallelism, processes=processes, seconds=self.args.floor_seconds)

    def password_login(self, idp: Server, bare: Server, cores: str, seeds: list[BenchUser], workers: int) -> None:
        """Password login against the Argon2 floor measured the same way: `GET /argon2` of the bare
        app (one verification with the service's parameters and per-process concurrency) behind the
        same gunicorn configuration, driven by the same wrk with the same connections on the same
        cores. In `--rounds` rounds, each login run between two floor runs and compared with their
        mean; the table shows the median round (the host's speed was seen to swing by a fifth
        between runs a minute apart, which one round takes in whole). The raw floor (verifying in
        a loop in as many processes as gunicorn has workers, no HTTP, nothing else on the cores) is
        recorded beside it."""
        accounts = self.out / "login-accounts.txt"
        accounts.write_text("".join(f"{u.username}\t{u.password}\n" for u in seeds))
        raw_before = self.floor(workers)
        self.wrk(bare, "/argon2", cpus=None, seconds=1)  # every worker hashes its reference password first
        self.wrk(idp, "/api/auth/login", cpus=None, mode="login", data=accounts, seconds=1)
        floors = [self.wrk(bare, "/argon2", cpus=None)]
        rounds: list[Round] = []
        for _ in range(self.args.rounds):
            login = self.wrk(idp, "/api/auth/login", cpus=None, mode="login", data=accounts)
            floors.append(self.wrk(bare, "/argon2", cpus=None))
            rounds.append(Round(login, neighbours(floors[-2], floors[-1])))
        raw_after = self.floor(workers)
        raw_rate = (raw_before.rate + raw_after.rate) / 2
        raw_verifies = raw_before.verifies + raw_after.verifies
        raw = Measurement(
            raw_verifies, raw_verifies / raw_rate, None, None, None, Counter(), (raw_before.cpu_ms_per_verify + raw_after.cpu_ms_per_verify) / 2
        )
        shown = median_round(rounds)
        self.add(f"Argon2 floor, raw ({workers} processes, no HTTP)", cores, raw)
        self.add(f"Argon2 floor, GET /argon2 (bare app, {workers} workers, wrk)", cores, shown.base)
        self.add("POST /api/auth/login", cores, shown.m, base=shown.base, base_name="floor", target=LOGIN_TARGET)
        self.notes.append(
            f"Argon2 floor: GET /argon2 of the bare app (one verification per request, same gunicorn configuration, same wrk "
            f"and cores as the login), run before, between and after {len(rounds)} login rounds of {self.args.seconds} s: "
            + ", ".join(f"{m.rate:.1f}" for m in floors) + " req/s; the logins' rates "
            + ", ".join(f"{r.m.rate:.1f}" for r in rounds) + " req/s, ratios to their neighbouring floors "
            + ", ".join(f"{r.ratio:.3f}" for r in rounds) + " (the table shows the median round). "
            f"The raw floor ({workers} processes verifying in a loop, no HTTP, no load generator, no database on the cores) "
            f"ran at {raw_before.rate:.1f} and {raw_after.rate:.1f} verifies/s ({raw_before.ms_per_verify:.1f} / "
            f"{raw_after.ms_per_verify:.1f} ms per verify in one process). Login is judged against the HTTP floor, which is "
            f"measured the same way; against the raw floor it is {shown.m.rate / raw_rate if raw_rate else 0:.2f}. A login cost "
            f"the workers {shown.m.server_cpu_ms or 0:.1f} ms of CPU, a floor request {shown.base.server_cpu_ms or 0:.1f} ms and one "
            f"raw verification {raw.server_cpu_ms or 0:.1f} ms; PostgreSQL and Redis (the login's, not the floor's) and wrk "
            "share the same two cores."
        )

    def stress(self, idp: Server, cores: str) -> None:
        a = self.args
        users = self.stress_users = make_users(self.run_id, "u", a.users)
        deadline = time.monotonic() + a.stress_budget
        latencies: list[float] = []
        errors: Counter[str] = Counter()
        seconds = cpu_ms = 0.0
        not_run = 0
        delivery_delays: list[float] = []
        for phase in old_service_stress(a.logins_per_user, Outbox(self.outbox_path), delivery_delays):
            count = len(users) * phase.rounds
            _log(f"stress: {phase.name}, {count:,} {'users' if phase.name == 'email verification' else 'requests'}, {a.concurrency} in flight")
            worker_cpu = self.worker.cpu_seconds() if self.worker else 0.0
            result = self.flow(idp, phase, users, concurrency=a.concurrency, budget_s=max(0.0, deadline - time.monotonic()))
            if phase.name == "email verification":
                # set-up of the TOTP phase: send-verification and email/verify for each user, apart from the test's figures
                self.add(f"stress: email verification (send + verify, {count:,} users, {a.concurrency} in flight)", cores, result.m, target=NO_ERROR_TARGET)
                self.delivery_note(delivery_delays, (self.worker.cpu_seconds() if self.worker else 0.0) - worker_cpu)
                continue
            self.add(f"stress: {self.stress_name(phase)} ({count:,}, {a.concurrency} in flight)", cores, result.m, target=STRESS_TARGET)
            latencies += result.latencies
            errors += result.m.errors
            seconds += result.m.seconds
            not_run += result.m.not_run
            cpu_ms += (result.m.server_cpu_ms or 0) * result.m.requests
        whole = Measurement.from_latencies(latencies, seconds, errors, not_run)
        whole.server_cpu_ms = cpu_ms / whole.requests if whole.requests else None
        self.add(f"stress: whole test ({a.users} users)", cores, whole, target=STRESS_TARGET)
        in_flight = min(a.concurrency, len(users) * a.logins_per_user)
        if whole.rate and in_flight > 1:
            self.notes.append(
                f"Stress test: {in_flight} requests in flight at {whole.rate:.1f} req/s wait {in_flight / whole.rate:.2f} s "
                f"each on average (Little's law); p99 under 2 s needs well over {in_flight / 2:.0f} Argon2 operations per second."
            )
        rss = idp.worker_rss_mib()
        if rss:
            self.notes.append("Worker RSS after the stress test: " + ", ".join(f"{r:.0f} MiB" for r in rss) + " (target under 200 MB).")

    @staticmethod
    def stress_name(phase: Phase) -> str:
        return {"register": "register", "totp/setup": "POST /api/2fa/totp/setup", "login": "login"}.get(phase.name, phase.name)

    def delivery_note(self, delays: list[float], worker_cpu_s: float) -> None:
        if not delays:
            self.notes.append("Email verification: no verification email reached the outbox.")
            return
        m = Measurement.from_latencies(delays, 0.0, Counter())
        self.notes.append(
            f"Email verification (set-up of the TOTP phase, not in the whole-test row): {len(delays):,} verification emails went "
            f"through RQ and one delivery worker; from the send-verification answer to the line in the outbox p50 "
            f"{m.p50_ms or 0:,.0f} ms, p95 {m.p95_ms or 0:,.0f} ms, p99 {m.p99_ms or 0:,.0f} ms; the worker (with its per-job "
            f"work horses) used {worker_cpu_s / len(delays) * 1000:.1f} ms of CPU per email."
        )

    def two_factor(self, idp: Server, cores: str, workers: int, threads: int) -> None:
        """Enable TOTP for some accounts of the stress test, then log in with password + TOTP code."""
        a = self.args
        users = [u for u in self.stress_users if u.totp_secret and u.access_token][: a.twofa_users]
        if not users:
            self.notes.append("2FA login: not run, no account of the stress test finished the TOTP setup.")
            return
        deadline = time.monotonic() + a.twofa_budget
        in_flight = workers * threads
        _log(f"2FA: enabling TOTP for {len(users)} accounts (totp/verify-setup, {in_flight} in flight)")
        enable = self.flow(idp, Phase("totp/verify-setup", enable_totp), users, concurrency=in_flight, budget_s=a.twofa_budget)
        self.add(f"2FA: POST /api/2fa/totp/verify-setup ({len(users)}, {in_flight} in flight)", cores, enable.m, target=NO_ERROR_TARGET)
        enabled = [u for u in users if u.totp_enabled]
        flows = len(enabled) * a.twofa_flows_per_user
        _log(f"2FA login: {flows:,} flows (login → 2fa/verify), {len(enabled)} accounts, {a.twofa_concurrency} in flight")
        cpu_before = idp.cpu_seconds()
        result = two_factor_logins(
            idp.base_url, enabled, flows_per_user=a.twofa_flows_per_user, concurrency=a.twofa_concurrency,
            budget_s=max(0.0, deadline - time.monotonic()),
        )
        if result.flow.requests:
            result.flow.server_cpu_ms = (idp.cpu_seconds() - cpu_before) / result.flow.requests * 1000
        self.add(f"2FA login: whole flow, req/s = flows/s ({flows:,}, {a.twofa_concurrency} in flight)", cores, result.flow, target=NO_ERROR_TARGET)
        self.add("2FA login: POST /api/auth/login → tempToken", cores, result.login, target=NO_ERROR_TARGET)
        self.add("2FA login: POST /api/2fa/verify (TOTP)", cores, result.verify, target=NO_ERROR_TARGET)
        per_enable = enable.m.server_cpu_ms or 0
        self.notes.append(
            f"2FA: enabling TOTP (verify-setup) cost the workers {per_enable:.0f} ms of CPU per request: it hashes 10 new backup "
            f"codes with Argon2id; a two-factor login cost {result.flow.server_cpu_ms or 0:.1f} ms per flow (one Argon2 verification "
            f"for the password). {len(enabled)} accounts, {a.twofa_flows_per_user} flow(s) each, a TOTP code for a step after the "
            f"account's last one every time; {result.waits} flow(s) waited {result.wait_s:.1f} s in all for a fresh step "
            "(not counted in the flow's latency)."
        )

    def server_log_problems(self) -> None:
        for path in sorted([*self.out.glob("idp-*.log"), *self.out.glob("worker.log")]):
            text = path.read_text(errors="replace")
            found = {kind: text.count(kind) for kind in ("Traceback", "WORKER TIMEOUT", "Internal server error", "[ERROR]", "ERROR:") if kind in text}
            if found:
                self.notes.append(f"Server log {path.name}: " + ", ".join(f"{k} ×{v}" for k, v in found.items()) + f" (kept in {path.relative_to(ROOT)}).")

    def run(self) -> None:
        _log(f"database {self.db.name}, Redis prefix {self.redis.prefix}, logs in {self.out.relative_to(ROOT)}")
        self.prepare()
        pinned = not self.args.no_pin and len(os.sched_getaffinity(0)) >= 2 and shutil.which("taskset") is not None
        workers, threads = self.record_configuration(pinned)
        print(facts_text(self.facts), flush=True)
        only = self.args.only
        configurations = ([("1 core", SERVER_CPU, CLIENT_CPU)] if pinned and only in (None, "endpoints") else []) + [("2 cores", None, None)]
        seeds: list[BenchUser] = []
        pools: list[Path] = []
        for n, (cores, server_cpus, client_cpus) in enumerate(configurations):
            _log(f"starting gunicorn ({cores})")
            idp, bare = self.serve(server_cpus)
            if not seeds and only != "stress":
                seeds, pools = self.seed(idp, len(configurations) * (1 if only == "login" else self.args.rounds))
            if only in (None, "endpoints"):
                rounds = self.args.rounds
                self.endpoints(idp, bare, cores, client_cpus, pools[n * rounds : (n + 1) * rounds], judged=n == 0, seeds=seeds)
            if cores == "2 cores" and only in (None, "login"):
                self.password_login(idp, bare, cores, seeds, workers)
            if cores == "2 cores" and only in (None, "stress"):
                self.start_worker()
                _log(f"stress test: {self.args.users} registrations, TOTP setups, then {self.args.users * self.args.logins_per_user:,} logins")
                self.stress(idp, cores)
                self.two_factor(idp, cores, workers, threads)
            self.stop_servers()
        self.server_log_problems()
        self.notes.append("Load average at the end: " + " / ".join(f"{x:.2f}" for x in os.getloadavg()) + ".")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _terminate)
    began = time.monotonic()
    started = datetime.now(UTC)
    wrk = ensure_wrk()
    run_id = secrets.token_hex(4)
    out_dir = ROOT / "bench" / "results" / f"{started:%Y%m%dT%H%M%SZ}-{run_id}"
    out_dir.mkdir(parents=True, exist_ok=True)
    others = sorted((p for p in out_dir.parent.iterdir() if p.is_dir() and p != out_dir), key=lambda p: p.stat().st_mtime)
    for old in others[: max(0, len(others) - (KEEP_RESULTS - 1))]:  # the oldest; never this run's own
        shutil.rmtree(old, ignore_errors=True)
    bench = Bench(args, wrk, run_id, out_dir)
    failed: BaseException | None = None
    try:
        bench.run()
    except (BenchError, KeyboardInterrupt, SystemExit) as exc:
        failed = exc
    finally:
        bench.clean_up()
    if bench.rows:
        print()
        print(text_table(bench.rows))
        for note in bench.notes:
            print(f"- {note}")
    if failed is not None:
        print(f"\nbench stopped: {failed!r}" if not isinstance(failed, BenchError) else f"\nbench failed: {failed}", file=sys.stderr)
        return 1
    if args.only is not None:
        _log(f"--only {args.only}: docs/performance.md left alone (only a full run rewrites it)")
    elif not args.no_doc:
        doc = ROOT / "docs" / "performance.md"
        write_markdown(doc, date=f"{started:%Y-%m-%d %H:%M} UTC", facts=bench.facts, rows=bench.rows, notes=bench.notes)
        _log(f"wrote {doc.relative_to(ROOT)}")
    _log(f"done in {time.monotonic() - began:.0f} s")
    return 0
