"""Response policies for every route: security headers, caching of API answers, CORS; and the
cookie session's signing serializer, built once instead of on every request."""

from __future__ import annotations

import time
from typing import Any

from flask import Flask, Response, g, request
from flask.sessions import SecureCookieSessionInterface
from flask_cors import CORS
from itsdangerous import URLSafeTimedSerializer

from idp.config import Settings

PAGE_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
)
API_CSP = "default-src 'none'; frame-ancestors 'none'"


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


def register_http_policies(app: Flask, settings: Settings) -> None:
    api_prefix = settings.api_base_path
    app.session_interface = CookieSessions()

    if settings.cors_origins:
        CORS(
            app,
            # the API, and what a browser-based relying party (a public client) calls itself
            resources={
                path: {"origins": list(settings.cors_origins)}
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
    ]
    if not settings.is_development:
        common.append(("Strict-Transport-Security", "max-age=63072000; includeSubDomains"))

    def lowered(pairs: list[tuple[str, str]]) -> list[tuple[str, str, str]]:
        return [(name, name.lower(), value) for name, value in pairs]

    api_headers = lowered([("Content-Security-Policy", API_CSP), ("Cache-Control", "no-store"), *common])
    json_headers = lowered([("Content-Security-Policy", API_CSP), *common])
    page_headers = lowered([("Content-Security-Policy", PAGE_CSP), *common])

    @app.after_request
    def security_headers(response: Response) -> Response:
        headers = response.headers
        if request.path.startswith(api_prefix):
            chosen = api_headers
        else:
            chosen = json_headers if response.is_json else page_headers
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
        if "ratelimit-reset" in present and (reset := headers.get("RateLimit-Reset")):
            # Flask-Limiter sends the epoch second; the IETF draft (and the old service) send seconds to wait
            headers["RateLimit-Reset"] = str(max(0, int(float(reset)) - int(time.time())))
        return response
