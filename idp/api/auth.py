"""`/auth`: registration, login, refresh, logout, the current user and their sessions."""

from __future__ import annotations

import math
from typing import Any

from flask import Blueprint, Response, request

from idp.accounts.sessions import IssuedTokens
from idp.api.envelope import json_body, ok, parse
from idp.api.guard import bearer_token, client_info, identity, require_bearer
from idp.api.schemas import ChangePasswordRequest, LoginRequest, RefreshRequest, RegisterRequest
from idp.api.users import session_view, user_profile, user_registered, user_summary
from idp.clock import utcnow
from idp.errors import DomainError, InvalidRefreshToken
from idp.ratelimits import rate_limited
from idp.security.tokens import InvalidAccessToken
from idp.wiring import account_service, components, session_service

bp = Blueprint("auth", __name__, url_prefix="/auth")

REFRESH_COOKIE = "refreshToken"


def _cookie_path() -> str:
    return components().settings.api_base_path + "/auth"


def _with_refresh_cookie(response: Response, tokens: IssuedTokens) -> Response:
    settings = components().settings
    # the family's absolute lifetime does not grow with rotation, and neither does the cookie's
    remaining = math.ceil((tokens.refresh_expires_at - utcnow()).total_seconds())
    response.set_cookie(
        REFRESH_COOKIE,
        tokens.refresh_token,
        max_age=remaining,
        httponly=True,
        secure=settings.secure_cookies,
        samesite="Strict",
        path=_cookie_path(),
    )
    return response


def _signed_in(body: dict[str, Any], tokens: IssuedTokens, *, status: int = 200, message: str | None = None) -> Response:
    body["accessToken"] = tokens.access_token
    return _with_refresh_cookie(ok(body, status=status, message=message), tokens)


@bp.post("/register")
@rate_limited("register")
def register() -> Response:
    data = parse(RegisterRequest)
    client = client_info()
    user = account_service().register(email=data.email, username=data.username, password=data.password, client=client)
    tokens = session_service().start(user, client=client, amr=["pwd"])
    return _signed_in({"user": user_registered(user)}, tokens, status=201)


@bp.post("/login")
@rate_limited("login", failures_only=True)
def login() -> Response:
    data = parse(LoginRequest)
    client = client_info()
    accounts = account_service()
    user = accounts.authenticate(data.email_or_username, data.password, client=client)
    accounts.record_login(user, client=client)
    tokens = session_service().start(user, client=client, amr=["pwd"])
    return _signed_in({"user": user_summary(user)}, tokens)


@bp.post("/refresh")
def refresh() -> Response:
    token = request.cookies.get(REFRESH_COOKIE) or parse(RefreshRequest).refresh_token
    if not token:
        raise InvalidRefreshToken("Refresh token required")
    tokens = session_service().refresh(token, client=client_info())
    return _signed_in({}, tokens)


@bp.post("/logout")
def logout() -> Response:
    token = request.cookies.get(REFRESH_COOKIE) or _refresh_token_in_body()
    bearer_sid = None
    if access := bearer_token():
        try:
            bearer_sid = components().tokens.verify(access).sid
        except InvalidAccessToken:
            bearer_sid = None
    session_service().logout(refresh_token=token, bearer_session_id=bearer_sid, client=client_info())
    response = ok(message="Logged out")
    response.delete_cookie(REFRESH_COOKIE, path=_cookie_path(), httponly=True, samesite="Strict", secure=components().settings.secure_cookies)
    return response


def _refresh_token_in_body() -> str | None:
    """Logout always succeeds, so a body it cannot read is simply ignored."""
    try:
        value = json_body().get("refreshToken")
    except DomainError:
        return None
    return value if isinstance(value, str) else None


@bp.get("/me")
@require_bearer
def me() -> Response:
    return ok({"user": user_profile(identity().user)})


@bp.post("/revoke-sessions")
@require_bearer
def revoke_sessions() -> Response:
    count = session_service().revoke_all(identity().user.id, reason="revoked_by_user", client=client_info())
    return ok({"revoked": count}, message="All sessions revoked")


@bp.get("/sessions")
@require_bearer
def sessions() -> Response:
    current = identity().claims.sid
    return ok({"sessions": [session_view(s, current) for s in session_service().active(identity().user.id)]})


@bp.delete("/sessions/<session_id>")
@require_bearer
def delete_session(session_id: str) -> Response:
    session_service().revoke_one(identity().user.id, session_id, client=client_info())
    return ok(message="Session revoked")


@bp.post("/change-password")
@require_bearer
def change_password() -> Response:
    data = parse(ChangePasswordRequest)
    client = client_info()
    user = identity().user
    account_service().change_password(user, current_password=data.current_password, new_password=data.new_password, client=client)
    # Every session, this one included, was revoked; the caller continues in a fresh one.
    tokens = session_service().start(user, client=client, amr=["pwd"])
    return _signed_in({}, tokens, message="Password changed; every other session was signed out")
