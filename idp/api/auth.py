"""`/auth`: registration, login, refresh, logout, the current user and their sessions."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, Response, request

from idp.accounts.sessions import IssuedTokens
from idp.api.cookies import DEVICE_COOKIE, REFRESH_COOKIE, clear_refresh_cookie, presented_device_token, set_refresh_cookie
from idp.api.documented import documented
from idp.api.envelope import json_body, ok, parse
from idp.api.guard import bearer_token, client_info, identity, require_bearer, require_recent_auth, token_identity
from idp.api.responses import AccessToken, Me, Registered, SessionList, SessionsRevoked, SignedIn, TwoFactorRequired
from idp.api.schemas import (
    ChangePasswordRequest,
    LoginRequest,
    PasswordResetConfirm,
    PasswordResetRequest,
    RefreshRequest,
    RegisterRequest,
)
from idp.api.users import session_view, user_profile, user_registered, user_summary
from idp.errors import DomainError, InvalidRefreshToken
from idp.ratelimits import rate_limited
from idp.wiring import account_service, login_flow, metrics, recovery, request_password_reset, session_service

bp = Blueprint("auth", __name__, url_prefix="/auth")


def signed_in(
    body: dict[str, Any], tokens: IssuedTokens, *, status: int = 200, message: str | None = None, grant: str = "api_login"
) -> Response:
    """A success answer carrying the access token, with the refresh cookie set (counted under `grant`)."""
    metrics().tokens_issued(grant)
    body["accessToken"] = tokens.access_token
    response = ok(body, status=status, message=message)
    set_refresh_cookie(response, tokens)
    return response


@bp.post("/register")
@documented(request=RegisterRequest, responses={201: Registered}, errors={409: "The email or username is taken"})
@rate_limited("register")
def register() -> Response:
    data = parse(RegisterRequest)
    client = client_info()
    user = account_service().register(email=data.email, username=data.username, password=data.password, client=client)
    tokens = session_service().start(user, client=client, amr=["pwd"])
    return signed_in({"user": user_registered(user)}, tokens, status=201)


@bp.post("/login")
@documented(
    request=LoginRequest,
    responses={200: SignedIn | TwoFactorRequired},
    errors={401: "Invalid credentials (or a disabled account, after a correct password)"},
    cookies={DEVICE_COOKIE: "A trusted-device token, when `deviceToken` is not in the body (`__Host-deviceToken` over HTTPS)"},
)
def login() -> Response:
    data = parse(LoginRequest)
    device_token = data.device_token or presented_device_token()
    outcome = login_flow().with_password(data.email_or_username, data.password, device_token=device_token, client=client_info())
    if outcome.challenge is not None:
        challenge = outcome.challenge
        return ok(
            {
                "requiresTwoFactor": True,
                "tempToken": challenge.temp_token,
                "methods": challenge.methods,
                "expiresIn": challenge.expires_in,
                "codeSentBy": challenge.code_sent_by,
            }
        )
    assert outcome.session is not None
    return signed_in({"user": user_summary(outcome.user)}, outcome.session)


@bp.post("/refresh")
@documented(
    request=RefreshRequest,
    responses={200: AccessToken},
    errors={401: "No refresh token, or an unknown, expired or revoked one (a reused one ends its session)"},
    cookies={REFRESH_COOKIE: "The refresh token (else `refreshToken` in the body)"},
)
def refresh() -> Response:
    token = request.cookies.get(REFRESH_COOKIE) or parse(RefreshRequest).refresh_token
    if not token:
        raise InvalidRefreshToken("Refresh token required")
    tokens = session_service().refresh(token, client=client_info())
    return signed_in({}, tokens, grant="api_refresh")


@bp.post("/logout")
@documented(responses={200: None}, optional_bearer=True, cookies={REFRESH_COOKIE: "The refresh token of the session to end"})
def logout() -> Response:
    """End the session of the refresh token (the cookie, else `refreshToken` in the body) and the
    bearer token's; always 200."""
    token = request.cookies.get(REFRESH_COOKIE) or _refresh_token_in_body()
    session_service().logout(refresh_token=token, access_token=bearer_token(), client=client_info())
    response = ok(message="Logged out")
    clear_refresh_cookie(response)
    return response


def _refresh_token_in_body() -> str | None:
    """Logout always succeeds, so a body it cannot read is simply ignored."""
    try:
        value = json_body().get("refreshToken")
    except DomainError:
        return None
    return value if isinstance(value, str) else None


@bp.post("/password-reset/request")
@documented(request=PasswordResetRequest, responses={200: None})
def password_reset_request() -> Response:
    data = parse(PasswordResetRequest)
    request_password_reset(data.email, client_info())
    return ok(message="If an account uses this address, a reset link is on its way")


@bp.post("/password-reset/confirm")
@documented(request=PasswordResetConfirm, responses={200: None}, errors={400: "An invalid or expired token, or a refused password"})
def password_reset_confirm() -> Response:
    data = parse(PasswordResetConfirm)
    recovery().reset_password(data.token, data.new_password, client=client_info())
    return ok(message="Password changed; sign in with the new password")


@bp.get("/me")
@documented(responses={200: Me})
@require_bearer(scope="user:read")
def me() -> Response:
    return ok({"user": user_profile(identity().user)})


@bp.post("/revoke-sessions")
@documented(responses={200: SessionsRevoked})
@require_bearer
def revoke_sessions() -> Response:
    count = session_service().revoke_all(identity().user.id, reason="revoked_by_user", client=client_info())
    return ok({"revoked": count}, message="All sessions revoked")


@bp.get("/sessions")
@documented(responses={200: SessionList})
@require_bearer
def sessions() -> Response:
    current = token_identity().claims.sid
    return ok({"sessions": [session_view(s, current) for s in session_service().active(identity().user.id)]})


@bp.delete("/sessions/<session_id>")
@documented(responses={200: None})
@require_bearer
def delete_session(session_id: str) -> Response:
    session_service().revoke_one(identity().user.id, session_id, client=client_info())
    return ok(message="Session revoked")


@bp.post("/change-password")
@documented(
    request=ChangePasswordRequest,
    responses={200: AccessToken},
    errors={400: "The current password is wrong, or the new one is refused", 403: "The sign-in is older than REAUTH_WINDOW_SECONDS (`reauthentication_required`)"},
)
@require_bearer
@require_recent_auth
def change_password() -> Response:
    data = parse(ChangePasswordRequest)
    client = client_info()
    caller = token_identity()
    user = caller.user
    account_service().change_password(user, current_password=data.current_password, new_password=data.new_password, client=client)
    # Every session, this one included, was revoked; the caller continues in a fresh one, with the
    # sign-in's own time and factors (as the account pages do): a second factor passed at sign-in
    # still counts, and a new password does not make an old sign-in recent.
    claims = caller.claims
    signed_in_at = datetime.fromtimestamp(claims.auth_time, UTC) if claims.auth_time is not None else None
    tokens = session_service().start(user, client=client, amr=claims.amr, auth_time=signed_in_at)
    return signed_in({}, tokens, message="Password changed; every other session was signed out")
