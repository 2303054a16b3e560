"""The browser's sign-in at the provider (SSO): its cookie, and where a sign-in continues afterwards."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from flask import Response, g, request
from flask import session as flask_session

from idp.accounts.sessions import BrowserSession
from idp.wiring import components, session_service

AUTHORIZE_PATH = "/oauth/authorize"


def sso_cookie_name() -> str:
    # __Host-: Secure, Path=/ and no Domain, so no sibling host can set or read it (needs HTTPS)
    return "__Host-idp_sso" if components().settings.secure_cookies else "idp_sso"


def current_browser_session() -> BrowserSession | None:
    """This request's browser session, looked up once per request."""
    if "browser_session" not in g:
        g.browser_session = session_service().browser_session(request.cookies.get(sso_cookie_name()))
    return g.browser_session


def set_sso_cookie(response: Response, value: str) -> None:
    """Lax, so it comes along when a relying party sends the browser here with a top-level GET."""
    settings = components().settings
    response.set_cookie(
        sso_cookie_name(),
        value,
        max_age=settings.browser_session_ttl,
        httponly=True,
        secure=settings.secure_cookies,
        samesite="Lax",
        path="/",
    )


def clear_sso_cookie(response: Response) -> None:
    settings = components().settings
    response.delete_cookie(sso_cookie_name(), path="/", httponly=True, secure=settings.secure_cookies, samesite="Lax")


ACCOUNT_PATH = "/account"


def safe_next(target: str | None) -> str | None:
    """Only ever continue to this provider's own authorization endpoint or account pages: no open
    redirects."""
    if not target:
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or "\\" in target or ".." in parts.path:
        return None
    if parts.path == AUTHORIZE_PATH or parts.path == ACCOUNT_PATH or parts.path.startswith(ACCOUNT_PATH + "/"):
        return target
    return None


def next_params(target: str | None) -> dict[str, str]:
    """The authorization request a sign-in continues, as single values."""
    if not target:
        return {}
    return {k: v[0] for k, v in parse_qs(urlsplit(target).query).items() if v}


def allow_form_target(uri: str | None) -> None:
    """Let this page's forms end at `uri`'s origin (an already validated redirect URI)."""
    if not uri:
        return
    parts = urlsplit(uri)
    if parts.scheme in ("http", "https") and parts.netloc:
        source = f"{parts.scheme}://{parts.netloc}"
    elif parts.scheme and not parts.netloc:
        source = f"{parts.scheme}:"  # a native app's private-use scheme (RFC 8252)
    else:
        return
    if not all(c.isalnum() or c in ":/.-[]_" for c in source):
        return  # never let a value break out of the policy
    g.form_targets = {*g.get("form_targets", set()), source}


def reset_browser_state(*, keep: tuple[str, ...] = ()) -> None:
    """A new sign-in starts a new Flask session (new CSRF token): no fixation across sign-ins.
    `keep` carries named values over (the authorization requests waiting for this sign-in)."""
    kept = {name: flask_session[name] for name in keep if name in flask_session}
    flask_session.clear()
    flask_session.update(kept)
