"""The authorization code flow end to end: hosted sign-in, consent, code + PKCE, ID token, userinfo."""

from __future__ import annotations

import time
from urllib.parse import urlencode

import pytest

from tests.oidc.conftest import ISSUER, PASSWORD, REDIRECT_URI


def test_code_flow_with_consent_gives_verified_tokens(rp, browser, alice):
    browser.open(rp.authorization_url())
    assert browser.page.status_code == 200 and "to continue to <strong>Notes</strong>" in browser.html
    browser.sign_in()
    assert "Notes would like to" in browser.html.replace("<strong>", "").replace("</strong>", "")
    result = rp.callback(browser.submit("/oauth/authorize", decision="allow"))
    assert result["state"] == rp.state and result["iss"] == ISSUER  # RFC 9207
    token = rp.exchange(result["code"])
    assert token["token_type"] == "Bearer" and token["refresh_token"] and token["expires_in"] == 900
    claims = rp.id_token_claims(token)
    assert claims["iss"] == ISSUER and claims["aud"] == rp.client_id and claims["nonce"] == rp.nonce
    assert claims["sub"] and claims["amr"] == ["pwd"] and claims["acr"] == "urn:idp:acr:pwd"
    assert abs(claims["auth_time"] - time.time()) < 30 and claims["exp"] > time.time() and claims["sid"]
    assert claims["email"] == "alice@example.com" and claims["preferred_username"] == "alice"
    userinfo = rp.oauth.get(f"{ISSUER}/oauth/userinfo").json()
    assert userinfo["sub"] == claims["sub"] and userinfo["email"] == "alice@example.com"


def test_consent_is_remembered_and_sso_skips_the_password(rp, make_rp, browser, alice):
    rp.log_in(browser)
    browser.open(rp.authorization_url())
    assert browser.page.status_code == 302, browser.html[:300]  # no page at all: signed in, consent remembered
    other = make_rp(name="Calendar")
    browser.open(other.authorization_url())
    assert "Calendar would like to" in browser.html.replace("<strong>", "").replace("</strong>", "")


def test_withdrawn_consent_is_asked_again_and_ends_the_apps_sessions(rp, browser, alice, app):
    from idp.audit.service import ClientInfo
    from idp.wiring import consents

    token = rp.log_in(browser)
    user_id = rp.id_token_claims(token)["sub"]
    with app.test_request_context():
        assert [c.client_id for c in consents().given(user_id)] == [rp.client_id]
        assert consents().revoke(user_id, rp.client_id, client=ClientInfo())
    response = app.test_client().get("/oauth/userinfo", headers={"Authorization": f"Bearer {token['access_token']}"})
    assert response.status_code == 401
    browser.open(rp.authorization_url())
    assert "would like to" in browser.html


def test_a_code_issued_before_consent_was_withdrawn_gets_no_tokens(rp, browser, alice, app):
    """Codes live five minutes: one handed out just before the user removed the app was still
    exchanged for a new session with the full scope, after "it will ask before it can again"."""
    from idp.audit.service import ClientInfo
    from idp.wiring import consents

    user_id = rp.id_token_claims(rp.log_in(browser))["sub"]
    code = rp.callback(browser.open(rp.authorization_url()))["code"]
    with app.test_request_context():
        assert consents().revoke(user_id, rp.client_id, client=ClientInfo())
    answer = rp.app.test_client().post(
        "/oauth/token",
        data={"grant_type": "authorization_code", "code": code, "code_verifier": rp.verifier, "redirect_uri": REDIRECT_URI},
        auth=(rp.client_id, rp.registered["clientSecret"]),
    )
    assert answer.status_code == 400 and answer.json["error"] == "invalid_grant", answer.json


def test_allow_clicked_twice_at_once_redirects_both_times(rp, browser, alice, app):
    """A double click on "Allow", or two tabs: both requests found no consent and inserted one, and
    the second insert broke the unique key (a 500 page). Each now redirects with a code."""
    from concurrent.futures import ThreadPoolExecutor
    from threading import Barrier

    from tests.oidc.conftest import hidden_fields

    browser.open(rp.authorization_url())
    browser.sign_in()
    assert "would like to" in browser.html
    form = {**hidden_fields(browser.html), "decision": "allow"}
    cookies = [(c.key, c.value) for c in browser.client._cookies.values()]
    start = Barrier(4)

    def click(_: int) -> int:
        client = app.test_client()
        for key, value in cookies:
            client.set_cookie(key, value)
        start.wait(timeout=30)
        return client.post("/oauth/authorize", data=form).status_code

    with ThreadPoolExecutor(4) as pool:
        assert list(pool.map(click, range(4))) == [302] * 4


def test_a_first_party_client_skips_the_consent_page(make_rp, browser, alice):
    own = make_rp("--first-party", name="Own app")
    browser.open(own.authorization_url())
    response = browser.sign_in()
    assert "code" in own.callback(response)


def _exchange_by_hand(rp, code: str) -> object:
    data = {"grant_type": "authorization_code", "code": code, "code_verifier": rp.verifier, "redirect_uri": REDIRECT_URI}
    return rp.app.test_client().post("/oauth/token", data=data, auth=(rp.client_id, rp.registered["clientSecret"]))


@pytest.mark.parametrize("ending", ["logout", "password_change"])
def test_a_code_issued_before_the_sign_in_ended_gives_no_tokens(rp, browser, api, alice, ending):
    """A code lives for minutes; a sign-out or a password change in between ends the sign-in it was
    issued for, and with it the code (SECURITY.md 5 and 15), as it ends the tokens issued before."""
    signed_in = rp.log_in(browser)
    code = rp.callback(browser.open(rp.authorization_url()))["code"]
    if ending == "logout":
        assert "You are signed out" in browser.open("/oauth/logout?" + urlencode({"id_token_hint": signed_in["id_token"]})).get_data(as_text=True)
    else:
        changed = api.client.post(
            "/api/auth/change-password", headers=api.bearer(alice["token"]), json={"currentPassword": PASSWORD, "newPassword": "Another-Horse-77!"}
        )
        assert changed.status_code == 200
    answer = _exchange_by_hand(rp, code)
    assert answer.status_code == 400, answer.json
    assert answer.json["error"] == "invalid_grant"


def test_a_code_of_a_live_sign_in_is_exchanged_by_hand(rp, browser, alice):
    """The counterpart of the test above: the same exchange, with the sign-in still live."""
    rp.log_in(browser)
    answer = _exchange_by_hand(rp, rp.callback(browser.open(rp.authorization_url()))["code"])
    assert answer.status_code == 200, answer.json


def test_deleting_a_client_ends_its_sessions(rp, browser, alice, app):
    """Its access tokens stop reading userinfo and introspect inactive, its refresh tokens stop
    working: the sessions no longer outlive the client."""
    from tests.admin.conftest import cli

    token = rp.log_in(browser)
    bearer = {"Authorization": f"Bearer {token['access_token']}"}
    client = app.test_client()
    assert client.get("/oauth/userinfo", headers=bearer).status_code == 200
    assert cli(app, "clients", "delete", rp.client_id).exit_code == 0
    assert client.get("/oauth/userinfo", headers=bearer).status_code == 401
    with app.app_context():
        from sqlalchemy import select

        from idp.accounts.models import Session
        from idp.extensions import db

        reasons = db.session.scalars(select(Session.revoke_reason).where(Session.client_id == rp.client_id)).all()
    assert reasons and set(reasons) == {"client_deleted"}


def test_a_client_registered_again_under_a_deleted_ones_id_asks_for_consent_again(rp, make_rp, browser, alice, app):
    """Deleting a client deletes the consents users gave it (ON DELETE CASCADE). On SQLite the
    cascade never ran (foreign keys are off unless each connection turns them on): another
    application registered later under the same client id was let in without the consent page."""
    from tests.admin.conftest import cli

    rp.log_in(browser)
    assert cli(app, "clients", "delete", rp.client_id).exit_code == 0
    again = make_rp("--client-id", rp.client_id, name="Impostor")
    browser.open(again.authorization_url())
    assert browser.page.status_code == 200, browser.page.headers.get("Location")
    assert "Impostor would like to" in browser.html.replace("<strong>", "").replace("</strong>", "")


def test_a_relying_partys_access_token_is_no_key_to_the_json_api(rp, browser, alice, api, app):
    """A client granted `openid profile email` gets tokens for userinfo, not the user's rights on the
    JSON API: an administrator's token there would reach /api/admin and mint an admin API key that
    outlives the session. The API answers 401, as for any token it did not issue."""
    from tests.admin.conftest import cli

    assert cli(app, "users", "grant-admin", "alice").exit_code == 0
    token = rp.log_in(browser)["access_token"]
    bearer = {"Authorization": f"Bearer {token}"}
    assert app.test_client().get("/oauth/userinfo", headers=bearer).status_code == 200
    for method, path, body in (
        ("GET", "/api/admin/users", None),
        ("POST", "/api/api-keys", {"name": "rp-made", "scopes": ["*", "admin"]}),
        ("GET", "/api/auth/me", None),
        ("GET", "/api/auth/sessions", None),
    ):
        answer = api.client.open(path, method=method, headers=bearer, json=body)
        assert answer.status_code == 401 and answer.json["success"] is False, (path, answer.json)
    own = api.login("alice").json["data"]["accessToken"]  # the API's own token still works
    assert api.client.get("/api/admin/users", headers=api.bearer(own)).status_code == 200


def test_a_relying_partys_access_token_does_not_end_its_session_at_the_api_logout(rp, browser, alice, app):
    """Whoever holds an app's access token (each resource server the app calls) ended the app's
    session, refresh token and all, by presenting it to POST /api/auth/logout: the API's logout
    takes only the API's own access tokens, as every other API endpoint does."""
    tokens = rp.log_in(browser)
    bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
    assert app.test_client().post("/api/auth/logout", headers=bearer).status_code == 200  # always 200
    assert app.test_client().get("/oauth/userinfo", headers=bearer).status_code == 200
    assert "access_token" in rp.oauth.refresh_token(f"{ISSUER}/oauth/token", refresh_token=tokens["refresh_token"])
