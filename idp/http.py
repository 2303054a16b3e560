"""Request and response policies for every route: security headers, caching of API answers, CORS,
requests holding the NUL character refused; and the cookie session's signing serializer, built
once instead of on every request."""

from __future__ import annotations

import base64
import binascii
import re
import time
from typing import Any

from flask import Flask, Response, g, render_template, request
from flask.sessions import SecureCookieSessionInterface
from flask_babel import gettext as _
from flask_cors import CORS
from itsdangerous import URLSafeTimedSerializer
from werkzeug.middleware.proxy_fix import ProxyFix

from idp.config import BrandSettings, Settings
from idp.errors import OAUTH_JSON_ENDPOINTS, oauth_failure
from idp.ratelimits import LOGIN_WINDOW
from idp.web.branding import outside_origins

PAGE_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
)
PAGE_CSP_KEY = "idp.page_csp"  # app.extensions: this app's page policy (PAGE_CSP widened for its brand)


def page_csp(brand: BrandSettings) -> str:
    """PAGE_CSP, letting in the origins of a brand's logo and favicon (images) and stylesheet."""
    images, styles = outside_origins(brand.logo_url, brand.favicon_url), outside_origins(brand.stylesheet_url)
    policy = PAGE_CSP
    if images:
        policy = policy.replace("img-src 'self' data:", " ".join(["img-src 'self' data:", *images]))
    if styles:
        policy = policy.replace("style-src 'self'", " ".join(["style-src 'self'", *styles]))
    return policy
API_CSP = "default-src 'none'; frame-ancestors 'none'"
HSTS = ("Strict-Transport-Security", "max-age=63072000; includeSubDomains")


def transport_headers(settings: Settings) -> list[tuple[str, str]]:
    """HSTS in production, on every answer (idp.oidc.jwks's too, which are answered before Flask)."""
    return [] if settings.is_development else [HSTS]


def behind_proxies(wsgi_app: Any, hops: int) -> Any:
    """`wsgi_app` behind `hops` trusted proxies: ProxyFix believes that many hops of X-Forwarded-For
    and X-Forwarded-Proto, then a port forwarded with the client's address is dropped. Some proxies
    send `203.0.113.5:41234` or `[2001:db8::1]:41234` (Azure's Application Gateway among them): the
    client picks a new port with each connection, so counted with it every connection had a rate-limit
    budget of its own, and recorded with it (sessions, audit events, trusted devices) the address was
    not the one an administrator searches for, and an IPv6 one overflowed its column (a 500 on
    PostgreSQL at every sign-in)."""

    def without_port(environ: dict[str, Any], start_response: Any) -> Any:
        address = environ.get("REMOTE_ADDR")
        if address:
            environ["REMOTE_ADDR"] = _without_port(address)
        return wsgi_app(environ, start_response)

    return ProxyFix(without_port, x_for=hops, x_proto=hops)


def _without_port(address: str) -> str:
    if address.startswith("["):  # [IPv6]:port
        return address[1:].partition("]")[0]
    if address.count(":") == 1:  # IPv4:port (an IPv6 address has at least two colons)
        return address.partition(":")[0]
    return address


class CookieSessions(SecureCookieSessionInterface):
    """Flask's signed-cookie sessions, with the serializer kept while the keys stay the same
    (Flask builds a new one for every request, cookie or not)."""

    def __init__(self) -> None:
        self._serializer: tuple[tuple[Any, ...], URLSafeTimedSerializer | None] | None = None

    def get_signing_serializer(self, app: Flask) -> URLSafeTimedSerializer | None:
        keys = (app.secret_key, *(app.config.get("SECRET_KEY_FALLBACKS") or ()))
        cached = self._serializer
        if cached is not None and cached[0] == keys:
            return cached[1]
        serializer = super().get_signing_serializer(app)
        self._serializer = (keys, serializer)
        return serializer


FORM_TYPES = frozenset({"application/x-www-form-urlencoded", "multipart/form-data"})


def holds_nul() -> bool:
    """Whether a parameter of the request (query, path, form, HTTP Basic credentials) holds U+0000.
    No column stores it (PostgreSQL refuses it outright), so such a request can only be a mistake
    or a probe. The query is read as its raw, percent-encoded bytes; the form as parsed (by the CSRF
    check, or by the OAuth endpoint that reads it next)."""
    if b"%00" in request.query_string or "\x00" in request.path:
        return True
    if request.mimetype in FORM_TYPES and any("\x00" in key or "\x00" in value for key, value in request.form.items(multi=True)):
        return True
    credentials = request.headers.get("Authorization", "")
    if credentials[:6].lower() == "basic ":
        try:
            decoded = base64.b64decode(credentials[6:].strip(), validate=True)
        except (binascii.Error, ValueError):
            return False  # not Basic credentials at all: for the endpoint to refuse
        return b"\x00" in decoded or b"%00" in decoded
    return False


def register_http_policies(app: Flask, settings: Settings) -> None:
    api_prefix = settings.api_base_path
    app.session_interface = CookieSessions()

    @app.before_request
    def refuse_nul() -> Any:
        """The API refuses NUL field by field (idp/api/envelope.py); the pages and the OAuth
        endpoints refuse the whole request: 400, never the database's 500."""
        if request.path.startswith(api_prefix) or not holds_nul():
            return None
        if request.path in OAUTH_JSON_ENDPOINTS:
            return oauth_failure(400, "A parameter holds the NUL character")
        return render_template("error.html", status=400, message=_("This request holds a character that no field may contain.")), 400

    if settings.cors_origins:
        CORS(
            app,
            # the API, and what a browser-based relying party (a public client) calls itself
            resources={
                # as patterns matching each origin exactly: flask-cors reads a string holding "*",
                # "[" or "?" as a regular expression (an IPv6 origin "http://[::1]:3000" never matched)
                path: {"origins": [re.compile(re.escape(origin) + r"\Z", re.IGNORECASE) for origin in settings.cors_origins]}
                for path in (f"{api_prefix}/*", "/oauth/token", "/oauth/userinfo", "/oauth/revoke")
            },
            supports_credentials=True,
            expose_headers=["RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset", "Retry-After"],
            max_age=600,
        )

    common = [
        ("X-Content-Type-Options", "nosniff"),
        ("X-Frame-Options", "DENY"),
        ("Referrer-Policy", "no-referrer"),
        ("Cross-Origin-Opener-Policy", "same-origin"),
        ("Permissions-Policy", "camera=(), microphone=(), geolocation=(), interest-cohort=()"),
        *transport_headers(settings),
    ]

    def lowered(pairs: list[tuple[str, str]]) -> list[tuple[str, str, str]]:
        return [(name, name.lower(), value) for name, value in pairs]

    api_headers = lowered([("Content-Security-Policy", API_CSP), ("Cache-Control", "no-store"), *common])
    json_headers = lowered([("Content-Security-Policy", API_CSP), *common])
    # a hosted page is someone's (their sessions, a TOTP key, backup codes): no cache keeps it,
    # not the browser's on a shared computer, nor a proxy's; assets (CSS, scripts) stay cacheable
    csp = app.extensions[PAGE_CSP_KEY] = page_csp(settings.brand)
    page_headers = lowered([("Content-Security-Policy", csp), ("Cache-Control", "no-store"), *common])
    asset_headers = lowered([("Content-Security-Policy", csp), *common])

    @app.after_request
    def security_headers(response: Response) -> Response:
        headers = response.headers
        if request.path.startswith(api_prefix):
            chosen = api_headers
        else:
            chosen = json_headers if response.is_json else page_headers if response.mimetype == "text/html" else asset_headers
        present = {name.lower() for name, _ in headers.items()}  # one pass, not one scan per header
        for name, lower, value in chosen:
            if lower not in present:
                headers.add(name, value)
        if "form_targets" in g:  # every answer has a Content-Security-Policy by now
            # A form here may end at a relying party (consent, sign-in, logout confirmation), and
            # browsers apply form-action to the redirects that follow a submission.
            widened = " ".join(["form-action 'self'", *sorted(g.form_targets)])
            headers["Content-Security-Policy"] = headers["Content-Security-Policy"].replace("form-action 'self'", widened)
        if "retry_after" in g:  # a service's own limit (cooldowns, per-account caps) knows better
            headers["Retry-After"] = str(g.retry_after)
        if "refused_limit" in g:  # and the RateLimit headers are of the limit that refused, not the general one's
            refused = g.refused_limit
            headers["RateLimit-Remaining"], headers["RateLimit-Reset"] = "0", str(refused.retry_after)
            if refused.limit is not None:
                headers["RateLimit-Limit"] = str(refused.limit)
            else:
                headers.pop("RateLimit-Limit", None)
        elif LOGIN_WINDOW in g:  # a password check: its client network's sign-in window, not the general limit's
            window = g.get(LOGIN_WINDOW)
            headers["RateLimit-Limit"], headers["RateLimit-Remaining"] = str(window.limit), str(window.remaining)
            headers["RateLimit-Reset"] = str(window.resets_in(time.time()))
        elif "ratelimit-reset" in present and (reset := headers.get("RateLimit-Reset")):
            # Flask-Limiter sends the epoch second; the IETF draft (and the old service) send seconds to wait
            headers["RateLimit-Reset"] = str(max(0, int(float(reset)) - int(time.time())))
        if response.status_code not in (429, 503) and "retry-after" in present:
            # Flask-Limiter adds it to every answer; it means "wait before retrying" (RFC 9110), so a
            # 200 or a 401 carrying it would tell clients to wait 15 minutes for nothing
            del headers["Retry-After"]
        return response
