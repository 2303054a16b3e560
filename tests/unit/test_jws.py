"""Tokens signed by `CompactSigner` are standard compact JWS, read and verified by joserfc, for both
algorithms the provider signs with."""

import base64
import json

import pytest
from joserfc import jwt
from joserfc.errors import BadSignatureError
from joserfc.jwk import ECKey, KeySet, RSAKey

from idp.security.jws import CompactSigner

CLAIMS = {"iss": "https://idp.example", "sub": "user-1", "iat": 1700000000, "exp": 1700000900, "name": "Zoë Ødegård", "amr": ["pwd"]}


def _segment(token: str, index: int) -> bytes:
    part = token.split(".")[index]
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


@pytest.fixture(scope="module", params=["ES256", "RS256"])
def key(request):
    if request.param == "ES256":
        return ECKey.generate_key("P-256", private=True, auto_kid=True), "ES256"
    return RSAKey.generate_key(2048, private=True, auto_kid=True), "RS256"


def test_a_signed_token_verifies_with_joserfc_and_carries_its_header(key):
    private, alg = key
    token = CompactSigner(private, alg).sign(CLAIMS, "at+jwt")
    decoded = jwt.decode(token, KeySet([private]), algorithms=[alg])
    assert decoded.claims == CLAIMS  # non-ASCII text too, as UTF-8 JSON
    assert decoded.header == {"alg": alg, "typ": "at+jwt", "kid": private.kid}
    assert json.loads(_segment(token, 1)) == CLAIMS


def test_each_token_type_has_its_own_header_and_the_signature_has_the_jws_form(key):
    private, alg = key
    signer = CompactSigner(private, alg)
    access, id_token = signer.sign(CLAIMS, "at+jwt"), signer.sign(CLAIMS, "JWT")
    assert json.loads(_segment(access, 0))["typ"] == "at+jwt" and json.loads(_segment(id_token, 0))["typ"] == "JWT"
    # ES256: r and s in 32 bytes each (RFC 7518 §3.4), not DER; RS256: one modulus-sized block
    assert len(_segment(access, 2)) == (64 if alg == "ES256" else 256)


def test_a_token_does_not_verify_under_another_key(key):
    private, alg = key
    other = ECKey.generate_key("P-256", private=True) if alg == "ES256" else RSAKey.generate_key(2048, private=True)
    token = CompactSigner(private, alg).sign(CLAIMS, "JWT")
    with pytest.raises(BadSignatureError):
        jwt.decode(token, other, algorithms=[alg])


def test_a_key_of_another_kind_than_its_algorithm_is_refused():
    with pytest.raises(ValueError):
        CompactSigner(ECKey.generate_key("P-256", private=True), "RS256")
    with pytest.raises(ValueError):
        CompactSigner(ECKey.generate_key("P-384", private=True), "ES256")
