"""Webhook secrets and the two signatures every request carries.

- `X-Webhook-Signature`: hex HMAC-SHA256 of the body, keyed with the secret as shown (what
  receivers of the old service verify);
- `Webhook-Signature`: `v1,<base64 HMAC-SHA256 of "<id>.<timestamp>.<body>">`, keyed with the
  secret's decoded bytes: the Standard Webhooks form (with `Webhook-Id` and `Webhook-Timestamp`),
  which lets a receiver refuse a replayed or delayed request. Any Standard Webhooks library verifies it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

SECRET_PREFIX = "whsec_"


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def legacy_signature(secret: str, body: bytes) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def standard_signature(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    key = base64.b64decode(secret.removeprefix(SECRET_PREFIX))
    signed = f"{message_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


def signed_headers(secret: str, *, message_id: str, event: str, timestamp: int, body: bytes) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "User-Agent": "idp-webhooks/1",
        "X-Webhook-Event": event,
        "X-Webhook-Id": message_id,
        "X-Webhook-Timestamp": str(timestamp),
        "X-Webhook-Signature": legacy_signature(secret, body),
        "Webhook-Id": message_id,
        "Webhook-Timestamp": str(timestamp),
        "Webhook-Signature": standard_signature(secret, message_id, timestamp, body),
    }
