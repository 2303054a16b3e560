"""ID tokens (OpenID Connect Core §2): signed with the key ring (RS256, or ES256 for a client
that registered it), verifiable from the JWKS."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import datetime
from typing import Any

from joserfc import jwt
from joserfc.errors import JoseError

from idp.security.digests import b64url
from idp.security.keys import KeyRing

DEFAULT_ID_TOKEN_ALG = "RS256"  # every relying party must support it (OpenID Connect Core §15.1)
ID_TOKEN_ALGS = ("RS256", "ES256")  # a client's `id_token_signed_response_alg`


def at_hash(access_token: str) -> str:
    """The left half of the SHA-256 of the access token, base64url without padding (the hash of
    both RS256 and ES256)."""
    half = hashlib.sha256(access_token.encode("ascii")).digest()[:16]
    return b64url(half)


class IdTokens:
    def __init__(self, keys: KeyRing, *, issuer: str, ttl: int, clock: Callable[[], datetime]) -> None:
        self._keys = keys
        self._issuer = issuer
        self._ttl = ttl
        self._clock = clock

    def issue(
        self,
        *,
        subject: str,
        client_id: str,
        auth_time: datetime,
        amr: list[str],
        acr: str,
        session_id: str | None,
        nonce: str | None = None,
        access_token: str | None = None,
        claims: dict[str, Any] | None = None,
        alg: str = DEFAULT_ID_TOKEN_ALG,
    ) -> str:
        signer = self._keys.signer(alg)
        now = int(self._clock().timestamp())
        payload: dict[str, Any] = {**(claims or {})}
        payload.update(
            iss=self._issuer,
            sub=subject,
            aud=client_id,
            azp=client_id,
            iat=now,
            exp=now + self._ttl,
            auth_time=int(auth_time.timestamp()),
            amr=amr,
            acr=acr,
        )
        if session_id:
            payload["sid"] = session_id
        if nonce:
            payload["nonce"] = nonce
        if access_token:
            payload["at_hash"] = at_hash(access_token)
        return signer.sign(payload, "JWT")

    def read_hint(self, token: str) -> dict[str, Any] | None:
        """The claims of an ID token this provider signed (an expired one too: a logout hint may
        be old), or None."""
        try:
            decoded = jwt.decode(token, self._keys.snapshot().verifying, algorithms=list(ID_TOKEN_ALGS))
        except (JoseError, ValueError, TypeError):
            return None
        if decoded.claims.get("iss") != self._issuer or "aud" not in decoded.claims:
            return None
        if str(decoded.header.get("typ", "JWT")).upper() != "JWT":  # as `issue` signs them: never at+jwt (RFC 9068)
            return None
        return dict(decoded.claims)
