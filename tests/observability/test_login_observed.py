"""A sign-in as operators see it: counted in /metrics, told in the JSON log line by line, one request id per request."""

from __future__ import annotations

import json
from typing import Any

import pyotp
import pytest

from tests.conftest import Api
from tests.observability.conftest import capturing_logs, scrape, value
from tests.oidc.conftest import Browser, RelyingParty
from tests.oidc.test_clients import create
from tests.oidc.test_token_endpoint import ISSUER, client_for

PROXY_ID = "edge-7f3a.req:42"


@pytest.fixture
def api(make_app) -> Api:
    return Api(make_app(LOG_FORMAT="json").test_client())


def test_a_login_with_totp_is_counted_and_logged_as_it_happened(api):
    token = api.verified_token("alice")
    secret, _ = api.enable_totp(token)
    with capturing_logs() as logs:
        password_step = api.login("alice")
        temp_token = password_step.json["data"]["tempToken"]
        wrong = api.client.post("/api/2fa/verify", json={"tempToken": temp_token, "code": "000000" if pyotp.TOTP(secret).now() != "000000" else "111111"})
        verified = api.client.post("/api/2fa/verify", json={"tempToken": temp_token, "code": pyotp.TOTP(secret).now()})
    assert (password_step.status_code, wrong.status_code, verified.status_code) == (200, 400, 200)

    samples = scrape(api.client)
    assert value(samples, "idp_logins_total", method="totp", outcome="success") == 1
    assert value(samples, "idp_second_factor_total", method="totp", outcome="success") == 1
    assert value(samples, "idp_second_factor_total", method="code", outcome="failed") == 1
    assert value(samples, "idp_tokens_issued_total", grant="api_login") == 2  # registration, then this login
    assert value(samples, "idp_http_request_duration_seconds_count", route="/api/2fa/verify", method="POST", status="200") == 1

    records = logs.records()
    assert all({"timestamp", "level", "logger", "message", "request_id", "service"} <= r.keys() for r in records)
    ids = [r.headers["X-Request-ID"] for r in (password_step, wrong, verified)]
    assert len(set(ids)) == 3
    assert {r["request_id"] for r in records} == set(ids), "every line of a request carries its id, and only its id"
    told = [(r["request_id"], r["logger"], r.get("event") or r.get("route"), r.get("method"), r.get("status")) for r in records]
    assert told == [
        (ids[0], "idp.access", "/api/auth/login", "POST", 200),
        (ids[1], "idp.audit", "2fa_failed", "code", None),
        (ids[1], "idp.access", "/api/2fa/verify", "POST", 400),
        (ids[2], "idp.audit", "2fa_verified", "totp", None),
        (ids[2], "idp.audit", "login_success", "totp", None),
        (ids[2], "idp.access", "/api/2fa/verify", "POST", 200),
    ]
    [success] = [r for r in records if r.get("event") == "login_success"]
    assert success["user_id"] == verified.json["data"]["user"]["id"] and success["success"] is True and success["level"] == "INFO"
    [failure] = [r for r in records if r.get("event") == "2fa_failed"]
    assert failure["success"] is False and failure["level"] == "WARNING"
    access = records[-1]
    assert access["duration_ms"] > 0 and access["path"] == "/api/2fa/verify" and "remote_addr" in access


def test_refreshes_and_grants_without_an_audit_event_are_counted_too(api):
    api.token("alice")
    assert api.client.post("/api/auth/refresh").status_code == 200
    app = api.client.application
    rp = RelyingParty(app, create(app, "--name", "Notes", "--redirect-uri", "https://rp.example/callback", "--scope", "openid",
                                  "--scope", "offline_access"))
    code_flow = rp.log_in(Browser(app), scope="openid offline_access", prompt="consent")
    rp.oauth.refresh_token(f"{ISSUER}/oauth/token", refresh_token=code_flow["refresh_token"])
    service = create(app, "--name", "Reports", "--grant", "client_credentials", "--scope", "openid")
    client_for(app, service).fetch_token(f"{ISSUER}/oauth/token", grant_type="client_credentials")

    samples = scrape(api.client)
    counted = {grant: value(samples, "idp_tokens_issued_total", grant=grant) for grant in
               ("api_login", "api_refresh", "authorization_code", "refresh_token", "client_credentials")}
    assert counted == {"api_login": 1, "api_refresh": 1, "authorization_code": 1, "refresh_token": 1, "client_credentials": 1}
    assert value(samples, "idp_logins_total", method="pwd", outcome="success") == 1  # the hosted pages' sign-in


def test_a_wrong_password_is_a_failed_login(api):
    api.token("alice")
    assert api.login("alice", "Wrong-Horse-9!").status_code == 401
    assert value(scrape(api.client), "idp_logins_total", method="pwd", outcome="failure") == 1


def _ids(app: Any, offered: str) -> tuple[str, list[str]]:
    with capturing_logs() as logs:
        response = app.test_client().get("/api/health/live", headers={"X-Request-ID": offered})
    return response.headers["X-Request-ID"], [r["request_id"] for r in logs.records()]


def test_a_forwarded_request_id_is_kept_only_behind_trusted_proxies_and_only_when_sane(make_app):
    direct = make_app(LOG_FORMAT="json")
    answered, logged = _ids(direct, PROXY_ID)
    assert answered != PROXY_ID and logged == [answered], "a client cannot choose its request id"

    proxied = make_app(LOG_FORMAT="json", TRUSTED_PROXIES="1")
    assert _ids(proxied, PROXY_ID) == (PROXY_ID, [PROXY_ID])
    for insane in ("x" * 129, "id with spaces", 'quote"d', "-leading-dash", "line\\nbreak"):
        answered, logged = _ids(proxied, insane)
        assert answered != insane and len(answered) == 16 and logged == [answered], insane


def test_text_logs_name_the_request_too(make_app):
    app = make_app(LOG_FORMAT="text")
    with capturing_logs() as logs:
        response = app.test_client().get("/api/health/live")
    [line] = logs.lines
    assert f" INFO idp.access [{response.headers['X-Request-ID']}] GET /api/health/live 200 " in line


def test_the_access_line_scrubs_what_the_client_chose(make_app):
    """The access line skips the handler's filter, so it scrubs its own client-supplied texts: a
    secret in the path (a token a client put where it does not belong), in a forwarded address."""
    token = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJlLW9mLXRoZS10b2tlbg"
    random_secret = "Xk3-9fQ_2mZ8pLr4TnW6yHc1vBd7sGe0aJu5oKi2"
    app = make_app(LOG_FORMAT="json", TRUSTED_PROXIES="1")
    with capturing_logs() as logs:
        missing = app.test_client().get(f"/api/users/{token}/x", headers={"X-Forwarded-For": random_secret})
    assert missing.status_code == 404
    [line] = [r for r in logs.records() if r["logger"] == "idp.access"]
    assert token not in json.dumps(line) and random_secret not in json.dumps(line)
    assert line["path"] == "/api/users/[REDACTED]/x" and line["remote_addr"] == "[REDACTED]"
    assert (line["method"], line["status"], line["message"]) == ("GET", 404, f"GET {line['route']} 404 {line['duration_ms']:.2f}ms")
    assert not any(name.startswith("_") for name in line), "the scrubbed mark is not a field"


def test_the_audit_line_scrubs_its_details(make_app):
    """Audit lines also skip the handler's filter (one per sign-in): the details they carry are
    scrubbed where the line is made, so a secret-shaped value never reaches the log."""
    from idp.audit.service import RecordedEvent
    from idp.clock import utcnow
    from idp.observability.audit import AuditLogLines

    token = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJlLW9mLXRoZS10b2tlbg"
    make_app(LOG_FORMAT="json")
    event = RecordedEvent("token_issued", "user-1", True, None, None, {"clientId": token, "grantType": "refresh_token"}, utcnow())
    with capturing_logs() as logs:
        AuditLogLines().observe(event)
    [line] = [r for r in logs.records() if r["logger"] == "idp.audit"]
    assert token not in json.dumps(line)
    assert (line["client_id"], line["grant"], line["user_id"]) == ("[REDACTED]", "refresh_token", "user-1")
    assert line["message"] == "audit token_issued user_id=user-1 success=True grant=refresh_token client_id=[REDACTED]"
    assert not any(name.startswith("_") for name in line), "the scrubbed mark is not a field"
