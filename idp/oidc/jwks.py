"""`/.well-known/jwks.json`, answered before Flask from pre-serialised bytes with an ETag.

The document changes only when keys rotate, yet verifiers fetch it constantly: a small WSGI layer
in front of the app serves it without routing, hooks or rate-limit bookkeeping (PERFORMANCE.md).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from flask import Flask

from idp.security.keys import KeyRing

JWKS_PATH = "/.well-known/jwks.json"
STATIC_HEADERS = [
    ("Content-Type", "application/jwk-set+json"),
    ("Cache-Control", "public, max-age=300"),
    ("Access-Control-Allow-Origin", "*"),
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'"),
    ("Referrer-Policy", "no-referrer"),
]


class JwksEndpoint:
    """WSGI middleware: GET/HEAD on the JWKS path is answered here, everything else goes on."""

    def __init__(self, app: Any, flask_app: Flask, keys: KeyRing) -> None:
        self._app = app
        self._flask_app = flask_app
        self._keys = keys

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        if environ.get("PATH_INFO") != JWKS_PATH or environ.get("REQUEST_METHOD") not in ("GET", "HEAD"):
            return self._app(environ, start_response)
        snapshot = self._keys.cached()
        if snapshot is None:  # first request, or the cache is due: reading keys needs the app context
            with self._flask_app.app_context():
                snapshot = self._keys.snapshot()
        headers = [*STATIC_HEADERS, ("ETag", snapshot.etag)]
        if snapshot.etag in environ.get("HTTP_IF_NONE_MATCH", ""):
            start_response("304 Not Modified", headers)
            return [b""]
        body = b"" if environ["REQUEST_METHOD"] == "HEAD" else snapshot.jwks_body
        start_response("200 OK", [*headers, ("Content-Length", str(len(snapshot.jwks_body)))])
        return [body]
