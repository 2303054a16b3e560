"""Session-less access tokens (client_credentials) revoked by their client before they expire.

Tokens of a session end with their session. A client-credentials token has none: revoking it keeps
its `jti` in `revoked_access_tokens` until the token would have expired, and introspection answers
it inactive (RFC 7009 §2: a server SHOULD support revoking access tokens). A resource server that
only checks the JWT's signature cannot know; one that must, introspects.

Introspection is a hot path, and such revocations are rare: each process keeps the `jti`s of the
revoked tokens not yet expired as a set, read again at most every `ttl` seconds (one query, a few
rows at most). A revocation takes effect in its own process at once, in the others within `ttl`.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime

from sqlalchemy import Engine, bindparam, delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session as DbSession

from idp.oidc.models import RevokedAccessToken
from idp.security.tokens import AccessTokenClaims
from idp.statements import HotStatement

# The revocations of tokens not yet expired
LIVE_REVOCATIONS = select(RevokedAccessToken.jti).where(RevokedAccessToken.expires_at > bindparam("now"))
REFRESH_SECONDS = 1.0


class RevokedAccessTokens:
    """`jti in revoked`: whether a session-less access token was revoked, from memory."""

    def __init__(self, load: Callable[[], Iterable[str]], *, ttl: float = REFRESH_SECONDS, clock: Callable[[], float] = time.monotonic) -> None:
        self._load = load
        self._ttl = ttl
        self._clock = clock
        self._lock = threading.Lock()
        self._read_at = -math.inf
        self._jtis: frozenset[str] = frozenset()

    @classmethod
    def on(cls, autocommit: Engine, now: Callable[[], datetime]) -> RevokedAccessTokens:
        """Read from the database of `autocommit`, by a hot statement."""
        statement = HotStatement(autocommit, LIVE_REVOCATIONS)
        return cls(lambda: [row.jti for row in statement.all({"now": now()})])

    def __contains__(self, jti: object) -> bool:
        if self._clock() - self._read_at >= self._ttl:
            with self._lock:  # one thread reads again; the others wait for it
                now = self._clock()
                if now - self._read_at >= self._ttl:
                    self._jtis = frozenset(self._load())
                    self._read_at = now
        return jti in self._jtis

    def add(self, jti: str) -> None:
        """A revocation made (and committed) by this process: in effect here at once."""
        with self._lock:
            self._jtis = self._jtis | {jti}


def revoke_access_token(db: DbSession, claims: AccessTokenClaims, now: datetime) -> bool:
    """Keep a session-less access token's `jti` until the token expires (the caller commits); whether
    it was live until now (a second revocation, or a concurrent one, changes nothing). The rows of
    tokens expired by now go."""
    db.execute(delete(RevokedAccessToken).where(RevokedAccessToken.expires_at <= now))
    expires_at = datetime.fromtimestamp(claims.exp, UTC)
    db.add(RevokedAccessToken(jti=claims.jti, client_id=claims.client_id, expires_at=expires_at, revoked_at=now))
    try:
        db.flush()
    except IntegrityError:  # revoked already
        db.rollback()
        return False
    return True
