"""The app's Prometheus metrics, in a registry of its own (two apps in one process never share counts).

Under gunicorn, PROMETHEUS_MULTIPROC_DIR (set by gunicorn.conf.py before any worker starts) makes
prometheus_client keep each process's values in a file there; /metrics then adds up the files
of every process, live or gone. Label values come from small fixed sets (route templates,
methods, grant names), never from what a client sends.
"""

from __future__ import annotations

from collections.abc import Sequence

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client import values as prometheus_values
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

# Hot paths answer in about a millisecond: the default buckets start too high for them.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNMATCHED_ROUTE = "unmatched"  # no route: 404s, and anything a scanner tries


def multiprocess_values() -> bool:
    """Whether prometheus_client writes to PROMETHEUS_MULTIPROC_DIR in this process (decided when it
    was first imported: the variable has to be in the environment before the process starts)."""
    return bool(getattr(prometheus_values.ValueClass, "_multiprocess", False))


class Labelled:
    """A labelled metric whose children are kept: `labels()` takes a lock and builds a key on every call."""

    def __init__(self, metric: Counter) -> None:
        self._metric = metric
        self._children: dict[tuple[str, ...], Counter] = {}

    def __call__(self, *values: str) -> Counter:
        child = self._children.get(values)
        if child is None:
            child = self._children[values] = self._metric.labels(*values)
        return child


class AppMetrics:
    """Counters and histograms of one app; each method is a few dictionary look-ups and one increment."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        # One histogram, no separate counter: its _count is the number of requests (one increment less per request)
        self._requests = Histogram(
            "idp_http_request_duration_seconds",
            "Time to answer an HTTP request, by route template, method and status; _count counts the requests.",
            ["route", "method", "status"], buckets=LATENCY_BUCKETS, registry=self.registry,
        )
        self._rate_limited = Labelled(Counter(
            "idp_rate_limited", "Requests refused with 429 Too Many Requests, by route template.", ["route"], registry=self.registry
        ))
        self._logins = Labelled(Counter(
            "idp_logins", "Sign-ins by method (pwd, pwd+trusted_device, totp, sms, email, backup_code) and outcome (success, failure).",
            ["method", "outcome"], registry=self.registry,
        ))
        self._second_factor = Labelled(Counter(
            "idp_second_factor", "Second-factor checks at sign-in by method and outcome (success, failed).",
            ["method", "outcome"], registry=self.registry,
        ))
        self._tokens = Labelled(Counter(
            "idp_tokens_issued", "Access tokens issued, by grant (api_login, api_refresh, authorization_code, refresh_token, "
            "client_credentials).", ["grant"], registry=self.registry,
        ))
        # (route, method, status) -> the child to observe: labels() takes a lock and builds a key each time
        self._request_children: dict[tuple[str, str, str], Histogram] = {}

    def request_answered(self, route: str, method: str, status: str, seconds: float) -> None:
        if method not in METHODS:  # a client's made-up method must not grow the label set
            method = "other"
        key = (route, method, status)
        child = self._request_children.get(key)
        if child is None:
            child = self._request_children[key] = self._requests.labels(route, method, status)
        child.observe(seconds)
        if status == "429":
            self._rate_limited(route).inc()

    def login(self, method: str, *, success: bool) -> None:
        self._logins(method, "success" if success else "failure").inc()

    def second_factor(self, method: str, *, success: bool) -> None:
        self._second_factor(method, "success" if success else "failed").inc()

    def tokens_issued(self, grant: str) -> None:
        self._tokens(grant).inc()


def scrape_registry(metrics: AppMetrics, multiprocess_dir: str | None, extra: Sequence[Collector]) -> CollectorRegistry:
    """What /metrics serves: this process's metrics, or with a multiprocess directory the sum over
    every process that wrote there; plus `extra` collectors (read at scrape time)."""
    if multiprocess_dir:
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=multiprocess_dir)
    else:
        registry = metrics.registry
    for collector in extra:
        registry.register(collector)
    return registry
