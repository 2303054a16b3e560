"""SECURITY.md 16, 21 and 24 on the hosted pages: cookies, CSRF, clickjacking, CSP, no open redirects."""

from __future__ import annotations

from tests.oidc.conftest import Browser, hidden_fields


def production_env(instance_dir) -> dict[str, str]:
    """Production settings that can still read the test database's signing keys."""
    keys = (instance_dir / "encryption_keys.secret").read_text().strip()
    return {"IDP_ENV": "production", "SECRET_KEY": "Hy5Bf0Gs-k3Jd9Qm2Xv7Lp4-Zr8Tn1Wc6-hosted-pages", "ENCRYPTION_KEYS": keys}


def test_pages_refuse_framing_and_inline_script(app):
    response = app.test_client().get("/login")
    csp = response.headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in csp and "script-src 'self'" in csp and "'unsafe-inline'" not in csp
    assert response.headers["X-Frame-Options"] == "DENY" and response.headers["Referrer-Policy"] == "no-referrer"
    assert "<script>" not in response.get_data(as_text=True)


def test_every_form_needs_the_csrf_token(app, api):
    api.token("alice")
    client = app.test_client()
    response = client.post("/login", data={"identifier": "alice", "password": api.PASSWORD})
    assert response.status_code == 400 and "expired" in response.get_data(as_text=True)
    assert client.get_cookie("idp_sso") is None


def test_the_browser_session_cookie_is_httponly_lax_and_changes_at_each_sign_in(rp, browser, alice):
    rp.log_in(browser)
    first = browser.client.get_cookie("idp_sso")
    assert first is not None and first.http_only and first.same_site == "Lax" and first.path == "/"
    csrf_before = hidden_fields(browser.open(rp.authorization_url(prompt="login")).get_data(as_text=True))["csrf_token"]
    browser.sign_in()
    second = browser.client.get_cookie("idp_sso")
    assert second.value != first.value
    csrf_after = hidden_fields(browser.open("/login").get_data(as_text=True))["csrf_token"]
    assert csrf_after != csrf_before  # a new Flask session after sign-in: no fixation


def test_production_cookies_are_secure_and_host_prefixed(make_app, api, instance_dir):
    from tests.oidc.conftest import REDIRECT_URI
    from tests.oidc.test_clients import create

    app = make_app(**production_env(instance_dir))
    registered = create(app, "--name", "Notes", "--redirect-uri", REDIRECT_URI, "--first-party")
    from tests.conftest import Api

    Api(app.test_client()).token("alice")
    browser = Browser(app, base_url="https://localhost")
    url = f"/oauth/authorize?response_type=code&client_id={registered['clientId']}&redirect_uri={REDIRECT_URI}&scope=openid&state=s"
    browser.open(url)
    browser.sign_in()
    cookie = browser.client.get_cookie("__Host-idp_sso")
    assert cookie is not None and cookie.secure and cookie.http_only and cookie.path == "/" and cookie.domain in ("localhost", "")
    assert browser.client.get_cookie("__Host-idp_session").secure


def test_the_trusted_device_cookie_is_host_prefixed_over_https(make_app, instance_dir):
    """SECURITY.md 16: `__Host-deviceToken` (Secure, Path=/, no Domain: no sibling host can plant
    one); a device trusted before, under the plain name, is still recognised."""
    import pyotp

    from tests.conftest import Api

    app = make_app(**production_env(instance_dir), EMAIL_BACKEND="console")
    api = Api(app.test_client())
    secret, _ = api.enable_totp(api.verified_token())
    https = {"base_url": "https://localhost"}
    body = {"tempToken": api.challenge()["tempToken"], "code": pyotp.TOTP(secret).now(), "trustDevice": True}
    trusted = api.client.post("/api/2fa/verify", json=body, **https)
    assert trusted.status_code == 200, trusted.json
    cookie = api.client.get_cookie("__Host-deviceToken", domain="localhost")
    assert cookie is not None and cookie.secure and cookie.http_only and cookie.path == "/"
    assert api.client.get_cookie("deviceToken", domain="localhost") is None
    login = {"emailOrUsername": "alice", "password": api.PASSWORD}
    assert "accessToken" in api.client.post("/api/auth/login", json=login, **https).json["data"]
    api.client.delete_cookie("__Host-deviceToken", domain="localhost")
    api.client.set_cookie("deviceToken", trusted.json["data"]["deviceToken"], domain="localhost")
    assert "accessToken" in api.client.post("/api/auth/login", json=login, **https).json["data"]


def test_login_never_continues_to_another_site(app, api):
    api.token("alice")
    for target in ("https://evil.example/", "//evil.example/oauth/authorize", "/oauth/authorize/../../evil", "/\\evil.example"):
        browser = Browser(app)
        browser.open(f"/login?next={target}")
        response = browser.sign_in()
        assert response.status_code == 200 and "Your account" in browser.html  # the provider's own account page
        assert "Location" not in response.headers


def test_a_disabled_or_unknown_account_gets_the_same_page_error(app, api):
    browser = Browser(app)
    browser.open("/login")
    response = browser.sign_in("nobody")
    assert response.status_code == 401 and "The email, username or password is not right" in browser.html
    assert 'value="nobody"' in browser.html  # the input is kept, the password is not


def test_failed_hosted_logins_are_rate_limited_like_the_api(make_app, api):
    app = make_app(RATE_LIMIT_LOGIN="3 per 15 minutes")
    browser = Browser(app)
    for _ in range(3):
        browser.open("/login")
        assert browser.sign_in("nobody", "wrong").status_code == 401
    browser.open("/login")
    response = browser.submit("/login", identifier="nobody", password="wrong")
    assert response.status_code == 429 and response.headers["Retry-After"]


def test_the_api_and_the_sign_in_page_spend_one_window_of_failures(make_app):
    """A limit is one window per address, whichever views declare it: failures at the API's login
    and at the sign-in page add up (with a window per endpoint an address had one budget each)."""
    app = make_app(RATE_LIMIT_LOGIN="3 per 15 minutes")
    api = app.test_client()
    for _ in range(2):
        assert api.post("/api/auth/login", json={"emailOrUsername": "nobody", "password": "wrong"}).status_code == 401
    browser = Browser(app)
    browser.open("/login")
    assert browser.sign_in("nobody", "wrong").status_code == 401
    browser.open("/login")
    assert browser.submit("/login", identifier="nobody", password="wrong").status_code == 429
    assert api.post("/api/auth/login", json={"emailOrUsername": "nobody", "password": "wrong"}).status_code == 429


def test_pages_whose_forms_end_at_the_relying_party_allow_only_its_registered_origin(rp, browser, alice):
    browser.open(rp.authorization_url())
    login_csp = browser.page.headers["Content-Security-Policy"]
    assert "form-action 'self' https://rp.example;" in login_csp
    browser.sign_in()
    assert "form-action 'self' https://rp.example;" in browser.page.headers["Content-Security-Policy"]  # consent
    other = Browser(rp.app)
    other.open(rp.authorization_url().replace("rp.example%2Fcallback", "evil.example%2Fcallback"))
    assert "evil.example" not in other.page.headers["Content-Security-Policy"]
    assert "form-action 'self';" in other.client.get("/login?next=/oauth/authorize%3Fclient_id%3Dnope").headers["Content-Security-Policy"]


def test_pages_without_a_way_to_send_email_say_so_instead_of_an_error_page(app, make_app, instance_dir):
    """Production without an email channel: asking for the confirmation link (account page,
    enrolment page) ended on a 503 error page saying, untranslated, that delivery was not
    configured. Each page says it in its own words and stays where it was."""
    from tests.conftest import Api
    from tests.oidc.conftest import REDIRECT_URI, RelyingParty, create

    app = make_app(**production_env(instance_dir))  # `app` first: the instance's keys this one reads
    rp = RelyingParty(app, create(app, "--name", "Bank", "--redirect-uri", REDIRECT_URI, "--require-mfa"))
    Api(app.test_client()).token("alice")
    said = "This service cannot send email at the moment, so the link was not sent."
    browser = Browser(app, base_url="https://localhost")
    browser.open(rp.authorization_url())
    browser.sign_in()
    browser.submit("/login/enrol", action="send-link")
    assert browser.page.status_code == 503 and said in browser.html and "Confirm your email address first" in browser.html
    browser.open("/account")
    browser.submit("/account/send-verification")
    assert browser.page.status_code == 200 and said in browser.html and "Your account" in browser.html
