"""Changing the password on the account pages: the current one first, a recent sign-in, and every
other session signed out while this browser stays signed in."""

from __future__ import annotations

from datetime import timedelta

import time_machine

from idp.clock import utcnow
from tests.conftest import Api
from tests.oidc.conftest import Browser
from tests.web.test_registration import NEW, PASSWORD, field, field_error, post, strict


def signed_in_browser(app, identifier: str = "alice") -> Browser:
    browser = Browser(app)
    browser.open("/login")
    browser.sign_in(identifier)
    return browser


def test_the_page_needs_a_sign_in_and_comes_back_after_it(app, api):
    strict(app)
    api.register("alice")
    browser = Browser(app)
    browser.open("/account/password")
    assert browser.page.request.path == "/login" and "Sign in" in browser.html
    browser.sign_in()
    assert browser.page.request.path == "/account/password" and "Change your password" in browser.html


def test_the_form_names_both_passwords_for_password_managers(app, api):
    strict(app)
    api.register("alice")
    html = signed_in_browser(app).open("/account/password").get_data(as_text=True)
    assert field(html, "currentPassword")["autocomplete"] == "current-password"
    assert field(html, "newPassword")["autocomplete"] == "new-password"
    assert field(html, "username")["value"] == "alice@example.com"  # the account the manager saves it for
    assert 'aria-current="page">Password</a>' in html  # the account menu marks this section


def test_a_wrong_or_missing_current_password_is_refused_next_to_it(app, api):
    strict(app)
    api.register("alice")
    browser = signed_in_browser(app)
    browser.open("/account/password")
    wrong = post(browser, "/account/password", currentPassword="Not-The-One-1!", newPassword=NEW)
    assert wrong.status_code == 401
    assert field_error(browser.html, "currentPassword") == "Your current password is not right"
    assert "value" not in field(browser.html, "currentPassword") and "value" not in field(browser.html, "newPassword")
    empty = post(browser, "/account/password", currentPassword="", newPassword="")
    assert empty.status_code == 400
    assert field_error(browser.html, "currentPassword") == "Enter your current password"
    assert field_error(browser.html, "newPassword") == "Enter a new password"
    assert api.login("alice").status_code == 200  # nothing changed


def test_the_new_password_must_meet_the_policy(app, api):
    strict(app)
    api.register("alice")
    browser = signed_in_browser(app)
    browser.open("/account/password")
    weak = post(browser, "/account/password", currentPassword=PASSWORD, newPassword="password")
    assert weak.status_code == 400
    assert (field_error(browser.html, "newPassword") or "").startswith("Your new password must contain an upper-case letter")
    same = post(browser, "/account/password", currentPassword=PASSWORD, newPassword=PASSWORD)
    assert field_error(browser.html, "newPassword") == "Your new password must differ from the current password"
    assert same.status_code == 400 and api.login("alice").status_code == 200


def test_an_old_sign_in_is_asked_for_the_password_first(make_app):
    app = strict(make_app(REAUTH_WINDOW_SECONDS="0"))
    Api(app.test_client()).register("alice")
    browser = signed_in_browser(app)
    shown = browser.client.get("/account/password")
    assert shown.status_code == 302 and shown.headers["Location"] == "/account/confirm-password?next=/account/password"
    browser.open("/account/password")
    posted = post(browser, "/account/password", currentPassword=PASSWORD, newPassword=NEW)
    assert posted.status_code == 302 and posted.headers["Location"].startswith("/account/confirm-password")
    assert Api(app.test_client()).login("alice", PASSWORD).status_code == 200  # not carried out


def test_after_the_window_the_password_again_leads_back_to_the_page(app, api):
    strict(app)
    api.register("alice")
    browser = signed_in_browser(app)
    with time_machine.travel(utcnow() + timedelta(minutes=11), tick=False):
        browser.open("/account/password")
        assert browser.page.request.path == "/account/confirm-password"
        browser.submit("/account/confirm-password", password=PASSWORD)
        assert browser.page.request.path == "/account/password" and "Change your password" in browser.html
        changed = post(browser, "/account/password", currentPassword=PASSWORD, newPassword=NEW)
        assert changed.status_code == 302


def test_changing_signs_out_every_other_session_and_keeps_this_browser(app, api):
    strict(app)
    api.register("alice")
    assert api.login("alice").status_code == 200  # an API session, its refresh token in api.client
    other = signed_in_browser(app)
    browser = signed_in_browser(app)
    before = browser.client.get_cookie("idp_sso").value
    browser.open("/account/password")

    changed = post(browser, "/account/password", currentPassword=PASSWORD, newPassword=NEW)
    assert changed.status_code == 302 and changed.headers["Location"] == "/account"

    assert api.client.post("/api/auth/refresh").status_code == 401  # the API session's refresh token stopped working
    assert other.open("/account/password").request.path == "/login"  # the other browser is signed out
    after = browser.client.get_cookie("idp_sso").value
    assert after != before  # this browser goes on in a new session...
    page = browser.open("/account/password")  # ...signed in, and recently so
    assert page.status_code == 200 and page.request.path == "/account/password"
    assert "Your password is changed. Every other session was signed out." in browser.html
    assert api.login("alice", PASSWORD).status_code == 401 and api.login("alice", NEW).status_code == 200
    assert "password was changed" in api.outbox.last("alice@example.com")["text"].lower()


def test_the_password_template_renders_with_strict_undefined(app, api):
    strict(app)
    api.register("alice")
    browser = signed_in_browser(app)
    pages = [
        browser.open("/account/password"),
        post(browser, "/account/password", currentPassword="", newPassword="x"),
        post(browser, "/account/password", currentPassword="wrong", newPassword=NEW),
    ]
    assert [p.status_code for p in pages] == [200, 400, 401]
    assert 'data-password-checklist="field-newPassword"' in browser.html


def test_wrong_current_passwords_use_up_the_networks_sign_in_failures(make_app):
    """A wrong current password counts against the client network like a failed sign-in (the API's
    login and the sign-in page spend the same window); past it the form says how long to wait, with
    the limit's Retry-After, and the password stays as it was."""
    app = strict(make_app(RATE_LIMIT_LOGIN="2 per 15 minutes"))
    api = Api(app.test_client())
    api.register("alice")
    browser = signed_in_browser(app)
    browser.open("/account/password")
    assert post(browser, "/account/password", currentPassword="Not-The-One-1!", newPassword=NEW).status_code == 401
    assert api.client.post("/api/auth/login", json={"emailOrUsername": "alice", "password": "Not-The-One-1!"}).status_code == 401
    refused = post(browser, "/account/password", currentPassword=PASSWORD, newPassword=NEW)
    assert refused.status_code == 429 and 0 < int(refused.headers["Retry-After"]) <= 900
    assert refused.headers["RateLimit-Remaining"] == "0" and refused.headers["RateLimit-Limit"] == "2"
    assert "Too many attempts. Try again in 15 minutes." in browser.html
    elsewhere = {"REMOTE_ADDR": "203.0.113.5"}
    old_password = api.client.post("/api/auth/login", json={"emailOrUsername": "alice", "password": PASSWORD}, environ_base=elsewhere)
    assert old_password.status_code == 200  # unchanged
