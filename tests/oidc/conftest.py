"""A relying party (Authlib's OAuth 2.0 client) and a browser (the Flask test client following the
hosted pages) for the OpenID Connect tests."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from html import unescape
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx2
import pyotp
import pytest
from authlib.common.security import generate_token
from authlib.integrations.httpx_client import OAuth2Client
from flask import Flask
from joserfc import jwt
from joserfc.jwk import KeySet

from tests.conftest import Api
from tests.oidc.test_clients import create

ISSUER = "http://localhost:3001"
REDIRECT_URI = "https://rp.example/callback"
POST_LOGOUT_URI = "https://rp.example/signed-out"
PASSWORD = Api.PASSWORD
INPUT = re.compile(r"<input\b[^>]*>", re.S)
ATTR = re.compile(r'(\w[\w-]*)="([^"]*)"')


def hidden_fields(html: str) -> dict[str, str]:
    """The hidden inputs of a page (CSRF token, carried parameters)."""
    fields = {}
    for tag in INPUT.findall(html):
        attrs = {k: unescape(v) for k, v in ATTR.findall(tag)}
        if attrs.get("type") == "hidden" and "name" in attrs:
            fields[attrs["name"]] = attrs.get("value", "")
    return fields


class Browser:
    """The hosted pages as a browser sees them: cookies kept, redirects on this host followed."""

    def __init__(self, app: Flask, *, base_url: str = "http://localhost") -> None:
        self.app = app
        self.client = app.test_client()
        self.base_url = base_url  # https:// for production apps, whose cookies are Secure
        self.page: Any = None

    def open(self, url: str, *, data: dict[str, str] | None = None) -> Any:
        """GET (or POST `data`) and follow redirects on this host; stops at a page or at a
        redirect elsewhere (the relying party), which is returned as the response."""
        parts = urlsplit(url)
        path = parts.path + ("?" + parts.query if parts.query else "")
        base = self.base_url
        response = self.client.post(path, data=data, base_url=base) if data is not None else self.client.get(path, base_url=base)
        while response.status_code in (302, 303):
            location = response.headers["Location"]
            target = urlsplit(location)
            if target.netloc and f"{target.scheme}://{target.netloc}" != ISSUER:
                break
            response = self.client.get(target.path + ("?" + target.query if target.query else ""), base_url=base)
        self.page = response
        return response

    @property
    def html(self) -> str:
        return self.page.get_data(as_text=True)

    def submit(self, target: str, **fields: str) -> Any:
        """Post the current page's form (its hidden fields, the CSRF token) with `fields`."""
        return self.open(target, data={**hidden_fields(self.html), **fields})

    def sign_in(self, identifier: str = "alice", password: str = PASSWORD) -> Any:
        assert "Sign in" in self.html, self.html[:500]
        return self.submit("/login", identifier=identifier, password=password)

    def enter_code(self, code: str, *, trust: bool = False, method: str | None = None) -> Any:
        fields = {"code": code}
        if trust:
            fields["trust_device"] = "1"
        if method:
            fields["method"] = method
        return self.submit("/login/two-factor", **fields)


@dataclass
class RelyingParty:
    """A registered client and Authlib's OAuth 2.0 client speaking to the app over WSGI."""

    app: Flask
    registered: dict[str, Any]
    oauth: OAuth2Client = field(init=False)
    verifier: str = ""
    nonce: str = ""
    state: str = ""

    def __post_init__(self) -> None:
        self.oauth = OAuth2Client(
            client_id=self.registered["clientId"],
            client_secret=self.registered.get("clientSecret"),
            token_endpoint_auth_method=self.registered["tokenEndpointAuthMethod"],
            redirect_uri=self.registered["redirectUris"][0] if self.registered["redirectUris"] else None,
            scope="openid profile email",
            code_challenge_method="S256",
            transport=httpx2.WSGITransport(app=self.app),
            base_url=ISSUER,
        )

    @property
    def client_id(self) -> str:
        return self.registered["clientId"]

    def authorization_url(self, **params: Any) -> str:
        self.verifier = generate_token(48)
        self.nonce = generate_token(16)
        params.setdefault("nonce", self.nonce)
        url, self.state = self.oauth.create_authorization_url(f"{ISSUER}/oauth/authorize", code_verifier=self.verifier, **params)
        return url

    def callback(self, response: Any) -> dict[str, str]:
        """The query of the redirect back to us (code and state, or an error)."""
        assert response.status_code == 302, (response.status_code, response.get_data(as_text=True)[:500])
        location = response.headers["Location"]
        assert location.startswith(self.oauth.redirect_uri), location
        return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}

    def exchange(self, code: str, **extra: Any) -> dict[str, Any]:
        return dict(self.oauth.fetch_token(f"{ISSUER}/oauth/token", code=code, code_verifier=self.verifier, **extra))

    def jwks(self) -> KeySet:
        return KeySet.import_key_set(self.app.test_client().get("/.well-known/jwks.json").json)

    def id_token_claims(self, token: dict[str, Any]) -> dict[str, Any]:
        decoded = jwt.decode(token["id_token"], self.jwks(), algorithms=["RS256"])
        assert decoded.header["kid"] in {k.kid for k in self.jwks().keys}
        return dict(decoded.claims)

    def log_in(self, browser: Browser, *, identifier: str = "alice", **params: Any) -> dict[str, Any]:
        """The whole code flow for a user without a second factor, consenting if asked."""
        browser.open(self.authorization_url(**params))
        if "Sign in" in browser.html and browser.page.status_code == 200:
            browser.sign_in(identifier)
        if browser.page.status_code == 200 and "would like to" in browser.html:
            browser.submit("/oauth/authorize", decision="allow")
        result = self.callback(browser.page)
        assert result.get("state") == self.state, result
        return self.exchange(result["code"])


@pytest.fixture
def make_rp(app: Flask):
    def make(*args: str, name: str = "Notes", **kw: Any) -> RelyingParty:
        default = ("--redirect-uri", REDIRECT_URI, "--post-logout-redirect-uri", POST_LOGOUT_URI)
        scopes: list[str] = []
        for scope in kw.pop("scopes", ("openid", "profile", "email", "phone", "offline_access")):
            scopes += ["--scope", scope]
        return RelyingParty(app, create(app, "--name", name, *default, *scopes, *args))

    return make


@pytest.fixture
def rp(make_rp) -> RelyingParty:
    return make_rp()


@pytest.fixture
def browser(app: Flask) -> Browser:
    return Browser(app)


@pytest.fixture
def alice(api: Api) -> dict[str, Any]:
    token = api.token("alice")
    return {"token": token}


def totp_now(secret: str) -> str:
    return pyotp.TOTP(secret).at(time.time())
