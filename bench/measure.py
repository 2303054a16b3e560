"""What one scenario measured, and how it compares with its target."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field


@dataclass
class Measurement:
    requests: int
    seconds: float
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    errors: Counter[str] = field(default_factory=Counter)
    server_cpu_ms: float | None = None  # gunicorn CPU time (master + workers) per request
    not_run: int = 0  # requests a flow did not start within its time budget

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds > 0 else 0.0

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())

    @classmethod
    def from_latencies(cls, latencies_s: Sequence[float], seconds: float, errors: Counter[str], not_run: int = 0) -> Measurement:
        ordered = sorted(latencies_s)
        return cls(
            requests=len(ordered),
            seconds=seconds,
            p50_ms=percentile_ms(ordered, 50),
            p95_ms=percentile_ms(ordered, 95),
            p99_ms=percentile_ms(ordered, 99),
            errors=errors,
            not_run=not_run,
        )


def neighbours(before: Measurement, after: Measurement) -> Measurement:
    """The two runs of one thing around a scenario as one: both runs' requests, at the mean of their
    rates (latency percentiles and CPU per request: means too). Comparing a scenario with the mean
    of its neighbours cancels a drift of the machine's speed during the run that one neighbour keeps."""
    requests = before.requests + after.requests
    mean_rate = (before.rate + after.rate) / 2

    def mean(a: float | None, b: float | None) -> float | None:
        known = [x for x in (a, b) if x is not None]
        return sum(known) / len(known) if known else None

    return Measurement(
        requests,
        requests / mean_rate if mean_rate else 0.0,
        mean(before.p50_ms, after.p50_ms),
        mean(before.p95_ms, after.p95_ms),
        mean(before.p99_ms, after.p99_ms),
        errors=before.errors + after.errors,
        server_cpu_ms=mean(before.server_cpu_ms, after.server_cpu_ms),
    )


@dataclass(frozen=True)
class Round:
    """One run of a scenario and the mean of the bare-route runs right before and after it."""

    m: Measurement
    base: Measurement

    @property
    def ratio(self) -> float:
        return self.m.rate / self.base.rate if self.base.rate else 0.0


def median_round(rounds: Sequence[Round]) -> Round:
    """The round whose ratio is the median (the lower middle one of an even number): a stall of
    the shared host during one round moves the figure no more than one round's rank."""
    if not rounds:
        raise ValueError("no rounds")
    ordered = sorted(rounds, key=lambda r: r.ratio)
    return ordered[(len(ordered) - 1) // 2]


IDLE_TIMEOUT_S = 3.0  # the longest a run waits for the previous one's server to go quiet


def wait_until_idle(
    cpu_seconds: Callable[[], float], *, window_s: float = 0.1, timeout_s: float = IDLE_TIMEOUT_S, sleep: Callable[[float], None] = time.sleep
) -> bool:
    """Wait until a server has used no CPU for `window_s` (whether it went quiet within `timeout_s`).

    When wrk stops, the requests it had in flight are still being served: 16 logins are a third of
    a second of both cores' work, which the next run (the floor's, say) would pay for. CPU time is
    counted in clock ticks, so "none in a window" means less than a tick."""
    waited = 0.0
    last = cpu_seconds()
    while waited < timeout_s:
        sleep(window_s)
        waited += window_s
        now = cpu_seconds()
        if now == last:
            return True
        last = now
    return False


def percentile_ms(ordered_s: Sequence[float], pct: float) -> float | None:
    """Nearest-rank percentile of sorted latencies in seconds, in milliseconds."""
    if not ordered_s:
        return None
    rank = max(1, -(-len(ordered_s) * pct // 100))
    return ordered_s[int(rank) - 1] * 1000


@dataclass(frozen=True)
class Target:
    """A floor that must hold (and the aim) for a ratio, or a latency bound for a flow."""

    text: str
    ratio_floor: float | None = None
    issue_ratio: float | None = None
    p99_below_ms: float | None = None

    def verdict(self, ratio: float | None, m: Measurement) -> str:
        if m.not_run:
            return f"INCOMPLETE ({m.not_run:,} not run: time budget)"
        if m.error_count:
            return "FAIL (errors)"
        if self.ratio_floor is not None:
            if ratio is None or ratio < self.ratio_floor:
                return "FAIL"
            if self.issue_ratio is not None and ratio < self.issue_ratio:
                return f"pass (floor; issue's {self.issue_ratio:.2f} missed)"
        if self.p99_below_ms is not None and (m.p99_ms is None or m.p99_ms >= self.p99_below_ms):
            return "FAIL (p99)"
        return "pass"


@dataclass
class Row:
    scenario: str
    cores: str
    m: Measurement
    ratio: float | None = None
    ratio_of: str = ""
    target: Target | None = None

    @property
    def verdict(self) -> str:
        return self.target.verdict(self.ratio, self.m) if self.target else "—"


def error_text(errors: Counter[str]) -> str:
    if not errors:
        return "0"
    kinds = ", ".join(f"{kind} ×{count}" for kind, count in errors.most_common())
    return f"{sum(errors.values())} ({kinds})"
