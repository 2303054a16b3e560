"""Odd input that fuzzing the OpenAPI document turned up: a 4xx in the envelope, never a 500 and
never a value the document calls invalid let through."""

from __future__ import annotations

import sys

import pytest

from idp.api.envelope import without_nul
from idp.errors import ValidationFailed


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/api/auth/login", {"emailOrUsername": "alice\x00", "password": "x"}, "emailOrUsername"),
        ("/api/auth/password-reset/request", {"email": "alice\x00@example.com"}, "email"),
        ("/api/auth/register", {"email": "a@example.com", "username": "alice", "password": "Correct-Horse-9!\x00"}, "password"),
    ],
)
def test_a_nul_character_in_a_body_is_a_validation_failure(api, path, body, field):
    """PostgreSQL stores no U+0000: such text is refused up front, not sent to the database."""
    response = api.client.post(path, json=body)
    assert response.status_code == 400, response.json
    assert response.json["code"] == "validation_failed"
    assert response.json["errors"] == [f"{field}: must not contain the NUL character"]


def test_a_nul_character_deep_in_a_body_is_named_by_its_place(api):
    body = {"name": "ok", "scopes": ["*", "user:read\x00"]}
    response = api.client.post("/api/api-keys", headers=api.bearer(api.token("alice")), json=body)
    assert response.status_code == 400
    assert response.json["errors"] == ["scopes.1: must not contain the NUL character"]


@pytest.mark.parametrize(
    ("method", "path"), [("delete", "/api/auth/sessions/%00"), ("get", "/api/api-keys/a%00b"), ("delete", "/api/2fa/devices/%00")]
)
def test_a_nul_character_in_a_path_is_not_found(api, method, path):
    response = getattr(api.client, method)(path, headers=api.bearer(api.token("alice")))
    assert response.status_code == 404
    assert response.json == {"success": False, "message": "Route not found", "code": "not_found"}


def test_a_whole_number_written_with_a_fraction_is_that_number(api):
    """JSON Schema counts 5.0 as an integer; "5", true and 5.5 are still refused."""
    headers = api.bearer(api.token("alice"))
    created = api.client.post("/api/api-keys", headers=headers, json={"name": "k", "scopes": ["*"], "rateLimit": 5.0})
    assert created.status_code == 201 and created.json["data"]["apiKey"]["rateLimit"] == 5
    for odd in ("5", True, 5.5):
        refused = api.client.post("/api/api-keys", headers=headers, json={"name": "k", "scopes": ["*"], "rateLimit": odd})
        assert refused.status_code == 400 and refused.json["errors"][0].startswith("rateLimit:"), odd


def test_a_phone_number_takes_ascii_digits_only(api):
    """The document's [0-9]: a Unicode digit such as U+0663 (Arabic-Indic three) is not E.164."""
    token = api.verified_token("alice")
    response = api.client.post("/api/2fa/sms/setup", headers=api.bearer(token), json={"phoneNumber": "+1415555012\u0663"})
    assert response.status_code == 400
    assert response.json["errors"][0].startswith("phoneNumber:")


@pytest.mark.parametrize("path", ["/api/auth/login", "/api/auth/register", "/api/2fa/verify", "/api/auth/password-reset/request"])
def test_json_nested_deeper_than_the_parser_goes_is_malformed(api, path):
    """30,000 brackets fit in the size limit; the parser gives up with a RecursionError, which is
    the client's malformed body, not a 500."""
    response = api.client.post(path, data="[" * 30_000 + "]" * 30_000, content_type="application/json")
    assert response.status_code == 400, response.json
    assert response.json["code"] == "invalid_json"


def test_a_body_nested_deeper_than_the_call_stack_is_checked_without_recursion():
    """The NUL check walks the body with its own stack: on Python 3.11 the parser gives up first,
    but a parser with a larger limit (3.12's) hands over bodies deeper than the call stack."""
    body: object = "x\x00"
    for _ in range(5 * sys.getrecursionlimit()):
        body = [body]
    with pytest.raises(ValidationFailed) as refused:
        without_nul({"extra": body})
    assert refused.value.errors == ["extra" + ".0" * (5 * sys.getrecursionlimit()) + ": must not contain the NUL character"]


def test_logout_with_a_body_too_deep_to_read_still_succeeds(api):
    response = api.client.post("/api/auth/logout", data="[" * 30_000 + "]" * 30_000, content_type="application/json")
    assert response.status_code == 200, response.json


def test_a_session_cookie_that_decodes_to_nul_is_refused_not_a_500(app):
    """A quoted cookie value's octal escape is plain ASCII on the wire, and Werkzeug reads `\\000`
    as U+0000: the sign-in cookie and the refresh cookie reached PostgreSQL with it (a 500)."""
    token = "0" * 35 + "\\000." + "A" * 64
    for path in ("/account", "/login", "/account/two-factor"):
        page = app.test_client(use_cookies=False).get(path, headers={"Cookie": f'idp_sso="{token}"'})
        assert page.status_code in (200, 302), (path, page.status_code)
    refresh = app.test_client(use_cookies=False).post("/api/auth/refresh", headers={"Cookie": f'refreshToken="{token}"'})
    assert refresh.status_code == 401 and refresh.json["code"] == "invalid_refresh_token"
