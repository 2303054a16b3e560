"""Backup codes: 10 single-use codes of 50 bits, stored as Argon2id hashes."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import datetime

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session as DbSession

from idp.accounts.models import User
from idp.mfa.models import BackupCode
from idp.models import affected
from idp.security.passwords import PasswordHashing

COUNT = 10
ALPHABET = "abcdefghijklmnopqrstuvwxyz234567"  # 32 symbols: 5 bits each, 10 symbols = 50 bits


def new_code() -> str:
    raw = "".join(secrets.choice(ALPHABET) for _ in range(10))
    return f"{raw[:5]}-{raw[5:]}"


def normalise(code: str) -> str:
    """Users may type upper case, spaces, or leave out the dash."""
    raw = "".join(c for c in code.lower() if c.isalnum())
    return f"{raw[:5]}-{raw[5:]}" if len(raw) == 10 else raw


class BackupCodes:
    def __init__(self, db: DbSession, hashing: PasswordHashing, clock: Callable[[], datetime]) -> None:
        self._db = db
        self._hashing = hashing
        self._clock = clock

    def generate(self, user_id: str) -> list[str]:
        """Replace every code of the user with 10 new ones; the plain codes are shown once.

        The account's row is locked first, until the commit: of two replacements at once (a double
        click), the second waits and then deletes the first one's codes. Without the lock its DELETE
        missed them (PostgreSQL's DELETE does not see rows another open transaction inserts), and
        both sets worked."""
        codes = [new_code() for _ in range(COUNT)]
        hashes = [self._hashing.hash(c) for c in codes]  # before the lock: it is held for no hashing
        self._db.execute(select(User.id).where(User.id == user_id).with_for_update())
        self.delete_all(user_id)
        now = self._clock()
        self._db.add_all(BackupCode(user_id=user_id, code_hash=h, created_at=now) for h in hashes)
        return codes

    def count(self, user_id: str) -> int:
        return (
            self._db.scalar(
                select(func.count()).select_from(BackupCode).where(BackupCode.user_id == user_id, BackupCode.used_at.is_(None))
            )
            or 0
        )

    def use(self, user_id: str, code: str) -> bool:
        """Consume a matching unused code (once, even under concurrent use)."""
        candidate = normalise(code)
        if len(candidate) != 11:
            return False
        rows = self._db.execute(
            select(BackupCode.id, BackupCode.code_hash).where(BackupCode.user_id == user_id, BackupCode.used_at.is_(None))
        ).all()
        for row in rows:
            if self._hashing.verify(row.code_hash, candidate):
                consumed = affected(
                    self._db.execute(
                        update(BackupCode)
                        .where(BackupCode.id == row.id, BackupCode.used_at.is_(None))
                        .values(used_at=self._clock())
                    )
                )
                return bool(consumed)
        return False

    def delete_all(self, user_id: str) -> None:
        self._db.execute(delete(BackupCode).where(BackupCode.user_id == user_id))
