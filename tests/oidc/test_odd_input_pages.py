"""Odd input on the hosted pages and the OAuth endpoints (SECURITY.md 25): a request holding the NUL
character, which no column can store (PostgreSQL refuses it), is a 400, never a 500."""

from __future__ import annotations

import base64
from urllib.parse import parse_qs, urlsplit

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


def test_max_age_in_other_digits_is_an_invalid_request(rp, browser, alice):
    """"²" is a digit to str.isdigit, not to int(): a redirected invalid_request, not a 500."""
    rp.log_in(browser)
    for max_age in ("\u00b2", "\u0661\u0662"):
        response = browser.open(rp.authorization_url(max_age=max_age))
        assert response.status_code == 302
        assert parse_qs(urlsplit(response.headers["Location"]).query)["error"] == ["invalid_request"]
    huge = browser.open(rp.authorization_url(max_age="9" * 5000))  # more digits than int() converts
    assert "code" in rp.callback(huge)


def test_a_nonce_longer_than_a_code_keeps_is_an_invalid_request(rp, browser, alice):
    rp.log_in(browser)
    response = browser.open(rp.authorization_url(nonce="n" * 501))
    assert response.status_code == 302
    assert parse_qs(urlsplit(response.headers["Location"]).query)["error"] == ["invalid_request"]
    assert "code" in rp.callback(browser.open(rp.authorization_url(nonce="n" * 500)))


def test_a_scope_repeated_is_granted_once(rp, browser, alice):
    rp.log_in(browser)
    code = rp.callback(browser.open(rp.authorization_url(scope=" ".join(["openid"] * 120 + ["profile"] * 3))))["code"]
    assert rp.exchange(code)["scope"] == "openid profile"


@pytest.mark.parametrize("endpoint", ["/oauth/token", "/oauth/introspect", "/oauth/revoke"])
def test_basic_credentials_that_are_not_text_name_no_client(app, endpoint):
    header = {"Authorization": "Basic " + base64.b64encode(b"\xff\xfe:\xff").decode()}
    answer = app.test_client().post(endpoint, data={"grant_type": "client_credentials", "token": "t"}, headers=header)
    assert answer.status_code == 401
    assert answer.json["error"] == "invalid_client"


ERROR_CHARACTERS_OUTSIDE = ['code"', "c\u00f6de", "code\r\n", "co\\de", "code\x01"]  # RFC 6749 4.1.2.1: %x20-21 / %x23-5B / %x5D-7E


@pytest.mark.parametrize("response_type", ERROR_CHARACTERS_OUTSIDE)
def test_a_response_type_outside_the_error_characters_is_unsupported(rp, browser, response_type):
    """Authlib put the requested type in its error's description, which its own errors refuse to
    hold outside RFC 6749's error characters: a ValueError, a 500. It is an unsupported type like
    any other: sent back to a registered redirect URI, else the error page."""
    url = rp.authorization_url(response_type=response_type)
    result = rp.callback(browser.open(url))
    assert result["error"] == "unsupported_response_type" and result["state"] == rp.state
    unregistered = browser.open(url.replace("callback", "elsewhere"))
    assert unregistered.status_code == 400 and "unsupported_response_type" in browser.html


@pytest.mark.parametrize("suffix", ERROR_CHARACTERS_OUTSIDE)
def test_an_unregistered_redirect_uri_outside_the_error_characters_gets_the_error_page(rp, browser, suffix):
    """The same for a redirect URI that is not registered, which Authlib quoted in its description."""
    response = browser.open(rp.authorization_url(redirect_uri="https://rp.example/callback" + suffix))
    assert response.status_code == 400 and "Location" not in response.headers
    assert "The redirect URI is not registered for this client" in browser.html
