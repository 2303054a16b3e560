"""The whole OpenID Connect redirect journey in Chromium against the live server, as a person goes
through it: the relying party sends the browser to the provider, the user signs in (password, then
a second factor when they have one), consents, and lands back at the relying party with a code,
which the relying party exchanges over real HTTP with Authlib's client.

The relying party's pages are `rp_pages` (tests/support/relying_party.py), a stand-in at
http://localhost:PORT: Playwright does not route redirect hops, so `page.route` cannot play a
relying party that the provider redirects to. Accounts and their second factors are set up through
the JSON API over HTTP (`requests`), as an account page would.

Browsers apply the pages' `form-action` to the redirects that follow a submission, so the pages
whose forms may end at the relying party widen it to that relying party's registered origin;
`test_forms_may_redirect_to_the_relying_party` runs under the app's own policy.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import httpx
import pyotp
import pytest
import requests
from authlib.common.security import generate_token
from authlib.integrations.httpx_client import OAuth2Client
from joserfc import jwt
from joserfc.jwk import KeySet
from playwright.sync_api import Browser, ConsoleMessage, Page, expect

from tests.conftest import Api
from tests.support.axe import assert_accessible
from tests.support.browser import DESKTOP, PHONE, TIMEOUT_MS
from tests.support.live_server import LiveServer
from tests.support.relying_party import RelyingPartyPages
from tests.support.screenshots import shot
from tests.support.twilio import TwilioStandIn

CLIENT_NAME = "Notes"
PASSWORD = Api.PASSWORD
PHONE_NUMBER = "+15551234567"
TRUST_LABEL = "Don't ask again on this browser for 30 days"
CONSENT_TITLE = f"Allow {CLIENT_NAME} to use your account?"
TOTP_TITLE = "Enter the code from your authenticator app"
HTTP_TIMEOUT = 10


# -- the account, through the JSON API over HTTP --------------------------------------------------


class Account:
    """A user of the live server, registered and given second factors through the JSON API."""

    def __init__(self, server: LiveServer, username: str = "alice") -> None:
        self.server = server
        self.username = username
        self.email = f"{username}@example.com"
        self.http = requests.Session()
        self.token = ""

    def _post(self, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        response = self.http.post(self.server.url + path, json=body, headers=headers, timeout=HTTP_TIMEOUT)
        assert response.status_code in (200, 201), (path, response.status_code, response.text[:500])
        data: dict[str, Any] = response.json().get("data") or {}
        return data

    def register(self) -> Account:
        data = self._post("/api/auth/register", {"email": self.email, "username": self.username, "password": PASSWORD})
        self.token = data["accessToken"]
        return self

    def verify_email(self) -> Account:
        """Confirm the address with the link the app emailed (to its console outbox)."""
        self._post("/api/email/send-verification")
        self._post("/api/email/verify", {"token": self.server.outbox.link_token(self.email)})
        return self

    def enable_totp(self) -> tuple[str, list[str]]:
        """TOTP confirmed with the previous step's code (inside the drift window), so the current
        step's code is still unused for the sign-in that follows; the secret and backup codes."""
        secret = self._post("/api/2fa/totp/setup")["secret"]
        data = self._post("/api/2fa/totp/verify-setup", {"code": pyotp.TOTP(secret).at(time.time() - 30)})
        return secret, data["backupCodes"]

    def enable_sms(self, twilio: TwilioStandIn, phone: str = PHONE_NUMBER) -> None:
        before = len(twilio.accepted)
        self._post("/api/2fa/sms/setup", {"phoneNumber": phone})
        self._post("/api/2fa/sms/verify-setup", {"code": sms_code(twilio, phone, after=before)})


def sms_code(twilio: TwilioStandIn, phone: str = PHONE_NUMBER, *, after: int = 0) -> str:
    """The 6-digit code of the newest text message Twilio accepted for `phone`, among those after the first `after`."""
    messages = [m for m in twilio.accepted[after:] if m["form"].get("To") == phone]
    assert messages, f"no text message to {phone} after #{after}: {twilio.requests}"
    match = re.search(r"\b(\d{6})\b", messages[-1]["form"]["Body"])
    assert match, messages[-1]
    return match.group(1)


def totp_code(secret: str) -> str:
    return pyotp.TOTP(secret).at(time.time())


# -- the relying party: a client registered by the CLI, Authlib's client over real HTTP ----------


@dataclass
class RelyingParty:
    server: LiveServer
    pages: RelyingPartyPages
    registered: dict[str, Any]
    metadata: dict[str, Any] = field(init=False)
    oauth: OAuth2Client = field(init=False)
    verifier: str = ""
    nonce: str = ""
    state: str = ""

    @classmethod
    def register(cls, server: LiveServer, pages: RelyingPartyPages, *args: str) -> RelyingParty:
        """`flask clients create --json ...` on the live server's app, as an operator would."""
        result = server.app.test_cli_runner().invoke(
            args=[
                "clients", "create", "--json", "--name", CLIENT_NAME,
                "--redirect-uri", pages.callback, "--post-logout-redirect-uri", pages.signed_out,
                "--scope", "openid", "--scope", "profile", "--scope", "email",
                *args,
            ]
        )  # fmt: skip
        assert result.exit_code == 0, result.output
        return cls(server, pages, json.loads(result.output))

    def __post_init__(self) -> None:
        self.metadata = httpx.get(f"{self.server.url}/.well-known/openid-configuration", timeout=HTTP_TIMEOUT).json()
        assert self.metadata["issuer"] == self.server.url
        self.oauth = OAuth2Client(
            client_id=self.registered["clientId"],
            client_secret=self.registered["clientSecret"],
            token_endpoint_auth_method=self.registered["tokenEndpointAuthMethod"],
            redirect_uri=self.pages.callback,
            scope="openid profile email",
            code_challenge_method="S256",
            timeout=HTTP_TIMEOUT,
        )

    @property
    def client_id(self) -> str:
        return str(self.registered["clientId"])

    def authorization_url(self, **params: Any) -> str:
        """A new request: new PKCE verifier, nonce and state."""
        self.verifier, self.nonce = generate_token(48), generate_token(16)
        url, self.state = self.oauth.create_authorization_url(
            self.metadata["authorization_endpoint"], code_verifier=self.verifier, nonce=self.nonce, **params
        )
        return str(url)

    def logout_url(self, **params: str) -> str:
        return f"{self.metadata['end_session_endpoint']}?{urlencode(params)}"

    def finish(self, arrived: dict[str, str]) -> dict[str, Any]:
        """Back at the callback: check the state, exchange the code at the token endpoint, and
        verify the ID token; its claims, with the token response under "_token"."""
        assert arrived.get("state") == self.state and "code" in arrived, arrived
        token = dict(self.oauth.fetch_token(self.metadata["token_endpoint"], code=arrived["code"], code_verifier=self.verifier))
        assert token["token_type"].lower() == "bearer" and token["access_token"]
        return self.id_token_claims(token) | {"_token": token}

    def id_token_claims(self, token: dict[str, Any]) -> dict[str, Any]:
        """The ID token verified with the live JWKS (signature, kid), and its iss, aud, exp and nonce."""
        jwks = KeySet.import_key_set(httpx.get(self.metadata["jwks_uri"], timeout=HTTP_TIMEOUT).json())
        decoded = jwt.decode(token["id_token"], jwks, algorithms=["RS256"])
        assert decoded.header["alg"] == "RS256" and decoded.header["kid"] in {k.kid for k in jwks.keys}
        jwt.JWTClaimsRegistry(
            iss={"essential": True, "value": self.server.url},
            aud={"essential": True, "value": self.client_id},
            sub={"essential": True},
            exp={"essential": True},
            nonce={"essential": True, "value": self.nonce},
        ).validate(decoded.claims)
        return dict(decoded.claims)

    def userinfo_status(self, access_token: str) -> int:
        headers = {"Authorization": f"Bearer {access_token}"}
        return httpx.get(self.metadata["userinfo_endpoint"], headers=headers, timeout=HTTP_TIMEOUT).status_code


# -- the browser, used as a person would --------------------------------------------------------


class FormActionBlocked(AssertionError):
    """Chromium refused a form submission of the provider's page under its CSP (`form-action`)."""


@dataclass
class Tab:
    """A Playwright page, with the provider's documents and the CSP violations it saw."""

    page: Page
    rp: RelyingPartyPages
    documents: list[str] = field(default_factory=list)  # main-frame documents committed (redirects are not documents)
    blocked: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.page.on("framenavigated", lambda frame: self.documents.append(frame.url) if frame == self.page.main_frame else None)
        self.page.on("console", self._console)

    def _console(self, message: ConsoleMessage) -> None:
        if "Content Security Policy directive" in message.text and "form-action" in message.text:
            self.blocked.append(message.text.strip())

    def heading(self, text: str) -> None:
        expect(self.page.get_by_role("heading", level=1)).to_have_text(text)

    def start(self, rp: RelyingParty, **params: Any) -> None:
        """The relying party sends the browser to the provider; the sign-in page names it."""
        self.page.goto(rp.authorization_url(**params))
        self.heading("Sign in")
        expect(self.page.get_by_text("to continue to")).to_have_text(f"to continue to {CLIENT_NAME}")

    def sign_in(self, identifier: str = "alice", password: str = PASSWORD) -> None:
        self.heading("Sign in")
        self.page.get_by_label("Email address or username").fill(identifier)
        self.page.get_by_label("Password", exact=True).fill(password)
        self.page.get_by_role("button", name="Sign in").click()

    def enter_code(self, code: str, *, label: str = "Code", trust: bool = False) -> None:
        self.page.get_by_label(label, exact=True).fill(code)
        if trust:
            # the label covers the box (a large target): a click on it is a click on the label
            self.page.locator("label", has_text=TRUST_LABEL).click()
            expect(self.page.get_by_label(TRUST_LABEL)).to_be_checked()
        self.page.get_by_role("button", name="Continue").click()

    def allow(self) -> None:
        self.heading(CONSENT_TITLE)
        self.page.get_by_role("button", name="Allow").click()

    def check(self, name: str, *, suffix: str = "desktop") -> None:
        """axe-core finds nothing serious, the page fits the window's width, and a screenshot."""
        assert_accessible(self.page)
        assert self.page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), f"{name} scrolls sideways"
        shot(self.page, f"{name}-{suffix}")

    def back_at(self, url: str) -> dict[str, str]:
        """Wait until the browser shows `url` of the relying party (failing at once when a form
        submission was blocked by the CSP); the query it arrived with."""
        pattern, deadline = re.compile("^" + re.escape(url) + r"(\?.*)?$"), time.monotonic() + TIMEOUT_MS / 1000
        while not pattern.match(self.page.url):
            if self.blocked:
                raise FormActionBlocked(f"{self.page.url}: {self.blocked[-1]}")
            assert time.monotonic() < deadline, f"never reached {url}; at {self.page.url}"
            self.page.wait_for_timeout(20)  # lets Playwright deliver the navigation and console events
        self.heading(f"Back at {CLIENT_NAME}")
        arrivals = self.rp.arrivals(url)
        assert arrivals, (url, self.rp.urls)
        return arrivals[-1]

    def callback(self) -> dict[str, str]:
        return self.back_at(self.rp.callback)

    def provider_pages(self, server: LiveServer) -> list[str]:
        return [u for u in self.documents if u.startswith(server.url)]


# -- fixtures -----------------------------------------------------------------------------------


@pytest.fixture
def server(make_live_server: Callable[..., LiveServer], rp_pages: RelyingPartyPages) -> LiveServer:
    return make_live_server()


@pytest.fixture
def rp(server: LiveServer, rp_pages: RelyingPartyPages) -> RelyingParty:
    return RelyingParty.register(server, rp_pages)


@pytest.fixture
def tab(page: Page, rp_pages: RelyingPartyPages) -> Tab:
    return Tab(page, rp_pages)


@pytest.fixture
def new_tab(browser: Browser, rp_pages: RelyingPartyPages) -> Iterator[Callable[..., Tab]]:
    """A tab in another browser (a new context: no cookies); keyword arguments are context options."""
    contexts = []

    def make(**options: Any) -> Tab:
        context = browser.new_context(**{**DESKTOP, **options})
        context.set_default_timeout(TIMEOUT_MS)
        contexts.append(context)
        return Tab(context.new_page(), rp_pages)

    yield make
    for context in contexts:
        context.close()


@pytest.fixture
def alice(server: LiveServer) -> Account:
    return Account(server).register()


@pytest.fixture
def totp_user(server: LiveServer) -> dict[str, Any]:
    account = Account(server).register().verify_email()
    secret, backup_codes = account.enable_totp()
    return {"account": account, "secret": secret, "backup_codes": backup_codes}


# -- the journeys -------------------------------------------------------------------------------


def test_password_only_sign_in_consent_and_code_exchange(rp, tab, alice):
    tab.start(rp)
    tab.check("login")
    tab.sign_in()
    tab.heading(CONSENT_TITLE)
    expect(tab.page.get_by_text("You are signed in as")).to_contain_text("alice@example.com")
    tab.check("consent")
    tab.allow()

    arrived = tab.callback()
    assert {"code", "state"} <= arrived.keys() <= {"code", "state", "iss"}, arrived
    claims = rp.finish(arrived)
    assert claims["nonce"] == rp.nonce and claims["amr"] == ["pwd"]
    assert claims["email"] == "alice@example.com" and claims["preferred_username"] == "alice"
    assert rp.userinfo_status(claims["_token"]["access_token"]) == 200


def test_totp_second_factor(rp, tab, totp_user):
    tab.start(rp)
    tab.sign_in()
    tab.heading(TOTP_TITLE)
    tab.check("two-factor-totp")
    tab.enter_code(totp_code(totp_user["secret"]))
    tab.allow()
    claims = rp.finish(tab.callback())
    assert claims["amr"] == ["pwd", "otp", "mfa"] and claims["acr"] == "urn:idp:acr:mfa"


def test_sms_second_factor_with_the_code_from_twilio(make_live_server, twilio_server, rp_pages, tab):
    server = make_live_server(**twilio_server.env())
    rp = RelyingParty.register(server, rp_pages)
    Account(server).register().verify_email().enable_sms(twilio_server)
    sent_before = len(twilio_server.accepted)

    tab.start(rp)
    tab.sign_in()
    tab.heading("Enter the code we sent to your phone")
    expect(tab.page.get_by_text("We sent a 6-digit code to")).to_contain_text("***4567")
    tab.check("two-factor-sms")
    code = sms_code(twilio_server, after=sent_before)  # a new message, sent for this sign-in
    assert twilio_server.accepted[-1]["form"]["From"] == "+15005550006"
    tab.enter_code(code)
    tab.allow()
    claims = rp.finish(tab.callback())
    assert claims["amr"] == ["pwd", "sms", "mfa"]


def test_backup_code_instead_of_the_authenticator_app(rp, tab, totp_user):
    tab.start(rp)
    tab.sign_in()
    tab.heading(TOTP_TITLE)
    tab.page.get_by_role("link", name="Use a backup code").click()
    tab.heading("Enter one of your backup codes")
    tab.check("two-factor-backup-code")
    tab.enter_code(totp_user["backup_codes"][0], label="Backup code")
    tab.allow()
    claims = rp.finish(tab.callback())
    assert "mfa" in claims["amr"]


def test_a_trusted_device_skips_the_second_factor_after_signing_out(server, rp, tab, totp_user):
    tab.start(rp)
    tab.sign_in()
    tab.enter_code(totp_code(totp_user["secret"]), trust=True)
    tab.allow()
    rp.finish(tab.callback())
    assert any(c["name"] == "deviceToken" and c["httpOnly"] for c in tab.page.context.cookies())

    # sign out at the provider itself: a confirmation, then the signed-out page
    tab.page.goto(rp.metadata["end_session_endpoint"])
    tab.heading("Sign out?")
    expect(tab.page.get_by_text("You are signed in as")).to_contain_text("alice@example.com")
    tab.check("logout-confirm")
    tab.page.get_by_role("button", name="Sign out").click()
    tab.heading("You are signed out")
    tab.check("logged-out")

    # signing in again on this browser asks for the password only, then straight back (consent given)
    tab.documents.clear()
    tab.start(rp)
    tab.sign_in()
    claims = rp.finish(tab.callback())
    assert claims["amr"] == ["pwd"]
    assert [u.split("?")[0] for u in tab.provider_pages(server)] == [f"{server.url}/login"]  # no code page


def test_prompt_none_without_and_with_a_session(server, rp, tab, alice):
    tab.page.goto(rp.authorization_url(prompt="none"))
    arrived = tab.callback()
    assert arrived["error"] == "login_required" and arrived["state"] == rp.state and "code" not in arrived
    assert tab.provider_pages(server) == []  # no page of the provider was shown

    tab.start(rp)
    tab.sign_in()
    tab.allow()
    first = rp.finish(tab.callback())

    tab.documents.clear()
    tab.page.goto(rp.authorization_url(prompt="none"))
    again = rp.finish(tab.callback())
    assert tab.provider_pages(server) == []  # straight back
    assert again["sub"] == first["sub"] and again["auth_time"] == first["auth_time"]


def test_consent_is_remembered_for_the_client(server, rp, tab, new_tab, alice):
    tab.start(rp)
    tab.sign_in()
    tab.allow()
    rp.finish(tab.callback())

    # this browser, still signed in: back at once, no consent page
    tab.documents.clear()
    tab.page.goto(rp.authorization_url())
    rp.finish(tab.callback())
    assert tab.provider_pages(server) == []

    # another browser: the password, then straight back (consent is the user's, not the session's)
    other = new_tab()
    other.start(rp)
    other.sign_in()
    rp.finish(other.callback())
    assert [u.split("?")[0] for u in other.provider_pages(server)] == [f"{server.url}/login"]


def test_rp_initiated_logout_returns_to_the_registered_uri(rp, rp_pages, tab, alice):
    tab.start(rp)
    tab.sign_in()
    tab.allow()
    token = rp.finish(tab.callback())["_token"]

    tab.page.goto(rp.logout_url(id_token_hint=token["id_token"], post_logout_redirect_uri=rp_pages.signed_out, state="bye"))
    assert tab.back_at(rp_pages.signed_out) == {"state": "bye"}
    assert not [c for c in tab.page.context.cookies() if c["name"].endswith("idp_sso")]

    tab.page.goto(rp.authorization_url(prompt="none"))
    arrived = tab.callback()
    assert arrived["error"] == "login_required" and arrived["state"] == rp.state
    assert rp.userinfo_status(token["access_token"]) == 401  # the relying party's tokens went with the session


def test_password_and_totp_on_a_phone(rp, phone_page, rp_pages, totp_user):
    phone = Tab(phone_page, rp_pages)
    assert phone_page.viewport_size == PHONE["viewport"]
    phone.start(rp)
    phone.check("login", suffix="phone")
    phone.sign_in()
    phone.heading(TOTP_TITLE)
    phone.check("two-factor-totp", suffix="phone")
    phone.enter_code(totp_code(totp_user["secret"]))
    phone.heading(CONSENT_TITLE)
    phone.check("consent", suffix="phone")
    phone.allow()
    assert "mfa" in rp.finish(phone.callback())["amr"]


def test_sign_in_and_consent_work_without_javascript(rp, new_tab, alice):
    tab = new_tab(java_script_enabled=False)
    tab.start(rp)
    tab.sign_in()
    tab.allow()
    assert rp.finish(tab.callback())["preferred_username"] == "alice"


@pytest.mark.parametrize("form", ["consent", "sign-in"])
def test_forms_may_redirect_to_the_relying_party(make_live_server, rp_pages, tab, form):
    """Under the app's own CSP: consent's Allow, and the sign-in form of a first-party client (no
    consent page), both answer with a redirect (through /oauth/authorize) to the relying party."""
    server = make_live_server()
    rp = RelyingParty.register(server, rp_pages, *(["--first-party"] if form == "sign-in" else []))
    Account(server).register()
    tab.start(rp)
    tab.sign_in()
    if form == "consent":
        tab.allow()
    rp.finish(tab.callback())
