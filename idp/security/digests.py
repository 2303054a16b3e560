"""Server-generated secrets: 256-bit random tokens, stored and looked up by their SHA-256 digest."""

from __future__ import annotations

import base64
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


def derived_key(secret_key: str, purpose: str) -> bytes:
    """A 256-bit key for one purpose, derived from SECRET_KEY: what is keyed for one use (a code's
    digest, a token's tag) cannot pass for another's."""
    return hashlib.sha256(purpose.encode() + b":" + secret_key.encode()).digest()


def b64url(raw: bytes) -> str:
    """base64url without padding (JOSE's encoding, and the tokens')."""
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def same(a: str, b: str) -> bool:
    """Constant-time comparison of two secrets or digests."""
    return hmac.compare_digest(a.encode(), b.encode())
