"""Bearer authentication for API endpoints and the caller's client information."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from typing import Any, TypeVar

from flask import g, request

from idp.accounts.sessions import BearerIdentity
from idp.audit.service import ClientInfo
from idp.errors import ReauthenticationRequired, Unauthorized
from idp.wiring import components, session_service

F = TypeVar("F", bound=Callable[..., Any])


def client_info() -> ClientInfo:
    """The caller's address (after trusted proxies only) and user agent."""
    return ClientInfo(ip_address=request.remote_addr, user_agent=request.headers.get("User-Agent"))


def bearer_token() -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def require_bearer(view: F) -> F:
    """Refuse the request with 401 unless it carries a live access token; sets `g.identity`."""

    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        token = bearer_token()
        if token is None:
            raise Unauthorized("Authentication required")
        g.identity = session_service().authenticate_bearer(token)
        return view(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def identity() -> BearerIdentity:
    return g.identity


def _ensure_recent_auth() -> None:
    auth_time = identity().claims.auth_time or 0
    if time.time() - auth_time > components().settings.reauth_window:
        raise ReauthenticationRequired()


def require_recent_auth(view: F) -> F:
    """Sensitive changes need a sign-in within REAUTH_WINDOW_SECONDS (after `require_bearer`)."""

    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        _ensure_recent_auth()
        return view(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def require_recent_auth_once_protected(view: F) -> F:
    """Like `require_recent_auth`, for changes that are sensitive only once 2FA is on: adding the
    first factor is not, but replacing one (and its backup codes) is."""

    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if identity().user.two_factor_enabled:
            _ensure_recent_auth()
        return view(*args, **kwargs)

    return wrapper  # type: ignore[return-value]
