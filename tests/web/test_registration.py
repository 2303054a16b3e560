"""The hosted registration, forgotten-password and new-password pages, on the API's services."""

from __future__ import annotations

import re
from datetime import timedelta
from html import unescape
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import time_machine
from flask import Flask
from jinja2 import StrictUndefined

from idp.clock import utcnow
from tests.conftest import Api
from tests.oidc.conftest import ATTR, INPUT, Browser, hidden_fields

PASSWORD = Api.PASSWORD
NEW = "Brand-New-Secret-5%"


# -- helpers (shared with test_change_password.py) ----------------------------------------------


def strict(app: Flask) -> Flask:
    """Any undefined template variable raises instead of rendering as nothing."""
    app.jinja_env.undefined = StrictUndefined
    return app


def field_error(html: str, name: str) -> str | None:
    """The message shown next to a field (`<p id="field-NAME-error">`), without its hidden prefix."""
    match = re.search(rf'<p id="field-{re.escape(name)}-error" class="field-error">(.*?)</p>', html, re.S)
    if match is None:
        return None
    return unescape(re.sub(r"<[^>]+>", "", match.group(1))).replace("Error:", "", 1).strip()


def field(html: str, name: str) -> dict[str, str]:
    """The attributes of the input named `name`."""
    for tag in INPUT.findall(html):
        attrs = {k: unescape(v) for k, v in ATTR.findall(tag)}
        if attrs.get("name") == name:
            return attrs
    raise AssertionError(f"no input named {name}")


def links(html: str) -> dict[str, str]:
    """Link text -> href."""
    return {
        unescape(re.sub(r"<[^>]+>", "", text)).strip(): unescape(href)
        for href, text in re.findall(r'<a [^>]*href="([^"]*)"[^>]*>(.*?)</a>', html, re.S)
    }


def post(browser: Browser, path: str, **fields: str) -> Any:
    """Post the current page's form (hidden fields and CSRF token) without following the redirect."""
    response = browser.client.post(path, data={**hidden_fields(browser.html), **fields})
    browser.page = response
    return response


def register(
    browser: Browser, email: str = "alice@example.com", username: str = "alice", password: str = PASSWORD, next: str = ""
) -> Any:
    browser.open("/register" + (f"?next={next}" if next else ""))
    return post(browser, "/register", email=email, username=username, password=password)


# -- registration ---------------------------------------------------------------------------------


def test_registration_signs_this_browser_in_and_sends_the_confirmation_link(app, api):
    strict(app)
    browser = Browser(app)
    response = register(browser, email="Alice@Example.com")
    assert response.status_code == 302 and response.headers["Location"] == "/account"
    cookie = browser.client.get_cookie("idp_sso")
    assert cookie is not None and cookie.http_only
    message = api.outbox.last("alice@example.com")
    assert "/verify-email?token=" in message["text"]
    browser.open("/account/password")  # a page for the signed-in (and recently signed-in)
    assert browser.page.status_code == 200 and "Change your password" in browser.html
    assert "We sent a link to alice@example.com to confirm the address" in browser.html
    assert api.login("alice").status_code == 200  # the same account as the API's


def test_registration_continues_to_a_safe_next_only(app):
    strict(app)
    authorize = "/oauth/authorize?client_id=notes&response_type=code"
    first = register(Browser(app), username="alice", next="%2Foauth%2Fauthorize%3Fclient_id%3Dnotes%26response_type%3Dcode")
    assert first.headers["Location"] == authorize
    evil = register(Browser(app), email="bob@example.com", username="bob", next="https://evil.example/")
    assert evil.headers["Location"] == "/account"


@pytest.mark.parametrize(
    ("fields", "name", "message"),
    [
        ({"email": "not-an-email"}, "email", "Enter an email address in the correct format, like name@example.com"),
        ({"email": ""}, "email", "Enter your email address"),
        ({"username": "a b"}, "username", "Choose a username of 3 to 30 letters, digits, underscores or hyphens"),
        ({"username": ""}, "username", "Choose a username"),
        ({"password": ""}, "password", "Create a password"),
        ({"password": "Sh0rt!"}, "password", "Your password must be at least 8 characters"),
        ({"password": "alllowercase"}, "password", "Your password must contain an upper-case letter, a digit, a symbol"),
        ({"password": "Password1!"}, "password", "Your password is too common (it appears in lists of breached passwords)"),
        ({"password": "Xalice-77!"}, "password", "Your password must not contain your username or email"),
    ],
)
def test_each_mistake_is_explained_next_to_its_field_and_the_input_is_kept(app, fields, name, message):
    strict(app)
    browser = Browser(app)
    typed = {"email": "alice@example.com", "username": "alice", "password": PASSWORD, **fields}
    response = register(browser, **typed)
    html = browser.html
    assert response.status_code == 400
    assert field_error(html, name) == message
    assert f'<a href="#field-{name}">' in html  # the error summary links to the field
    assert field(html, "email").get("value", "") == typed["email"]
    assert field(html, "username").get("value", "") == typed["username"]
    assert "value" not in field(html, "password")  # never sent back
    assert browser.client.get_cookie("idp_sso") is None


def test_a_weak_password_is_named_together_with_the_other_mistakes(app):
    strict(app)
    browser = Browser(app)
    register(browser, email="bad", username="alice", password="password")
    assert field_error(browser.html, "email") == "Enter an email address in the correct format, like name@example.com"
    assert (field_error(browser.html, "password") or "").startswith("Your password must contain an upper-case letter")


def test_every_empty_field_is_named_in_the_summary(app):
    strict(app)
    browser = Browser(app)
    register(browser, email="", username="", password="")
    html = browser.html
    assert [field_error(html, n) for n in ("email", "username", "password")] == [
        "Enter your email address",
        "Choose a username",
        "Create a password",
    ]
    summary = re.search(r'<div class="error-summary".*?</div>', html, re.S)
    assert summary and summary.group(0).index("#field-email") < summary.group(0).index("#field-password")


def test_a_taken_email_or_username_says_so_next_to_the_field(app, api):
    strict(app)
    api.register("alice")
    browser = Browser(app)
    response = register(browser, email="ALICE@example.com", username="newcomer")
    assert response.status_code == 409
    assert "already uses this email address" in (field_error(browser.html, "email") or "")
    assert field_error(browser.html, "username") is None and field(browser.html, "username")["value"] == "newcomer"
    response = register(browser, email="newcomer@example.com", username="Alice")
    assert response.status_code == 409
    assert field_error(browser.html, "username") == "This username is taken. Choose another one"
    assert field_error(browser.html, "email") is None and field(browser.html, "email")["value"] == "newcomer@example.com"


def test_registration_has_the_api_register_limit(make_app):
    app = strict(make_app(RATE_LIMIT_REGISTER="2 per hour"))
    browser = Browser(app)
    assert register(browser, username="first", email="first@example.com").status_code == 302
    assert register(Browser(app), username="x", email="bad").status_code == 400  # every attempt counts
    blocked = register(Browser(app), username="third", email="third@example.com")
    html = blocked.get_data(as_text=True)
    assert blocked.status_code == 429 and int(blocked.headers["Retry-After"]) > 0
    assert "Too many accounts were created from your network. Try again in" in html
    assert 'value="third@example.com"' in html and "Create an account" in html  # the form, not a dead end
    assert Browser(app).open("/register").status_code == 200  # looking at the page is free


def test_the_form_works_without_javascript(app):
    strict(app)
    browser = Browser(app)
    html = browser.open("/register").get_data(as_text=True)
    assert re.search(r'<form method="post" action="/register"', html)
    assert "<script>" not in html and not re.search(r"\son[a-z]+=", html)  # no inline script or handlers
    assert field(html, "email")["type"] == "email" and field(html, "email")["autocomplete"] == "email"
    assert field(html, "username")["autocomplete"] == "username"
    assert field(html, "password")["type"] == "password" and field(html, "password")["autocomplete"] == "new-password"
    # the policy in plain words under the field; the live checklist stays hidden until pages.js shows it
    assert "At least 8 characters, with upper- and lower-case letters, a digit and a symbol" in html
    assert "Not a common password" in html
    assert re.search(r'<ul class="password-checklist" data-password-checklist="field-password"[^>]*hidden>', html)
    assert "field-password-hint" in field(html, "password")["aria-describedby"]
    # a plain form post (no JS-added fields) creates the account
    assert post(browser, "/register", email="alice@example.com", username="alice", password=PASSWORD).status_code == 302


def test_the_sign_in_page_links_to_registration_and_reset_keeping_next(app):
    strict(app)
    target = "/oauth/authorize?client_id=notes&response_type=code"
    html = (
        Browser(app)
        .open("/login?next=" + "%2Foauth%2Fauthorize%3Fclient_id%3Dnotes%26response_type%3Dcode")
        .get_data(as_text=True)
    )
    found = links(html)
    for text, path in (("Create an account", "/register"), ("Forgot your password?", "/forgot-password")):
        href = urlsplit(found[text])
        assert href.path == path and parse_qs(href.query)["next"] == [target]
    plain = links(Browser(app).open("/login").get_data(as_text=True))
    assert plain["Create an account"] == "/register" and plain["Forgot your password?"] == "/forgot-password"
    # and the registration page keeps it on its form and on its way back to sign in
    page = Browser(app).open("/register?next=" + "%2Foauth%2Fauthorize%3Fclient_id%3Dnotes%26response_type%3Dcode")
    html = page.get_data(as_text=True)
    assert hidden_fields(html)["next"] == target
    assert parse_qs(urlsplit(links(html)["Sign in"]).query)["next"] == [target]


def test_a_signed_in_visitor_is_told_a_new_account_signs_them_out(app, api):
    strict(app)
    api.register("alice")
    browser = Browser(app)
    browser.open("/login")
    browser.sign_in()
    old = browser.client.get_cookie("idp_sso").value
    browser.open("/register")
    assert "You are signed in as <strong>alice@example.com</strong>" in browser.html
    assert post(browser, "/register", email="bob@example.com", username="bob", password=PASSWORD).status_code == 302
    assert browser.client.get_cookie("idp_sso").value != old
    with app.app_context():
        from idp.wiring import session_service

        assert session_service().browser_session(old) is None  # alice's browser session ended


# -- forgotten password and the reset link ------------------------------------------------------


def ask_for_reset(app: Flask, email: str) -> Any:
    browser = Browser(app)
    browser.open("/forgot-password")
    browser.submit("/forgot-password", email=email)
    return browser


def test_forgot_password_answers_alike_and_sends_the_link_only_to_an_account(app, api):
    strict(app)
    api.register("alice")
    known = ask_for_reset(app, "alice@example.com")
    unknown = ask_for_reset(app, "nobody@example.com")
    assert known.page.status_code == unknown.page.status_code == 200
    assert "If an account uses <strong>alice@example.com</strong>, we sent a link" in known.html
    assert known.html.replace("alice@example.com", "X") == unknown.html.replace("nobody@example.com", "X")
    assert api.outbox.messages("nobody@example.com") == []
    assert "http://localhost:3001/reset-password?token=" in api.outbox.last("alice@example.com")["text"]


def test_reloading_check_your_email_asks_for_no_second_link(app, api):
    """The answer to the form is a redirect (Post/Redirect/Get): a reload, or Back and Forward,
    shows the page again without sending the form again, which would mail a second link and
    retire the first, the one the user is opening."""
    strict(app)
    api.register("alice")
    browser = Browser(app)
    browser.open("/forgot-password?next=%2Faccount")
    answer = post(browser, "/forgot-password", email="alice@example.com")
    assert answer.status_code == 302 and answer.headers["Location"] == "/forgot-password?sent=1&next=/account"
    for _reload in range(2):
        assert browser.open(answer.headers["Location"]).status_code == 200
        assert "Check your email" in browser.html and "If an account uses <strong>alice@example.com</strong>" in browser.html
        assert links(browser.html)["Back to sign in"] == "/login?next=/account"
    assert len(api.outbox.messages("alice@example.com")) == 1
    token = api.outbox.link_token("alice@example.com")
    assert Browser(app).open(f"/reset-password?token={token}").status_code == 200  # the link still works

    elsewhere = Browser(app).open("/forgot-password?sent=1")  # another browser asked for nothing: the form
    assert elsewhere.status_code == 200 and "Reset your password" in elsewhere.get_data(as_text=True)


def test_forgot_password_spends_the_apis_window_of_the_client_address(make_app):
    """Each request may email a link: the API's reset requests are limited per address (the
    general limit), and the page had no limit at all. Both now spend one window."""
    app = make_app(RATE_LIMIT_GENERAL="3 per 15 minutes")
    client = app.test_client()
    for n in range(2):
        assert client.post("/api/auth/password-reset/request", json={"email": f"u{n}@example.com"}).status_code == 200
    browser = Browser(app)
    assert browser.open("/forgot-password").status_code == 200  # looking at the page is free
    assert browser.submit("/forgot-password", email="v1@example.com").status_code == 200
    browser.open("/forgot-password")
    blocked = browser.submit("/forgot-password", email="v2@example.com")
    assert blocked.status_code == 429 and int(blocked.headers["Retry-After"]) > 0
    assert "Too many" in browser.html and "<title>" in browser.html
    assert client.post("/api/auth/password-reset/request", json={"email": "u9@example.com"}).status_code == 429


def test_forgot_password_asks_for_an_address(app):
    strict(app)
    browser = ask_for_reset(app, "")
    assert browser.page.status_code == 400
    assert field_error(browser.html, "email") == "Enter the email address of your account, like name@example.com"
    assert field(browser.html, "email")["autocomplete"] == "email"


def test_reset_with_the_emailed_link_then_sign_in_with_the_new_password(app, api):
    strict(app)
    api.register("alice")
    signed_in = Browser(app)
    signed_in.open("/login")
    signed_in.sign_in()
    ask_for_reset(app, "alice@example.com")
    token = api.outbox.link_token("alice@example.com")

    browser = Browser(app)
    page = browser.open(f"/reset-password?token={token}")
    assert page.status_code == 200 and "Choose a new password" in browser.html
    assert page.headers["Cache-Control"] == "no-store" and page.headers["Referrer-Policy"] == "no-referrer"
    assert hidden_fields(browser.html)["token"] == token
    assert field(browser.html, "newPassword")["autocomplete"] == "new-password"

    weak = browser.submit("/reset-password", newPassword="password1")
    assert weak.status_code == 400 and (field_error(browser.html, "newPassword") or "").startswith(
        "Your new password must contain"
    )
    assert hidden_fields(browser.html)["token"] == token  # the link stays usable for a better password

    done = browser.submit("/reset-password", newPassword=NEW)
    assert done.status_code == 200 and "Your password is changed" in browser.html
    assert "Every session was signed out" in browser.html
    # Post/Redirect/Get: the page is a GET, so a reload shows it again instead of sending the
    # spent link a second time (which answered that the link does not work)
    assert done.request.method == "GET" and done.headers["Cache-Control"] == "no-store"
    reloaded = browser.open(done.request.full_path)
    assert reloaded.status_code == 200 and "Your password is changed" in browser.html and "alice@example.com" in browser.html
    assert Browser(app).open(done.request.full_path).status_code == 400  # another browser is told nothing
    assert links(browser.html)["Sign in"].startswith("/login")

    assert signed_in.open("/account/password").request.path == "/login"  # the other browser was signed out
    assert api.login("alice").status_code == 401
    fresh = Browser(app)
    fresh.open(links(browser.html)["Sign in"])
    assert field(fresh.html, "identifier")["value"] == "alice@example.com"
    fresh.sign_in("alice", NEW)
    assert fresh.client.get_cookie("idp_sso") is not None and "Signed in as" in fresh.html


def test_a_used_or_missing_reset_link_is_refused_with_a_way_on(app, api):
    strict(app)
    api.register("alice")
    ask_for_reset(app, "alice@example.com")
    token = api.outbox.link_token("alice@example.com")
    browser = Browser(app)
    browser.open(f"/reset-password?token={token}")
    assert browser.submit("/reset-password", newPassword=NEW).status_code == 200

    again = Browser(app)
    opened = again.open(f"/reset-password?token={token}")  # said when the link is opened, before a password is chosen
    assert opened.status_code == 400 and "This link does not work" in again.html and "field-newPassword" not in again.html
    assert "invalid or has expired" in again.html and links(again.html)["Ask for a new link"] == "/forgot-password"
    again.open("/forgot-password")  # a page with a form of this browser (its CSRF token)
    refused = post(again, "/reset-password", token=token, newPassword="Another-One-77!")  # as a form opened before the link was used
    assert refused.status_code == 400 and "invalid or has expired" in again.html
    assert api.login("alice", NEW).status_code == 200  # unchanged by the refused attempt

    missing = Browser(app).open("/reset-password")
    assert missing.status_code == 400 and "This link is incomplete" in missing.get_data(as_text=True)


def test_an_expired_reset_link_says_so_when_opened_and_a_live_one_names_the_account(app, api):
    """The page checks the link before asking for a password (the form used to come first, and
    only the new password, typed twice in a manager, learnt that the link had lapsed); the form
    carries the account's address for password managers, as the change-password page does."""
    strict(app)
    api.register("alice")
    ask_for_reset(app, "alice@example.com")
    token = api.outbox.link_token("alice@example.com")
    browser = Browser(app)
    assert browser.open(f"/reset-password?token={token}").status_code == 200
    assert field(browser.html, "username") == {
        "type": "text", "name": "username", "value": "alice@example.com", "autocomplete": "username"
    }  # fmt: skip
    assert "hidden>" in re.search(r'<input type="text" name="username"[^>]*>', browser.html).group(0)
    with time_machine.travel(utcnow() + timedelta(hours=1, minutes=1)):
        expired = browser.open(f"/reset-password?token={token}")
        assert expired.status_code == 400 and "This link does not work" in browser.html
        assert links(browser.html)["Ask for a new link"] == "/forgot-password"
    assert browser.open(f"/reset-password?token={token}").status_code == 200  # opening it did not spend it
    assert browser.submit("/reset-password", newPassword=NEW).status_code == 200 and "Your password is changed" in browser.html


# -- every template with StrictUndefined ------------------------------------------------------


def test_every_registration_template_renders_with_strict_undefined(app, api):
    strict(app)
    api.register("alice")
    browser = Browser(app)
    pages = [
        browser.open("/register"),
        browser.open("/register?next=%2Foauth%2Fauthorize%3Fclient_id%3Dnotes"),
        post(browser, "/register", email="bad", username="", password=""),
        browser.open("/forgot-password?email=alice%40example.com"),
        post(browser, "/forgot-password", email=""),
        post(browser, "/forgot-password", email="alice@example.com"),
        browser.open("/forgot-password?sent=1"),
        browser.open("/reset-password?token=" + api.outbox.link_token("alice@example.com")),
        post(browser, "/reset-password", newPassword="short"),
        post(browser, "/reset-password", newPassword=NEW),
        browser.open("/reset-password?done=1"),
        browser.open("/reset-password?token=used"),
        post(browser, "/reset-password", token="used", newPassword=NEW),
    ]
    assert [p.status_code for p in pages] == [200, 200, 400, 200, 400, 302, 200, 200, 400, 302, 200, 400, 400]
    browser.open("/login")
    browser.sign_in("alice", NEW)
    assert browser.open("/register").status_code == 200 and "You are signed in as" in browser.html


def test_the_confirmation_link_asks_then_confirms_and_a_reload_changes_nothing(app, api):
    """Opening the link only asks (mail scanners open links); the button confirms. The confirmation
    was the answer to that POST, so a reload sent the spent link again and said it does not work:
    it is now a page of its own (Post/Redirect/Get) for this browser."""
    strict(app)
    browser = Browser(app)
    register(browser, email="alice@example.com")
    token = api.outbox.link_token("alice@example.com")
    asked = browser.open(f"/verify-email?token={token}")
    assert asked.status_code == 200 and "Confirm your email address" in browser.html
    def verified() -> bool:
        token = api.login("alice").json["data"]["accessToken"]
        return api.client.get("/api/auth/me", headers=api.bearer(token)).json["data"]["user"]["emailVerified"]

    assert verified() is False  # opening it confirmed nothing
    done = browser.submit("/verify-email")
    assert done.status_code == 200 and done.request.method == "GET" and "Your email address is confirmed" in browser.html
    reloaded = browser.open(done.request.full_path)
    assert reloaded.status_code == 200 and "Your email address is confirmed" in browser.html
    assert "alice@example.com" in browser.html
    assert "Your email address is confirmed" not in Browser(app).open(done.request.full_path).get_data(as_text=True)
    assert verified() is True
