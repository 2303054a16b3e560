"""The account's two-step verification pages: the list of methods, adding an authenticator app,
text messages and email codes, removing (with a confirmation, and the last one turns 2FA off),
backup codes (shown once, new ones after a recent sign-in), and the confirm-your-email-first page.

Every page here renders with StrictUndefined, and every error is checked next to its field."""

from __future__ import annotations

import re
import time
from datetime import timedelta

import pyotp
import pytest
from flask import Flask
from jinja2 import StrictUndefined

from tests.conftest import Api
from tests.oidc.conftest import Browser, hidden_fields

PHONE = "+15551234567"
CODES_EMAIL = "alice.codes@example.com"


# -- helpers ---------------------------------------------------------------------------------


def strict(app: Flask) -> Flask:
    app.jinja_env.undefined = StrictUndefined
    return app


def sign_in(app: Flask, *, totp_secret: str | None = None) -> Browser:
    browser = Browser(app)
    browser.open("/account/two-factor")
    browser.sign_in()
    if totp_secret:
        browser.enter_code(pyotp.TOTP(totp_secret).now())
    assert browser.page.status_code == 200 and "<h1>Two-step verification</h1>" in browser.html, browser.html[:600]
    return browser


def page_key(html: str) -> str:
    """The manual-entry key as the page shows it, in groups of four."""
    shown = re.search(r'<p class="secret" id="totp-key">(.*?)</p>', html, re.S)
    assert shown, html[:600]
    groups = re.findall(r"<span>([A-Z2-7]+)</span>", shown.group(1))
    assert groups and all(len(g) == 4 for g in groups[:-1]) and 1 <= len(groups[-1]) <= 4, groups
    return "".join(groups)


def shown_codes(html: str) -> list[str]:
    listed = re.search(r'<ol class="codes" id="backup-codes">(.*?)</ol>', html, re.S)
    return re.findall(r"<li>([^<]+)</li>", listed.group(1)) if listed else []


def error_next_to(html: str, field: str, message: str) -> None:
    """The message sits in the field's own form group (bound to the input), and the error summary
    at the top links to the field."""
    groups = re.findall(r'<div class="form-group form-group--error">(.*?)</div>', html, re.S)
    group = next((g for g in groups if f'id="field-{field}"' in g), None)
    assert group is not None, f"no error next to {field}: {html[:1500]}"
    assert f'<p id="field-{field}-error" class="field-error">' in group and message in group, group
    assert re.search(rf'<input[^>]*id="field-{field}"[^>]*aria-describedby="[^"]*field-{field}-error', group, re.S), group
    assert 'aria-invalid="true"' in group
    assert "There is a problem" in html and f'href="#field-{field}"' in html


def me(api: Api, token: str) -> dict:
    return api.client.get("/api/auth/me", headers=api.bearer(token)).json["data"]["user"]


def add_email_method(api: Api, token: str, address: str = CODES_EMAIL) -> None:
    assert api.client.post("/api/2fa/email/setup", headers=api.bearer(token), json={"email": address}).status_code == 200
    code = api.outbox.code(address)
    assert api.client.post("/api/2fa/email/verify-setup", headers=api.bearer(token), json={"code": code}).status_code == 200


def age_sign_ins(app: Flask, hours: int = 1) -> None:
    """Move every browser sign-in back in time, past the recent-sign-in window."""
    from sqlalchemy import update

    from idp.accounts.models import Session
    from idp.accounts.sessions import BROWSER_CLIENT_ID
    from idp.clock import utcnow
    from idp.extensions import db

    with app.app_context():
        db.session.execute(
            update(Session).where(Session.client_id == BROWSER_CLIENT_ID).values(auth_time=utcnow() - timedelta(hours=hours))
        )
        db.session.commit()


# -- the overview ----------------------------------------------------------------------------


def test_the_overview_of_an_account_without_two_step_verification(app, api):
    strict(app)
    api.verified_token("alice")
    browser = sign_in(app)
    html = browser.html
    assert "Two-step verification · " in html and 'aria-current="page"' in html
    assert "Off" in html and "protected by your password only" in html
    assert "Choose how to get codes" in html
    for path in ("/account/two-factor/totp", "/account/two-factor/sms", "/account/two-factor/email"):
        assert f'href="{path}"' in html
    assert 'id="backup-codes"' not in html  # no backup codes before 2FA is on


def test_the_overview_lists_methods_in_plain_words(app, api):
    strict(app)
    token = api.verified_token("alice")
    secret, _ = api.enable_totp(token)
    add_email_method(api, token)
    browser = sign_in(app, totp_secret=secret)
    html = browser.html
    now = time.gmtime()
    assert "Authenticator app" in html and f"Added {now.tm_mday} {time.strftime('%b %Y', now)}" in html
    assert "Email codes to ali***@example.com" in html
    assert '<section id="backup-codes"' in html and "10 of 10 left." in html
    assert "Add another way" in html and 'href="/account/two-factor/sms"' in html
    assert 'href="/account/two-factor/totp"' in html  # "Move to a new phone", not an Add entry
    assert len(re.findall(r">Remove<", html)) == 2


# -- authenticator app -------------------------------------------------------------------------


def test_enable_an_authenticator_app_and_see_the_backup_codes_once(app, api):
    strict(app)
    token = api.verified_token("alice")
    browser = sign_in(app)
    browser.open("/account/two-factor/totp")
    html = browser.html
    assert browser.page.status_code == 200 and "<h1>Set up an authenticator app</h1>" in html
    assert 'src="data:image/svg+xml;base64,' in html and 'alt="QR code for your authenticator app"' in html
    assert "<strong>idp</strong> (alice@example.com)" in html  # the issuer and account name the app shows
    assert 'autocomplete="one-time-code"' in html and 'inputmode="numeric"' in html
    assert browser.page.headers["Cache-Control"] == "no-store"
    key = page_key(html)
    assert len(key) == 32

    browser.submit("/account/two-factor/totp", code="000000")
    assert browser.page.status_code == 400
    error_next_to(browser.html, "code", "The code is not right. Enter the code the app shows now")
    assert page_key(browser.html) == key  # a wrong code keeps the key that was just scanned
    assert me(api, token)["twoFactorEnabled"] is False

    code = pyotp.TOTP(key).now()
    browser.submit("/account/two-factor/totp", code=f"{code[:3]} {code[3:]}")  # spaces are ignored
    html = browser.html
    assert browser.page.status_code == 200 and "<h1>Save your backup codes</h1>" in html
    assert "Two-step verification is on." in html
    assert "These codes will not be shown again." in html
    codes = shown_codes(html)
    assert len(codes) == 10 and all(re.fullmatch(r"[a-z2-7]{5}-[a-z2-7]{5}", c) for c in codes)
    assert re.search(r'<div class="button-row button-row--start" data-js-only hidden>\s*<button[^>]*data-copy-target="backup-codes"', html)
    assert 'data-download-target="backup-codes" data-filename="idp-backup-codes.txt"' in html
    assert "I have saved my codes" in html and browser.page.headers["Cache-Control"] == "no-store"
    assert me(api, token)["twoFactorEnabled"] is True

    browser.open("/account/two-factor/backup-codes/new")  # reloading the page
    assert "<h1>Two-step verification</h1>" in browser.html and "shown only once" in browser.html
    assert not shown_codes(browser.html) and not any(c in browser.html for c in codes)
    assert "Authenticator app" in browser.html and "10 of 10 left." in browser.html

    # the codes work at the next sign-in
    challenge = api.challenge("alice")
    used = api.client.post("/api/2fa/verify-backup-code", json={"tempToken": challenge["tempToken"], "code": codes[0]})
    assert used.status_code == 200


def test_code_errors_say_how_to_fix_them(app, api):
    strict(app)
    api.verified_token("alice")
    browser = sign_in(app)
    browser.open("/account/two-factor/totp")
    browser.submit("/account/two-factor/totp", code="")
    assert browser.page.status_code == 400
    error_next_to(browser.html, "code", "Enter the 6-digit code from the app")
    browser.submit("/account/two-factor/totp", code="12ab")
    error_next_to(browser.html, "code", "Enter the code as 6 digits, for example 123456")
    assert 'value="12ab"' not in browser.html  # codes are not kept


def test_a_key_the_page_did_not_show_is_never_drawn(app, api):
    """After a code error the page shows the key waiting for its first code, never one the client
    posted: 4,000 letters made the QR code raise (a 500), and any key would have been drawn."""
    strict(app)
    api.verified_token("alice")
    browser = sign_in(app)
    browser.open("/account/two-factor/totp")
    key = page_key(browser.html)
    for posted in ("A" * 4000, "JBSWY3DPEHPK3PXP"):
        browser.submit("/account/two-factor/totp", secret=posted, code="12")
        assert browser.page.status_code == 400
        assert page_key(browser.html) == key and posted not in browser.html
        assert "You started this setup again in another window" in browser.html
    browser.submit("/account/two-factor/totp", secret=key.lower(), code="12")  # the shown key, as typed back
    assert browser.page.status_code == 400 and page_key(browser.html) == key
    assert "another window" not in browser.html


def test_moving_the_app_to_a_new_phone_replaces_the_backup_codes(app, api):
    strict(app)
    token = api.verified_token("alice")
    old_secret, old_codes = api.enable_totp(token)
    browser = sign_in(app, totp_secret=old_secret)
    browser.open("/account/two-factor/totp")
    assert "<h1>Set up a new authenticator app</h1>" in browser.html and "keeps working" in browser.html
    new_key = page_key(browser.html)
    assert new_key != old_secret
    browser.submit("/account/two-factor/totp", code=pyotp.TOTP(new_key).now())
    assert "Save your backup codes" in browser.html and "Your earlier backup codes no longer work" in browser.html
    assert set(shown_codes(browser.html)).isdisjoint(old_codes)


# -- text messages -----------------------------------------------------------------------------


def test_text_messages_through_the_pages(app, api):
    strict(app)
    token = api.verified_token("alice")
    browser = sign_in(app)
    browser.open("/account/two-factor/sms")
    html = browser.html
    assert "<h1>Get codes by text message</h1>" in html
    assert re.search(r'<input[^>]*name="phoneNumber" type="tel"[^>]*autocomplete="tel" inputmode="tel"', html)

    browser.submit("/account/two-factor/sms", phoneNumber="")
    assert browser.page.status_code == 400
    error_next_to(browser.html, "phoneNumber", "Enter your mobile phone number")
    browser.submit("/account/two-factor/sms", phoneNumber="555 1234")
    error_next_to(browser.html, "phoneNumber", "Enter the number with + and the country code")
    assert 'value="555 1234"' in browser.html  # what was typed is kept

    browser.submit("/account/two-factor/sms", phoneNumber="+1 (555) 123-4567")  # spaces and dashes tidied
    html = browser.html
    assert "<h1>Enter the code we sent to your phone</h1>" in html
    assert "We sent a 6-digit code to <strong>***4567</strong>. It expires in 5 minutes." in html
    assert 'autocomplete="one-time-code"' in html and 'inputmode="numeric"' in html
    first = api.outbox.code(PHONE)

    browser.submit("/account/two-factor/sms/code", code="000000" if first != "000000" else "111111")
    assert browser.page.status_code == 400
    error_next_to(browser.html, "code", "The code is not right or has expired")

    browser.submit("/account/two-factor/sms/code", action="resend")
    assert "We sent a new code to ***4567." in browser.html
    assert len(api.outbox.messages(PHONE)) == 2

    browser.submit("/account/two-factor/sms/code", code=api.outbox.code(PHONE))
    assert "<h1>Save your backup codes</h1>" in browser.html and len(shown_codes(browser.html)) == 10
    assert "Text messages to ***4567 are set up. Two-step verification is on." in browser.html
    assert me(api, token)["twoFactorEnabled"] is True
    browser.open("/account/two-factor")
    assert "Text messages to ***4567" in browser.html and "Change number" in browser.html


def test_text_messages_when_the_server_cannot_send_them(app, api, monkeypatch):
    from idp.delivery import Delivery

    strict(app)
    api.verified_token("alice")
    browser = sign_in(app)
    monkeypatch.setattr(Delivery, "sms_available", lambda self: False)
    browser.open("/account/two-factor")
    assert "Not available on this server." in browser.html and 'href="/account/two-factor/sms"' not in browser.html
    browser.open("/account/two-factor/sms")
    assert browser.page.status_code == 200 and "Text messages are not available" in browser.html
    assert 'href="/account/two-factor/email"' in browser.html  # the next step
    response = browser.submit("/account/two-factor/sms", phoneNumber=PHONE)
    assert response.status_code != 500 and "Text messages are not available" in browser.html


def test_too_many_codes_say_how_long_to_wait(make_app):
    app = strict(make_app(RATE_LIMIT_CODE_SEND="2 per hour"))
    api = Api(app.test_client())
    api.verified_token("alice")  # the confirmation email is the first send of the hour
    browser = sign_in(app)
    browser.open("/account/two-factor/sms")
    browser.submit("/account/two-factor/sms", phoneNumber=PHONE)
    assert "We sent a 6-digit code to <strong>***4567</strong>" in browser.html
    browser.submit("/account/two-factor/sms/code", action="resend")
    assert browser.page.status_code == 429
    assert re.search(r"You have asked for too many codes. Try again in \d+ minutes?\.", browser.html)
    browser.open("/account/two-factor/email")
    browser.submit("/account/two-factor/email", email=CODES_EMAIL)
    assert browser.page.status_code == 429 and "Try again in" in browser.html
    assert f'value="{CODES_EMAIL}"' in browser.html


# -- email codes -------------------------------------------------------------------------------


def test_email_codes_added_when_two_step_verification_is_on(app, api):
    strict(app)
    token = api.verified_token("alice")
    secret, backup = api.enable_totp(token)
    browser = sign_in(app, totp_secret=secret)
    browser.open("/account/two-factor/email")
    assert "<h1>Get codes by email</h1>" in browser.html and 'autocomplete="email"' in browser.html
    browser.submit("/account/two-factor/email", email="not-an-address")
    assert browser.page.status_code == 400
    error_next_to(browser.html, "email", "Enter an email address in the right format, like name@example.com")
    assert 'value="not-an-address"' in browser.html

    browser.submit("/account/two-factor/email", email="Alice.Codes@Example.com")
    assert "<h1>Enter the code we sent to your email</h1>" in browser.html and "ali***@example.com" in browser.html
    browser.submit("/account/two-factor/email/code", code="")
    error_next_to(browser.html, "code", "Enter the 6-digit code")
    code = api.outbox.code(CODES_EMAIL)
    browser.submit("/account/two-factor/email/code", code=f"{code[:3]}-{code[3:]}")  # dashes are ignored
    # 2FA was on already: no new backup codes, straight back to the list
    assert "<h1>Two-step verification</h1>" in browser.html and "Email codes to ali***@example.com are set up." in browser.html
    assert "Two-step verification is on." not in browser.html and not shown_codes(browser.html)
    assert "Authenticator app" in browser.html and "10 of 10 left." in browser.html
    methods = api.client.get("/api/2fa/methods", headers=api.bearer(token)).json["data"]["methods"]
    assert sorted(m["type"] for m in methods) == ["email", "totp"]


def test_the_code_page_without_a_setup_sends_back_to_the_start(app, api):
    strict(app)
    api.verified_token("alice")
    browser = sign_in(app)
    browser.open("/account/two-factor/email/code")
    assert "<h1>Get codes by email</h1>" in browser.html


# -- removing --------------------------------------------------------------------------------


def test_removing_asks_first_and_the_last_one_turns_two_step_verification_off(app, api):
    strict(app)
    token = api.verified_token("alice")
    secret, _ = api.enable_totp(token)
    add_email_method(api, token)
    browser = sign_in(app, totp_secret=secret)
    methods = {m["type"]: m["id"] for m in api.client.get("/api/2fa/methods", headers=api.bearer(token)).json["data"]["methods"]}

    assert f'href="/account/two-factor/methods/{methods["email"]}/remove"' in browser.html
    browser.open(f"/account/two-factor/methods/{methods['email']}/remove")
    html = browser.html
    assert "<h1>Remove email codes to ali***@example.com?</h1>" in html
    assert "stays on with the authenticator app" in html and "Cancel, keep it" in html
    assert len(api.client.get("/api/2fa/methods", headers=api.bearer(token)).json["data"]["methods"]) == 2  # asking removes nothing
    browser.submit(f"/account/two-factor/methods/{methods['email']}/remove")
    assert "You removed email codes to ali***@example.com." in browser.html
    assert "Email codes to ali***@example.com" not in browser.html.replace("You removed email codes", "")
    assert me(api, token)["twoFactorEnabled"] is True

    browser.open(f"/account/two-factor/methods/{methods['totp']}/remove")
    html = browser.html
    assert "<h1>Turn off two-step verification?</h1>" in html
    assert "Your only second step is the authenticator app" in html and "backup codes stop working" in html
    assert "Remove and turn off two-step verification" in html and "button--warning" in html
    browser.submit(f"/account/two-factor/methods/{methods['totp']}/remove")
    assert "You removed the authenticator app. Two-step verification is off." in browser.html
    assert "protected by your password only" in browser.html and 'id="backup-codes"' not in browser.html
    assert me(api, token)["twoFactorEnabled"] is False

    browser.open(f"/account/two-factor/methods/{methods['totp']}/remove")  # gone already
    assert "already removed" in browser.html


# -- recent sign-in --------------------------------------------------------------------------


def test_sensitive_changes_ask_for_the_password_again(make_app):
    app = strict(make_app(REAUTH_WINDOW_SECONDS="0"))
    api = Api(app.test_client())
    token = api.verified_token("alice")
    secret, _ = api.enable_totp(token)
    browser = sign_in(app, totp_secret=secret)
    method_id = api.client.get("/api/2fa/methods", headers=api.bearer(token)).json["data"]["methods"][0]["id"]
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', browser.html).group(1)
    guarded = {
        "/account/two-factor/backup-codes": "POST",
        f"/account/two-factor/methods/{method_id}/remove": "POST",
        "/account/two-factor/totp": "GET",  # replacing a factor once 2FA is on
        "/account/two-factor/sms": "GET",
        "/account/two-factor/email": "GET",
    }
    for path, method in guarded.items():
        response = browser.client.post(path, data={"csrf_token": csrf}) if method == "POST" else browser.client.get(path)
        assert response.status_code == 302, (path, response.status_code)
        assert response.headers["Location"] == f"/account/confirm-password?next={path}", path
    browser.open("/account/two-factor/backup-codes")
    assert "Enter your password to continue" in browser.html
    assert api.client.get("/api/2fa/backup-codes/count", headers=api.bearer(token)).json["data"]["count"] == 10
    assert me(api, token)["twoFactorEnabled"] is True


def test_adding_the_first_factor_needs_no_recent_sign_in(make_app):
    app = strict(make_app(REAUTH_WINDOW_SECONDS="0"))
    Api(app.test_client()).verified_token("alice")
    browser = sign_in(app)
    browser.open("/account/two-factor/totp")
    assert "<h1>Set up an authenticator app</h1>" in browser.html
    browser.submit("/account/two-factor/totp", code=pyotp.TOTP(page_key(browser.html)).now())
    assert "Save your backup codes" in browser.html


def test_new_backup_codes_after_confirming_the_password(app, api):
    strict(app)
    token = api.verified_token("alice")
    secret, old_codes = api.enable_totp(token)
    browser = sign_in(app, totp_secret=secret)
    age_sign_ins(app)  # an hour later
    browser.submit("/account/two-factor/backup-codes")  # the overview's "Get new backup codes"
    assert "Enter your password to continue" in browser.html
    browser.submit("/account/confirm-password", password=Api.PASSWORD)
    html = browser.html
    assert "<h1>Get new backup codes</h1>" in html and "10 of 10 backup codes left" in html
    browser.submit("/account/two-factor/backup-codes")
    assert "<h1>Save your backup codes</h1>" in browser.html and "Your earlier backup codes no longer work" in browser.html
    new_codes = shown_codes(browser.html)
    assert len(new_codes) == 10 and set(new_codes).isdisjoint(old_codes)
    challenge = api.challenge("alice")
    old = api.client.post("/api/2fa/verify-backup-code", json={"tempToken": challenge["tempToken"], "code": old_codes[0]})
    assert old.status_code == 400
    browser.open("/account/two-factor/backup-codes/new")
    assert not shown_codes(browser.html) and "shown only once" in browser.html


def test_new_backup_codes_are_shown_once_even_to_the_session_cookie_sent_before(app, api):
    """The codes wait for their page in the session cookie; the page took them out of the cookie
    it sent back, but the cookie before it still held them: sent again, it showed them again."""
    secret, _ = api.enable_totp(api.verified_token("alice"))
    browser = sign_in(app, totp_secret=secret)
    asked = browser.client.post("/account/two-factor/backup-codes", data={"csrf_token": hidden_fields(browser.html)["csrf_token"]})
    assert asked.headers["Location"] == "/account/two-factor/backup-codes/new"
    earlier = browser.client.get_cookie("idp_session").value
    codes = shown_codes(browser.client.get("/account/two-factor/backup-codes/new").get_data(as_text=True))
    assert len(codes) == 10
    browser.client.set_cookie("idp_session", earlier)
    again = browser.client.get("/account/two-factor/backup-codes/new", follow_redirects=True).get_data(as_text=True)
    assert not shown_codes(again) and "shown only once" in again


# -- a confirmed email address first ---------------------------------------------------------


@pytest.mark.parametrize("path", ["/account/two-factor/totp", "/account/two-factor/sms", "/account/two-factor/email"])
def test_an_unconfirmed_address_is_confirmed_first(app, api, path):
    strict(app)
    api.token("alice")
    browser = sign_in(app)
    assert "Before you add a second step, confirm that <strong>alice@example.com</strong>" in browser.html
    browser.open(path)
    html = browser.html
    assert browser.page.status_code == 403 and "<h1>Confirm your email address first</h1>" in html
    assert 'action="/account/send-verification"' in html and "Send me the link" in html
    assert "QR code" not in html and "phoneNumber" not in html
    browser.submit("/account/send-verification")
    assert "We sent a confirmation link to alice@example.com" in browser.html
    assert api.outbox.link_token("alice@example.com")


# -- the enrolment on the way in shares the pieces ---------------------------------------------


def test_the_shared_pieces_render_strictly_on_the_enrolment_page(app, api):
    strict(app)
    api.verified_token("alice")
    browser = Browser(app)
    browser.open("/login")
    browser.sign_in()
    browser.open("/login/enrol")
    assert "Set up an authenticator app" in browser.html and len(page_key(browser.html)) == 32
