"""Argon2id password hashing with explicit parameters."""

from __future__ import annotations

import threading

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from idp.config import Argon2Settings


class PasswordHashing:
    """Hash and verify passwords (and backup codes) with Argon2id.

    `verify_unknown_user` spends the same work as a real verification so that the response
    time of a login does not tell whether the account exists.

    At most `settings.concurrency` computations run at once in a process (gunicorn runs one process per
    core): more would only fight over the core and the memory bus, each taking longer, while
    the process's other threads can do their I/O meanwhile.
    """

    def __init__(self, settings: Argon2Settings) -> None:
        self._slots = threading.BoundedSemaphore(settings.concurrency)
        self._hasher = PasswordHasher(
            time_cost=settings.time_cost,
            memory_cost=settings.memory_kib,
            parallelism=settings.parallelism,
            hash_len=32,
            salt_len=16,
            type=Type.ID,
        )
        self._dummy_hash = self._hasher.hash("dummy password for unknown users")
        # A hash made with these settings: "$argon2id$v=19$m=…,t=…,p=…$", then salt and hash of
        # fixed lengths. What has the same form needs no rehash, told without parsing it.
        current = self._dummy_hash
        before_hash = current.rfind("$")
        self._current_form = (current[: current.rfind("$", 0, before_hash) + 1], before_hash, len(current))

    def hash(self, password: str) -> str:
        with self._slots:
            return self._hasher.hash(password)

    def verify(self, password_hash: str, password: str) -> bool:
        try:
            with self._slots:
                return self._hasher.verify(password_hash, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    def needs_rehash(self, password_hash: str) -> bool:
        """Whether the hash was made with other settings (parameters, salt or hash length)."""
        prefix, last_separator, length = self._current_form
        if len(password_hash) == length and password_hash.rfind("$") == last_separator and password_hash.startswith(prefix):
            return False  # every sign-in: its form says so at once
        return self._hasher.check_needs_rehash(password_hash)

    def verify_unknown_user(self, password: str) -> bool:
        """Burn one verification's worth of time; always False."""
        self.verify(self._dummy_hash, password)
        return False
