"""GET /metrics in Prometheus' text format; with METRICS_TOKEN, only for `Authorization: Bearer <token>`."""

from __future__ import annotations

import hmac

from flask import Flask, Response, request
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.registry import CollectorRegistry

METRICS_PATH = "/metrics"


def presented_token_is(expected: str, authorization: str | None) -> bool:
    scheme, _, presented = (authorization or "").partition(" ")
    # compared in constant time, and as bytes: compare_digest refuses non-ASCII str
    return scheme.lower() == "bearer" and hmac.compare_digest(presented.strip().encode(), expected.encode())


def register_metrics_endpoint(app: Flask, registry: CollectorRegistry, *, token: str | None) -> None:
    def metrics() -> Response:
        if token is not None and not presented_token_is(token, request.headers.get("Authorization")):
            return Response(
                "Unauthorized\n", status=401, mimetype="text/plain", headers={"WWW-Authenticate": 'Bearer realm="metrics"'}
            )
        response = Response(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)
        response.headers["Cache-Control"] = "no-store"
        return response

    app.add_url_rule(METRICS_PATH, "metrics", metrics, methods=["GET"])
