"""`/.well-known/jwks.json` and `/.well-known/openid-configuration`, answered before Flask from
pre-serialised bytes with an ETag.

Both documents change rarely (the JWKS when keys rotate, the metadata never while the app runs),
yet verifiers fetch them constantly: a small WSGI layer in front of the app serves them without
routing, hooks or rate-limit bookkeeping (PERFORMANCE.md).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from flask import Flask

from idp.oidc.discovery import DISCOVERY_PATH, JWKS_PATH, StaticDocument
from idp.security.keys import KeyRing

COMMON_HEADERS = [
    ("Cache-Control", "public, max-age=300"),
    ("Access-Control-Allow-Origin", "*"),
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'"),
    ("Referrer-Policy", "no-referrer"),
]
JWKS_HEADERS = [("Content-Type", "application/jwk-set+json"), *COMMON_HEADERS]
METADATA_HEADERS = [("Content-Type", "application/json"), *COMMON_HEADERS]
# Any other method on either path: RFC 9110 15.5.6's 405 naming the methods taken, in the JSON a
# program reads (as the OAuth endpoints answer, idp.errors.oauth_failure)
NOT_ALLOWED_BODY = b'{"error":"invalid_request","error_description":"Method not allowed"}'
NOT_ALLOWED_HEADERS = [
    ("Content-Type", "application/json"),
    ("Allow", "GET, HEAD"),
    ("Content-Length", str(len(NOT_ALLOWED_BODY))),
    *(header for header in COMMON_HEADERS if header[0] != "Cache-Control"),
]


class WellKnownDocuments:
    """WSGI middleware: GET/HEAD on the two well-known paths are answered here, everything else goes on."""

    def __init__(
        self, app: Any, flask_app: Flask, keys: KeyRing, metadata: StaticDocument, *, also: Sequence[tuple[str, str]] = ()
    ) -> None:
        """`also`: headers every answer here carries besides its own (HSTS in production)."""
        self._app = app
        self._flask_app = flask_app
        self._keys = keys
        self._metadata = metadata
        self._jwks_headers = [*JWKS_HEADERS, *also]
        self._metadata_headers = [*METADATA_HEADERS, *also]
        self._not_allowed_headers = [*NOT_ALLOWED_HEADERS, *also]

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        path = environ.get("PATH_INFO")
        if path not in (JWKS_PATH, DISCOVERY_PATH):
            return self._app(environ, start_response)
        if environ.get("REQUEST_METHOD") not in ("GET", "HEAD"):
            start_response("405 Method Not Allowed", self._not_allowed_headers)
            return [NOT_ALLOWED_BODY]
        if path == DISCOVERY_PATH:
            return self._answer(environ, start_response, self._metadata_headers, self._metadata.body, self._metadata.etag)
        snapshot = self._keys.cached()
        if snapshot is None:  # first request, or the cache is due: reading keys needs the app context
            with self._flask_app.app_context():
                snapshot = self._keys.snapshot()
        return self._answer(environ, start_response, self._jwks_headers, snapshot.jwks_body, snapshot.etag)

    @staticmethod
    def _answer(environ: dict[str, Any], start_response: Any, static: list[tuple[str, str]], body: bytes, etag: str) -> Iterable[bytes]:
        headers = [*static, ("ETag", etag)]
        if etag in environ.get("HTTP_IF_NONE_MATCH", ""):
            start_response("304 Not Modified", headers)
            return [b""]
        start_response("200 OK", [*headers, ("Content-Length", str(len(body)))])
        return [b"" if environ["REQUEST_METHOD"] == "HEAD" else body]
