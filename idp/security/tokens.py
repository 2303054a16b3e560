"""Access tokens: RFC 9068 JWTs signed with the key ring, verifiable by anyone from the JWKS."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from joserfc import jwt
from joserfc.errors import JoseError

from idp.security.keys import KeyRing, KeySnapshot

ACCEPTED_ALGS = ["ES256", "RS256"]  # never "none", never a symmetric algorithm
VERIFIED_MAX = 4096  # signature checks remembered per process (per key snapshot)


class InvalidAccessToken(Exception):
    """Signature, algorithm, issuer, audience or expiry did not check out."""


@dataclass(frozen=True)
class AccessTokenClaims:
    sub: str
    sid: str | None
    client_id: str
    scope: str
    jti: str
    exp: int
    auth_time: int | None
    amr: list[str]


class AccessTokens:
    """Issue and verify access tokens for one issuer."""

    def __init__(self, keys: KeyRing, *, issuer: str, ttl: int, alg: str, clock: Callable[[], datetime]) -> None:
        self._keys = keys
        self._issuer = issuer
        self._ttl = ttl
        self._alg = alg
        self._clock = clock
        self._claims_check = jwt.JWTClaimsRegistry(
            now=lambda: int(clock().timestamp()),
            iss={"essential": True, "value": issuer},
            exp={"essential": True},
            sub={"essential": True},
        )
        # token -> (header, claims) of tokens whose signature checked out under one key snapshot
        self._verified: tuple[KeySnapshot | None, dict[tuple[str, str | None], AccessTokenClaims]] = (None, {})

    @property
    def keys(self) -> KeyRing:
        return self._keys

    @property
    def issuer(self) -> str:
        return self._issuer

    @property
    def ttl(self) -> int:
        return self._ttl

    def issue(
        self,
        *,
        subject: str,
        client_id: str,
        audience: str | None = None,
        scope: str = "",
        session_id: str | None = None,
        auth_time: datetime | None = None,
        amr: list[str] | None = None,
    ) -> str:
        signer = self._keys.signer(self._alg)
        now = int(self._clock().timestamp())
        claims: dict[str, Any] = {
            "iss": self._issuer,
            "sub": subject,
            "aud": audience or self._issuer,
            "client_id": client_id,
            "scope": scope,
            "iat": now,
            "exp": now + self._ttl,
            "jti": secrets.token_urlsafe(16),
        }
        if session_id:
            claims["sid"] = session_id
        if auth_time:
            claims["auth_time"] = int(auth_time.timestamp())
        if amr:
            claims["amr"] = amr
        return signer.sign(claims, "at+jwt")  # RFC 9068 §2.1

    def verify(self, token: str, *, audience: str | None = None) -> AccessTokenClaims:
        """Check signature (known keys, ES256/RS256 only), `typ`, `iss`, `aud` and `exp`.

        Resource servers present the same token again and again (userinfo, introspection). What
        depends only on the token's bytes and the keys (signature, `typ`, `iss`, `aud`) checks out
        the same way every time, so it is checked once per token, audience and key snapshot (the
        snapshot is renewed at least every minute, and on any change of keys); the expiry is
        checked on every request, and the session by the callers."""
        snapshot, seen = self._verified
        current = self._keys.snapshot()
        if snapshot is not current:
            seen = {}
            self._verified = (current, seen)
        key = (token, audience)
        claims = seen.get(key)
        if claims is None:
            claims = self._check(token, audience)
            if self._keys.snapshot() is current:  # not verified with keys loaded meanwhile
                if len(seen) >= VERIFIED_MAX:
                    seen.clear()
                seen[key] = claims
        if claims.exp <= int(self._clock().timestamp()):
            raise InvalidAccessToken("expired")
        return claims

    def _check(self, token: str, audience: str | None) -> AccessTokenClaims:
        try:
            decoded = self._decode(token)
            header, claims = decoded.header, decoded.claims
            if header.get("typ", "").lower() not in ("at+jwt", "application/at+jwt"):
                raise InvalidAccessToken("not an access token")
            self._claims_check.validate(claims)
        except (JoseError, ValueError, TypeError) as exc:
            raise InvalidAccessToken(str(exc)) from None
        expected_aud = audience or self._issuer
        aud = claims.get("aud")
        if expected_aud != aud and not (isinstance(aud, list) and expected_aud in aud):
            raise InvalidAccessToken("wrong audience")
        if not isinstance(claims.get("exp"), int):
            raise InvalidAccessToken("exp must be a number")
        return AccessTokenClaims(
            sub=claims["sub"],
            sid=claims.get("sid"),
            client_id=claims.get("client_id", ""),
            scope=claims.get("scope", ""),
            jti=claims.get("jti", ""),
            exp=claims["exp"],
            auth_time=claims.get("auth_time"),
            amr=claims.get("amr", []),
        )

    def _decode(self, token: str) -> jwt.Token:
        snapshot = self._keys.snapshot()
        try:
            return jwt.decode(token, snapshot.verifying, algorithms=ACCEPTED_ALGS)
        except JoseError as exc:
            if "kid" not in str(exc).lower() and "key" not in str(exc).lower():
                raise
        # A token signed by a key this process has not seen yet (rotated elsewhere): reload once.
        return jwt.decode(token, self._keys.reload_if_older_than(5.0).verifying, algorithms=ACCEPTED_ALGS)
