"""The account overview, the sign-in guard and the password confirmation for sensitive changes."""

from __future__ import annotations

from jinja2 import StrictUndefined

from tests.oidc.conftest import Browser


def signed_in_browser(app, identifier: str = "alice") -> Browser:
    browser = Browser(app)
    browser.open("/login")
    browser.sign_in(identifier)
    return browser


def test_account_pages_send_a_visitor_to_sign_in_and_back(app, api):
    api.token("alice")
    app.jinja_env.undefined = StrictUndefined
    browser = Browser(app)
    browser.open("/account")
    assert "Sign in" in browser.html
    browser.sign_in()
    assert browser.page.status_code == 200 and "Your account" in browser.html


def test_the_overview_summarises_the_protection(app, api):
    import pyotp

    token = api.verified_token("alice")
    secret, _ = api.enable_totp(token)
    app.jinja_env.undefined = StrictUndefined
    browser = Browser(app)
    browser.open("/account")
    browser.sign_in()
    browser.enter_code(pyotp.TOTP(secret).now(), trust=True)
    html = browser.html
    assert "Your account" in html and "Confirmed" in html and "authenticator app" in html
    assert "10 of 10 left" in html and "1 device skips the second step" in html


def test_overview_for_a_new_account(app, api):
    api.token("alice")
    app.jinja_env.undefined = StrictUndefined
    browser = signed_in_browser(app)
    html = browser.html
    assert "Signed in as <strong>alice</strong>" in html and "Not confirmed" in html
    assert "protected by your password only" in html and "2 active sessions" in html  # the API registration's and this browser's
    browser.submit("/account/send-verification")
    assert "We sent a confirmation link to alice@example.com" in browser.html
    link = api.outbox.link_token("alice@example.com")
    # confirmed meanwhile (the link, another tab): a stale button sends nothing and says so; it
    # said a link had been sent
    assert api.client.post("/api/email/verify", json={"token": link}).status_code == 200
    mails = len(api.outbox.messages("alice@example.com"))
    browser.submit("/account/send-verification")
    assert "Your email address is confirmed" in browser.html and "We sent a confirmation link" not in browser.html
    assert len(api.outbox.messages("alice@example.com")) == mails


def test_a_sensitive_change_asks_for_the_password_again_when_the_sign_in_is_old(make_app):
    from tests.conftest import Api

    app = make_app(REAUTH_WINDOW_SECONDS="0")
    app.jinja_env.undefined = StrictUndefined
    Api(app.test_client()).token("alice")
    browser = signed_in_browser(app)
    first_cookie = browser.client.get_cookie("idp_sso").value
    browser.open("/account/confirm-password?next=/account")
    assert "Enter your password to continue" in browser.html
    browser.submit("/account/confirm-password", password="wrong")
    assert browser.page.status_code == 401 and "The password is not right" in browser.html
    browser.submit("/account/confirm-password", password=Api.PASSWORD)
    assert "Your account" in browser.html and "Thank you" in browser.html
    # the same sign-in (its time and factors are what relying parties are told), confirmed for
    # the account pages
    assert browser.client.get_cookie("idp_sso").value == first_cookie


def test_confirm_password_never_continues_to_another_site(app, api):
    api.token("alice")
    browser = signed_in_browser(app)
    browser.open("/account/confirm-password?next=https://evil.example/")
    response = browser.submit("/account/confirm-password", password=api.PASSWORD)
    assert "Your account" in browser.html and "Location" not in response.headers
