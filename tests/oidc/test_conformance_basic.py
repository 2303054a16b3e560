"""The OpenID Foundation's Basic, Config and RP-initiated logout OP test plans as a checklist: one
test per module that applies, named after the module (../shared/spec/OIDC-CHECKLIST.md), driven
through Authlib's client and the hosted pages."""

from __future__ import annotations

import json
import re
import time
from datetime import timedelta

import pytest
from joserfc import jwt

from tests.oidc.conftest import ISSUER, POST_LOGOUT_URI, REDIRECT_URI, Browser, hidden_fields


def _query(response) -> dict[str, str]:
    from urllib.parse import parse_qs, urlsplit

    return {k: v[0] for k, v in parse_qs(urlsplit(response.headers["Location"]).query).items()}


# -- Basic OP plan ------------------------------------------------------------------------------


def test_OIDCCServerTest(rp, browser, alice):
    token = rp.log_in(browser)
    claims = rp.id_token_claims(token)
    assert {"iss", "aud", "exp", "iat", "sub", "nonce", "auth_time"} <= claims.keys()
    assert claims["iss"] == ISSUER and claims["aud"] == rp.client_id and claims["nonce"] == rp.nonce
    assert claims["iat"] <= time.time() < claims["exp"]


def test_OIDCCResponseTypeMissing(rp, browser):
    url = rp.authorization_url().replace("response_type=code&", "")
    result = rp.callback(browser.open(url))
    assert result["error"] == "unsupported_response_type" and result["state"] == rp.state


def test_OIDCCIdTokenSignature(rp, browser, alice):
    token = rp.log_in(browser)
    header = jwt.decode(token["id_token"], rp.jwks(), algorithms=["RS256"]).header
    assert header["alg"] == "RS256" and header["kid"] in {k.kid for k in rp.jwks().keys}


def test_OIDCCIdTokenUnsigned(app):
    """We refuse unsigned ID tokens: no `none` among the signing algorithms, no way to register it."""
    metadata = app.test_client().get("/.well-known/openid-configuration").json
    assert "none" not in metadata["id_token_signing_alg_values_supported"]


def test_OIDCCUserInfoGet(rp, browser, alice):
    token = rp.log_in(browser)
    response = rp.app.test_client().get("/oauth/userinfo", headers={"Authorization": f"Bearer {token['access_token']}"})
    assert response.status_code == 200 and response.json["sub"] == rp.id_token_claims(token)["sub"]


def test_OIDCCUserInfoPostHeader(rp, browser, alice):
    token = rp.log_in(browser)
    response = rp.app.test_client().post("/oauth/userinfo", headers={"Authorization": f"Bearer {token['access_token']}"})
    assert response.status_code == 200 and response.json["email"] == "alice@example.com"


def test_OIDCCUserInfoPostBody(rp, browser, alice):
    token = rp.log_in(browser)
    response = rp.app.test_client().post("/oauth/userinfo", data={"access_token": token["access_token"]})
    assert response.status_code == 200 and response.json["preferred_username"] == "alice"


def test_userinfo_refuses_a_missing_or_bad_token_with_a_bearer_challenge(app):
    client = app.test_client()
    missing = client.get("/oauth/userinfo")
    assert missing.status_code == 401 and missing.headers["WWW-Authenticate"].startswith("Bearer")
    bad = client.get("/oauth/userinfo", headers={"Authorization": "Bearer not-a-token"})
    assert bad.status_code == 401 and 'error="invalid_token"' in bad.headers["WWW-Authenticate"]


@pytest.mark.parametrize("host", ["idp.internal:3001", "192.0.2.7", "\u00e9.example"])
def test_userinfo_over_plain_http_to_another_host_is_refused(rp, browser, alice, host):
    """RFC 6750 §5.3: bearer tokens only over TLS. The token, introspection and revocation
    endpoints refuse plain HTTP but to a loopback host; userinfo answered it."""
    token = rp.log_in(browser)
    bearer = {"Authorization": f"Bearer {token['access_token']}", "Host": host}
    plain = rp.app.test_client().get("/oauth/userinfo", headers=bearer)
    assert plain.status_code == 400 and plain.json == {"error": "invalid_request", "error_description": "OAuth 2 MUST utilize https."}
    assert plain.headers["WWW-Authenticate"].startswith('Bearer realm="userinfo", error="invalid_request"')
    over_tls = rp.app.test_client().get("/oauth/userinfo", headers=bearer, base_url=f"https://{host}")
    assert over_tls.status_code == 200 and over_tls.json["sub"] == rp.id_token_claims(token)["sub"]


def test_OIDCCEnsureRequestWithoutNonceSucceedsForCodeFlow(rp, browser, alice):
    browser.open(rp.authorization_url(nonce=None))
    browser.sign_in()
    browser.submit("/oauth/authorize", decision="allow")
    token = rp.exchange(rp.callback(browser.page)["code"])
    assert "nonce" not in rp.id_token_claims(token)


@pytest.mark.parametrize(
    "scope, expected",
    [
        ("openid profile", {"preferred_username", "updated_at"}),
        ("openid email", {"email", "email_verified"}),
        ("openid phone", set()),  # no verified phone: the claims are left out, not invented
    ],
)
def test_OIDCCScopeProfile_Email_Phone(rp, browser, alice, scope, expected):
    token = rp.log_in(browser, scope=scope)
    userinfo = rp.app.test_client().get("/oauth/userinfo", headers={"Authorization": f"Bearer {token['access_token']}"}).json
    assert expected <= userinfo.keys()
    assert token["scope"].split() == scope.split()
    others = {"email", "preferred_username", "phone_number"} - expected
    assert not (others & userinfo.keys())


def test_OIDCCScopeAll(rp, browser, alice):
    token = rp.log_in(browser, scope="openid profile email phone")
    claims = rp.id_token_claims(token)
    assert {"email", "preferred_username"} <= claims.keys()


def test_OIDCCScopeAddress_is_not_offered(app):
    assert "address" not in app.test_client().get("/.well-known/openid-configuration").json["scopes_supported"]


def test_OIDCEnsureOtherScopeOrderSucceeds(rp, browser, alice):
    token = rp.log_in(browser, scope="email openid")
    assert set(token["scope"].split()) == {"email", "openid"} and rp.id_token_claims(token)["email"]


@pytest.mark.parametrize("display", ["page", "popup"])
def test_OIDCCDisplayPage_Popup(rp, browser, alice, display):
    assert rp.log_in(browser, display=display)["id_token"]


def test_OIDCCPromptLogin(rp, browser, alice):
    first = rp.id_token_claims(rp.log_in(browser))
    time.sleep(1.1)  # auth_time has one-second resolution
    browser.open(rp.authorization_url(prompt="login"))
    assert "Sign in" in browser.html  # asked again despite the session
    browser.sign_in()
    second = rp.id_token_claims(rp.exchange(rp.callback(browser.page)["code"]))
    assert second["auth_time"] > first["auth_time"]


def test_prompt_login_is_not_skipped_by_naming_an_older_waiting_request(rp, browser, alice):
    """The id of a request that waited for a sign-in stays in the browser (and its history): added
    to a new prompt=login request, the sign-in made after that old request counted as this one's
    re-authentication, and a code came back without the password."""
    from urllib.parse import parse_qs, urlencode, urlsplit

    url = urlsplit(rp.authorization_url())
    waiting = browser.client.get(f"{url.path}?{url.query}")  # abandoned at the sign-in page
    old_id = parse_qs(urlsplit(parse_qs(urlsplit(waiting.headers["Location"]).query)["next"][0]).query)["authz"][0]
    time.sleep(1.1)
    rp.log_in(browser)
    time.sleep(1.1)
    browser.open(rp.authorization_url(prompt="login") + "&" + urlencode({"authz": old_id}))
    assert browser.page.status_code == 200 and "Sign in" in browser.html


def test_prompt_select_account_shows_the_sign_in_page_where_an_account_is_chosen(rp, browser, alice, api):
    """Core 3.1.2.1: the user is asked to choose an account, never answered with a code at once.
    A browser keeps one sign-in, so the choice is made on the sign-in page, as another user here."""
    rp.log_in(browser)
    api.register("bob")
    response = browser.open(rp.authorization_url(prompt="select_account"))
    assert "Location" not in response.headers and "Sign in" in browser.html
    browser.sign_in("bob")
    assert "would like to" in browser.html  # bob's own consent
    browser.submit("/oauth/authorize", decision="allow")
    chosen = rp.exchange(rp.callback(browser.page)["code"])
    assert rp.id_token_claims(chosen)["preferred_username"] == "bob"


def test_OIDCCPromptNoneNotLoggedIn(rp, browser):
    result = rp.callback(browser.open(rp.authorization_url(prompt="none")))
    assert result["error"] == "login_required" and result["state"] == rp.state


def test_OIDCCPromptNoneLoggedIn(rp, browser, alice):
    rp.log_in(browser)
    response = browser.open(rp.authorization_url(prompt="none"))
    assert "code" in rp.callback(response)


def test_OIDCCMaxAge1(rp, browser, alice):
    first = rp.id_token_claims(rp.log_in(browser))
    time.sleep(2)
    browser.open(rp.authorization_url(max_age="1"))
    assert "Sign in" in browser.html
    browser.sign_in()
    second = rp.id_token_claims(rp.exchange(rp.callback(browser.page)["code"]))
    assert second["auth_time"] > first["auth_time"]


def test_OIDCCMaxAge10000(rp, browser, alice):
    first = rp.id_token_claims(rp.log_in(browser))
    response = browser.open(rp.authorization_url(max_age="10000"))
    second = rp.id_token_claims(rp.exchange(rp.callback(response)["code"]))
    assert second["auth_time"] == first["auth_time"]


def test_OIDCCEnsureRequestWithUnknownParameterSucceeds(rp, browser, alice):
    assert rp.log_in(browser, extra_parameter="surprise")["id_token"]


def test_OIDCCIdTokenHint(rp, browser, alice):
    token = rp.log_in(browser)
    response = browser.open(rp.authorization_url(prompt="none", id_token_hint=token["id_token"]))
    again = rp.exchange(rp.callback(response)["code"])
    assert rp.id_token_claims(again)["sub"] == rp.id_token_claims(token)["sub"]


def test_an_id_token_hint_for_another_account_ends_in_login_required_not_a_loop(rp, browser, alice, api, app):
    """The hint names alice; bob is signed in, so he is asked to sign in, and signs in as bob again:
    that sign-in was sent back to the sign-in page for ever. OpenID Connect Core 3.1.2.1: the
    request then fails (login_required), back at the client."""
    from tests.oidc.conftest import Browser

    hint = rp.log_in(browser)["id_token"]
    api.token("bob")
    other = Browser(app)
    rp.log_in(other, identifier="bob")
    other.open(rp.authorization_url(id_token_hint=hint))
    assert "Sign in" in other.html
    result = rp.callback(other.sign_in(identifier="bob"))
    assert result["error"] == "login_required" and result["state"] == rp.state
    other.open(rp.authorization_url(id_token_hint=hint))
    assert rp.callback(other.sign_in(identifier="alice"))["code"]  # the account the hint names


@pytest.mark.parametrize("mode", ["form_post", "fragment", "web_message"])
def test_a_response_mode_other_than_query_is_refused(rp, browser, alice, mode):
    """Discovery says query only; the code came back in the query to a client that asked for
    form_post to keep it out of URLs and logs."""
    rp.log_in(browser)
    result = rp.callback(browser.open(rp.authorization_url(response_mode=mode)))
    assert "code" not in result and result["error"] == "invalid_request" and "response_mode" in result["error_description"]
    assert "code" in rp.callback(browser.open(rp.authorization_url(response_mode="query")))
    assert "code" in rp.callback(browser.open(rp.authorization_url(response_mode="")))  # RFC 6749 3.1: as if left out


def test_OIDCCLoginHint(rp, browser):
    browser.open(rp.authorization_url(login_hint="alice@example.com"))
    assert 'value="alice@example.com"' in browser.html


@pytest.mark.parametrize("param", ["ui_locales", "claims_locales"])
def test_OIDCCUiLocales_ClaimsLocales(rp, browser, alice, param):
    assert rp.log_in(browser, **{param: "en-GB fr"})["id_token"]


def test_OIDCCEnsureRequestWithAcrValuesSucceeds(rp, browser, alice):
    token = rp.log_in(browser, acr_values="urn:idp:acr:pwd")
    assert rp.id_token_claims(token)["acr"] == "urn:idp:acr:pwd"


def test_OIDCCAuthCodeReuse(rp, browser, alice):
    browser.open(rp.authorization_url())
    browser.sign_in()
    code = rp.callback(browser.submit("/oauth/authorize", decision="allow"))["code"]
    rp.exchange(code)
    with pytest.raises(Exception, match="invalid_grant"):
        rp.exchange(code)


def test_OIDCCAuthCodeReuseAfter30Seconds(rp, browser, alice, time_machine):
    browser.open(rp.authorization_url())
    browser.sign_in()
    code = rp.callback(browser.submit("/oauth/authorize", decision="allow"))["code"]
    token = rp.exchange(code)
    time_machine.move_to(time.time() + 31)
    with pytest.raises(Exception, match="invalid_grant"):
        rp.exchange(code)
    # what the first use issued is revoked: the access token and the refresh token
    response = rp.app.test_client().get("/oauth/userinfo", headers={"Authorization": f"Bearer {token['access_token']}"})
    assert response.status_code == 401
    refreshed = rp.app.test_client().post(
        "/oauth/token",
        data={"grant_type": "refresh_token", "refresh_token": token["refresh_token"]},
        auth=(rp.client_id, rp.registered["clientSecret"]),
    )
    assert refreshed.status_code == 400 and refreshed.json["error"] == "invalid_grant"


def test_a_code_replayed_while_its_first_exchange_runs_leaves_no_live_tokens(rp, browser, alice, monkeypatch):
    """The first exchange claims the code, then issues, then records the session it opened: a
    replay in between found no session to revoke and the first exchange's tokens lived on. The
    replay now marks the code, and the first exchange, finding the mark, revokes what it issued."""
    from idp.oidc import grants

    browser.open(rp.authorization_url())
    browser.sign_in()
    code = rp.callback(browser.submit("/oauth/authorize", decision="allow"))["code"]
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI, "code_verifier": rp.verifier}
    auth = (rp.client_id, rp.registered["clientSecret"])
    replays = []
    issue = grants.AuthorizationCodeGrant.generate_token

    def replayed_meanwhile(self, *args, **kwargs):
        if not replays:
            replays.append(rp.app.test_client().post("/oauth/token", data=form, auth=auth))
        return issue(self, *args, **kwargs)

    monkeypatch.setattr(grants.AuthorizationCodeGrant, "generate_token", replayed_meanwhile)
    first = rp.app.test_client().post("/oauth/token", data=form, auth=auth)
    assert replays[0].status_code == 400 and replays[0].json["error"] == "invalid_grant"
    assert first.status_code == 400 and first.json["error"] == "invalid_grant"  # its tokens would be dead on arrival
    from idp.accounts.models import Session
    from idp.extensions import db

    with rp.app.app_context():
        opened = db.session.scalars(db.select(Session).where(Session.client_id == rp.client_id)).all()
        assert opened and all(s.revoke_reason == "authorization_code_reuse" for s in opened)


def test_OIDCCEnsureRegisteredRedirectUri(rp, browser):
    url = rp.authorization_url(redirect_uri="https://evil.example/callback")
    response = browser.open(url)
    assert response.status_code == 400 and "Location" not in response.headers
    assert "not supported by client" in browser.html or "redirect" in browser.html.lower()


def test_OIDCCEnsureRedirectUriInAuthorizationRequest(make_rp, browser, alice):
    """redirect_uri is REQUIRED (Core 3.1.2.1): without it, an error page, never a code sent to
    the first of the client's registered URIs."""
    from urllib.parse import parse_qsl, urlencode, urlsplit

    rp = make_rp("--redirect-uri", "https://rp.example/second")
    rp.log_in(browser)
    query = dict(parse_qsl(urlsplit(rp.authorization_url()).query))
    del query["redirect_uri"]
    response = browser.open("/oauth/authorize?" + urlencode(query))
    assert response.status_code == 400 and "Location" not in response.headers
    assert "redirect_uri" in browser.html


def test_unknown_client_is_shown_a_page_never_redirected(rp, browser):
    response = browser.open(rp.authorization_url().replace(rp.client_id, "no-such-client"))
    assert response.status_code == 400 and "Location" not in response.headers
    assert "This sign-in link does not work" in browser.html


def test_OIDCCEnsurePostRequestSucceeds(rp, browser, alice):
    url = rp.authorization_url()
    from urllib.parse import parse_qsl, urlsplit

    params = dict(parse_qsl(urlsplit(url).query))
    browser.open("/oauth/authorize", data=params)
    assert "Sign in" in browser.html
    browser.sign_in()
    browser.submit("/oauth/authorize", decision="allow")
    assert rp.exchange(rp.callback(browser.page)["code"])["id_token"]


def test_OIDCCServerTestClientSecretPost(make_rp, browser, alice):
    rp = make_rp("--auth-method", "client_secret_post")
    assert rp.log_in(browser)["id_token"]


@pytest.mark.parametrize("param, error", [("request", "request_not_supported"), ("request_uri", "request_uri_not_supported")])
def test_OIDCCRequestUriUnsigned_UnsignedRequestObject_rejected_as_unsupported(rp, browser, param, error):
    result = rp.callback(browser.open(rp.authorization_url(**{param: "eyJhbGciOiJub25lIn0.e30."})))
    assert result["error"] == error and result["state"] == rp.state


def test_OIDCCClaimsEssential(rp, browser, alice):
    claims = json.dumps({"id_token": {"email": {"essential": True}}, "userinfo": {"email": {"essential": True}}})
    token = rp.log_in(browser, claims=claims)
    assert rp.id_token_claims(token)["email"] == "alice@example.com"


def test_OIDCCRefreshToken(rp, browser, alice):
    token = rp.log_in(browser)
    first = rp.id_token_claims(token)
    refreshed = rp.oauth.refresh_token(f"{ISSUER}/oauth/token", refresh_token=token["refresh_token"])
    assert refreshed["refresh_token"] != token["refresh_token"]
    second = rp.id_token_claims(refreshed)
    assert (second["sub"], second["iss"], second["aud"]) == (first["sub"], first["iss"], first["aud"])
    # the rotated-out token is now a reuse: refused, and the whole family is revoked
    with pytest.raises(Exception, match="invalid_grant"):
        rp.oauth.refresh_token(f"{ISSUER}/oauth/token", refresh_token=token["refresh_token"])
    with pytest.raises(Exception, match="invalid_grant"):
        rp.oauth.refresh_token(f"{ISSUER}/oauth/token", refresh_token=refreshed["refresh_token"])


def test_a_refresh_may_narrow_the_scope_but_never_widen_it(rp, browser, alice):
    """RFC 6749 §6: a narrower scope at a refresh is honoured for the new tokens, while the session
    keeps what was granted. A wider one gives no more than was granted (client libraries send their
    configured scope on every refresh, more than a partial grant gave them)."""
    token = rp.log_in(browser)  # openid profile email
    client = rp.app.test_client()
    auth = (rp.client_id, rp.registered["clientSecret"])

    def refresh(refresh_token: str, **scope: str):
        answer = client.post("/oauth/token", data={"grant_type": "refresh_token", "refresh_token": refresh_token, **scope}, auth=auth)
        assert answer.status_code == 200, answer.json
        return answer.json

    narrower = refresh(token["refresh_token"], scope="openid openid")
    assert narrower["scope"] == "openid"
    assert jwt.decode(narrower["access_token"], rp.jwks()).claims["scope"] == "openid"
    claims = client.get("/oauth/userinfo", headers={"Authorization": f"Bearer {narrower['access_token']}"}).json
    assert "email" not in claims and "preferred_username" not in claims
    wider = refresh(narrower["refresh_token"], scope="openid profile email phone")
    assert wider["scope"] == "openid profile email"
    unrelated = refresh(wider["refresh_token"], scope="phone")  # nothing in common: the whole grant
    assert unrelated["scope"] == "openid profile email"
    assert refresh(unrelated["refresh_token"])["scope"] == "openid profile email"


def test_a_refresh_gives_no_scope_the_client_is_no_longer_registered_for(rp, browser, alice, app):
    """An administrator narrowed the client to openid: its refreshes went on giving the email."""
    from idp.wiring import client_registry

    token = rp.log_in(browser)  # openid profile email
    with app.test_request_context():
        client_registry().update(rp.client_id, {"scopes": ("openid",)})
    client = rp.app.test_client()
    answer = client.post(
        "/oauth/token", data={"grant_type": "refresh_token", "refresh_token": token["refresh_token"]},
        auth=(rp.client_id, rp.registered["clientSecret"]),
    )
    assert answer.status_code == 200 and answer.json["scope"] == "openid", answer.json
    claims = client.get("/oauth/userinfo", headers={"Authorization": f"Bearer {answer.json['access_token']}"}).json
    assert "email" not in claims and "preferred_username" not in claims


def test_OIDCCEnsureRequestWithValidPkceSucceeds(make_rp, browser, alice):
    spa = make_rp("--public", name="SPA")
    token = spa.log_in(browser)
    assert spa.id_token_claims(token)["aud"] == spa.client_id


def test_a_public_client_revokes_its_own_tokens_by_its_client_id(make_rp, rp, browser, alice, app):
    """RFC 7009 2.1 asks credentials only of a confidential client: a browser or native app ending
    its refresh token at sign-out got 401 invalid_client. It names itself, and reaches only its own
    tokens; a confidential client still has to authenticate."""
    spa = make_rp("--public", name="SPA")
    token = spa.log_in(browser)
    client = app.test_client()
    other = rp.log_in(browser)
    foreign = client.post("/oauth/revoke", data={"token": other["refresh_token"], "client_id": spa.client_id})
    assert foreign.status_code == 400 and foreign.json["error"] == "invalid_grant"
    assert rp.oauth.refresh_token(f"{ISSUER}/oauth/token", refresh_token=other["refresh_token"])["access_token"]  # not spa's to end
    revoked = client.post("/oauth/revoke", data={"token": token["refresh_token"], "client_id": spa.client_id})
    assert revoked.status_code == 200, revoked.json
    bearer = {"Authorization": f"Bearer {token['access_token']}"}
    assert client.get("/oauth/userinfo", headers=bearer).status_code == 401
    unauthenticated = client.post("/oauth/revoke", data={"token": other["refresh_token"], "client_id": rp.client_id})
    assert unauthenticated.status_code == 401 and unauthenticated.json["error"] == "invalid_client"
    discovery = client.get("/.well-known/openid-configuration").json
    assert "none" in discovery["revocation_endpoint_auth_methods_supported"]
    assert "none" not in discovery["introspection_endpoint_auth_methods_supported"]


def test_pkce_is_required_of_public_clients_and_plain_is_refused(make_rp, rp, browser, alice):
    spa = make_rp("--public", name="SPA")
    url = spa.authorization_url()
    without = re.sub(r"&code_challenge(_method)?=[^&]*", "", url)
    result = spa.callback(browser.open(without))
    assert result["error"] == "invalid_request" and "PKCE" in result["error_description"]
    plain = spa.authorization_url().replace("code_challenge_method=S256", "code_challenge_method=plain")
    assert spa.callback(browser.open(plain))["error"] == "invalid_request"
    # and a wrong verifier at the token endpoint fails
    browser.open(spa.authorization_url())
    browser.sign_in()
    browser.submit("/oauth/authorize", decision="allow")
    code = spa.callback(browser.page)["code"]
    spa.verifier = "x" * 50
    with pytest.raises(Exception, match="invalid_grant"):
        spa.exchange(code)


# -- Config OP plan -----------------------------------------------------------------------------


def test_OIDCCDiscoveryEndpointVerification(app):
    response = app.test_client().get("/.well-known/openid-configuration")
    metadata = response.json
    assert response.status_code == 200 and response.headers["ETag"]
    assert metadata["issuer"] == ISSUER
    for endpoint in ("authorization_endpoint", "token_endpoint", "userinfo_endpoint", "jwks_uri", "end_session_endpoint",
                     "introspection_endpoint", "revocation_endpoint"):
        assert metadata[endpoint].startswith(ISSUER + "/")
    assert metadata["code_challenge_methods_supported"] == ["S256"]
    assert metadata["response_types_supported"] == ["code"] and "RS256" in metadata["id_token_signing_alg_values_supported"]
    assert {"client_secret_basic", "client_secret_post", "none"} == set(metadata["token_endpoint_auth_methods_supported"])
    assert "implicit" not in metadata["grant_types_supported"] and "password" not in metadata["grant_types_supported"]
    # every advertised endpoint answers (none 404s)
    client = app.test_client()
    for endpoint in ("token_endpoint", "introspection_endpoint", "revocation_endpoint"):
        assert client.post(metadata[endpoint].removeprefix(ISSUER)).status_code in (400, 401)
    assert client.get(metadata["userinfo_endpoint"].removeprefix(ISSUER)).status_code == 401
    assert client.get(metadata["jwks_uri"].removeprefix(ISSUER)).status_code == 200


def test_OIDCCServerRotateKeys(rp, browser, alice):
    old = rp.log_in(browser)
    old_kid = jwt.decode(old["id_token"], rp.jwks(), algorithms=["RS256"]).header["kid"]
    assert rp.app.test_cli_runner().invoke(args=["keys", "rotate"]).exit_code == 0
    new = rp.oauth.refresh_token(f"{ISSUER}/oauth/token", refresh_token=old["refresh_token"])
    new_kid = jwt.decode(new["id_token"], rp.jwks(), algorithms=["RS256"]).header["kid"]
    assert new_kid != old_kid
    rp.id_token_claims(old)  # still verifies from the JWKS until it expires


def test_OIDCCIdTokenRS256(rp, browser, alice):
    token = rp.log_in(browser)
    assert jwt.decode(token["id_token"], rp.jwks(), algorithms=["RS256"]).header["alg"] == "RS256"


# -- RP-initiated logout plan ------------------------------------------------------------------


def test_OIDCCRpInitiatedLogoutDiscoveryEndpointVerification(app):
    assert app.test_client().get("/.well-known/openid-configuration").json["end_session_endpoint"] == f"{ISSUER}/oauth/logout"


def _logout_url(**params: str) -> str:
    from urllib.parse import urlencode

    return "/oauth/logout?" + urlencode(params)


def test_OIDCCRpInitiatedLogout(rp, browser, alice):
    token = rp.log_in(browser)
    response = browser.open(_logout_url(id_token_hint=token["id_token"], post_logout_redirect_uri=POST_LOGOUT_URI, state="bye"))
    assert response.status_code == 302 and response.headers["Location"] == f"{POST_LOGOUT_URI}?state=bye"
    # the browser session is gone: prompt=none fails, and the relying party's tokens are revoked
    assert rp.callback(browser.open(rp.authorization_url(prompt="none")))["error"] == "login_required"
    assert rp.app.test_client().get("/oauth/userinfo", headers={"Authorization": f"Bearer {token['access_token']}"}).status_code == 401


@pytest.mark.parametrize("how", ["posted without the cookie", "after the browser's sign-in lapsed"])
def test_a_logout_with_a_hint_ends_the_sign_in_it_names_without_the_cookie(rp, browser, alice, app, how):
    """Posted from the relying party's site, the logout carries no SameSite=Lax cookie; hours
    later, the browser's sign-in has lapsed while the app's session lives on. Either way the page
    said "signed out" and sent the user back, and ended nothing: the app's tokens kept working."""
    import time_machine

    from idp.clock import utcnow

    token = rp.log_in(browser)
    fields = {"id_token_hint": token["id_token"], "post_logout_redirect_uri": POST_LOGOUT_URI, "state": "bye"}
    later = utcnow() + (timedelta(hours=13) if how.startswith("after") else timedelta(seconds=1))
    with time_machine.travel(later, tick=False):
        answer = app.test_client().post("/oauth/logout", data=fields)  # no cookie
        assert answer.status_code == 302 and answer.headers["Location"] == f"{POST_LOGOUT_URI}?state=bye"
        refreshed = rp.app.test_client().post(
            "/oauth/token", data={"grant_type": "refresh_token", "refresh_token": token["refresh_token"]},
            auth=(rp.client_id, rp.registered["clientSecret"]),
        )
        assert refreshed.status_code == 400 and refreshed.json["error"] == "invalid_grant"
    assert rp.callback(browser.open(rp.authorization_url(prompt="none")))["error"] == "login_required"


def test_OIDCCRpInitiatedLogoutBadIdTokenHint(rp, browser, alice):
    rp.log_in(browser)
    response = browser.open(_logout_url(id_token_hint="not.a.jwt", post_logout_redirect_uri=POST_LOGOUT_URI))
    assert response.status_code == 400 and "Location" not in response.headers


def test_OIDCCRpInitiatedLogoutModifiedIdTokenHint(rp, browser, alice):
    token = rp.log_in(browser)
    header, payload, signature = token["id_token"].split(".")
    tampered = f"{header}.{payload[:-4]}AAAA.{signature}"
    response = browser.open(_logout_url(id_token_hint=tampered, post_logout_redirect_uri=POST_LOGOUT_URI))
    assert response.status_code == 400 and "Location" not in response.headers


def test_an_access_token_is_no_id_token_hint(rp, browser, alice):
    """Signed by the same keys, but typed at+jwt (RFC 9068): whoever holds one of the user's access
    tokens (a resource server) could otherwise sign the user out without a confirmation."""
    token = rp.log_in(browser)
    response = browser.open(_logout_url(id_token_hint=token["access_token"], post_logout_redirect_uri=POST_LOGOUT_URI))
    assert response.status_code == 400 and "Location" not in response.headers
    assert rp.callback(browser.open(rp.authorization_url(prompt="none")))["code"]  # still signed in


def test_an_access_token_as_id_token_hint_at_the_authorization_endpoint_is_no_hint(rp, browser, alice, api):
    """Another user's access token names that user, but it is no ID token: ignored, not taken as
    the relying party expecting someone else (which asks for a new sign-in)."""
    rp.log_in(browser)
    bobs_access_token = api.token("bob")
    assert rp.callback(browser.open(rp.authorization_url(prompt="none", id_token_hint=bobs_access_token)))["code"]


@pytest.mark.parametrize("uri", ["https://evil.example/out", POST_LOGOUT_URI + "?extra=1"])
def test_OIDCCRpInitiatedLogoutBadLogoutRedirectUri_QueryAddedToLogoutRedirectUri(rp, browser, alice, uri):
    token = rp.log_in(browser)
    response = browser.open(_logout_url(id_token_hint=token["id_token"], post_logout_redirect_uri=uri, state="s"))
    assert response.status_code == 200 and "You are signed out" in browser.html


def test_OIDCCRpInitiatedLogoutNoIdTokenHint(rp, browser, alice):
    rp.log_in(browser)
    browser.open(_logout_url(post_logout_redirect_uri=POST_LOGOUT_URI, state="s", client_id=rp.client_id))
    assert browser.page.status_code == 200 and "Sign out?" in browser.html  # a confirmation, not a silent logout
    assert rp.callback(browser.open(rp.authorization_url(prompt="none")))["code"]  # still signed in
    browser.open(_logout_url(post_logout_redirect_uri=POST_LOGOUT_URI, state="s", client_id=rp.client_id))
    response = browser.submit("/oauth/logout", confirm="yes")
    assert response.status_code == 200 and "You are signed out" in browser.html  # no redirect without a hint
    assert rp.callback(browser.open(rp.authorization_url(prompt="none")))["error"] == "login_required"


def test_logout_confirmation_needs_the_csrf_token(rp, browser, alice):
    rp.log_in(browser)
    forged = browser.open("/oauth/logout", data={"confirm": "yes"})
    assert forged.status_code == 200 and "Sign out?" in browser.html
    assert rp.callback(browser.open(rp.authorization_url(prompt="none")))["code"]


@pytest.mark.parametrize("params", [{}, {"state": "only"}, {"id_token_hint": None}])
def test_OIDCCRpInitiatedLogoutNoParams_OnlyState_NoPostLogoutRedirectUri(rp, browser, alice, params):
    token = rp.log_in(browser)
    if "id_token_hint" in params:
        params = {"id_token_hint": token["id_token"], "state": "x"}
    response = browser.open(_logout_url(**params))
    assert response.status_code == 200 and "Location" not in response.headers  # never a redirect without a registered URI
    if "id_token_hint" in params:
        assert "You are signed out" in browser.html
    else:
        assert "Sign out?" in browser.html


def test_consent_denied_redirects_with_access_denied(rp, browser, alice):
    browser.open(rp.authorization_url())
    browser.sign_in()
    result = rp.callback(browser.submit("/oauth/authorize", decision="deny"))
    assert result["error"] == "access_denied" and result["state"] == rp.state


def test_a_forged_consent_post_without_the_csrf_token_only_shows_the_consent_page(rp, browser, alice):
    browser.open(rp.authorization_url())
    browser.sign_in()
    fields = hidden_fields(browser.html)
    fields.pop("csrf_token")
    response = browser.open("/oauth/authorize", data={**fields, "decision": "allow"})
    assert response.status_code == 200 and "would like to" in browser.html


def test_prompt_consent_asks_again_and_prompt_none_reports_consent_required(rp, browser, alice):
    rp.log_in(browser)
    browser.open(rp.authorization_url(prompt="consent"))
    assert "would like to" in browser.html
    fresh = Browser(rp.app)
    fresh.open(rp.authorization_url())
    fresh.sign_in("alice")
    assert "would like to" not in fresh.html  # remembered for the user, in any browser
    rp2 = rp.__class__(rp.app, rp.registered)
    result = rp2.callback(browser.open(rp2.authorization_url(prompt="none", scope="openid phone")))
    assert result["error"] == "consent_required"


def test_redirect_uri_must_match_exactly(rp, browser):
    response = browser.open(rp.authorization_url(redirect_uri=REDIRECT_URI + "/"))
    assert response.status_code == 400 and "Location" not in response.headers


def test_a_code_lives_at_most_ten_minutes(rp, browser, alice, time_machine):
    """RFC 6749 4.1.2 and SECURITY.md 19: a code unused for ten minutes is dead (ours live five)."""
    browser.open(rp.authorization_url())
    browser.sign_in()
    code = rp.callback(browser.submit("/oauth/authorize", decision="allow"))["code"]
    time_machine.move_to(time.time() + 10 * 60 + 1)
    with pytest.raises(Exception, match="invalid_grant"):
        rp.exchange(code)


def test_a_code_is_bound_to_its_redirect_uri(make_rp, browser, alice):
    """A code issued for one registered redirect URI is refused with another registered one, or with none."""
    second = "https://rp.example/other-callback"
    rp = make_rp("--redirect-uri", second)
    browser.open(rp.authorization_url())
    browser.sign_in()
    code = rp.callback(browser.submit("/oauth/authorize", decision="allow"))["code"]
    assert second in rp.registered["redirectUris"] and rp.oauth.redirect_uri != second
    for redirect_uri in (second, None):
        form = {"grant_type": "authorization_code", "code": code, "code_verifier": rp.verifier}
        if redirect_uri:
            form["redirect_uri"] = redirect_uri
        answer = rp.app.test_client().post("/oauth/token", data=form, auth=(rp.client_id, rp.registered["clientSecret"]))
        assert answer.status_code == 400 and answer.json["error"] == "invalid_grant", answer.json
    assert rp.exchange(code)["access_token"]  # refused for its redirect URI alone: with its own it works


def test_token_endpoint_refuses_a_code_for_another_client(make_rp, rp, browser, alice):
    other = make_rp(name="Other")
    browser.open(rp.authorization_url())
    browser.sign_in()
    code = rp.callback(browser.submit("/oauth/authorize", decision="allow"))["code"]
    other.verifier = rp.verifier
    with pytest.raises(Exception, match="invalid_grant"):
        other.exchange(code)
    assert rp.exchange(code)["access_token"]


def test_a_loopback_redirect_uri_may_name_any_port(make_rp, browser, alice):
    """RFC 8252 7.3: a native app listens on whatever port it is given, and the server MUST allow
    any for a loopback IP address; every other part still matches exactly, and a host name
    (localhost) or https does not take part."""
    native = make_rp("--public", "--redirect-uri", "http://127.0.0.1/callback", "--redirect-uri", "http://[::1]:8000/cb", name="CLI")
    for uri in ("http://127.0.0.1:51234/callback", "http://[::1]:40000/cb"):
        browser.open(native.authorization_url(redirect_uri=uri))
        if "Sign in" in browser.html:
            browser.sign_in()
        if "would like to" in browser.html:
            browser.submit("/oauth/authorize", decision="allow")
        assert browser.page.status_code == 302 and browser.page.headers["Location"].startswith(uri + "?code="), browser.html[:300]
    for uri in ("http://127.0.0.1:51234/other", "http://localhost:51234/callback", "http://127.0.0.2:51234/callback",
                "http://127.0.0.1:51234/callback?x=1", "http://127.0.0.1:99999/callback"):
        assert browser.open(native.authorization_url(redirect_uri=uri)).status_code == 400, uri
