"""Response policies for every route: security headers, caching of API answers, CORS."""

from __future__ import annotations

import time

from flask import Flask, Response, g, request
from flask_cors import CORS

from idp.config import Settings

PAGE_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
)
API_CSP = "default-src 'none'; frame-ancestors 'none'"


def register_http_policies(app: Flask, settings: Settings) -> None:
    api_prefix = settings.api_base_path

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
    api_headers = [("Content-Security-Policy", API_CSP), ("Cache-Control", "no-store"), *common]
    json_headers = [("Content-Security-Policy", API_CSP), *common]
    page_headers = [("Content-Security-Policy", PAGE_CSP), *common]

    @app.after_request
    def security_headers(response: Response) -> Response:
        headers = response.headers
        if request.path.startswith(api_prefix):
            chosen = api_headers
        else:
            chosen = json_headers if response.is_json else page_headers
        for name, value in chosen:
            if name not in headers:
                headers[name] = value
        if "form_targets" in g and "Content-Security-Policy" in headers:
            # A form here may end at a relying party (consent, sign-in, logout confirmation), and
            # browsers apply form-action to the redirects that follow a submission.
            widened = " ".join(["form-action 'self'", *sorted(g.form_targets)])
            headers["Content-Security-Policy"] = headers["Content-Security-Policy"].replace("form-action 'self'", widened)
        if "retry_after" in g:  # a service's own limit (cooldowns, per-account caps) knows better
            headers["Retry-After"] = str(g.retry_after)
        if reset := headers.get("RateLimit-Reset"):
            # Flask-Limiter sends the epoch second; the IETF draft (and the old service) send seconds to wait
            headers["RateLimit-Reset"] = str(max(0, int(float(reset)) - int(time.time())))
        return response
