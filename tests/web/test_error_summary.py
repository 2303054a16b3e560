"""The error summary of every form page takes the focus on load (PAGES.md: "An error summary at the
top (focused on load, links to the fields)"), without JavaScript too: it carries autofocus, and no
field of the page competes for it (HTML allows one autofocus per document)."""

from __future__ import annotations

import re

from tests.conftest import Api
from tests.oidc.conftest import Browser
from tests.web.test_registration import ask_for_reset, strict

AUTOFOCUS = re.compile(r"<(\w+)\b[^>]*\sautofocus[\s>]", re.S)


def focused_on_load(html: str) -> list[str]:
    """The opening tags that carry autofocus."""
    return [m.group(0) for m in AUTOFOCUS.finditer(html)]


def assert_summary_takes_the_focus(html: str) -> None:
    found = focused_on_load(html)
    assert len(found) == 1, found
    assert found[0].startswith('<div class="error-summary"') and 'tabindex="-1"' in found[0], found


def test_sign_in_and_its_second_step(app, api):
    strict(app)
    api.enable_totp(api.verified_token("alice"))
    browser = Browser(app)
    browser.open("/login")
    assert focused_on_load(browser.html) == [re.search(r'<input[^>]*id="field-identifier"[^>]*>', browser.html, re.S).group(0)]

    browser.submit("/login", identifier="", password="")
    assert_summary_takes_the_focus(browser.html)
    browser.submit("/login", identifier="alice", password="wrong")  # the password field used to take it
    assert_summary_takes_the_focus(browser.html)

    browser.submit("/login", identifier="alice", password=Api.PASSWORD)
    assert "Enter the code from your authenticator app" in browser.html and len(focused_on_load(browser.html)) == 1
    browser.submit("/login/two-factor", code="12")
    assert_summary_takes_the_focus(browser.html)
    browser.open("/login/two-factor?method=backup_code")
    browser.submit("/login/two-factor", code="")
    assert_summary_takes_the_focus(browser.html)


def test_registration_and_the_forgotten_password(app, api):
    strict(app)
    browser = Browser(app)
    browser.open("/register")
    browser.submit("/register", email="bad", username="", password="")
    assert_summary_takes_the_focus(browser.html)
    assert_summary_takes_the_focus(ask_for_reset(app, "").html)

    api.register("alice")
    ask_for_reset(app, "alice@example.com")
    browser.open("/reset-password?token=" + api.outbox.link_token("alice@example.com"))
    browser.submit("/reset-password", newPassword="")
    assert_summary_takes_the_focus(browser.html)


def test_account_pages(app, api):
    strict(app)
    api.verified_token("alice")
    browser = Browser(app)
    browser.open("/account/password")
    browser.sign_in()
    browser.submit("/account/password", currentPassword="", newPassword="")
    assert_summary_takes_the_focus(browser.html)
    browser.open("/account/two-factor/sms")
    browser.submit("/account/two-factor/sms", phoneNumber="12")
    assert_summary_takes_the_focus(browser.html)
    browser.open("/account/two-factor/email")
    browser.submit("/account/two-factor/email", email="")
    assert_summary_takes_the_focus(browser.html)
