"""6-digit codes sent by SMS or email: CSPRNG, 5 minutes, single use, bound, stored as keyed digests."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session as DbSession

from idp.clock import as_utc
from idp.mfa.models import OneTimeCode
from idp.models import affected

CODE_TTL = timedelta(minutes=5)
MAX_WRONG = 5


def new_code() -> str:
    return f"{secrets.randbelow(1_000_000):06d}"


class OneTimeCodes:
    """Issue and check codes for one binding: a purpose plus a login challenge or a pending method."""

    def __init__(self, db: DbSession, key: bytes, clock: Callable[[], datetime]) -> None:
        self._db = db
        self._key = key
        self._clock = clock

    def _digest(self, code_id: str, code: str) -> str:
        # keyed, and salted by the row id: a dump of 6-digit codes cannot be brute-forced offline
        return hmac.new(self._key, f"{code_id}:{code}".encode(), hashlib.sha256).hexdigest()

    def _binding(self, user_id: str, purpose: str, challenge_id: str | None, method_id: str | None) -> list:
        return [
            OneTimeCode.user_id == user_id,
            OneTimeCode.purpose == purpose,
            OneTimeCode.challenge_id == challenge_id if challenge_id else OneTimeCode.challenge_id.is_(None),
            OneTimeCode.method_id == method_id if method_id else OneTimeCode.method_id.is_(None),
        ]

    def issue(
        self, *, user_id: str, purpose: str, channel: str, challenge_id: str | None = None, method_id: str | None = None
    ) -> str:
        """A new code for the binding; earlier unused codes of the same binding stop working."""
        now = self._clock()
        self._db.execute(
            update(OneTimeCode)
            .where(*self._binding(user_id, purpose, challenge_id, method_id), OneTimeCode.used_at.is_(None))
            .values(used_at=now)
        )
        code = new_code()
        row = OneTimeCode(
            user_id=user_id,
            purpose=purpose,
            channel=channel,
            challenge_id=challenge_id,
            method_id=method_id,
            code_hash="",
            created_at=now,
            expires_at=now + CODE_TTL,
        )
        self._db.add(row)
        self._db.flush()
        row.code_hash = self._digest(row.id, code)
        return code

    def retire_sent_by(self, *, user_id: str, purpose: str, channel: str) -> None:
        """Retire every unused code of `purpose` that went out by `channel`: the phone or address it
        went to is no longer the user's (removed, or replaced by another)."""
        self._db.execute(
            update(OneTimeCode)
            .where(
                OneTimeCode.user_id == user_id,
                OneTimeCode.purpose == purpose,
                OneTimeCode.channel == channel,
                OneTimeCode.used_at.is_(None),
            )
            .values(used_at=self._clock())
        )

    def last_sent_at(
        self, *, user_id: str, purpose: str, challenge_id: str | None = None, method_id: str | None = None, channel: str | None = None
    ) -> datetime | None:
        """When the last code of the binding (of `channel` only, if given) was sent."""
        by_channel = [OneTimeCode.channel == channel] if channel else []
        sent = self._db.scalar(
            select(OneTimeCode.created_at)
            .where(*self._binding(user_id, purpose, challenge_id, method_id), *by_channel)
            .order_by(OneTimeCode.created_at.desc())
            .limit(1)
        )
        return as_utc(sent) if sent else None

    def check(
        self, code: str, *, user_id: str, purpose: str, challenge_id: str | None = None, method_id: str | None = None
    ) -> OneTimeCode | None:
        """Consume the live code of the binding if `code` matches it; each try counts against it and
        the fifth miss kills it."""
        now = self._clock()
        row = self._db.scalar(
            select(OneTimeCode)
            .where(
                *self._binding(user_id, purpose, challenge_id, method_id),
                OneTimeCode.used_at.is_(None),
                OneTimeCode.expires_at > now,
            )
            .order_by(OneTimeCode.created_at.desc())
            .limit(1)
        )
        if row is None:
            return None
        # the try is counted before the code is compared, by the database (a row lock on PostgreSQL,
        # the write lock on SQLite): guesses sent at once cannot share one count, and the sixth
        # finds none left, whatever the others did meanwhile
        tries = self._db.execute(
            update(OneTimeCode)
            .where(OneTimeCode.id == row.id, OneTimeCode.used_at.is_(None), OneTimeCode.failed_attempts < MAX_WRONG)
            .values(failed_attempts=OneTimeCode.failed_attempts + 1)
            .returning(OneTimeCode.failed_attempts)
            .execution_options(synchronize_session=False)
        ).scalar()
        if tries is None:
            return None
        candidate = code.strip().replace(" ", "")
        if hmac.compare_digest(self._digest(row.id, candidate), row.code_hash):
            consumed = affected(
                self._db.execute(
                    update(OneTimeCode).where(OneTimeCode.id == row.id, OneTimeCode.used_at.is_(None)).values(used_at=now)
                )
            )
            return row if consumed else None
        if tries >= MAX_WRONG:
            self._db.execute(
                update(OneTimeCode).where(OneTimeCode.id == row.id, OneTimeCode.used_at.is_(None)).values(used_at=now)
            )
        return None
