"""Issue 5's journey in Chromium against the live server, as a new user goes through it:

register → confirm the email (the link read from the SMTP server on loopback) → turn on an
authenticator app → save the backup codes → sign out → sign in with the app's code and trust the
device → see the device → remove it → add text messages (the code from the Twilio stand-in) →
remove the authenticator app → get new backup codes → change the password → every step in the
security activity. Run at desktop and phone sizes; axe checks every page in light and dark, and
`SCREENSHOTS=1` (make screenshots) writes each page to docs/screenshots/.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable

import pyotp
import pytest
from playwright.sync_api import Browser, Page, expect

from tests.support.axe import assert_accessible
from tests.support.live_server import LiveServer
from tests.support.screenshots import shot
from tests.support.smtp import SmtpStandIn
from tests.support.twilio import TwilioStandIn

PASSWORD = "Correct-Horse-9!"
NEW_PASSWORD = "Battery-Staple-7?"
PHONE = "+15551234567"
VIEWPORTS = {"desktop": {"width": 1280, "height": 800}, "phone": {"width": 390, "height": 844}}
# PAGES.md: touch targets of at least 44 px. A link inside a sentence is exempt (WCAG 2.5.8): only
# links and buttons that are the whole text of their parent are measured.
SMALL_TARGETS = """() => [...document.querySelectorAll("main a, main button")]
  .filter(e => e.offsetParent !== null && e.parentElement.textContent.trim() === e.textContent.trim())
  .map(e => [e.textContent.trim(), Math.round(e.getBoundingClientRect().height)])
  .filter(([, height]) => height < 44)"""
# PAGES.md: text resizable to 200% (WCAG 1.4.4), on a phone too, without scrolling sideways
AT_200_PERCENT = """() => {
  const root = document.documentElement, before = root.style.fontSize;
  root.style.fontSize = "200%";
  const fits = root.scrollWidth <= window.innerWidth;
  root.style.fontSize = before;
  return fits;
}"""


class Person:
    """One browser tab, checked as it goes: no horizontal scroll, axe in both colour schemes."""

    def __init__(self, page: Page, server: LiveServer, size: str) -> None:
        self.page = page
        self.server = server
        self.size = size
        self.seen: set[str] = set()

    def go(self, path: str) -> None:
        self.page.goto(self.server.url + path)

    def check(self, name: str) -> None:
        """The page as it is now: fits the screen, passes axe light and dark, screenshot."""
        self.page.wait_for_load_state("load")  # a click's navigation may still be under way
        assert self.page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), f"{name} scrolls sideways"
        if name in self.seen:
            return
        assert self.page.evaluate(SMALL_TARGETS) == [], f"{name}: targets under 44 px"
        assert self.page.evaluate(AT_200_PERCENT), f"{name} scrolls sideways with text at 200%"
        self.seen.add(name)
        for scheme in ("light", "dark"):
            self.page.emulate_media(color_scheme=scheme)
            assert_accessible(self.page)
            shot(self.page, f"{name}-{self.size}" + ("-dark" if scheme == "dark" else ""))
        self.page.emulate_media(color_scheme="light")

    def click(self, name: str) -> None:
        self.page.get_by_role("button", name=name, exact=True).click()

    def follow(self, name: str) -> None:
        self.page.get_by_role("link", name=name, exact=True).first.click()

    def fill(self, label: str, value: str) -> None:
        self.page.get_by_label(label, exact=True).fill(value)


def _link_from_mail(smtp: SmtpStandIn, to: str, path: str) -> str:
    """The newest such link mailed to `to`, waiting a little: a reset link goes out after the
    answer (SECURITY.md 3), so the page can be on screen before the email is sent."""
    deadline = time.monotonic() + 5
    while True:
        for message in reversed(smtp.messages()):
            if to in message["To"]:
                body = message.get_body(("plain",)).get_content()
                found = re.search(rf"https?://\S+/{path}\?token=[\w-]+", body)
                if found:
                    return found.group(0)
        if time.monotonic() > deadline:
            raise AssertionError(f"no {path} link mailed to {to}")
        time.sleep(0.05)


def _sms_code(twilio: TwilioStandIn) -> str:
    body = twilio.accepted[-1]["form"]["Body"]
    return re.search(r"\b(\d{6})\b", body).group(1)


def walk(person: Person, smtp: SmtpStandIn, twilio: TwilioStandIn, username: str) -> None:
    page = person.page
    email = f"{username}@example.com"

    # register
    person.go("/register")
    person.check("register")
    person.fill("Email address", email)
    person.fill("Username", username)
    person.fill("Create a password", PASSWORD)
    person.click("Create account")
    expect(page.get_by_role("heading", level=1)).to_have_text("Your account")
    person.check("account-home")

    # confirm the email with the link from the SMTP server
    page.goto(_link_from_mail(smtp, email, "verify-email"))
    person.check("verify-email")
    person.click("Confirm my email address")
    expect(page.get_by_role("heading", level=1)).to_have_text("Your email address is confirmed")

    # turn on an authenticator app
    person.go("/account/two-factor")
    person.check("two-factor")
    person.follow("Add Authenticator app")
    person.check("two-factor-totp")
    secret = "".join(page.locator(".secret span").all_inner_texts()).replace(" ", "")
    person.fill("Enter the 6-digit code from the app", pyotp.TOTP(secret).now())
    person.click("Turn on two-step verification")
    expect(page.get_by_role("heading", level=1)).to_have_text("Save your backup codes")
    person.check("backup-codes")
    codes = page.locator("#backup-codes li").all_inner_texts()
    assert len(codes) == 10
    page.get_by_role("link", name=re.compile("I have saved")).click()

    # sign out, then in with the app's code, trusting this browser
    page.get_by_role("button", name="Sign out").last.click()
    expect(page.get_by_role("heading", level=1)).to_have_text("You are signed out")
    person.check("logged-out")
    person.go("/login")
    person.check("login")
    person.fill("Email address or username", username)
    person.fill("Password", PASSWORD)
    person.click("Sign in")
    expect(page.get_by_role("heading", level=1)).to_have_text("Enter the code from your authenticator app")
    person.check("two-factor-challenge")
    person.fill("Code", pyotp.TOTP(secret).at(time.time() + 30))  # the current step was spent on setup
    page.get_by_text("Don't ask again on this browser for 30 days").click()
    person.click("Continue")
    expect(page.get_by_role("heading", level=1)).to_have_text("Your account")

    # see the device, and remove it
    person.go("/account/devices")
    expect(page.get_by_text("This browser")).to_be_visible()
    person.check("devices")
    page.get_by_role("button", name=re.compile("^Remove")).first.click()
    expect(page.get_by_role("status").first).to_contain_text("no longer trusted")

    # add text messages with the code from the Twilio stand-in
    person.go("/account/two-factor")
    person.follow("Add Text messages")
    person.check("two-factor-sms")
    person.fill("Mobile phone number", PHONE)
    person.click("Send the code")
    expect(page.get_by_role("heading", level=1)).to_have_text("Enter the code we sent to your phone")
    person.check("two-factor-sms-code")
    person.fill("Code", _sms_code(twilio))
    person.click("Confirm")

    # remove the authenticator app
    person.go("/account/two-factor")
    expect(page.get_by_role("term").filter(has_text="Text messages to ***4567")).to_be_visible()
    page.get_by_role("link", name="Remove Authenticator app").click()
    person.check("two-factor-remove")
    page.get_by_role("button", name=re.compile("^Remove")).click()
    expect(page.get_by_role("term").filter(has_text="Text messages to ***4567")).to_be_visible()
    expect(page.get_by_role("link", name="Remove Authenticator app")).to_have_count(0)

    # new backup codes
    person.click("Get new backup codes")
    expect(page.get_by_role("heading", level=1)).to_have_text(re.compile("backup codes"))
    if page.get_by_role("button", name="Get new backup codes").count():
        person.check("two-factor-regenerate")
        person.click("Get new backup codes")
    new_codes = page.locator("#backup-codes li").all_inner_texts()
    assert len(new_codes) == 10 and not set(new_codes) & set(codes)

    # change the password
    person.go("/account/password")
    person.check("password")
    person.fill("Current password", PASSWORD)
    person.fill("New password", NEW_PASSWORD)
    person.click("Change password")
    expect(page.get_by_role("status").first).to_contain_text("Your password is changed")

    # every step in the activity, newest first
    person.go("/account/sessions")
    person.check("sessions")
    person.go("/account/apps")
    person.check("apps")
    person.go("/account/activity")
    person.check("activity")
    text = page.locator("main").inner_text().lower()
    for step in ("password", "backup codes", "text message", "authenticator app", "trusted", "signed in", "confirmed", "created"):
        assert step in text, f"activity lacks {step!r}:\n{text[:2000]}"


@pytest.fixture
def journey_server(make_live_server: Callable[..., LiveServer], smtp_server: SmtpStandIn, twilio_server: TwilioStandIn) -> LiveServer:
    return make_live_server(**smtp_server.env(), **twilio_server.env())


@pytest.mark.parametrize("size", ["desktop", "phone"])
def test_a_new_user_manages_their_account_alone(
    browser: Browser, journey_server: LiveServer, smtp_server: SmtpStandIn, twilio_server: TwilioStandIn, size: str
) -> None:
    context = browser.new_context(viewport=VIEWPORTS[size], is_mobile=size == "phone", has_touch=size == "phone")
    context.set_default_timeout(10_000)
    try:
        walk(Person(context.new_page(), journey_server, size), smtp_server, twilio_server, f"new{size}")
    finally:
        context.close()


def test_the_pages_off_the_journey_pass_axe_too(
    browser: Browser, journey_server: LiveServer, smtp_server: SmtpStandIn, twilio_server: TwilioStandIn
) -> None:
    """Forgotten and new password, the password confirmation, email codes, a connected app, the
    error pages: light and dark, desktop and phone."""
    from tests.oidc.test_clients import create

    server = journey_server
    for size in VIEWPORTS:
        context = browser.new_context(viewport=VIEWPORTS[size], is_mobile=size == "phone")
        context.set_default_timeout(10_000)
        person = Person(context.new_page(), server, size)
        page = person.page
        username = f"other{size}"
        email = f"{username}@example.com"
        person.go("/register")
        person.fill("Email address", email)
        person.fill("Username", username)
        person.fill("Create a password", PASSWORD)
        person.click("Create account")
        page.goto(_link_from_mail(smtp_server, email, "verify-email"))
        person.click("Confirm my email address")

        person.go("/account/two-factor/email")
        person.check("two-factor-email")
        person.fill("Email address", f"{username}.codes@example.com")
        person.click("Send the code")
        person.check("two-factor-email-code")

        registered = create(server.app, "--name", f"Notes {size}", "--redirect-uri", "https://rp.example/cb", "--scope", "openid",
                            "--scope", "email")
        person.go(f"/oauth/authorize?response_type=code&client_id={registered['clientId']}&redirect_uri=https://rp.example/cb"
                  "&scope=openid%20email&state=s")
        person.check("consent")
        person.go("/account/apps")
        person.go("/oauth/authorize?response_type=code&client_id=nope&redirect_uri=https://evil.example/&state=s")
        person.check("oauth-error")
        person.go("/account/confirm-password?next=/account")
        person.check("confirm-password")
        person.go("/oauth/logout")
        person.check("logout-confirm")
        person.go("/no-such-page")
        person.check("not-found")

        fresh = browser.new_context(viewport=VIEWPORTS[size], is_mobile=size == "phone")
        fresh.set_default_timeout(10_000)
        visitor = Person(fresh.new_page(), server, size)
        visitor.go("/forgot-password")
        visitor.check("forgot-password")
        visitor.fill("Email address", email)
        visitor.click("Send the link")
        visitor.check("forgot-password-sent")
        visitor.page.goto(_link_from_mail(smtp_server, email, "reset-password"))
        visitor.check("reset-password")
        visitor.go("/")
        visitor.check("home")
        fresh.close()
        context.close()


def test_sign_in_by_keyboard_alone_with_a_visible_focus(browser: Browser, journey_server: LiveServer) -> None:
    """Tab to each field, type, Enter to submit; the focused field shows a focus ring."""
    from tests.conftest import Api

    Api(journey_server.app.test_client()).token("keyboard")
    context = browser.new_context(viewport=VIEWPORTS["desktop"])
    context.set_default_timeout(10_000)
    page = context.new_page()
    try:
        page.goto(journey_server.url + "/login")
        identifier = page.get_by_label("Email address or username", exact=True)
        for _ in range(10):  # autofocus puts it there; else Tab until it is
            if identifier.evaluate("el => el === document.activeElement"):
                break
            page.keyboard.press("Tab")
        ring = identifier.evaluate("el => getComputedStyle(el).outlineStyle + ' ' + getComputedStyle(el).outlineWidth")
        assert not ring.startswith("none") and not ring.endswith(" 0px"), ring
        page.keyboard.type("keyboard")
        page.keyboard.press("Tab")
        assert page.evaluate("document.activeElement.id") == "field-password"
        page.keyboard.type(Api.PASSWORD)
        page.keyboard.press("Enter")
        expect(page.get_by_role("heading", level=1)).to_have_text("Your account")
    finally:
        context.close()
