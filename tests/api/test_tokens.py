"""JWT validation refuses what it must (SECURITY.md 17): alg none, other algorithms, unknown keys, iss/aud/exp."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

import pytest
from joserfc import jwt
from joserfc.jwk import ECKey

from idp.wiring import components


def b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


@pytest.fixture
def signed_in(api, app):
    token = api.token("alice")
    with app.app_context():
        claims = jwt.decode(token, components().keys.snapshot().verifying).claims
        key = components().keys.signer("ES256").key
    return token, claims, key


def me(api, token: str) -> int:
    return api.client.get("/api/auth/me", headers=api.bearer(token)).status_code


def test_genuine_token_is_accepted(api, signed_in):
    token, _, _ = signed_in
    assert me(api, token) == 200


def test_alg_none_is_refused(api, signed_in):
    _, claims, key = signed_in
    forged = f"{b64({'alg': 'none', 'typ': 'at+jwt', 'kid': key.kid})}.{b64(claims)}."
    assert me(api, forged) == 401


def test_hs256_signed_with_the_public_key_is_refused(api, signed_in):
    _, claims, key = signed_in
    signing_input = f"{b64({'alg': 'HS256', 'typ': 'at+jwt', 'kid': key.kid})}.{b64(claims)}"
    mac = hmac.new(key.as_pem(private=False), signing_input.encode(), hashlib.sha256).digest()
    forged = f"{signing_input}.{base64.urlsafe_b64encode(mac).rstrip(b'=').decode()}"
    assert me(api, forged) == 401


def test_token_signed_by_a_foreign_key_is_refused_even_with_a_known_kid(api, signed_in):
    _, claims, key = signed_in
    foreign = ECKey.generate_key("P-256", private=True)
    for kid in (key.kid, "unknown-kid"):
        forged = jwt.encode({"alg": "ES256", "typ": "at+jwt", "kid": kid}, claims, foreign)
        assert me(api, forged) == 401


@pytest.mark.parametrize(
    "change",
    [
        {"iss": "https://evil.example"},
        {"aud": "https://some-other-api.example"},
        {"exp": int(time.time()) - 1},
        {"exp": None},
        {"sub": None},
    ],
    ids=["issuer", "audience", "expired", "no-exp", "no-sub"],
)
def test_wrong_claims_are_refused(api, signed_in, change):
    _, claims, key = signed_in
    tampered = {k: v for k, v in {**claims, **change}.items() if v is not None}
    forged = jwt.encode({"alg": "ES256", "typ": "at+jwt", "kid": key.kid}, tampered, key)
    assert me(api, forged) == 401


def test_a_jwt_that_is_not_an_access_token_is_refused(api, signed_in):
    _, claims, key = signed_in
    id_token_like = jwt.encode({"alg": "ES256", "typ": "JWT", "kid": key.kid}, claims, key)
    assert me(api, id_token_like) == 401


@pytest.mark.parametrize("header", [None, "Bearer", "Bearer ", "Basic abc", "Bearer not.a.jwt", "Bearer " + "a" * 5000])
def test_missing_or_malformed_authorization_is_a_401_with_the_envelope(api, header):
    """API.md (and the old service): "Invalid or expired token", whatever is wrong, none included."""
    response = api.client.get("/api/auth/me", headers={"Authorization": header} if header else {})
    assert response.status_code == 401
    assert response.json == {"success": False, "code": "unauthorized", "message": "Invalid or expired token"}


def test_access_token_is_an_rfc9068_jwt(api, app):
    token = api.token("alice")
    header = json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))
    assert header["typ"] == "at+jwt" and header["alg"] == "ES256"
    with app.app_context():
        claims = jwt.decode(token, components().keys.snapshot().verifying).claims
        issuer = components().settings.issuer
    assert claims["iss"] == issuer and claims["aud"] == issuer
    assert {"sub", "client_id", "scope", "jti", "iat", "exp", "auth_time", "amr", "sid"} <= claims.keys()
    assert claims["exp"] - claims["iat"] == 15 * 60
    assert claims["amr"] == ["pwd"]


def test_a_token_verified_before_is_refused_once_it_expires(app):
    """Repeat checks are remembered per token, but never past the token's expiry."""
    from datetime import timedelta

    from idp.clock import utcnow
    from idp.security.tokens import AccessTokens, InvalidAccessToken

    now = [utcnow()]
    with app.app_context():
        keys = app.extensions["idp"].keys
        tokens = AccessTokens(keys, issuer="http://localhost:3001", ttl=60, alg="ES256", clock=lambda: now[0])
        token = tokens.issue(subject="u1", client_id="c1", session_id="s1")
        assert tokens.verify(token).sub == "u1" and tokens.verify(token).sub == "u1"
        now[0] += timedelta(seconds=61)
        with pytest.raises(InvalidAccessToken):
            tokens.verify(token)
        with pytest.raises(InvalidAccessToken):
            tokens.verify(token, audience="someone-else")
