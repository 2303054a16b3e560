"""Odd input on the hosted pages and the OAuth endpoints (SECURITY.md 25): a request holding the NUL
character, which no column can store (PostgreSQL refuses it), is a 400, never a 500."""

from __future__ import annotations

import base64

import pytest

from tests.oidc.conftest import Browser


def basic(client_id: str, secret: str = "secret") -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()}


@pytest.mark.parametrize("form", ["/login", "/forgot-password"])
def test_a_page_form_with_a_nul_character_is_refused(app, form):
    browser = Browser(app)
    browser.open(form)
    field = "identifier" if form == "/login" else "email"
    response = browser.submit(form, **{field: "alice\x00@example.com", "password": "x"})
    assert response.status_code == 400
    assert "no field may contain" in response.get_data(as_text=True)


@pytest.mark.parametrize(
    "url",
    [
        "/oauth/authorize?client_id=a%00b&response_type=code",
        "/oauth/authorize?client_id=x&response_type=code&redirect_uri=https%3A%2F%2Frp.example%2F%00",
        "/oauth/logout?client_id=a%00",
        "/login?login_hint=%00",
    ],
)
def test_a_page_address_with_a_nul_character_is_refused(app, url):
    assert app.test_client().get(url).status_code == 400


@pytest.mark.parametrize("endpoint", ["/oauth/token", "/oauth/introspect", "/oauth/revoke"])
def test_an_oauth_client_with_a_nul_character_gets_an_oauth_error(app, endpoint):
    client = app.test_client()
    form = {"grant_type": "client_credentials", "token": "t"}
    for answer in (
        client.post(endpoint, data={**form, "client_id": "a\x00b", "client_secret": "s"}),
        client.post(endpoint, data=form, headers=basic("a\x00b")),
        client.post(endpoint, data=form, headers=basic("a%00b")),  # client ids are form-encoded in Basic (RFC 6749 2.3.1)
    ):
        assert answer.status_code == 400
        assert answer.json == {"error": "invalid_request", "error_description": "A parameter holds the NUL character"}


def test_ordinary_requests_pass(app, api):
    api.register("alice")
    browser = Browser(app)
    browser.open("/login")
    assert browser.sign_in("alice").status_code in (200, 302)
    assert app.test_client().post("/oauth/token", data={"grant_type": "client_credentials"}, headers=basic("nobody")).status_code == 401
