"""The account's security pages: trusted devices, where you're signed in, security activity and
connected apps. Every page renders with StrictUndefined; every change is a CSRF-protected POST
that only ever touches the signed-in user's own things."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from datetime import timedelta
from html import unescape
from typing import Any

import pyotp
import pytest
from flask import Flask
from jinja2 import StrictUndefined
from sqlalchemy import select

from idp.accounts.models import User
from idp.audit.service import EVENTS, AuditLog, ClientInfo
from idp.clock import utcnow
from idp.extensions import db
from idp.web.activity import app_namer, describe_event, fallback
from idp.wiring import session_service
from tests.conftest import Api
from tests.oidc.conftest import POST_LOGOUT_URI, REDIRECT_URI, Browser, RelyingParty, hidden_fields
from tests.oidc.test_clients import create

FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
FIREFOX_WINDOWS = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Firefox/128.0"
CHROME_WINDOWS = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36"
ITEM = re.compile(r'<li class="item[^"]*">')
LI = re.compile(r"<li\b|</li>")
PAGES = ("/account/devices", "/account/sessions", "/account/activity", "/account/apps")


@pytest.fixture(autouse=True)
def strict_templates(app: Flask) -> None:
    app.jinja_env.undefined = StrictUndefined


@pytest.fixture
def make_rp(app: Flask) -> Callable[..., RelyingParty]:
    """A registered relying party (as tests/oidc's fixture of the same name)."""

    def make(name: str = "Notes") -> RelyingParty:
        scopes = [arg for scope in ("openid", "profile", "email", "phone", "offline_access") for arg in ("--scope", scope)]
        registered = create(app, "--name", name, "--redirect-uri", REDIRECT_URI, "--post-logout-redirect-uri", POST_LOGOUT_URI, *scopes)
        return RelyingParty(app, registered)

    return make


def browser_as(app: Flask, user_agent: str = FIREFOX) -> Browser:
    browser = Browser(app)
    browser.client.environ_base["HTTP_USER_AGENT"] = user_agent
    return browser


def signed_in(app: Flask, page: str, identifier: str = "alice", user_agent: str = FIREFOX) -> Browser:
    """A browser signed in with the password on the hosted pages, showing `page`."""
    browser = browser_as(app, user_agent)
    browser.open(f"/login?next={page}")
    browser.sign_in(identifier)
    assert browser.page.status_code == 200, browser.html[:500]
    return browser


def text(html: str) -> str:
    """The page's words, tags removed and spaces collapsed."""
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", html)).split())


def items(html: str) -> list[str]:
    """The entries of the page's lists (`<li class="item…">…</li>`, nested lists inside), as HTML."""
    found = []
    for start in ITEM.finditer(html):
        depth, position = 0, start.start()
        for tag in LI.finditer(html, start.start()):
            depth += -1 if tag.group(0) == "</li>" else 1
            if depth == 0:
                position = tag.end()
                break
        found.append(html[start.start():position])
    return found


def item_with(html: str, words: str) -> str:
    found = [item for item in items(html) if words in text(item)]
    assert len(found) == 1, (words, [text(i) for i in items(html)])
    return found[0]


def action_of(item: str) -> str:
    match = re.search(r'<form[^>]* action="([^"]+)"', item)
    assert match, item
    return unescape(match.group(1))


def post(browser: Browser, action: str, *, csrf: bool = True) -> Any:
    """Post a page's form as the browser would (its CSRF token), or without the token."""
    data = {"csrf_token": hidden_fields(browser.html)["csrf_token"]} if csrf else {}
    return browser.open(action, data=data)


def with_totp(api: Api, username: str = "alice") -> str:
    token = api.verified_token(username)
    secret, _ = api.enable_totp(token)
    return secret


def trust_through_api(api: Api, secret: str, name: str, *, user_agent: str = CHROME_WINDOWS, at: float | None = None) -> None:
    temp = api.challenge()["tempToken"]
    code = pyotp.TOTP(secret).at(at or time.time())
    response = api.client.post(
        "/api/2fa/verify",
        json={"tempToken": temp, "code": code, "trustDevice": True, "deviceName": name},
        headers={"User-Agent": user_agent},
    )
    assert response.status_code == 200, response.json


def trusted_browser(app: Flask, secret: str, *, at: float) -> Browser:
    """A browser that signs in with the password and a TOTP code, ticking "Don't ask again"."""
    browser = browser_as(app)
    browser.open("/login?next=/account/devices")
    browser.sign_in()
    browser.enter_code(pyotp.TOTP(secret).at(at), trust=True)
    assert "Trusted devices" in browser.html and browser.client.get_cookie("deviceToken") is not None
    return browser


# -- every page ---------------------------------------------------------------------------------


@pytest.mark.parametrize("page", PAGES)
def test_each_page_needs_a_sign_in_and_comes_back_to_it(app, api, page):
    api.token("alice")
    browser = browser_as(app)
    response = browser.client.get(page)
    assert response.status_code == 302 and response.headers["Location"].endswith("/login?next=" + page)
    browser.open(page)
    browser.sign_in()
    html = browser.html
    assert browser.page.status_code == 200 and html.count("<h1") == 1
    assert 'aria-current="page"' in item_nav(html, page)


def item_nav(html: str, page: str) -> str:
    """The menu link of `page`."""
    match = re.search(rf'<a href="{re.escape(page)}"[^>]*>', html)
    assert match, html[:2000]
    return match.group(0)


def test_every_form_is_refused_without_the_csrf_token(app, api, make_rp):
    secret = with_totp(api)
    trust_through_api(api, secret, "Work laptop")
    browser = trusted_browser(app, secret, at=time.time() + 30)
    device = action_of(item_with(browser.html, "Work laptop"))
    before = text(browser.html)
    for action in (device, "/account/devices/remove-all", "/account/sessions/revoke-others"):
        response = post(browser, action, csrf=False)
        assert response.status_code == 400 and "This form has expired" in response.get_data(as_text=True)
    browser.open("/account/devices")
    assert "Work laptop" in text(browser.html) and text(browser.html) == before

    browser.open("/account/sessions")
    own = action_of(item_with(browser.html, "This browser"))
    assert post(browser, own, csrf=False).status_code == 400
    assert browser.open("/account/sessions").status_code == 200  # still signed in

    rp = make_rp(name="Notes")
    rp.log_in(browser)
    browser.open("/account/apps")
    revoke = action_of(item_with(browser.html, "Notes"))
    assert post(browser, revoke, csrf=False).status_code == 400
    browser.open("/account/apps")
    assert "Notes" in text(browser.html) and "No connected apps" not in browser.html


# -- trusted devices ----------------------------------------------------------------------------


def test_devices_lists_each_trusted_device_and_marks_this_browser(app, api):
    secret = with_totp(api)
    now = time.time()
    trust_through_api(api, secret, "Work laptop", at=now)
    browser = trusted_browser(app, secret, at=now + 30)
    html = browser.html

    laptop = item_with(html, "Work laptop")
    words = text(laptop)
    assert "Browser Chrome on Windows" in words and "IP address 127.0.0.1" in words
    assert "Added just now" in words and "Last used just now" in words and "This browser" not in words
    assert re.search(r'<time datetime="\d{4}-\d\d-\d\dT[\d:.]+Z">just now <span class="item__when">\(\d+ \w{3} \d{4}, \d\d:\d\d UTC\)</span></time>', laptop)

    here = item_with(html, "This browser")
    assert "Firefox on Linux" in text(here) and "item--current" in here
    assert len(items(html)) == 2 and "Remove all trusted devices" in html


def test_removing_one_device_then_all(app, api):
    secret = with_totp(api)
    now = time.time()
    trust_through_api(api, secret, "Work laptop", at=now)
    browser = trusted_browser(app, secret, at=now + 30)

    post(browser, action_of(item_with(browser.html, "Work laptop")))
    assert "Work laptop is no longer trusted" in text(browser.html)
    assert len(items(browser.html)) == 1 and "This browser" in text(browser.html)
    assert [d["deviceName"] for d in devices_of(api)] == ["Firefox on Linux"]

    post(browser, "/account/devices/remove-all")
    assert "No device is trusted any more" in text(browser.html)
    assert "No trusted devices. When you tick “Don't ask again on this browser”, it appears here." in text(browser.html)
    assert devices_of(api) == [] and browser.client.get_cookie("deviceToken") is None

    events = [e["action"] for e in audit_of(api)]
    assert events.count("trusted_device_removed") == 2


def test_removing_this_browser_forgets_its_cookie(app, api):
    secret = with_totp(api)
    browser = trusted_browser(app, secret, at=time.time())
    post(browser, action_of(item_with(browser.html, "This browser")))
    assert "Firefox on Linux is no longer trusted" in text(browser.html)
    assert browser.client.get_cookie("deviceToken") is None


def test_one_user_cannot_remove_another_users_device(app, api):
    secret = with_totp(api)
    trust_through_api(api, secret, "Work laptop")
    alice_device = devices_of(api)[0]["id"]
    api.token("bob")
    bob = signed_in(app, "/account/devices", "bob")
    response = post(bob, f"/account/devices/{alice_device}/remove")
    assert response.status_code == 200 and "That device was not on your list any more" in bob.html
    assert [d["id"] for d in devices_of(api)] == [alice_device]


# -- sessions -----------------------------------------------------------------------------------


def test_sessions_lists_browsers_api_clients_and_apps_in_words(app, api, make_rp):
    api.token("alice")
    api.client.post(
        "/api/auth/login", json={"emailOrUsername": "alice", "password": api.PASSWORD}, headers={"User-Agent": FIREFOX_WINDOWS}
    )
    browser = signed_in(app, "/account/sessions")
    make_rp(name="Notes").log_in(browser)
    signed_in(app, "/account/sessions", user_agent=CHROME_WINDOWS)
    browser.open("/account/sessions")
    html = browser.html

    here = text(item_with(html, "This browser"))
    assert here.startswith("Firefox on Linux This browser Signed in just now · last active just now · IP address 127.0.0.1")
    assert "Chrome on Windows" in text(item_with(html, "Chrome on Windows"))
    assert "This browser" not in text(item_with(html, "Chrome on Windows"))
    assert "Signed in just now" in text(item_with(html, "JSON API client (Firefox on Windows)"))
    assert len([i for i in items(html) if "JSON API client" in text(i)]) == 2  # the registration's too
    app_entry = text(item_with(html, "Notes (connected app)"))
    assert "Opened in this browser" in app_entry and "Connected just now" in app_entry
    assert re.search(r'<time datetime="[^"]+Z" title="\d+ \w{3} \d{4}, \d\d:\d\d UTC">just now</time>', html)
    assert items(html)[0] == item_with(html, "This browser")  # this browser first
    assert "Sign out everywhere else" in html and "Ends 3 sessions" in text(html)  # the registration's, the API's, Chrome's


def test_signing_out_another_browser_ends_its_session(app, api):
    api.token("alice")
    browser = signed_in(app, "/account/sessions")
    other = signed_in(app, "/account/sessions", user_agent=CHROME_WINDOWS)
    browser.open("/account/sessions")
    post(browser, action_of(item_with(browser.html, "Chrome on Windows")))
    assert "Signed out: Chrome on Windows." in text(browser.html)
    assert "Chrome on Windows" not in text("".join(items(browser.html)))
    other.open("/account/sessions")
    assert "Sign in" in other.html and "/login" in other.page.request.path


def test_signing_out_another_browser_ends_the_app_sessions_opened_in_it(app, api, make_rp):
    """An app signed in through a browser (without offline_access) ends with that browser's sign-in,
    as when the browser signs out itself: signed out from another device (the page, or DELETE
    /api/auth/sessions/:id), the app's tokens kept working, refresh token included, for 7 days."""
    token = api.token("alice")
    lost = signed_in(app, "/account/sessions")
    notes, tasks = make_rp(name="Notes"), make_rp(name="Tasks")
    notes_tokens = notes.log_in(lost)
    here = signed_in(app, "/account/sessions", user_agent=CHROME_WINDOWS)
    post(here, action_of(item_with(here.html, "Firefox on Linux")))
    assert "Signed out: Firefox on Linux." in text(here.html)
    assert userinfo(app, notes_tokens).status_code == 401
    assert "Notes" not in text(here.html)

    again = signed_in(app, "/account/sessions")  # the same through the API
    tasks_tokens = tasks.log_in(again)
    browser_id = again.client.get_cookie("idp_sso").value.partition(".")[0]
    assert api.client.delete(f"/api/auth/sessions/{browser_id}", headers=api.bearer(token)).status_code == 200
    assert userinfo(app, tasks_tokens).status_code == 401


def test_sign_out_everywhere_else_keeps_this_browser_and_its_apps(app, api, make_rp):
    token = api.token("alice")  # the registration opened an API session
    browser = signed_in(app, "/account/sessions")
    rp = make_rp(name="Notes")
    tokens = rp.log_in(browser)
    other = signed_in(app, "/account/sessions", user_agent=CHROME_WINDOWS)
    browser.open("/account/sessions")
    post(browser, "/account/sessions/revoke-others")
    assert "Signed out everywhere else (2 sessions). This browser stays signed in." in text(browser.html)
    assert len(items(browser.html)) == 2 and "You're not signed in anywhere else." in text(browser.html)
    assert api.client.get("/api/auth/me", headers=api.bearer(token)).status_code == 401
    other.open("/account/sessions")
    assert "/login" in other.page.request.path
    assert userinfo(app, tokens).status_code == 200
    activity = signed_in_page(browser, "/account/activity")
    assert "Signed out everywhere else (2 sessions)" in activity


def userinfo(app: Flask, tokens: dict[str, Any]) -> Any:
    return app.test_client().get("/oauth/userinfo", headers={"Authorization": f"Bearer {tokens['access_token']}"})


def signed_in_page(browser: Browser, page: str) -> str:
    browser.open(page)
    return text(browser.html)


def test_signing_out_this_browser_from_the_list_signs_out(app, api):
    api.token("alice")
    browser = signed_in(app, "/account/sessions")
    post(browser, action_of(item_with(browser.html, "This browser")))
    assert browser.page.request.path == "/" and "This service signs people in" in browser.html
    assert browser.client.get_cookie("idp_sso") is None
    assert browser.client.get("/account/sessions").status_code == 302


def test_one_user_cannot_sign_out_another_users_session(app, api):
    api.token("alice")
    alice = signed_in(app, "/account/sessions")
    alice_session = action_of(item_with(alice.html, "This browser"))
    api.token("bob")
    bob = signed_in(app, "/account/sessions", "bob")
    post(bob, alice_session)
    assert "That session had already ended." in text(bob.html)
    assert alice.open("/account/sessions").status_code == 200 and "This browser" in alice.html


# -- security activity --------------------------------------------------------------------------


def test_activity_sentences(app, api):
    token = api.verified_token("alice")
    failed = browser_as(app)
    failed.open("/login")
    failed.sign_in(password="not-the-password")
    assert failed.page.status_code == 401
    secret, _ = api.enable_totp(token)
    browser = browser_as(app)
    browser.open("/login?next=/account/activity")
    browser.sign_in()
    browser.enter_code(pyotp.TOTP(secret).now())
    html = browser.html
    words = [text(item) for item in items(html)]

    assert words[0].startswith("Signed in with your password and your authenticator app")
    assert "IP address 127.0.0.1 · Firefox on Linux" in words[0]
    assert any(w.startswith("Passed the second step with your authenticator app") for w in words)
    assert any(w.startswith("Turned on your authenticator app for two-step verification") for w in words)
    attempt = item_with(html, "Someone tried to sign in with a wrong password")
    assert "item--attention" in attempt and "Check" in text(attempt) and "Firefox on Linux" in text(attempt)
    assert any(w.startswith("Confirmed your email address") for w in words)
    assert words[-1].startswith("Created your account")
    assert re.search(r'<time datetime="[^"]+Z">Just now <span class="item__when">\(\d+ \w{3} \d{4}, \d\d:\d\d UTC\)</span></time>', html)
    assert "Page 1 of" not in html  # one page only: no pagination


def test_activity_is_paginated_newest_first(app, api):
    api.token("alice")
    start = utcnow() - timedelta(days=2)
    with app.app_context():
        user_id = db.session.scalar(select(User.id).where(User.username == "alice"))
        for n in range(45):
            moment = start + timedelta(minutes=n)
            AuditLog(db.session(), lambda moment=moment: moment).record(
                "backup_code_used", user_id=user_id, client=ClientInfo("203.0.113.9", CHROME_WINDOWS), details={"remaining": n}
            )
        db.session.commit()
    browser = signed_in(app, "/account/activity")
    total = len(audit_of(api))  # the 45 and the sign-ins before
    pages = (total + 19) // 20
    assert total == 47 and pages == 3  # registration, 45 backup codes, the sign-in
    page_one = [text(i) for i in items(browser.html)]
    assert len(page_one) == 20 and page_one[0].startswith("Signed in with your password")
    assert f"Page 1 of {pages}" in text(browser.html) and 'rel="next" href="/account/activity?page=2"' in browser.html
    assert 'rel="prev"' not in browser.html

    browser.open("/account/activity?page=2")
    page_two = [text(i) for i in items(browser.html)]
    assert len(page_two) == 20 and "Page 2 of 3" in text(browser.html)
    assert 'rel="prev" href="/account/activity?page=1"' in browser.html and 'rel="next" href="/account/activity?page=3"' in browser.html
    remaining = [int(re.search(r"\((\d+) codes? left\)", w).group(1)) for w in page_one + page_two if "backup code" in w]
    assert remaining == sorted(remaining, reverse=True) and remaining[0] == 44  # newest first
    assert "IP address 203.0.113.9 · Chrome on Windows" in page_two[0]

    browser.open("/account/activity?page=3")
    assert "Page 3 of 3" in text(browser.html) and 'rel="next"' not in browser.html
    page_three = [text(i) for i in items(browser.html)]
    assert len(page_three) == 7 and page_three[-1].startswith("Used a backup code (0 codes left) 2 days ago")
    for odd in ("99", "0", "-1", "x", "99999999999999999999"):  # the last overflowed the query's offset: a 500
        assert browser.open(f"/account/activity?page={odd}").status_code == 200
    assert "Page 3 of 3" in text(browser.html)


def test_activity_only_shows_the_users_own_events(app, api):
    api.token("alice")
    api.token("bob")
    failed = browser_as(app)
    failed.open("/login")
    failed.sign_in("bob", password="not-the-password")
    alice = signed_in(app, "/account/activity")
    assert "wrong password" not in alice.html


# -- connected apps -----------------------------------------------------------------------------


def test_apps_lists_consents_in_plain_words_and_removes_access(app, api, make_rp):
    api.token("alice")
    browser = browser_as(app)
    rp = make_rp(name="Notes")
    tokens = rp.log_in(browser)
    browser.open("/account/apps")
    notes = text(item_with(browser.html, "Notes"))
    assert "Your email address" in notes and "Your username" in notes and "Know who you are" in notes
    assert "Allowed just now" in notes and "Signed in" in notes

    post(browser, action_of(item_with(browser.html, "Notes")))
    assert "Notes can no longer access your account, and it was signed out." in text(browser.html)
    assert "No connected apps." in text(browser.html)
    assert userinfo(app, tokens).status_code == 401
    browser.open("/account/sessions")
    assert "Notes (connected app)" not in browser.html
    assert "Removed access for Notes" in signed_in_page(browser, "/account/activity")
    assert "Allowed Notes to access your account" in text(browser.html)


def test_apps_page_says_when_there_are_none(app, api):
    api.token("alice")
    browser = signed_in(app, "/account/apps")
    assert "No connected apps. When you allow an app" in text(browser.html)


def test_one_user_cannot_remove_another_users_app(app, api, make_rp):
    api.token("alice")
    api.token("bob")
    rp = make_rp(name="Notes")
    alice = browser_as(app)
    rp.log_in(alice)
    bob = signed_in(app, "/account/apps", "bob")
    post(bob, f"/account/apps/{rp.client_id}/revoke")
    assert "That app had no access to your account any more." in text(bob.html)
    alice.open("/account/apps")
    assert "Notes" in text(item_with(alice.html, "Notes"))


# -- the sentences themselves ---------------------------------------------------------------------


def test_every_audit_event_has_its_own_sentence():
    for event in EVENTS:
        line = describe_event(event, {})
        assert line.sentence and line.sentence != fallback(event).sentence, event


@pytest.mark.parametrize(
    ("event", "details", "success", "sentence"),
    [
        ("login_success", {"method": "pwd"}, True, "Signed in with your password"),
        ("login_success", {"method": "totp"}, True, "Signed in with your password and your authenticator app"),
        ("login_success", {"method": "sms"}, True, "Signed in with your password and a code sent by text message"),
        ("login_failed", {"reason": "wrong_password"}, False, "Someone tried to sign in with a wrong password"),
        ("2fa_enabled", {"method": "sms"}, True, "Turned on text messages for two-step verification"),
        ("2fa_enabled", {"method": "sms", "replacedMethodIds": ["m1"], "backupCodesReplaced": False}, True,
         "Replaced text messages used for two-step verification"),
        ("2fa_enabled", {"method": "totp", "replacedMethodIds": ["m1"], "backupCodesReplaced": True}, True,
         "Replaced your authenticator app used for two-step verification; your old backup codes no longer work"),
        ("2fa_enabled", {"method": "totp", "replacedMethodIds": [], "backupCodesReplaced": True}, True,
         "Turned on your authenticator app for two-step verification; your old backup codes no longer work"),
        ("2fa_disabled", {"method": "totp", "twoFactorEnabled": False}, True,
         "Removed your authenticator app from two-step verification; two-step verification is now off"),
        ("session_revoked", {"reason": "refresh_token_reuse"}, True,
         "A session was ended because an old sign-in token was used again (it may have been copied)"),
        ("session_revoked", {"count": 1, "reason": "password_changed"}, True,
         "Signed out everywhere because your password changed (1 session)"),
        ("backup_code_used", {"remaining": 2}, True, "Used a backup code (2 codes left)"),
        ("consent_granted", {"clientId": "c1", "scopes": ["openid"]}, True, "Allowed Notes to access your account"),
        ("consent_granted", {"clientId": "gone"}, True, "Allowed an app that is no longer registered to access your account"),
        ("token_revoked", {"clientId": "c1", "reason": "consent_revoked", "sessions": 1}, True, "Removed access for Notes"),
        # a password reset's own doing, not the user's nor the deliveries' (1c7eb29, 1e94e6d)
        ("webhook_disabled", {"webhookId": "w1", "failures": 10}, False, "A webhook was turned off after its deliveries failed again and again"),
        ("webhook_disabled", {"webhookId": "w1", "reason": "password_reset"}, True,
         "A webhook was turned off because your password was reset; turn it back on if it is yours"),
        ("api_key_revoked", {"apiKeyId": "k1"}, True, "Revoked an API key"),
        ("api_key_revoked", {"apiKeyId": "k1", "reason": "password_reset"}, True, "An API key was revoked because your password was reset"),
        # an administrator's disable of the account
        ("webhook_disabled", {"webhookId": "w1", "by": "a1", "reason": "user_disabled"}, True,
         "A webhook was turned off when an administrator disabled your account; turn it back on if it is yours"),
        ("api_key_revoked", {"apiKeyId": "k1", "by": "a1", "reason": "user_disabled"}, True,
         "An API key was revoked when an administrator disabled your account"),
    ],
)
def test_sentences_use_the_details(event, details, success, sentence):
    assert describe_event(event, details, success=success, app_name=app_namer({"c1": "Notes"})).sentence == sentence


def test_odd_events_still_get_a_sentence():
    assert describe_event("something_new", {"x": 1}).sentence == "Something happened on your account (something new)"
    assert describe_event("login_success", None).sentence == "Signed in"
    assert describe_event("login_success", ["not", "a", "dict"]).sentence == "Signed in"  # type: ignore[arg-type]
    assert describe_event("session_revoked", {"count": "three", "reason": 7}).sentence == "A session was ended"
    assert describe_event("login_failed", {}, success=False).attention


# -- helpers over the JSON API ------------------------------------------------------------------


def devices_of(api: Api) -> list[dict[str, Any]]:
    """Alice's trusted devices, as the JSON API lists them."""
    return _as_alice(api, "/api/2fa/devices")["devices"]


def audit_of(api: Api) -> list[dict[str, Any]]:
    return _as_alice(api, "/api/audit-logs?limit=100")["logs"]


def _as_alice(api: Api, path: str) -> dict[str, Any]:
    """GET an API path as Alice, with a session opened by the service (her second factor, if
    any, would need another code here)."""
    with api.client.application.test_request_context():
        user = db.session.scalar(select(User).where(User.username == "alice"))
        assert user is not None
        tokens = session_service().start(user, client=ClientInfo(), amr=["pwd"])
    response = api.client.get(path, headers=api.bearer(tokens.access_token))
    assert response.status_code == 200, response.json
    return response.json["data"]


def test_an_administrators_address_and_browser_are_not_shown_to_the_account(app, api):
    """"An administrator disabled your account · 198.51.100.77 · Firefox on Windows" told the user
    the operator's network address and browser, on the activity page and in /api/audit-logs; the
    audit log across users (the administrators') keeps them."""
    from tests.admin.conftest import Admin

    admin_ip, admin_ua = "198.51.100.77", "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Firefox/128.0"
    api.register("alice")
    admin = Admin(api, app)
    alice_id = admin.user_id("alice")
    for action in ("disable", "enable", "reset-2fa"):
        answer = api.client.post(
            f"/api/admin/users/{alice_id}/{action}", headers={**admin.headers, "User-Agent": admin_ua}, environ_base={"REMOTE_ADDR": admin_ip}
        )
        assert answer.status_code == 200, (action, answer.json)
    browser = Browser(app)
    browser.open("/login?next=/account/activity")
    browser.sign_in()
    assert "An administrator disabled your account" in browser.html
    assert admin_ip not in browser.html and "Firefox on Windows" not in browser.html
    own = api.client.get("/api/audit-logs", headers=api.bearer(api.login("alice").json["data"]["accessToken"])).json["data"]["logs"]
    assert {e["action"] for e in own} >= {"user_disabled", "user_enabled", "session_revoked", "2fa_disabled"}
    assert all(e["ipAddress"] != admin_ip and e["userAgent"] != admin_ua for e in own)
    across = admin.get("/audit-logs", userId=alice_id).json["data"]["logs"]
    assert any(e["ipAddress"] == admin_ip and e["action"] == "user_disabled" for e in across)
