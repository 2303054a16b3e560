"""Server-generated secrets: 256-bit random tokens, stored and looked up by their SHA-256 digest."""

from __future__ import annotations

import hashlib
import hmac
import secrets

TOKEN_BYTES = 32


def random_token(nbytes: int = TOKEN_BYTES) -> str:
    """A url-safe random string from the OS CSPRNG (43 characters for 256 bits)."""
    return secrets.token_urlsafe(nbytes)


def digest(token: str) -> str:
    """Hex SHA-256 of a high-entropy token; a slow hash buys nothing for 256 random bits."""
    return hashlib.sha256(token.encode()).hexdigest()


def same(a: str, b: str) -> bool:
    """Constant-time comparison of two secrets or digests."""
    return hmac.compare_digest(a.encode(), b.encode())
