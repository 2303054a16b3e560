"""Security headers on every response, CORS from CORS_ORIGINS, cookies Secure outside development."""

from __future__ import annotations

import re

import pytest

from idp.wiring import components

STRONG_SECRET = "k3Jd9Qm2Xv7Lp4Zr8Tn1Wc6Hy5Bf0Gs_a-strong-one"


@pytest.mark.parametrize("path", ["/api/health", "/api/auth/me", "/api/nowhere", "/.well-known/jwks.json", "/"])
def test_security_headers_on_every_response(client, path):
    headers = client.get(path).headers
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["X-Frame-Options"] == "DENY"
    assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
    assert headers["Referrer-Policy"] == "no-referrer"


def test_api_answers_are_not_cached(api):
    response = api.register("alice")
    assert response.headers["Cache-Control"] == "no-store"


def test_pages_are_not_stored_and_assets_may_be(app, api):
    """A page may carry a TOTP key or backup codes (the enrolment at sign-in sent no Cache-Control),
    or someone's sessions: no cache keeps any page. CSS and scripts stay cacheable."""
    import pyotp

    from tests.oidc.conftest import Browser

    api.verified_token("alice")
    browser = Browser(app)
    assert browser.open("/login").headers["Cache-Control"] == "no-store"
    browser.sign_in()
    key_page = browser.open("/login/enrol")
    secret = "".join(re.findall(r"<span>([A-Z2-7]{1,4})</span>", browser.html))
    codes_page = browser.submit("/login/enrol", code=pyotp.TOTP(secret).now())
    assert "Save your backup codes" in browser.html
    assert key_page.headers["Cache-Control"] == codes_page.headers["Cache-Control"] == "no-store"
    assert browser.open("/account").headers["Cache-Control"] == "no-store"
    assert app.test_client().get("/static/site.css").headers.get("Cache-Control") != "no-store"


def test_pages_forbid_inline_script(client):
    csp = client.get("/").headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp


def test_cors_allows_only_configured_origins_with_credentials(make_app):
    client = make_app(CORS_ORIGINS="https://app.example.com,https://admin.example.com").test_client()
    allowed = client.options(
        "/api/auth/login", headers={"Origin": "https://app.example.com", "Access-Control-Request-Method": "POST"}
    )
    assert allowed.headers["Access-Control-Allow-Origin"] == "https://app.example.com"
    assert allowed.headers["Access-Control-Allow-Credentials"] == "true"
    other = client.post("/api/auth/login", json={}, headers={"Origin": "https://evil.example"})
    assert "Access-Control-Allow-Origin" not in other.headers


def test_cors_origins_are_matched_exactly_and_patterns_refused(make_app):
    """flask-cors read an entry holding "*" or "[" as a regular expression: "*" echoed any origin
    with credentials allowed, an IPv6 origin never matched, and a trailing slash matched nothing."""
    from idp.config import ConfigError

    client = make_app(CORS_ORIGINS=" https://App.example.com/ , http://[::1]:3000").test_client()
    for origin, allowed in (
        ("https://app.example.com", True), ("http://[::1]:3000", True), ("https://app.example.com.evil.example", False),
        ("https://appxexample.com", False), ("http://[::1]:30001", False),
    ):
        answer = client.get("/api/health/live", headers={"Origin": origin})
        assert (answer.headers.get("Access-Control-Allow-Origin") == origin) is allowed, origin
    for pattern in ("*", "https://*.example.com", "app.example.com"):
        with pytest.raises(ConfigError, match="CORS_ORIGINS"):
            make_app(CORS_ORIGINS=pattern)


def test_cors_covers_what_a_browser_relying_party_calls_and_not_the_pages(make_app):
    client = make_app(CORS_ORIGINS="https://spa.example").test_client()
    for path in ("/oauth/token", "/oauth/userinfo", "/oauth/revoke"):
        preflight = client.options(path, headers={"Origin": "https://spa.example", "Access-Control-Request-Method": "POST"})
        assert preflight.headers["Access-Control-Allow-Origin"] == "https://spa.example", path
    page = client.get("/login", headers={"Origin": "https://spa.example"})
    assert "Access-Control-Allow-Origin" not in page.headers


def test_no_cors_headers_without_cors_origins(client):
    response = client.get("/api/health", headers={"Origin": "https://app.example.com"})
    assert "Access-Control-Allow-Origin" not in response.headers


def test_production_cookies_are_secure_and_hsts_is_sent(make_app, app):
    with app.app_context():
        keys = ",".join(components().settings.encryption_keys)
    production = make_app(IDP_ENV="production", SECRET_KEY=STRONG_SECRET, ENCRYPTION_KEYS=keys)

    @production.get("/touch-session")
    def touch_session():
        from flask import session

        session["seen"] = True
        return "ok"
    from tests.conftest import Api

    response = Api(production.test_client()).register("alice")
    assert response.status_code == 201
    cookie = response.headers["Set-Cookie"]
    assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/api/auth" in cookie
    assert response.headers["Strict-Transport-Security"].startswith("max-age=")
    for path in ("/.well-known/jwks.json", "/.well-known/openid-configuration", "/nowhere"):  # answered before Flask too
        for answer in (production.test_client().get(path), production.test_client().post(path)):
            assert answer.headers["Strict-Transport-Security"].startswith("max-age="), (path, answer.status_code)

    page_cookie = production.test_client().get("/touch-session").headers["Set-Cookie"]
    assert page_cookie.startswith("__Host-idp_session=") and "Secure" in page_cookie and "Path=/;" in page_cookie
    assert "HttpOnly" in page_cookie and "SameSite=Lax" in page_cookie


def test_development_cookies_work_over_plain_http(api):
    assert "Secure" not in api.register("alice").headers["Set-Cookie"]
    assert "Strict-Transport-Security" not in api.client.get("/.well-known/jwks.json").headers
