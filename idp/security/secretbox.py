"""Encryption at rest for secrets kept in the database (TOTP secrets, private keys)."""

from __future__ import annotations

from collections.abc import Sequence

from cryptography.fernet import Fernet, InvalidToken, MultiFernet


class SecretBoxError(ValueError):
    """A ciphertext could not be decrypted with any configured key."""


class SecretBox:
    """Fernet (AES-128-CBC + HMAC-SHA256) with key rotation.

    The first key encrypts; every key decrypts, so a new key can be put in front of the list,
    the data re-encrypted with `rotate`, and the old key dropped afterwards.
    """

    def __init__(self, keys: Sequence[str]) -> None:
        if not keys:
            raise ValueError("at least one encryption key is required")
        self._fernet = MultiFernet([Fernet(k) for k in keys])

    def encrypt(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode()).decode()

    def decrypt(self, ciphertext: str, *, ttl: int | None = None) -> str:
        """`ttl`: refuse a ciphertext made more than that many seconds ago."""
        try:
            return self._fernet.decrypt(ciphertext.encode(), ttl=ttl).decode()
        except InvalidToken:
            raise SecretBoxError("ciphertext not readable with the configured ENCRYPTION_KEYS") from None

    def rotate(self, ciphertext: str) -> str:
        """Re-encrypt under the first (newest) key."""
        try:
            return self._fernet.rotate(ciphertext.encode()).decode()
        except InvalidToken:
            raise SecretBoxError("ciphertext not readable with the configured ENCRYPTION_KEYS") from None
