"""The hosted sign-in with a second factor: TOTP, SMS and email codes, backup codes, trusted
devices, acr_values and per-client policies (step-up and enrolment)."""

from __future__ import annotations

import re
import time

import pyotp
import pytest

from idp.errors import DeliveryUnavailable
from tests.conftest import Api
from tests.oidc.conftest import ISSUER, Browser, totp_now


@pytest.fixture
def totp_user(api: Api) -> dict:
    token = api.verified_token("alice")
    secret, backup_codes = api.enable_totp(token)
    return {"secret": secret, "backup_codes": backup_codes, "token": token}


def _to_code_page(rp, browser) -> None:
    browser.open(rp.authorization_url())
    browser.sign_in()
    assert "Enter the code from your authenticator app" in browser.html, browser.html[:400]


def _add_email_method(api: Api, token: str) -> None:
    """Codes by email to alice.codes@example.com, set up and confirmed."""
    assert api.client.post("/api/2fa/email/setup", headers=api.bearer(token), json={"email": "alice.codes@example.com"}).status_code == 200
    code = api.outbox.code("alice.codes@example.com")
    assert api.client.post("/api/2fa/email/verify-setup", headers=api.bearer(token), json={"code": code}).status_code == 200


def _finish(rp, browser) -> dict:
    if browser.page.status_code == 200 and "would like to" in browser.html:
        browser.submit("/oauth/authorize", decision="allow")
    return rp.id_token_claims(rp.exchange(rp.callback(browser.page)["code"]))


def test_totp_sign_in_gives_mfa_claims(rp, browser, totp_user):
    _to_code_page(rp, browser)
    assert 'autocomplete="one-time-code"' in browser.html and 'inputmode="numeric"' in browser.html
    browser.enter_code(totp_now(totp_user["secret"]))
    claims = _finish(rp, browser)
    assert claims["amr"] == ["pwd", "otp", "mfa"] and claims["acr"] == "urn:idp:acr:mfa"


def test_the_password_entered_again_is_not_told_to_apps_as_a_fresh_second_factor(rp, make_rp, browser, totp_user, app):
    """Three hours after a sign-in with a code, the password alone (the account pages' "enter your
    password to continue") renewed the sign-in with its factors: an ID token said auth_time now,
    amr mfa, and an app asking for a second factor in the last five minutes (max_age=300, acr mfa)
    took the password for one. The confirmation now counts for the account pages only: the app
    is told the sign-in's own time, so it asks for a sign-in with the code; an app that requires a
    second factor at any time is still served without one."""
    from tests.web.test_two_factor_pages import age_sign_ins

    _to_code_page(rp, browser)
    browser.enter_code(totp_now(totp_user["secret"]))
    first = _finish(rp, browser)
    age_sign_ins(app, hours=3)
    browser.open("/account/confirm-password?next=/account/password")
    browser.submit("/account/confirm-password", password=Api.PASSWORD)
    assert "<h1>Change your password</h1>" in browser.html  # a recent sign-in for the account pages
    bank = make_rp("--require-mfa", name="Bank")
    served = bank.id_token_claims(bank.log_in(browser))  # no code asked: the sign-in's factors stand
    assert abs(served["auth_time"] - (first["auth_time"] - 3 * 3600)) <= 2 and "mfa" in served["amr"]
    browser.open(rp.authorization_url(max_age="300", acr_values="urn:idp:acr:mfa"))
    assert "Sign in" in browser.html  # not a code at once
    browser.sign_in()
    browser.enter_code(pyotp.TOTP(totp_user["secret"]).at(time.time() + 30))
    claims = _finish(rp, browser)
    assert claims["amr"] == ["pwd", "otp", "mfa"] and time.time() - claims["auth_time"] < 60


def test_a_wrong_code_says_how_to_fix_it_and_five_kill_the_sign_in(rp, browser, totp_user):
    _to_code_page(rp, browser)
    browser.enter_code("000000")
    assert browser.page.status_code == 400 and "The code is not right" in browser.html and "There is a problem" in browser.html
    for _ in range(4):
        browser.enter_code("000000")
    assert "Sign in" in browser.html and "start again" in browser.html  # back to the password page
    assert "to continue to <strong>Notes</strong>" in browser.html  # still on the way back to the app
    browser.sign_in()
    browser.enter_code(totp_now(totp_user["secret"]))
    assert _finish(rp, browser)["amr"] == ["pwd", "otp", "mfa"]  # signing in again returns to it
    browser.open("/login/two-factor")
    assert "start again" in browser.html


def test_a_code_is_read_as_typed_and_one_of_another_form_costs_no_try(rp, browser, totp_user):
    """PAGES.md: spaces and dashes are ignored (`123-456` was a wrong code). A code of another form
    is told so before it is checked: it was a wrong code, one of the sign-in's five tries."""
    _to_code_page(rp, browser)
    for typed, told in (("11", "Enter the code as 6 digits"), ("12345x", "Enter the code as 6 digits"), ("", "Enter the 6-digit code")):
        for _ in range(3):
            browser.enter_code(typed)
            assert browser.page.status_code == 400 and told in browser.html, (typed, browser.html[:300])
    code = totp_now(totp_user["secret"])
    browser.enter_code(f"{code[:3]}-{code[3:]}")
    assert _finish(rp, browser)["amr"] == ["pwd", "otp", "mfa"]


def test_a_totp_code_is_accepted_once(rp, browser, totp_user, app):
    code = totp_now(totp_user["secret"])
    _to_code_page(rp, browser)
    browser.enter_code(code)
    _finish(rp, browser)
    other = Browser(app)
    _to_code_page(rp, other)
    other.enter_code(code)
    assert "The code is not right" in other.html


def test_backup_code_signs_in_once(rp, browser, totp_user, app):
    _to_code_page(rp, browser)
    browser.open("/login/two-factor?method=backup_code")
    assert "Enter one of your backup codes" in browser.html
    code = totp_user["backup_codes"][0]
    browser.enter_code(code.lower())
    assert _finish(rp, browser)["amr"] == ["pwd", "otp", "mfa"]
    again = Browser(app)
    _to_code_page(rp, again)
    again.open("/login/two-factor?method=backup_code")
    again.enter_code(code)
    assert "already used" in again.html


def test_trusted_device_skips_the_code_until_acr_values_ask_for_mfa(rp, browser, totp_user):
    _to_code_page(rp, browser)
    assert "Don&#39;t ask again on this browser for 30 days" in browser.html or "Don't ask again" in browser.html
    browser.enter_code(totp_now(totp_user["secret"]), trust=True)
    device_cookie = browser.client.get_cookie("deviceToken")
    assert device_cookie is not None and device_cookie.http_only
    _finish(rp, browser)
    browser.open("/oauth/logout", data={})  # sign out of the provider, keep the device cookie
    browser.submit("/oauth/logout", confirm="yes")
    browser.open(rp.authorization_url())
    browser.sign_in()
    claims = _finish(rp, browser)  # no code asked
    assert claims["amr"] == ["pwd"]
    # a relying party asking for multi-factor gets a code request even on the trusted device
    browser.open(rp.authorization_url(acr_values="urn:idp:acr:mfa"))
    assert "Enter the code from your authenticator app" in browser.html  # step-up: no password again
    time.sleep(0)  # the TOTP step used above is spent; the next step's code is accepted
    browser.enter_code(pyotp.TOTP(totp_user["secret"]).at(time.time() + 30))
    claims = _finish(rp, browser)
    assert claims["acr"] == "urn:idp:acr:mfa" and "mfa" in claims["amr"]


PHONE = "+15551234567"


def _sms_user(api: Api) -> str:
    """Alice with text messages as her second factor; her access token."""
    token = api.verified_token("alice")
    assert api.client.post("/api/2fa/sms/setup", headers=api.bearer(token), json={"phoneNumber": PHONE}).status_code == 200
    code = api.outbox.code(PHONE)
    assert api.client.post("/api/2fa/sms/verify-setup", headers=api.bearer(token), json={"code": code}).status_code == 200
    return token


def test_trusting_the_same_browser_again_replaces_its_device(rp, browser, totp_user, api):
    """A relying party asking for a second factor shows "don't ask again" on an already trusted
    browser: each tick added another device, and the replaced cookie's token stayed valid."""
    first_cookie = None
    for step in range(2):
        browser.open(rp.authorization_url(acr_values="urn:idp:acr:mfa"))
        if "Sign in" in browser.html and browser.page.status_code == 200:
            browser.sign_in()
        browser.enter_code(pyotp.TOTP(totp_user["secret"]).at(time.time() + 30 * step), trust=True)
        _finish(rp, browser)
        if step == 0:
            first_cookie = browser.client.get_cookie("deviceToken").value
            browser.open("/oauth/logout", data={})
            browser.submit("/oauth/logout", confirm="yes")
    devices = api.client.get("/api/2fa/devices", headers=api.bearer(totp_user["token"])).json["data"]["devices"]
    assert len(devices) == 1
    assert api.login("alice", deviceToken=first_cookie).json["data"]["requiresTwoFactor"] is True


def _signed_in_with_sms(app) -> tuple[Api, Browser]:
    """Alice (text messages as her second factor) past her password, at the code page of `app`."""
    api = Api(app.test_client())
    _sms_user(api)
    browser = Browser(app)
    browser.open("/login")
    browser.sign_in()
    return api, browser


def test_sms_code_sent_and_read_from_the_outbox(rp, browser, api, app):
    _sms_user(api)
    browser.open(rp.authorization_url())
    browser.sign_in()
    assert "Enter the code we sent to your phone" in browser.html and "***4567" in browser.html
    browser.enter_code(api.outbox.code(PHONE))
    claims = _finish(rp, browser)
    assert claims["amr"] == ["pwd", "sms", "mfa"]


def test_the_step_up_page_sends_a_code_only_when_asked(rp, browser, api):
    """Any site can send a signed-in browser to the step-up page (a link is enough): each visit
    sent an SMS. The page now offers to send one (a POST with its CSRF token), and opening it again
    while that code is pending sends no other."""
    _sms_user(api)
    browser.open(rp.authorization_url())
    browser.sign_in()
    browser.enter_code(api.outbox.code(PHONE), trust=True)
    _finish(rp, browser)
    browser.open("/oauth/logout", data={})
    browser.submit("/oauth/logout", confirm="yes")
    browser.open(rp.authorization_url())
    browser.sign_in()  # the trusted device skips the code
    _finish(rp, browser)
    before = len(api.outbox.messages(PHONE))
    for _ in range(3):
        browser.open(rp.authorization_url(acr_values="urn:idp:acr:mfa"))
        assert "Get a code by text message" in browser.html
    assert len(api.outbox.messages(PHONE)) == before
    browser.submit("/login/two-factor/send", method="sms")
    for _ in range(2):
        browser.open(rp.authorization_url(acr_values="urn:idp:acr:mfa"))
        assert "Enter the code we sent to your phone" in browser.html
    assert len(api.outbox.messages(PHONE)) == before + 1
    browser.enter_code(api.outbox.code(PHONE))
    claims = _finish(rp, browser)
    assert claims["acr"] == "urn:idp:acr:mfa" and claims["amr"] == ["pwd", "sms", "mfa"]


def test_past_the_allowance_of_codes_the_page_offers_to_send_one(make_app):
    app = make_app(RATE_LIMIT_LOGIN_CODE="1 per hour")
    api = Api(app.test_client())
    _sms_user(api)
    assert api.challenge()["codeSentBy"] == "sms"  # the hour's one code sent by itself
    browser = Browser(app)
    browser.open("/login")
    browser.sign_in()
    assert "Get a code by text message" in browser.html and "No code has gone to <strong>***4567</strong>" in browser.html
    assert 'name="code"' not in browser.html and "Send me a code" in browser.html  # sending comes first
    assert len(api.outbox.messages(PHONE)) == 2
    browser.submit("/login/two-factor/send", method="sms")
    assert "Enter the code we sent to your phone" in browser.html and "We sent a new code" in browser.html
    browser.open("/login/two-factor")
    assert "Enter the code we sent to your phone" in browser.html  # the page remembers the code went out
    browser.enter_code(api.outbox.code(PHONE))
    assert "Enter the code" not in browser.html


def test_switching_to_email_sends_a_code_and_resend_waits(rp, browser, api, totp_user):
    token = totp_user["token"]
    _add_email_method(api, token)
    _to_code_page(rp, browser)
    assert "Send a code by email" in browser.html
    browser.submit("/login/two-factor/send", method="email")
    assert "Enter the code we sent to your email" in browser.html and "ali***@example.com" in browser.html
    assert "We sent a new code" in browser.html
    browser.submit("/login/two-factor/send", method="email")
    assert browser.page.status_code == 429 and re.search(r"wait \d+ seconds", browser.html)
    browser.open("/login/two-factor?method=email")
    browser.enter_code(api.outbox.code("alice.codes@example.com"))
    assert _finish(rp, browser)["amr"] == ["pwd", "otp", "mfa"]


def test_a_way_removed_during_the_sign_in_is_no_longer_offered(rp, browser, api, totp_user):
    """Sending a code by a method removed since the sign-in began showed an error page saying only
    "Validation failed" (PAGES.md: no dead ends); the page now offers the ways left."""
    token = totp_user["token"]
    _add_email_method(api, token)
    _to_code_page(rp, browser)
    assert "Send a code by email" in browser.html
    email = next(m for m in api.client.get("/api/2fa/methods", headers=api.bearer(token)).json["data"]["methods"] if m["type"] == "email")
    assert api.client.delete(f"/api/2fa/methods/{email['id']}", headers=api.bearer(token)).status_code == 200
    browser.submit("/login/two-factor/send", method="email")
    assert browser.page.status_code == 200 and "Enter the code from your authenticator app" in browser.html, browser.html[:400]
    assert "Send a code by email" not in browser.html
    browser.enter_code(totp_now(totp_user["secret"]))
    assert _finish(rp, browser)["amr"] == ["pwd", "otp", "mfa"]


def test_the_last_way_removed_during_the_sign_in_sends_back_to_the_password(rp, browser, api, app):
    """The only second factor (every backup code used) removed on another device while this sign-in
    waits for its code: asking for the code again dropped the method, left the sign-in no way at
    all, and the code page failed (a 500). Two-factor is off now: the sign-in starts again."""
    from idp.extensions import db
    from idp.mfa.models import BackupCode

    token = api.verified_token("alice")
    _add_email_method(api, token)
    with app.app_context():  # every backup code used up
        db.session.execute(db.delete(BackupCode))
        db.session.commit()
    browser.open(rp.authorization_url())
    browser.sign_in()
    assert "Enter the code we sent to your email" in browser.html, browser.html[:400]
    [method] = api.client.get("/api/2fa/methods", headers=api.bearer(token)).json["data"]["methods"]
    assert api.client.delete(f"/api/2fa/methods/{method['id']}", headers=api.bearer(token)).status_code == 200
    browser.submit("/login/two-factor/send", method="email")
    assert browser.page.status_code == 200 and "start again" in browser.html, browser.html[:400]
    browser.sign_in()  # the password alone now
    assert _finish(rp, browser)["amr"] == ["pwd"]


def test_use_another_way_right_after_the_text_message_sends_the_email_code(rp, browser, api):
    """The 30 seconds between codes were counted across channels: a user whose phone is out of
    reach was told to wait instead of getting the email code."""
    access = _sms_user(api)
    _add_email_method(api, access)
    browser.open(rp.authorization_url())
    browser.sign_in()
    assert "Enter the code we sent to your phone" in browser.html  # the text message went out by itself
    browser.submit("/login/two-factor/send", method="email")
    assert browser.page.status_code == 200 and "Enter the code we sent to your email" in browser.html
    browser.submit("/login/two-factor/send", method="email")  # the same channel again waits
    assert browser.page.status_code == 429 and re.search(r"wait \d+ seconds", browser.html)


def test_past_the_hourly_number_of_codes_the_wait_is_said_in_minutes(make_app, time_machine):
    """It said "Please wait 3537 seconds before asking for another code"."""
    _, browser = _signed_in_with_sms(make_app(RATE_LIMIT_CODE_SEND="3 per hour"))
    for _ in range(4):
        time_machine.move_to(time.time() + 31)
        browser.submit("/login/two-factor/send", method="sms")
        if browser.page.status_code == 429:
            break
    assert browser.page.status_code == 429
    assert "Try again in" in browser.html and "minutes, or use another way to sign in" in browser.html
    assert not re.search(r"wait \d+ seconds", browser.html)


def test_a_client_requiring_mfa_takes_a_user_without_one_to_enrol(make_rp, browser, api):
    rp = make_rp("--require-mfa", name="Bank")
    token = api.token("alice")
    browser.open(rp.authorization_url())
    browser.sign_in()
    assert "Confirm your email address first" in browser.html
    browser.submit("/login/enrol", action="send-link")
    assert "We sent a link" in browser.html
    link_token = api.outbox.link_token("alice@example.com")
    confirm = Browser(rp.app)
    confirm.open(f"/verify-email?token={link_token}")
    assert "Confirm my email address" in confirm.html
    confirm.submit("/verify-email")
    assert "is confirmed" in confirm.html
    browser.open(rp.authorization_url())
    assert "Set up an authenticator app" in browser.html and 'src="data:image/svg+xml;base64,' in browser.html
    secret = "".join(re.findall(r"<span>([A-Z2-7]{1,4})</span>", browser.html))
    browser.submit("/login/enrol", code=pyotp.TOTP(secret).now())
    assert "Save your backup codes" in browser.html and "will not be shown again" in browser.html
    codes = re.search(r'<ol class="codes" id="backup-codes">(.*?)</ol>', browser.html, re.S).group(1)
    assert len(re.findall(r"<li>[^<]{8,}</li>", codes)) == 10
    continue_to = re.search(r'<a class="button" href="([^"]+)"', browser.html).group(1)
    browser.open(continue_to.replace("&amp;", "&"))
    claims = _finish(rp, browser)  # the code just confirmed was this sign-in's second factor
    assert "mfa" in claims["amr"]
    assert api.client.get("/api/auth/me", headers=api.bearer(token)).json["data"]["user"]["twoFactorEnabled"] is True


def test_the_enrol_page_refuses_one_email_too_many_as_every_page_does(make_app):
    """Past the per-user number of emails, the page said so with a 200 and no Retry-After, where
    every other page's refusal is a 429 with the limit's Retry-After."""
    from tests.oidc.conftest import REDIRECT_URI, RelyingParty, create

    app = make_app(RATE_LIMIT_CODE_SEND="1 per hour")
    rp = RelyingParty(app, create(app, "--name", "Bank", "--redirect-uri", REDIRECT_URI, "--require-mfa"))
    Api(app.test_client()).token("alice")
    browser = Browser(app)
    browser.open(rp.authorization_url())
    browser.sign_in()
    browser.submit("/login/enrol", action="send-link")
    assert browser.page.status_code == 200 and "We sent a link" in browser.html
    browser.submit("/login/enrol", action="send-link")
    assert browser.page.status_code == 429 and 0 < int(browser.page.headers["Retry-After"]) <= 3600
    assert "Too many emails sent. Try again in" in browser.html


def test_prompt_none_with_a_policy_needing_mfa_reports_interaction_required(make_rp, browser, api):
    rp = make_rp("--require-mfa", "--first-party", name="Bank")
    api.token("alice")
    plain = make_rp("--first-party", name="Plain")
    plain.log_in(browser)
    result = rp.callback(browser.open(rp.authorization_url(prompt="none")))
    assert result["error"] == "interaction_required"


def test_a_wrong_code_at_enrolment_keeps_the_key_just_scanned(make_rp, browser, api):
    rp = make_rp("--require-mfa", "--first-party", name="Bank")
    api.verified_token("alice")
    browser.open(rp.authorization_url())
    browser.sign_in()
    key = "".join(re.findall(r"<span>([A-Z2-7]{1,4})</span>", browser.html))
    browser.submit("/login/enrol", code="000000")
    assert browser.page.status_code == 400 and "The code is not right" in browser.html
    assert "".join(re.findall(r"<span>([A-Z2-7]{1,4})</span>", browser.html)) == key
    for typed, told in (("", "Enter the 6-digit code"), ("12", "Enter the code as 6 digits")):  # was "not right"
        browser.submit("/login/enrol", code=typed, secret=key)
        assert browser.page.status_code == 400 and told in browser.html and "not right" not in browser.html
        assert "".join(re.findall(r"<span>([A-Z2-7]{1,4})</span>", browser.html)) == key
    code = pyotp.TOTP(key).now()
    browser.submit("/login/enrol", code=f"{code[:3]}-{code[3:]}")
    assert "Save your backup codes" in browser.html


def test_asking_again_for_a_code_spends_no_tries_of_the_right_one(make_app):
    """"Send again" is limited as a code sent (API.md), not under the two-factor limit of tries,
    which the code's own form counts per address: clicks answered by the cooldown locked it out."""
    api, browser = _signed_in_with_sms(make_app(RATE_LIMIT_TWO_FACTOR="3 per 15 minutes"))
    code = api.outbox.code(PHONE)
    for _ in range(5):
        browser.submit("/login/two-factor/send", method="sms")
        assert browser.page.status_code == 429 and re.search(r"wait \d+ seconds", browser.html)  # the cooldown
    browser.open("/login/two-factor")
    browser.enter_code(code)
    assert "Enter the code" not in browser.html and browser.page.status_code == 200


def test_a_refreshed_id_token_keeps_the_acr_the_client_asked_for(rp, browser, totp_user):
    """`acr_values=mfa` (an alias we support) got `acr: "mfa"` in the first ID token but our own
    name, `urn:idp:acr:mfa`, in every refreshed one: an app comparing the two saw the sign-in's
    class change. The session keeps the value its sign-in reached."""
    browser.open(rp.authorization_url(acr_values="mfa"))
    browser.sign_in()
    browser.enter_code(totp_now(totp_user["secret"]))
    if browser.page.status_code == 200 and "would like to" in browser.html:
        browser.submit("/oauth/authorize", decision="allow")
    token = rp.exchange(rp.callback(browser.page)["code"])
    assert rp.id_token_claims(token)["acr"] == "mfa"
    refreshed = rp.oauth.refresh_token(f"{ISSUER}/oauth/token", refresh_token=token["refresh_token"])
    claims = rp.id_token_claims(refreshed)
    assert claims["acr"] == "mfa" and claims["amr"] == ["pwd", "otp", "mfa"]


def test_a_code_the_server_cannot_send_is_said_on_the_sign_in_page(make_app, monkeypatch):
    """Asking for a code by a channel this server cannot send (its SMS or email setting gone since
    the method was set up) ended on the 503 error page with the API's words, in English, and
    without the other ways to sign in; the page says it in its own words and offers them."""
    from idp.delivery import Delivery

    app = make_app(RATE_LIMIT_LOGIN_CODE="1 per hour")
    api = Api(app.test_client())
    _sms_user(api)  # and backup codes
    assert api.challenge()["codeSentBy"] == "sms"  # the hour's one code sent by itself: the page asks first
    browser = Browser(app)
    browser.open("/login")
    browser.sign_in()
    assert "Get a code by text message" in browser.html
    monkeypatch.setattr(Delivery, "sms", lambda self, *args, **kwargs: (_ for _ in ()).throw(DeliveryUnavailable("SMS delivery is not configured")))
    browser.submit("/login/two-factor/send", method="sms")
    assert browser.page.status_code == 503
    assert "This service cannot send codes this way at the moment" in browser.html and "not configured" not in browser.html
    assert "Get a code by text message" in browser.html and "Use another way" in browser.html  # still the sign-in, with the others
