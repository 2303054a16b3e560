"""Single-endpoint load with wrk and bench/wrk.lua."""

from __future__ import annotations

import json
import os
import subprocess
from collections import Counter
from pathlib import Path

from bench.measure import Measurement
from bench.services import BenchError

SCRIPT = Path(__file__).with_name("wrk.lua")


def run_wrk(
    wrk: str,
    url: str,
    *,
    mode: str = "get",
    data: Path | None = None,
    seconds: int,
    connections: int,
    threads: int = 1,
    cpus: str | None = None,
    expect: int = 200,
    expect_body: str | None = None,
    authorization: str | None = None,
    log: Path | None = None,
) -> Measurement:
    """Run wrk for `seconds`; errors are wrk's socket errors, and the answers that bench/wrk.lua found
    with a status other than `expect` or, with that status, a body not matching the Lua pattern `expect_body`."""
    command = [wrk, "-t", str(threads), "-c", str(connections), "-d", f"{seconds}s", "--timeout", "10s", "-s", str(SCRIPT), url]
    if cpus:
        command = ["taskset", "-c", cpus, *command]
    env = {**os.environ, "BENCH_MODE": mode, "BENCH_THREADS": str(threads), "BENCH_EXPECT": str(expect)}
    for name, value in (("BENCH_DATA", data), ("BENCH_EXPECT_BODY", expect_body), ("BENCH_AUTHORIZATION", authorization)):
        if value is not None:
            env[name] = str(value)
        else:
            env.pop(name, None)
    try:
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=seconds + 60)
    except subprocess.TimeoutExpired:
        raise BenchError(f"wrk did not finish ({url})") from None
    if log is not None:
        with log.open("a") as out:
            out.write(f"$ {' '.join(command)}  (BENCH_MODE={mode})\n{done.stdout}{done.stderr}\n")
    line = next((ln for ln in done.stdout.splitlines() if ln.startswith("BENCH_RESULT ")), None)
    if done.returncode != 0 or line is None:
        raise BenchError(f"wrk failed ({done.returncode}) on {url}:\n{done.stdout[-1500:]}{done.stderr[-1500:]}")
    raw = json.loads(line.removeprefix("BENCH_RESULT "))
    errors: Counter[str] = Counter()
    for kind, count in raw["errors"].items():
        if count:
            errors[f"socket {kind}"] += count
    starved = raw["starved"]  # sent with a placeholder token, hence refused (401, or 400 invalid_grant from OAuth)
    if starved:
        errors["no token left"] += starved
    refused = "400" if mode == "oauth-refresh" else "401"
    for status, count in raw["unexpected"].items():  # counted by the script: statuses other than `expect`
        if status == refused:
            count -= min(count, starved)
        if count:
            errors[f"HTTP {status}"] += count
    if raw["bad_body"]:
        errors[f"HTTP {expect}, unexpected body"] += raw["bad_body"]
    return Measurement(
        requests=raw["requests"],
        seconds=raw["duration_us"] / 1e6,
        p50_ms=raw["p50_us"] / 1000,
        p95_ms=raw["p95_us"] / 1000,
        p99_ms=raw["p99_us"] / 1000,
        errors=errors,
    )
