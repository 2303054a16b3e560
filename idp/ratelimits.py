"""Rate limiting (Flask-Limiter): one limiter per app, limits from settings, storage in Redis or memory.

Views declare which limit they fall under with `@rate_limited(name)`; `install_limiter` binds the
declared limits to the app's own limiter, so two apps in one process never share limiter state.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from flask import Blueprint, Flask, Response
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address

from idp.config import Settings

F = TypeVar("F", bound=Callable[..., Any])
MARK = "_idp_rate_limits"


def rate_limited(name: str, *, failures_only: bool = False, methods: list[str] | None = None) -> Callable[[F], F]:
    """Declare that a view counts against the named limit of `Settings.rate_limits`.

    With `failures_only`, only answers of 401 use up the limit (failed logins); `methods` limits
    only those methods (a page's GET is free, its POST counts).
    """

    def mark(view: F) -> F:
        setattr(view, MARK, [*getattr(view, MARK, []), (name, failures_only, methods)])
        return view

    return mark


def _failed(response: Response) -> bool:
    return response.status_code == 401


def install_limiter(app: Flask, settings: Settings, *, general: Blueprint, exempt: list[Blueprint]) -> Limiter:
    """Create the app's limiter, put the general limit on `general`, and bind declared view limits.

    Call after every blueprint is registered. The client address is `request.remote_addr`, which
    ProxyFix rewrites only for the configured number of trusted proxies (TRUSTED_PROXIES).
    """
    limiter = Limiter(key_func=get_remote_address, app=app)
    if is_on(settings.rate_limits.general):
        limiter.limit(settings.rate_limits.general, scope="general")(general)
    for blueprint in exempt:
        limiter.exempt(blueprint)
    for endpoint, view in list(app.view_functions.items()):
        limited: Any = view
        for name, failures_only, methods in getattr(view, MARK, []):
            value = getattr(settings.rate_limits, name)
            if is_on(value):
                limited = limiter.limit(
                    value, deduct_when=_failed if failures_only else None, override_defaults=False, methods=methods
                )(limited)
        app.view_functions[endpoint] = limited
    return limiter


def is_on(limit: str) -> bool:
    """A limit set to "off" is not enforced (an operator's choice, e.g. for benchmarks; tests never do)."""
    return limit.strip().lower() != "off"
