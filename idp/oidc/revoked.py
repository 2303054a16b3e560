"""Session-less access tokens (client_credentials) revoked by their client before they expire.

Tokens of a session end with their session. A client-credentials token has none: revoking it keeps
its `jti` in `revoked_access_tokens` until the token would have expired, and introspection answers
it inactive (RFC 7009 §2: a server SHOULD support revoking access tokens). A resource server that
only checks the JWT's signature cannot know; one that must, introspects.

Introspection is a hot path: each process keeps the revoked `jti`s in memory and asks the database
at most every `ttl` seconds for the revocations made since the newest it has seen (less `OVERLAP`,
for one committed late or by a host whose clock is a little behind). A revocation takes effect in
its own process at once, in the others within `ttl`. However many tokens a client revokes, a
process reads each revocation a few times, not every second until the token expires, and drops it
once the token has expired. Requests never wait for a reading but the first.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, bindparam, delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session as DbSession

from idp.clock import as_utc
from idp.oidc.models import RevokedAccessToken
from idp.security.tokens import AccessTokenClaims
from idp.statements import HotStatement

# The revocations of tokens not yet expired, made after `since`
REVOKED_SINCE = select(RevokedAccessToken.jti, RevokedAccessToken.expires_at, RevokedAccessToken.revoked_at).where(
    RevokedAccessToken.expires_at > bindparam("now"), RevokedAccessToken.revoked_at > bindparam("since")
)
REFRESH_SECONDS = 1.0
OVERLAP = timedelta(seconds=10)
PRUNE_SECONDS = 60.0  # how often expired tokens' entries are dropped
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

Revocation = tuple[str, datetime, datetime]  # jti, expires_at, revoked_at
Load = Callable[[datetime, datetime], Iterable[Revocation]]  # (since, now) -> revocations


class RevokedAccessTokens:
    """`jti in revoked`: whether a session-less access token was revoked, from memory."""

    def __init__(
        self,
        load: Load,
        *,
        ttl: float = REFRESH_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._load = load
        self._ttl = ttl
        self._clock = clock
        self._now = now
        self._lock = threading.Lock()  # one reading at a time; add() waits for it
        self._read_at = -math.inf
        self._pruned_at = -math.inf
        self._since = EPOCH
        self._expiries: dict[str, datetime] = {}  # jti -> when its token expires

    @classmethod
    def on(cls, autocommit: Engine, now: Callable[[], datetime]) -> RevokedAccessTokens:
        """Read from the database of `autocommit`, by a hot statement."""
        statement = HotStatement(autocommit, REVOKED_SINCE)

        def load(since: datetime, at: datetime) -> list[Revocation]:
            return [(row.jti, row.expires_at, row.revoked_at) for row in statement.all({"since": since, "now": at})]

        return cls(load, now=now)

    def __contains__(self, jti: object) -> bool:
        if self._clock() - self._read_at >= self._ttl:
            first = self._read_at == -math.inf  # nothing read yet: wait for it
            if self._lock.acquire(blocking=first):
                try:
                    if self._clock() - self._read_at >= self._ttl:
                        self._read()
                finally:
                    self._lock.release()
        return jti in self._expiries

    def _read(self) -> None:
        now = self._now()
        newest = self._since
        for jti, expires_at, revoked_at in self._load(self._since, now):
            self._expiries[jti] = as_utc(expires_at)
            newest = max(newest, as_utc(revoked_at))
        self._since = max(self._since, newest - OVERLAP)
        self._read_at = self._clock()
        if self._read_at - self._pruned_at >= PRUNE_SECONDS:
            self._expiries = {jti: expires for jti, expires in self._expiries.items() if expires > now}
            self._pruned_at = self._read_at

    def add(self, claims: AccessTokenClaims) -> None:
        """A revocation made (and committed) by this process: in effect here at once."""
        with self._lock:
            self._expiries[claims.jti] = datetime.fromtimestamp(claims.exp, UTC)


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
