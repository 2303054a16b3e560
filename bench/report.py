"""The results table, printed and written to docs/performance.md."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from bench.measure import Row, error_text

HEADERS = ("scenario", "cores", "req/s", "p50 ms", "p95 ms", "p99 ms", "CPU ms/req", "errors", "ratio", "target", "result")
NUMERIC = {2, 3, 4, 5, 6}


def _ms(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:.1f}" if value < 100 else f"{value:,.0f}"


def ratio_text(row: Row) -> str:
    """Two decimals, or four where two would round a miss up to its floor (0.3996 is not 0.40)."""
    if row.ratio is None:
        return "—"
    floor = row.target.ratio_floor if row.target else None
    digits = 4 if floor is not None and row.ratio < floor <= round(row.ratio, 2) else 2
    return f"{row.ratio:.{digits}f} of {row.ratio_of}"


def cells(row: Row) -> tuple[str, ...]:
    m = row.m
    ratio = ratio_text(row)
    return (
        row.scenario,
        row.cores,
        f"{m.rate:,.1f}" if m.rate < 100 else f"{m.rate:,.0f}",
        _ms(m.p50_ms),
        _ms(m.p95_ms),
        _ms(m.p99_ms),
        f"{m.server_cpu_ms:.2f}" if m.server_cpu_ms is not None else "—",
        error_text(m.errors),
        ratio,
        row.target.text if row.target else "—",
        row.verdict,
    )


def text_table(rows: Sequence[Row]) -> str:
    table = [HEADERS, *(cells(r) for r in rows)]
    widths = [max(len(line[i]) for line in table) for i in range(len(HEADERS))]
    out = []
    for n, line in enumerate(table):
        out.append("  ".join(c.rjust(w) if i in NUMERIC else c.ljust(w) for i, (c, w) in enumerate(zip(line, widths, strict=True))).rstrip())
        if n == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)


def markdown_table(rows: Sequence[Row]) -> str:
    lines = ["| " + " | ".join(HEADERS) + " |", "|" + "|".join("---:" if i in NUMERIC else "---" for i in range(len(HEADERS))) + "|"]
    lines += ["| " + " | ".join(c.replace("|", "\\|") for c in cells(r)) + " |" for r in rows]
    return "\n".join(lines)


def facts_text(facts: Sequence[tuple[str, str]]) -> str:
    width = max(len(k) for k, _ in facts)
    return "\n".join(f"{k.ljust(width)}  {v}" for k, v in facts)


METHOD = """\
- One run, side by side: every endpoint is measured with a bare `return "ok"` Flask route
  (`bench/bare_app.py`) served by the same gunicorn configuration (`gunicorn -c gunicorn.conf.py`,
  same workers and threads), and quoted as a ratio to it; absolute numbers on a shared 2-core
  machine drift from run to run, ratios much less. Each single-endpoint scenario runs in rounds
  (`--rounds`, default 3, of `--round-seconds`, default 3 s), round-robin: every scenario's first
  round, then every second one, and so on, with a run of the bare route before the first, between
  each two and after the last. Each round is compared with the mean of the two bare runs around it,
  and the table shows a scenario's median round (of an even number, the lower middle one): the
  machine's speed was seen to drift by a third within one run and to stall for a second or two at
  a time, which a single long run took in whole. A note lists every round's ratio; the bare route
  row is the first bare run, and the note gives the range of all of them. After every wrk run the
  next one waits until the server it measured has used no CPU for 0.1 s: the requests wrk left in
  flight (16 logins are a third of a second of both cores) are not paid for by the next run.
- **1 core**: gunicorn pinned to core 0 (`taskset -c 0`), wrk to core 1 (`taskset -c 1`); these
  per-core ratios are the ones judged against the targets. PostgreSQL and Redis are not pinned.
  **2 cores**: the normal configuration, server and load generator sharing both cores (headline).
- wrk (`bench/wrk.lua`) drives single endpoints. The refresh scenario sends a refresh token that
  was never sent before with every request, in the JSON body: sessions are opened by logging in
  through the API beforehand, and each answer's rotated token goes to the back of the queue.
- OAuth 2.0: one confidential client is registered per run (`flask --app wsgi clients create
  --grant client_credentials --scope openid`). `POST /oauth/token` sends the form body
  `grant_type=client_credentials` with HTTP Basic client authentication every time;
  `POST /oauth/introspect` sends `token=` one access token issued to that client before the
  scenario (a fixed token, the same bytes every request), with the same Basic authentication.
- A second, first-party confidential client (`--first-party --grant authorization_code --grant
  refresh_token --scope openid --scope profile --scope email`) gets relying-party sessions from the
  authorization code flow with PKCE, driven with httpx before each configuration's scenarios
  (`bench/oauth_flow.py`): one browser per seed account signs in once through the hosted page
  (`/oauth/authorize` → `/login`, the form with its CSRF token → back through `/oauth/authorize`
  to the redirect URI with `?code=`), its SSO cookie then yields further codes at once, and each
  code is exchanged at `/oauth/token` (code_verifier, Basic authentication). `POST /oauth/token`
  with `grant_type=refresh_token` sends a refresh token never sent before with every request and
  queues the rotated one from the JSON body (each answer also carries a new ID token, since
  `openid` was granted). It runs twice: with a third client, registered the same way plus
  `--id-token-alg ES256` (ES256 ID tokens; this row is judged, as the rotation is the same), and
  with the second (RS256 ID tokens, the default, shown beside it). `GET /oauth/userinfo` sends `Authorization: Bearer` with the access token
  (scope `openid profile email`) of one more such session, whose liveness is checked every time.
- The wrk script checks every answer: a status other than 200 is an error, and so is a 200 whose
  body lacks what the scenario expects (`"access_token"` from the token endpoint, a rotated
  `"refresh_token"` from the refresh grant, `"active": true` from introspection, `"email"` from
  userinfo).
- `python -m bench --only endpoints` runs just the single-endpoint wrk scenarios (bare route,
  JWKS, discovery, API refresh, the OAuth grants, introspection, userinfo) in both
  configurations, in about 2 minutes, and prints its table without rewriting this file;
  `--only login` runs just password login against its Argon2 floor on both cores.
- The Argon2 floor is measured in the same run and the same way as password login: `GET
  /argon2` of the bare app (`bench/bare_app.py`: one argon2id verification with the service's
  parameters and per-process concurrency, `PasswordHashing` built from the same environment)
  behind the same gunicorn configuration, driven by the same wrk with the same connections on the
  same two cores. Password login runs in rounds (`--rounds` of `--seconds` each), every login run
  between two floor runs and compared with their mean, and the table shows the median round (the
  note lists every round). Password login is judged against this floor. The raw floor (argon2-cffi `PasswordHasher` verifying in a loop in as many processes
  as gunicorn has workers, no HTTP, no load generator) is recorded beside it: it leaves out what
  every HTTP request costs on these cores (wrk, gunicorn, the kernel), so a login measured through
  HTTP cannot reach it.
- The old service's stress test runs with an async client (aiohttp, about 0.2 ms of CPU a request), phase after phase with a fixed
  number of requests in flight, each simulated user in flight with a client and keep-alive
  connection of its own (with one pool of 100 connections, requests waited in it for seconds
  while most connections were idle): registrations; the TOTP setup (`POST
  /api/2fa/totp/setup` with the access token from registration); then logins. Every request's latency counts, errors are counted
  by kind (HTTP status, exception, or a 200 without the expected body). The whole-test row is
  these three phases; requests not started within the time budget are reported as not run.
- TOTP setup needs a verified email, so each user first calls `POST /api/email/send-verification`
  and `POST /api/email/verify` with the token of the link mailed to it. Mail goes to the console
  outbox (`OUTBOX_PATH`, a file in the run's folder; no `EMAIL_HOST`) through the RQ queue
  (`DELIVERY_QUEUE` unique per run) and one `flask --app wsgi worker` process started with the
  server's environment. This set-up has its own row and is not part of the whole test.
- The two-factor login: some accounts of the stress test enable TOTP (`POST
  /api/2fa/totp/verify-setup`, its own row), then each does a fixed number of flows, `POST
  /api/auth/login` (answered with a tempToken) then `POST /api/2fa/verify` with a pyotp code. A
  code is accepted once per account and 30-second step, and only for a step after the last one
  used, within ±1 step of the server's clock: the client keeps each account's last step and sends
  the code of the next one, never one that can leave the window while the request waits
  (verify-setup uses the previous step's code only with 10 s of its window to spare). The flow row
  counts whole flows (req/s = flows/s, latency from the login request to the verify answer); the
  login and verify rows count their requests over the same time.
- A fresh PostgreSQL database and a unique Redis key prefix per run; the general limit is off
  (`RATE_LIMIT_GENERAL=off`), the login, per-account, register, two-factor and code-send limits
  are set far above the load, so their checks still run as in production. `IDP_ENV=test`.
- Latencies: wrk's percentiles for wrk scenarios, nearest-rank percentiles for the async client.
- CPU ms/req: user + system CPU time of the gunicorn master and workers (from /proc) per request
  (for the Argon2 floor, per verification in one process; for the two-factor flow, per flow).
  PostgreSQL, Redis, the delivery worker and the load generator are not included. It moves less
  than req/s when other processes share the cores."""


def write_markdown(path: Path, *, date: str, facts: Sequence[tuple[str, str]], rows: Sequence[Row], notes: Sequence[str]) -> None:
    parts = [
        "# Performance",
        "",
        f"Measured {date} by `make bench` (`python -m bench`), which rewrites this file. "
        "Method and targets: PERFORMANCE.md of the specification.",
        "",
        "## Method",
        "",
        METHOD,
        "",
        "## Configuration",
        "",
        "| | |",
        "|---|---|",
        *(f"| {k} | {v} |" for k, v in facts),
        "",
        "## Results",
        "",
        markdown_table(rows),
        "",
    ]
    if notes:
        parts += ["## Notes", "", *(f"- {n}" for n in notes), ""]
    path.write_text("\n".join(parts))
