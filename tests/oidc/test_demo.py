"""`flask demo seed` (development only) and the example relying party, examples/relying_app.py."""

from __future__ import annotations

import importlib.util
import json
import re
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from cryptography.fernet import Fernet
from flask import Flask
from requests.adapters import BaseAdapter
from requests.structures import CaseInsensitiveDict
from sqlalchemy import select

from idp.accounts.models import User
from idp.extensions import db
from idp.oidc.models import OAuthClient
from idp.security.password_policy import password_problems
from tests.oidc.conftest import ISSUER, Browser

ROOT = Path(__file__).resolve().parents[2]
STRONG_SECRET = "x7Qp2Lr9Vt4Kc8Nz1Wd6Hs3Jf5Bm0Ga_strong"
APP_URL = "http://localhost:5000"


def seed(app: Flask) -> Any:
    return app.test_cli_runner().invoke(args=["demo", "seed"])


@pytest.fixture
def password_file(app: Flask) -> Iterator[Path]:
    """instance/demo-password.txt, absent before and after (the instance folder outlives a test's rows)."""
    path = Path(app.instance_path) / "demo-password.txt"
    path.unlink(missing_ok=True)
    yield path
    path.unlink(missing_ok=True)


def state(app: Flask) -> dict[str, Any]:
    """What seeding may have written: every client as the CLI shows it, every user row."""
    with app.app_context():
        users = [(u.id, u.email, u.username, u.password_hash, u.updated_at) for u in db.session.scalars(select(User))]
    listing = app.test_cli_runner().invoke(args=["clients", "list", "--json"])
    return {"clients": json.loads(listing.output), "users": users}


def test_demo_seed_registers_the_demo_client_and_user_once(app, password_file):
    first = seed(app)
    assert first.exit_code == 0, first.output
    password = password_file.read_text().strip()
    assert password in first.output and str(password_file) in first.output
    assert password_file.stat().st_mode & 0o777 == 0o600
    assert not password_problems(password, email="demo@example.com", username="demo")

    after_first = state(app)
    [client] = after_first["clients"]
    assert client["clientId"] == "demo"
    assert client["public"] is True and client["tokenEndpointAuthMethod"] == "none"
    assert client["redirectUris"] == ["http://localhost:5000/callback"]
    assert client["postLogoutRedirectUris"] == ["http://localhost:5000/"]
    assert client["grantTypes"] == ["authorization_code", "refresh_token"]
    assert client["scopes"] == ["openid", "profile", "email", "offline_access"]
    assert client["firstParty"] is False and client["requireMfa"] is False
    with app.app_context():
        assert db.session.get(OAuthClient, "demo").client_secret_hash is None
    [user] = after_first["users"]
    assert user[1:3] == ("demo@example.com", "demo")
    login = app.test_client().post("/api/auth/login", json={"emailOrUsername": "demo", "password": password})
    assert login.status_code == 200, login.json

    written = password_file.stat().st_mtime_ns
    second = seed(app)
    assert second.exit_code == 0, second.output
    assert "client demo present" in second.output and f"its password is in {password_file}" in second.output
    assert password not in second.output
    assert state(app) == after_first
    assert password_file.read_text().strip() == password and password_file.stat().st_mtime_ns == written


def test_demo_seed_says_so_when_the_password_file_is_gone(app, password_file):
    assert seed(app).exit_code == 0
    password_file.unlink()
    again = seed(app)
    assert again.exit_code == 0 and "is gone" in again.output and not password_file.exists()


def test_demo_seed_is_refused_in_production(make_app, password_file):
    app = make_app(IDP_ENV="production", SECRET_KEY=STRONG_SECRET, ENCRYPTION_KEYS=Fernet.generate_key().decode())
    result = seed(app)
    assert result.exit_code == 1
    assert "demo seed is for development only and IDP_ENV is production" in result.output
    assert state(app) == {"clients": [], "users": []}
    assert not password_file.exists()


# -- the example relying party -----------------------------------------------------------------


def load_example() -> ModuleType:
    """examples/relying_app.py, imported from its path (examples/ is not a package)."""
    spec = importlib.util.spec_from_file_location("relying_app", ROOT / "examples" / "relying_app.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_example_app_builds_without_asking_the_provider_and_offers_sign_in(monkeypatch):
    def no_network(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("the example app called the provider before any sign-in")

    monkeypatch.setattr(requests.Session, "send", no_network)
    example = load_example().create_app({"IDP_ISSUER": "http://127.0.0.1:9"})  # nothing listens there
    home = example.test_client().get("/")
    assert home.status_code == 200
    assert '<a href="/login">Sign in</a>' in home.get_data(as_text=True)


def test_the_example_app_takes_its_settings_from_the_environment(monkeypatch):
    monkeypatch.setenv("IDP_ISSUER", "https://id.example.com/")
    monkeypatch.setenv("CLIENT_ID", "shop")
    monkeypatch.setenv("CLIENT_SECRET", "s3cret")
    example = load_example().create_app()
    assert (example.config["IDP_ISSUER"], example.config["CLIENT_ID"], example.config["CLIENT_SECRET"]) == (
        "https://id.example.com",
        "shop",
        "s3cret",
    )
    provider = example.extensions["relying_app.provider"]
    assert provider._server_metadata_url == "https://id.example.com/.well-known/openid-configuration"
    assert provider.client_kwargs["token_endpoint_auth_method"] == "client_secret_basic"


class ProviderAdapter(BaseAdapter):
    """The example's back-channel calls (discovery, JWKS, token, userinfo) answered by the
    provider's Flask app in this process, without a socket."""

    def __init__(self, app: Flask) -> None:
        super().__init__()
        self.client = app.test_client()

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> requests.Response:
        url = urlsplit(request.url or "")
        headers = {k: v for k, v in request.headers.items() if k.lower() not in ("content-length", "host")}
        answer = self.client.open(url.path, method=request.method, query_string=url.query, headers=headers, data=request.body)
        response = requests.Response()
        response.status_code = answer.status_code
        response.headers = CaseInsensitiveDict(answer.headers)
        response._content = answer.get_data()
        response.url = request.url or ""
        response.request = request
        return response

    def close(self) -> None:
        pass


def test_the_example_signs_the_demo_user_in_with_consent_and_out_again(app, password_file, monkeypatch):
    assert seed(app).exit_code == 0
    password = password_file.read_text().strip()
    adapter = ProviderAdapter(app)
    original = requests.Session.get_adapter
    monkeypatch.setattr(
        requests.Session, "get_adapter", lambda self, url: adapter if url.startswith(ISSUER) else original(self, url)
    )
    rp = load_example().create_app({"IDP_ISSUER": ISSUER, "APP_URL": APP_URL}).test_client()
    browser = Browser(app)

    start = rp.get("/login")
    assert start.status_code == 302 and start.headers["Location"].startswith(f"{ISSUER}/oauth/authorize?")
    query = parse_qs(urlsplit(start.headers["Location"]).query)
    assert query["client_id"] == ["demo"] and query["redirect_uri"] == [f"{APP_URL}/callback"]
    assert query["code_challenge_method"] == ["S256"] and query["code_challenge"] and query["nonce"]
    browser.open(start.headers["Location"])
    browser.sign_in("demo", password)
    assert "Demo app</strong> would like to" in browser.html, browser.html[:500]
    back = browser.submit("/oauth/authorize", decision="allow")
    assert back.status_code == 302 and back.headers["Location"].startswith(f"{APP_URL}/callback?")

    callback = rp.get(urlsplit(back.headers["Location"]).path + "?" + urlsplit(back.headers["Location"]).query)
    page = callback.get_data(as_text=True)
    assert callback.status_code == 200, page
    assert "Signed in as <strong>demo@example.com</strong>" in page and "ID token claims" in page and "Userinfo" in page
    claims, userinfo = (json.loads(block) for block in re.findall(r"<pre>(.*?)</pre>", page, re.S))
    assert claims["aud"] == "demo" and claims["iss"] == ISSUER and claims["email"] == "demo@example.com"
    assert claims["nonce"] == query["nonce"][0] and userinfo["sub"] == claims["sub"]

    out = rp.get("/logout")
    assert out.status_code == 302 and out.headers["Location"].startswith(f"{ISSUER}/oauth/logout?")
    query = parse_qs(urlsplit(out.headers["Location"]).query)
    assert query["post_logout_redirect_uri"] == [f"{APP_URL}/"] and query["id_token_hint"]
    assert browser.open(out.headers["Location"]).headers["Location"] == f"{APP_URL}/"
    assert "Sign in" in rp.get("/").get_data(as_text=True)
