"""Rate limiting (Flask-Limiter): one limiter per app, limits from settings, storage in Redis or memory.

Views declare which limit they fall under with `@rate_limited(name)`; `install_limiter` binds the
declared limits to the app's own limiter, so two apps in one process never share limiter state.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Callable, Collection
from typing import Any, TypeVar

from flask import Blueprint, Flask, Response, has_request_context, request
from flask_limiter import Limiter
from limits.storage import RedisStorage

from idp.config import Settings

F = TypeVar("F", bound=Callable[..., Any])
MARK = "_idp_rate_limits"
UNLIMITED = "idp.unlimited_endpoints"  # app.extensions: the endpoints the limiter's hooks skip
LOGIN_WINDOW = "login_window"  # flask.g: a sign-in's client network window (LoginThrottle), for its RateLimit headers


def client_network() -> str:
    """Whom the per-address limits count: the request's client network (`network_of`)."""
    return network_of(request.remote_addr)


def network_of(address: str | None) -> str:
    """An IPv4 address, or the /64 network of an IPv6 one. Providers hand each subscriber a /64 at
    least, so anyone with IPv6 has 2^64 addresses to hand; one window per address would be one
    fresh budget per request. (A port some proxies forward with the client's address is gone
    already: `idp.http.behind_proxies`.)"""
    address = address or "127.0.0.1"
    if ":" not in address:
        return address
    try:
        ip = ipaddress.IPv6Address(address.split("%", 1)[0])
    except ValueError:
        return address
    if ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)
    return str(ipaddress.IPv6Network((ip, 64), strict=False))


def rate_limited(name: str, *, failures_only: bool = False, methods: list[str] | None = None) -> Callable[[F], F]:
    """Declare that a view counts against the named limit of `Settings.rate_limits`: one window per
    client address for all the views that declare it.

    With `failures_only`, only answers of 401 use up the limit (failed logins); `methods` limits
    only those methods (a page's GET is free, its POST counts).
    """

    def mark(view: F) -> F:
        setattr(view, MARK, [*getattr(view, MARK, []), (name, failures_only, methods)])
        return view

    return mark


WINDOW_SCHEME = "idp+"  # before a Redis URL: the storage below
_WINDOWS = "idp.rate_windows"  # in the request's WSGI environment: the windows it has read


class RequestWindowsRedisStorage(RedisStorage):
    """Redis rate-limit storage that keeps, for the rest of a request, each moving window it has
    read (a `limits` storage, registered by its scheme: `idp+redis://…`).

    Flask-Limiter tests a limit before the view and reads the same window again for the
    RateLimit headers after it: for a login, one more Redis script on every success. Here that
    second read is the first's answer, unless the request counted an event in that window since
    (a failed login), which reads it afresh. Outside a request (the CLI, the worker) every read
    goes to Redis."""

    STORAGE_SCHEME = [WINDOW_SCHEME + scheme for scheme in ("redis", "rediss", "redis+unix")]

    def __init__(self, uri: str, **options: Any) -> None:
        super().__init__(uri.removeprefix(WINDOW_SCHEME), **options)

    def get_moving_window(self, key: str, limit: int, expiry: int) -> tuple[float, int]:
        if not has_request_context():
            return super().get_moving_window(key, limit, expiry)
        # by key alone: a limit's key names its amount and its window ("…/5/15/minute")
        read: dict[str, tuple[float, int]] = request.environ.setdefault(_WINDOWS, {})
        window = read.get(key)
        if window is None:
            window = read[key] = super().get_moving_window(key, limit, expiry)
        return window

    def acquire_entry(self, key: str, limit: int, expiry: int, amount: int = 1) -> bool:
        self._forget(key)
        return super().acquire_entry(key, limit, expiry, amount)

    def clear(self, key: str) -> None:
        self._forget(key)
        super().clear(key)

    def _forget(self, key: str) -> None:
        if has_request_context():
            request.environ.get(_WINDOWS, {}).pop(key, None)


def storage_uri(redis_url: str | None) -> str:
    """Flask-Limiter's storage: Redis through `RequestWindowsRedisStorage`, else process memory.
    A socket path (redis-py's `unix://`) is `redis+unix://` to the limits library."""
    if not redis_url:
        return "memory://"
    return WINDOW_SCHEME + ("redis+" + redis_url if redis_url.startswith("unix://") else redis_url)


def _failed(response: Response) -> bool:
    return response.status_code == 401


def install_limiter(app: Flask, settings: Settings, *, general: Blueprint, exempt: list[Blueprint]) -> Limiter:
    """Create the app's limiter, put the general limit on `general`, and bind declared view limits.

    Call after every blueprint is registered. The client address is `request.remote_addr`, which
    ProxyFix rewrites only for the configured number of trusted proxies (TRUSTED_PROXIES); an
    IPv6 client is counted by its /64 (`client_network`).
    """
    unrouted = f"{general.name}.<no route>"  # the identity of a request under `general` that no route serves
    under_general = _under(general.url_prefix or "/")
    limiter = Limiter(
        key_func=client_network,
        app=app,
        # Flask-Limiter leaves requests without an endpoint alone; those under `general` get one
        request_identifier=lambda: request.endpoint or (unrouted if under_general(request.path) else ""),
    )
    # A CORS preflight does no work and answers before any check; counted, it would halve the
    # budget of every browser client calling the API from another origin.
    limiter.request_filter(lambda: request.method == "OPTIONS")
    quiet = list(exempt)  # blueprints whose undeclared endpoints no limit reaches
    if is_on(settings.rate_limits.general):
        # one window per address for the whole of `general` (API.md), not one per endpoint: a
        # blueprint limit that is not shared counts each endpoint apart
        limiter.shared_limit(settings.rate_limits.general, scope="general")(general)
        _count_unrouted(app, limiter, settings.rate_limits.general, under_general)
    else:
        quiet.append(general)
    for blueprint in exempt:
        limiter.exempt(blueprint)
    decorated = set()
    for endpoint, view in list(app.view_functions.items()):
        limited: Any = view
        for name, failures_only, methods in getattr(view, MARK, []):
            value = getattr(settings.rate_limits, name)
            if is_on(value):
                # one window per address and limit, shared by every view declaring it (the API's
                # login and the sign-in page spend the same five failures), not one per endpoint
                limited = limiter.shared_limit(
                    value, scope=name, deduct_when=_failed if failures_only else None, override_defaults=False, methods=methods
                )(limited)
                decorated.add(endpoint)
        app.view_functions[endpoint] = limited
    app_wide = _app_wide_limits(app)
    unlimited = frozenset() if app_wide else _unlimited_endpoints(app, quiet)
    app.extensions[UNLIMITED] = unlimited
    # Before the view, Flask-Limiter evaluates only application-wide, default and blueprint limits;
    # for a view it decorated it leaves the blueprint's (the general limit) and its own to the
    # decorator, which runs them all. With no application-wide limit, its before-request
    # evaluation of such a view finds nothing (yet resolves it, a tenth of a sign-in's own work).
    _quiet_on(app, limiter, unlimited, frozenset() if app_wide else frozenset(decorated))
    return limiter


def _under(prefix: str) -> Callable[[str], bool]:
    """Whether a path is `prefix` or below it (every path for "/")."""
    base = prefix.rstrip("/")
    return lambda path: path == base or path.startswith(base + "/")


def _count_unrouted(app: Flask, limiter: Limiter, limit: str, under_general: Callable[[str], bool]) -> None:
    """Requests under the general blueprint's prefix that match none of its routes (a 404, or a
    405 for a method its route does not take) count against the general window too: API.md limits
    all of /api, and a scanner's guesses are requests like any other. They belong to no blueprint,
    so the blueprint's limit does not reach them; the same shared limit, asked before the error
    is answered, shares its window."""

    @limiter.shared_limit(limit, scope="general")
    def general_window() -> None:
        return None

    @app.before_request
    def count_unrouted() -> None:
        if request.endpoint is None and under_general(request.path):
            general_window()


def _app_wide_limits(app: Flask) -> bool:
    """Whether limits are set for the whole app (none are by this service; Flask-Limiter's own settings)."""
    return any(app.config.get(name) for name in ("RATELIMIT_DEFAULT", "RATELIMIT_APPLICATION", "RATELIMIT_META"))


def _unlimited_endpoints(app: Flask, exempt: list[Blueprint]) -> frozenset[str]:
    """Endpoints no limit can apply to: views that declare none, on an exempt top-level blueprint
    (or the general one while its limit is off), the app setting no default or application-wide limits."""
    names = {name for name, blueprint in app.blueprints.items() if blueprint in exempt and "." not in name}
    return frozenset(
        endpoint for endpoint, view in app.view_functions.items()
        if endpoint.partition(".")[0] in names and "." in endpoint and not getattr(view, MARK, [])
    )


def _quiet_on(app: Flask, limiter: Limiter, endpoints: Collection[str], decorated: Collection[str]) -> None:
    """Flask-Limiter's request hooks run for every request, exempt or not: resolving that nothing
    applies, its per-request context and its headers cost more than some whole endpoints (the OAuth
    token, introspection and userinfo routes). For `endpoints` the hooks are skipped, for
    `decorated` the one before the view; every other request goes through them unchanged."""
    if not endpoints and not decorated:
        return

    def skipping(hook: Callable[..., Any], passthrough: bool, skipped: Collection[str]) -> Callable[..., Any]:
        @functools.wraps(hook)
        def hook_unless_unlimited(*args: Any) -> Any:
            if request.endpoint in skipped:
                return args[0] if passthrough else None
            return hook(*args)

        return hook_unless_unlimited

    def is_limiters(hook: Any) -> bool:
        owner = getattr(hook, "__self__", None)
        return owner is limiter or (isinstance(hook, functools.partial) and hook.args[:1] == (limiter,))

    before_view = frozenset(endpoints) | frozenset(decorated)
    registries: list[tuple[dict[Any, list[Any]], bool, Collection[str]]] = [
        (app.before_request_funcs, False, before_view), (app.after_request_funcs, True, endpoints), (app.teardown_request_funcs, False, endpoints)
    ]
    for registry, passthrough, skipped in registries:
        hooks = registry.get(None, [])
        registry[None] = [skipping(h, passthrough, skipped) if is_limiters(h) else h for h in hooks]


def is_on(limit: str) -> bool:
    """A limit set to "off" is not enforced (an operator's choice, e.g. for benchmarks; tests never do)."""
    return limit.strip().lower() != "off"
