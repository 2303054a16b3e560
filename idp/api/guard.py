"""Bearer authentication for API endpoints and the caller's client information."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar, overload

from flask import g, request

from idp.accounts.sessions import BearerIdentity
from idp.apikeys.service import ADMIN_SCOPE, KeyIdentity
from idp.apikeys.service import KEY_MARK as API_KEY_MARK
from idp.audit.service import ClientInfo
from idp.errors import Forbidden, ReauthenticationRequired, Unauthorized
from idp.wiring import api_key_service, components, session_service

F = TypeVar("F", bound=Callable[..., Any])
BEARER_MARK = "_idp_bearer"


@dataclass(frozen=True)
class BearerRequirement:
    """What `require_bearer` asks of a request, kept on the view for the OpenAPI document."""

    scope: str | None  # the API-key scope that admits a key too; None: access tokens only


def client_info() -> ClientInfo:
    """The caller's address (after trusted proxies only) and user agent."""
    return ClientInfo(ip_address=request.remote_addr, user_agent=request.headers.get("User-Agent"))


def bearer_token() -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def presented_api_key() -> str | None:
    """An API key in `X-API-Key`, or one sent as a bearer token (`Authorization: Bearer pk_...`)."""
    key = request.headers.get("X-API-Key", "").strip()
    if key:
        return key
    token = bearer_token()
    return token if token is not None and token.startswith(API_KEY_MARK) else None


@overload
def require_bearer(view: F, /) -> F: ...
@overload
def require_bearer(*, scope: str) -> Callable[[F], F]: ...
def require_bearer(view: F | None = None, /, *, scope: str | None = None) -> F | Callable[[F], F]:
    """Refuse the request with 401 unless it carries a live access token or API key; sets `g.identity`.

    A user's access token works on every such endpoint. An API key works only where the endpoint
    declares a `scope` the key has (`*` covers all); on an endpoint that declares none (key
    management, sensitive changes) a key is refused with 403."""

    def decorate(view: F) -> F:
        @functools.wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            key = presented_api_key()
            if key is not None:
                g.identity = api_key_service().authenticate(key, scope=scope)
            else:
                token = bearer_token()
                if token is None:
                    raise Unauthorized()  # API.md: the same words as for a bad token, as the old service said
                g.identity = session_service().authenticate_bearer(token)
            return view(*args, **kwargs)

        setattr(wrapper, BEARER_MARK, BearerRequirement(scope))
        return wrapper  # type: ignore[return-value]

    return decorate(view) if view is not None else decorate


def require_admin(view: F) -> F:
    """Administrators only: an admin's access token, or an API key with the `admin` scope whose
    owner is (still) an administrator. Anyone else gets 403, without learning more."""

    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if not identity().user.is_admin:
            raise Forbidden("Administrator access required")
        return view(*args, **kwargs)

    return require_bearer(scope=ADMIN_SCOPE)(wrapper)  # type: ignore[return-value]


def identity() -> BearerIdentity | KeyIdentity:
    """Who the request is from: a user's access token, or an API key acting for its owner."""
    return g.identity


def token_identity() -> BearerIdentity:
    """The caller's access token identity, for what only a signed-in user may do (never a key)."""
    found = g.identity
    if not isinstance(found, BearerIdentity):
        raise Forbidden("API keys cannot be used for this endpoint")
    return found


def _ensure_recent_auth() -> None:
    auth_time = token_identity().claims.auth_time or 0
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
