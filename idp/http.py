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
            resources={f"{api_prefix}/*": {"origins": list(settings.cors_origins)}},
            supports_credentials=True,
            expose_headers=["RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset", "Retry-After"],
            max_age=600,
        )

    @app.after_request
    def security_headers(response: Response) -> Response:
        headers = response.headers
        is_api = request.path.startswith(api_prefix)
        headers.setdefault("Content-Security-Policy", API_CSP if is_api or response.is_json else PAGE_CSP)
        headers.setdefault("X-Content-Type-Options", "nosniff")
        headers.setdefault("X-Frame-Options", "DENY")
        headers.setdefault("Referrer-Policy", "no-referrer")
        headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
        headers.setdefault("Permissions-Policy", "camera=(), microphone=(), geolocation=(), interest-cohort=()")
        if not settings.is_development:
            headers.setdefault("Strict-Transport-Security", "max-age=63072000; includeSubDomains")
        if is_api:
            headers.setdefault("Cache-Control", "no-store")
        if "retry_after" in g:  # a service's own limit (cooldowns, per-account caps) knows better
            headers["Retry-After"] = str(g.retry_after)
        if reset := headers.get("RateLimit-Reset"):
            # Flask-Limiter sends the epoch second; the IETF draft (and the old service) send seconds to wait
            headers["RateLimit-Reset"] = str(max(0, int(float(reset)) - int(time.time())))
        return response
