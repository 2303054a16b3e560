"""/metrics: who may read it, and what HTTP traffic looks like in it (route templates, never paths)."""

from __future__ import annotations

import uuid

from tests.conftest import Api
from tests.observability.conftest import parse_metrics, scrape, value

TOKEN = "metrics-token-" + "x" * 32


def test_metrics_are_served_to_anyone_when_no_token_is_set(client):
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/plain; version=")
    assert "# TYPE idp_http_request_duration_seconds histogram" in response.get_data(as_text=True)


def test_with_a_token_metrics_want_exactly_that_bearer_token(make_app):
    client = make_app(METRICS_TOKEN=TOKEN).test_client()
    refused = [
        client.get("/metrics"),
        client.get("/metrics", headers={"Authorization": "Bearer wrong"}),
        client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}x"}),
        client.get("/metrics", headers={"Authorization": f"Basic {TOKEN}"}),
        client.get("/metrics", headers={"Authorization": "Bearer tökén"}),
    ]
    assert [r.status_code for r in refused] == [401] * 5
    assert refused[0].headers["WWW-Authenticate"].startswith("Bearer")
    assert "idp_http_request_duration_seconds_count" not in refused[0].get_data(as_text=True)
    assert value(scrape(client, TOKEN), "idp_http_request_duration_seconds_count", route="/metrics", method="GET", status="401") == 5


def test_metrics_enabled_false_removes_the_route(make_app):
    assert make_app(METRICS_ENABLED="false").test_client().get("/metrics").status_code == 404


def test_requests_are_counted_and_timed_by_route_template_method_and_status(client):
    api = Api(client)
    token = api.token("alice")
    session_id = str(uuid.uuid4())
    assert client.delete(f"/api/auth/sessions/{session_id}", headers=api.bearer(token)).status_code == 404
    assert client.get("/no/such/page-" + session_id).status_code == 404
    assert client.get("/.well-known/jwks.json").status_code == 200  # answered before Flask
    client.open("/api/health", method="BREW")

    samples = scrape(client)
    assert value(samples, "idp_http_request_duration_seconds_count", route="/api/auth/register", method="POST", status="201") == 1
    assert value(samples, "idp_http_request_duration_seconds_count", route="/api/auth/sessions/<session_id>", method="DELETE", status="404") == 1
    assert value(samples, "idp_http_request_duration_seconds_count", route="unmatched", method="GET", status="404") == 1
    assert value(samples, "idp_http_request_duration_seconds_count", route="/.well-known/jwks.json", method="GET", status="200") == 1
    assert value(samples, "idp_http_request_duration_seconds_count", route="unmatched", method="other", status="405") == 1  # no rule for BREW
    assert value(samples, "idp_http_request_duration_seconds_sum", route="/api/auth/register", method="POST", status="201") > 0
    assert value(samples, "idp_http_request_duration_seconds_bucket", route="/api/auth/register", method="POST", status="201", le="+Inf") == 1
    assert not [labels for _, labels in samples if any(session_id in v for _, v in labels)], "a raw path became a label"


def test_refused_requests_are_counted_as_rate_limit_hits_by_route(make_app):
    api = Api(make_app(RATE_LIMIT_REGISTER="1 per hour").test_client())
    assert api.register("alice").status_code == 201
    assert api.register("bob").status_code == 429
    samples = parse_metrics(api.client.get("/metrics").get_data(as_text=True))
    assert value(samples, "idp_rate_limited_total", route="/api/auth/register") == 1
    assert value(samples, "idp_http_request_duration_seconds_count", route="/api/auth/register", method="POST", status="429") == 1


def test_a_response_carries_a_request_id(client):
    first, second = client.get("/api/health/live"), client.get("/api/health/live")
    assert len(first.headers["X-Request-ID"]) == 16 and first.headers["X-Request-ID"] != second.headers["X-Request-ID"]
