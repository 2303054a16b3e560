"""Rate limits of the JSON API (API.md), read from settings so tests and operators set them."""

from __future__ import annotations

from collections.abc import Callable

from flask import Response

from idp.extensions import limiter
from idp.wiring import components


def _setting(name: str) -> Callable[[], str]:
    return lambda: getattr(components().settings.rate_limits, name)


def _failed_login(response: Response) -> bool:
    return response.status_code == 401


general = limiter.shared_limit(_setting("general"), scope="general")
login_per_ip = limiter.limit(_setting("login"), deduct_when=_failed_login, override_defaults=False)
register_per_ip = limiter.limit(_setting("register"), override_defaults=False)
