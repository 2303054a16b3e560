"""A client's `id_token_signed_response_alg`: RS256 unless it registered ES256 (OpenID Connect
Dynamic Client Registration §2), for the code exchange, refresh and as a logout hint; set by the
CLI and the admin API (tests/admin), anything else refused."""

from __future__ import annotations

import base64
import hashlib
import json
from urllib.parse import urlencode

from joserfc import jwt

from tests.oidc.conftest import ISSUER, POST_LOGOUT_URI


def es256_claims(rp, id_token: str) -> dict:
    decoded = jwt.decode(id_token, rp.jwks(), algorithms=["ES256"])
    ec_kids = {key.kid for key in rp.jwks().keys if key.key_type == "EC"}
    assert decoded.header["alg"] == "ES256" and decoded.header["kid"] in ec_kids
    return dict(decoded.claims)


def test_es256_client_gets_es256_id_tokens_from_the_code_exchange_and_refresh(make_rp, browser, alice):
    rp = make_rp("--id-token-alg", "ES256")
    assert rp.registered["idTokenSignedResponseAlg"] == "ES256"
    token = rp.log_in(browser)
    claims = es256_claims(rp, token["id_token"])
    assert claims["iss"] == ISSUER and claims["aud"] == rp.client_id and claims["nonce"] == rp.nonce
    digest = hashlib.sha256(token["access_token"].encode()).digest()[:16]
    assert claims["at_hash"] == base64.urlsafe_b64encode(digest).rstrip(b"=").decode()

    refreshed = rp.oauth.refresh_token(f"{ISSUER}/oauth/token", refresh_token=token["refresh_token"])
    again = es256_claims(rp, refreshed["id_token"])
    assert again["sub"] == claims["sub"] and "nonce" not in again


def test_the_default_stays_rs256(rp, browser, alice):
    assert rp.registered["idTokenSignedResponseAlg"] == "RS256"
    header = json.loads(base64.urlsafe_b64decode(rp.log_in(browser)["id_token"].split(".")[0] + "=="))
    assert header["alg"] == "RS256"


def test_an_es256_id_token_is_a_valid_logout_hint(make_rp, browser, alice):
    rp = make_rp("--id-token-alg", "ES256")
    token = rp.log_in(browser)
    query = urlencode({"id_token_hint": token["id_token"], "post_logout_redirect_uri": POST_LOGOUT_URI, "state": "s"})
    response = browser.open(f"/oauth/logout?{query}")
    assert response.status_code == 302 and response.headers["Location"] == f"{POST_LOGOUT_URI}?state=s"


def test_discovery_lists_both_algorithms(app):
    metadata = app.test_client().get("/.well-known/openid-configuration").json
    assert metadata["id_token_signing_alg_values_supported"] == ["RS256", "ES256"]


def test_the_cli_refuses_other_algorithms(app):
    for alg in ("HS256", "none", "PS256"):
        result = app.test_cli_runner().invoke(
            args=["clients", "create", "--name", "X", "--grant", "client_credentials", "--id-token-alg", alg]
        )
        assert result.exit_code != 0 and "--id-token-alg" in result.output
