"""How a phone number or an address is shown back to the user: enough to recognise it, not to read it."""

from __future__ import annotations


def mask_phone(phone: str | None) -> str | None:
    return f"***{phone[-4:]}" if phone else None


def mask_email(email: str | None) -> str | None:
    if not email:
        return None
    local, _, domain = email.partition("@")
    return f"{local[:3]}***@{domain}"
