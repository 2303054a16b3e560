"""Malformed input on every surface (SECURITY.md 25): the OAuth endpoints answer RFC 6749/6750 errors
(a JSON body from those a program calls; a redirect to a registered redirect URI or an error page
from the authorization endpoint), the hosted pages a readable page, the API its envelope. Never a
500, never a traceback. PostgreSQL only: it is the backend that refuses what SQLite would store."""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import quote

import pytest
from flask import Flask
from werkzeug.test import TestResponse

from tests.conftest import Api
from tests.oidc.conftest import POST_LOGOUT_URI, REDIRECT_URI, Browser, RelyingParty, hidden_fields

# percent-encoded as a client would send them; werkzeug decodes invalid UTF-8 leniently
VALUES = {
    "lone-surrogate": "%ED%B2%80",
    "invalid-utf8": "%FF%FE",
    "huge": "x" * 60_000,
    "negative": "-1",
    "huge-number": "9" * 40,
    "empty": "",
    "non-ascii": "%C3%A9%E2%80%AE",
    "quote-backslash": "%22%5C",
    "controls": "%01%1B%7F",
    "crlf": "a%0D%0Ab",
    "other-digits": "%D9%A1%D9%A2%D9%A3%D9%A4%D9%A5%D9%A6",
}
FORM = "application/x-www-form-urlencoded"
BODIES = [  # (content type, body) that no endpoint reads as what it expects
    ("application/json", b'{"token": "\\ud800", "grant_type": ["client_credentials"]}'),
    ("application/json", b"\xff\xfe"),
    (FORM, b"token=%ff&grant_type=\xff"),
    ("multipart/form-data", b"garbage"),
    ("multipart/form-data; boundary=zz", b'--zz\r\nContent-Disposition: form-data; name="token"\r\n\r\n\xff\r\n--zz--\r\n'),
    (None, b"grant_type=client_credentials"),
    ("text/plain; charset=bogus", b"token=x"),
]
HEADERS = [
    {"Authorization": "Bearer \xe9\xff"},
    {"Authorization": "Bearer " + "a" * 20_000},
    {"Authorization": "Bearer"},
    {"Authorization": "Basic !!!"},
    {"Authorization": "Basic " + base64.b64encode(b"%ED%B2%80:%FF").decode()},
    {"Authorization": "Basic " + base64.b64encode(b"no-colon").decode()},
    {"Cookie": "idp_sso=\xe9\xff; session=\xe9; refreshToken=\xe9; deviceToken=\xe9"},
    {"Cookie": 'idp_sso="\\377\\376"; refreshToken="\\355\\262\\200"'},
    {"Cookie": "session=garbage.garbage.garbage"},
    {"Accept-Language": "\xe9\xff;q=abc, *;q=-1"},
    {"Host": "\xe9.example"},
]
Sent = Callable[..., TestResponse]


@pytest.fixture
def backend() -> str:
    return "postgres"


def query(base: dict[str, str], name: str, value: str) -> str:
    """`base` with `name` set to the raw (already percent-encoded) `value`."""
    parts = [f"{k}={quote(v, safe='')}" for k, v in base.items() if k != name]
    return "&".join([*parts, f"{name}={value}"])


def cases(base: dict[str, str], names: list[str]) -> Iterator[tuple[str, str]]:
    """(label, query) for each parameter given each bad value, and each given twice."""
    for name in names:
        for label, value in VALUES.items():
            yield f"{name}={label}", query(base, name, value)
        yield f"{name} twice", query(base, name, "a") + f"&{name}=b"


def assert_oauth_json(label: str, response: TestResponse, statuses: set[int]) -> None:
    assert response.status_code in statuses, (label, response.status_code, response.get_data(as_text=True)[:300])
    if response.status_code >= 400:
        assert response.is_json and isinstance(response.json["error"], str), (label, response.get_data(as_text=True)[:300])


def assert_page(label: str, response: TestResponse, statuses: set[int]) -> None:
    assert response.status_code in statuses, (label, response.status_code, response.get_data(as_text=True)[:300])
    if response.status_code >= 400:
        assert response.mimetype == "text/html" and "Traceback" not in response.get_data(as_text=True), label


@pytest.fixture
def signed_in(rp: RelyingParty, browser: Browser, alice: dict[str, Any]) -> dict[str, Any]:
    """alice signed in at the provider, with the relying party's tokens."""
    return rp.log_in(browser)


def test_the_token_introspection_and_revocation_endpoints(app: Flask, rp: RelyingParty, signed_in: dict[str, Any]) -> None:
    client = app.test_client()
    auth = {"Authorization": "Basic " + base64.b64encode(f"{rp.client_id}:{rp.registered['clientSecret']}".encode()).decode()}
    grants = {
        "authorization_code": {"grant_type": "authorization_code", "code": "c", "redirect_uri": REDIRECT_URI, "code_verifier": "v" * 43},
        "refresh_token": {"grant_type": "refresh_token", "refresh_token": "r", "scope": "openid"},
    }
    for grant, base in grants.items():
        for label, body in cases(base, [*base, "client_id", "client_secret"]):
            assert_oauth_json(f"{grant} {label}", client.post("/oauth/token", data=body, content_type=FORM, headers=auth), {400, 401})
    for endpoint in ("/oauth/introspect", "/oauth/revoke"):
        for label, body in cases({"token": "t", "token_type_hint": "access_token"}, ["token", "token_type_hint", "client_id"]):
            assert_oauth_json(f"{endpoint} {label}", client.post(endpoint, data=body, content_type=FORM, headers=auth), {200, 400, 401})
    for endpoint in ("/oauth/token", "/oauth/introspect", "/oauth/revoke", "/oauth/userinfo"):
        for content_type, raw in BODIES:
            answer = client.post(endpoint, data=raw, content_type=content_type, headers=auth)
            assert_oauth_json(f"{endpoint} {content_type} {raw[:12]!r}", answer, {200, 400, 401})
        for headers in HEADERS:
            assert_oauth_json(f"{endpoint} {headers}", client.post(endpoint, data={"token": "t"}, headers=headers), {400, 401})
        assert_oauth_json(f"{endpoint} PROPFIND", client.open(endpoint, method="PROPFIND"), {405})
    # the relying party's session is untouched: its refresh token still works
    assert client.post("/oauth/token", data={"grant_type": "refresh_token", "refresh_token": signed_in["refresh_token"]}, headers=auth).status_code == 200


def test_the_authorization_endpoint(app: Flask, rp: RelyingParty, browser: Browser, signed_in: dict[str, Any]) -> None:
    """A redirect to the client's registered URI carrying an error, or to the sign-in page; else the
    error page. The signed-in browser and one without a sign-in."""
    base = {"client_id": rp.client_id, "response_type": "code", "redirect_uri": REDIRECT_URI, "scope": "openid profile",
            "state": "s", "nonce": "n", "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM", "code_challenge_method": "S256"}
    names = [*base, "prompt", "max_age", "login_hint", "id_token_hint", "ui_locales", "acr_values", "response_mode", "authz"]
    for who, client in (("signed in", browser.client), ("anonymous", app.test_client())):
        for label, params in cases(base, names):
            for answer in (client.get("/oauth/authorize?" + params), client.post("/oauth/authorize", data=params, content_type=FORM)):
                assert_page(f"{who} {label}", answer, {200, 302, 400})
                if answer.status_code == 302:
                    location = answer.headers["Location"]
                    assert location.startswith((REDIRECT_URI + "?", "/login")), (who, label, location)


def test_the_logout_endpoint(app: Flask, rp: RelyingParty, signed_in: dict[str, Any]) -> None:
    base = {"id_token_hint": signed_in["id_token"], "post_logout_redirect_uri": POST_LOGOUT_URI, "state": "s", "client_id": rp.client_id}
    client = app.test_client()
    for label, params in cases(base, [*base, "ui_locales", "logout_hint", "confirm"]):
        for answer in (client.get("/oauth/logout?" + params), client.post("/oauth/logout", data=params, content_type=FORM)):
            assert_page(label, answer, {200, 302, 400})
            if answer.status_code == 302:
                assert answer.headers["Location"].startswith(POST_LOGOUT_URI), (label, answer.headers["Location"])
    for hint in (signed_in["access_token"], signed_in["refresh_token"], "a.b.c", "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0."):
        assert_page(hint[:12], client.get("/oauth/logout", query_string={"id_token_hint": hint}), {200, 400})


def test_the_userinfo_endpoint(app: Flask) -> None:
    client = app.test_client()
    for label, value in VALUES.items():
        for answer in (client.get(f"/oauth/userinfo?access_token={value}"), client.post("/oauth/userinfo", data=f"access_token={value}", content_type=FORM)):
            assert_oauth_json(label, answer, {401})
            assert answer.headers["WWW-Authenticate"].startswith('Bearer realm="userinfo"'), label


PAGE_FORMS = {
    "/login": ["identifier", "password", "next", "login_hint"],
    "/register": ["email", "username", "password", "next"],
    "/forgot-password": ["email", "next"],
    "/reset-password": ["token", "password"],
    "/verify-email": ["token"],
    "/login/two-factor": ["code", "method", "trust_device"],
    "/login/enrol": ["action", "secret", "next"],
    "/account/password": ["current_password", "new_password", "confirm_password"],
    "/account/confirm-password": ["password", "next"],
    "/account/two-factor/sms": ["phoneNumber", "code"],
    "/account/two-factor/totp": ["code", "secret"],
    "/account/activity": ["page"],
}


def test_the_hosted_pages(app: Flask, api: Api) -> None:
    """Forms posted with a valid CSRF token and bad fields, and the same fields in the query: a page
    (possibly with the form's errors), a redirect, or an error page."""
    api.register("alice")
    browser = Browser(app)
    browser.open("/login")
    browser.sign_in("alice")
    browser.open("/account/password")
    csrf = hidden_fields(browser.html)["csrf_token"]
    anonymous = app.test_client()
    for page, fields in PAGE_FORMS.items():
        for label, params in cases({}, fields):
            for who, client in (("signed in", browser.client), ("anonymous", anonymous)):
                assert_page(f"{who} GET {page} {label}", client.get(f"{page}?{params}"), {200, 302, 400, 403, 405})
                posted = client.post(page, data=f"csrf_token={quote(csrf)}&{params}", content_type=FORM)
                assert_page(f"{who} POST {page} {label}", posted, {200, 302, 400, 401, 403, 404, 405, 409, 422})
        for headers in HEADERS:
            assert_page(f"{page} {headers}", anonymous.get(page, headers=headers), {200, 302, 400})
    assert_page("signed in", browser.client.get("/account"), {200})  # nothing above ended the sign-in


def test_the_api(app: Flask, api: Api) -> None:
    """Bodies of the wrong kind, bad credentials and cookies: the envelope's 4xx."""
    token = api.token("alice")
    client = app.test_client(use_cookies=False)  # no refresh cookie: /api/auth/refresh reads the body
    routes = [("post", "/api/auth/login"), ("post", "/api/auth/refresh"), ("post", "/api/2fa/verify"), ("post", "/api/api-keys"),
              ("patch", "/api/api-keys/x"), ("post", "/api/webhooks"), ("post", "/api/auth/change-password")]
    for method, path in routes:
        for content_type, raw in BODIES:
            answer = client.open(path, method=method.upper(), data=raw, content_type=content_type, headers=api.bearer(token))
            assert 400 <= answer.status_code < 500 and answer.json["success"] is False, (path, content_type, raw[:12], answer.status_code)
    for path in ("/api/auth/me", "/api/auth/sessions", "/api/api-keys", "/api/admin/users"):
        for headers in HEADERS:
            answer = client.get(path, headers=headers)
            assert answer.status_code in (400, 401), (path, headers, answer.status_code)
            assert answer.json["success"] is False and answer.json["code"], (path, headers)
        for label, value in VALUES.items():
            answer = client.get(f"{path}?page={value}&limit={value}", headers=api.bearer(token))
            assert answer.status_code in (200, 400, 403), (path, label, answer.status_code)
            assert answer.json["success"] is (answer.status_code == 200), (path, label)
    assert client.get("/api/auth/me", headers=api.bearer(token)).status_code == 200  # the session is still good
