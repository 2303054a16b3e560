"""Signing JWTs: the JWS compact serialisation (RFC 7515 §7.1) of JSON claims with one private key.

Every token this provider issues (access tokens, ID tokens) is signed here; joserfc still reads
and verifies them. What does not change from one token to the next is done once per key: the
header segment of each token type, and the `cryptography` key object the signature is made with.
So a token costs one JSON dump of its claims, two base64url encodings and the signature itself,
not the general encoder's per-call checks (registry, algorithm and key lookups, header checks),
which cost as much again as the ES256 signature on the hot paths (a login, each refresh).
"""

from __future__ import annotations

import json
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from joserfc.jwk import ECKey, RSAKey

from idp.security.digests import b64url

ES256_HALF = 32  # bytes of r and of s in an ES256 signature (RFC 7518 §3.4)


class CompactSigner:
    """Signs with one key (ES256 or RS256), named by its `kid` in each token's header."""

    def __init__(self, key: ECKey | RSAKey, alg: str) -> None:
        private = key.private_key
        if alg == "ES256" and isinstance(private, ec.EllipticCurvePrivateKey) and isinstance(private.curve, ec.SECP256R1):
            self._sign = self._es256
        elif alg == "RS256" and isinstance(private, rsa.RSAPrivateKey):
            self._sign = self._rs256
        else:
            raise ValueError(f"no {alg} signature with a {type(private).__name__}")
        self._private: Any = private
        self.key = key
        self.alg = alg
        self._headers: dict[str, str] = {}  # typ -> header segment

    def sign(self, claims: dict[str, Any], typ: str) -> str:
        """`claims` (JSON values; times as integers) as a compact JWS with header {alg, typ, kid}."""
        header = self._headers.get(typ)
        if header is None:
            header = self._headers[typ] = b64url(json.dumps({"alg": self.alg, "typ": typ, "kid": self.key.kid}, separators=(",", ":")).encode())
        signing_input = f"{header}.{b64url(json.dumps(claims, ensure_ascii=False, separators=(',', ':')).encode())}"
        return f"{signing_input}.{b64url(self._sign(signing_input.encode('ascii')))}"

    def _es256(self, data: bytes) -> bytes:
        # `cryptography` answers in DER; JWS wants r and s, each in 32 bytes
        r, s = decode_dss_signature(self._private.sign(data, ec.ECDSA(hashes.SHA256())))
        return r.to_bytes(ES256_HALF, "big") + s.to_bytes(ES256_HALF, "big")

    def _rs256(self, data: bytes) -> bytes:
        return bytes(self._private.sign(data, padding.PKCS1v15(), hashes.SHA256()))
