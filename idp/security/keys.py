"""Asymmetric signing keys: generated, stored encrypted, cached in memory, published as JWKS.

Key objects and the serialised JWKS document are built once per process and rebuilt only
when the key table changes (checked at most every `refresh_seconds`), never per request.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from joserfc.jwk import ECKey, KeySet, RSAKey
from sqlalchemy import or_, select
from sqlalchemy.orm import Session as DbSession

from idp.security.jws import CompactSigner
from idp.security.models import SigningKey
from idp.security.secretbox import SecretBox

SUPPORTED_ALGS = ("ES256", "RS256")


@dataclass(frozen=True)
class KeySnapshot:
    """One consistent view of the keys: what signs, what verifies, what is published."""

    signers: dict[str, CompactSigner]  # alg -> what signs with its newest active private key
    verifying: KeySet  # every published key (public halves)
    jwks_body: bytes
    etag: str
    loaded_at: float


def _generate(alg: str) -> ECKey | RSAKey:
    if alg == "ES256":
        return ECKey.generate_key("P-256", private=True, auto_kid=True)
    return RSAKey.generate_key(2048, private=True, auto_kid=True)


def _import(alg: str, pem: str, kid: str) -> ECKey | RSAKey:
    cls = ECKey if alg == "ES256" else RSAKey
    return cls.import_key(pem, parameters={"kid": kid, "alg": alg, "use": "sig"})


class KeyRing:
    """The provider's signing keys, backed by the `signing_keys` table."""

    def __init__(
        self,
        session_factory: Callable[[], DbSession],
        box: SecretBox,
        *,
        publish_for: timedelta,
        refresh_seconds: float = 60.0,
        clock: Callable[[], datetime],
    ) -> None:
        self._session_factory = session_factory
        self._box = box
        self._publish_for = publish_for
        self._refresh_seconds = refresh_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._snapshot: KeySnapshot | None = None
        # kid -> what signs with that key: a kid is its key's thumbprint, so its key never changes;
        # the periodic reload decrypts and imports only keys it has not seen (an RSA import checks
        # the key: tens of milliseconds, during which this process's signing waits on the lock)
        self._by_kid: dict[str, CompactSigner] = {}

    # -- reading ---------------------------------------------------------------------------

    def snapshot(self) -> KeySnapshot:
        snap = self._snapshot
        if snap is None or time.monotonic() - snap.loaded_at > self._refresh_seconds:
            with self._lock:
                snap = self._snapshot
                if snap is None or time.monotonic() - snap.loaded_at > self._refresh_seconds:
                    snap = self._snapshot = self._load()
        return snap

    def cached(self) -> KeySnapshot | None:
        """The cached snapshot if it is still fresh, without touching the database."""
        snap = self._snapshot
        if snap is None or time.monotonic() - snap.loaded_at > self._refresh_seconds:
            return None
        return snap

    def reload(self) -> KeySnapshot:
        """Forget the cache (after a rotation, or when a token names an unknown kid)."""
        with self._lock:
            self._snapshot = self._load()
            return self._snapshot

    def reload_if_older_than(self, seconds: float) -> KeySnapshot:
        """Reload unless the cache is younger than `seconds` (bounds reloads caused by bogus kids)."""
        snap = self.snapshot()
        if time.monotonic() - snap.loaded_at < seconds:
            return snap
        return self.reload()

    def signer(self, alg: str) -> CompactSigner:
        """What signs tokens with the newest active key of `alg`."""
        return self.snapshot().signers[alg]

    def _load(self) -> KeySnapshot:
        session = self._session_factory()
        now = self._clock()
        rows = session.scalars(
            select(SigningKey)
            .where(or_(SigningKey.retired_at.is_(None), SigningKey.publish_until > now))
            .order_by(SigningKey.created_at.desc())
        ).all()
        if not {r.alg for r in rows if r.retired_at is None} >= set(SUPPORTED_ALGS):
            self.ensure(session)
            return self._load()
        signers: dict[str, CompactSigner] = {}
        public = []
        by_kid = {}
        for row in rows:
            signer = self._by_kid.get(row.kid) or CompactSigner(_import(row.alg, self._box.decrypt(row.private_key), row.kid), row.alg)
            by_kid[row.kid] = signer
            if row.retired_at is None and row.alg not in signers:
                signers[row.alg] = signer
            public.append(row.public_jwk)
        self._by_kid = by_kid  # keys no longer published are forgotten
        body = json.dumps({"keys": public}, separators=(",", ":")).encode()
        etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
        return KeySnapshot(
            signers=signers,
            verifying=KeySet.import_key_set({"keys": public}),
            jwks_body=body,
            etag=etag,
            loaded_at=time.monotonic(),
        )

    # -- writing ---------------------------------------------------------------------------

    def ensure(self, session: DbSession) -> list[str]:
        """Create an active key for every supported algorithm that has none; returns new kids.
        Before adding one beside published keys, decrypts them, as `rotate` reads them first: a key
        made under ENCRYPTION_KEYS that cannot read them would be one the servers cannot read
        (SecretBoxError, nothing added)."""
        active = set(session.scalars(select(SigningKey.alg).where(SigningKey.retired_at.is_(None))))
        missing = [alg for alg in SUPPORTED_ALGS if alg not in active]
        if missing:
            published = or_(SigningKey.retired_at.is_(None), SigningKey.publish_until > self._clock())
            for private_key in session.scalars(select(SigningKey.private_key).where(published)):
                self._box.decrypt(private_key)
        created = [self._add(session, alg) for alg in missing]
        session.commit()
        return created

    def rotate(self, session: DbSession, algs: tuple[str, ...] = SUPPORTED_ALGS) -> list[str]:
        """Retire the active keys and create new ones. Retired keys stay published until every
        token they signed has expired (`publish_for` after retirement).

        The published keys are read first: under ENCRYPTION_KEYS that cannot decrypt them (a shell
        set up unlike the servers), the new keys would be encrypted with a key the servers lack,
        and every server would stop signing, and publishing its JWKS, until the retired keys
        expired. Nothing is changed then (SecretBoxError)."""
        self.reload()
        now = self._clock()
        for row in session.scalars(
            select(SigningKey).where(SigningKey.retired_at.is_(None), SigningKey.alg.in_(algs))
        ):
            row.retired_at = now
            row.publish_until = now + self._publish_for
        created = [self._add(session, alg) for alg in algs]
        session.commit()
        self.reload()
        return created

    def reencrypt(self, session: DbSession) -> int:
        """Re-encrypt every private key under the newest ENCRYPTION_KEYS entry."""
        rows = session.scalars(select(SigningKey)).all()
        for row in rows:
            row.private_key = self._box.rotate(row.private_key)
        session.commit()
        return len(rows)

    def _add(self, session: DbSession, alg: str) -> str:
        key = _generate(alg)
        kid = key.thumbprint()
        public = {**key.as_dict(private=False), "kid": kid, "alg": alg, "use": "sig"}
        pem = key.as_pem(private=True).decode()
        session.add(SigningKey(kid=kid, alg=alg, private_key=self._box.encrypt(pem), public_jwk=public, created_at=self._clock()))
        return kid

