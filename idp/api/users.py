"""How users, sessions and audit events look on the wire."""

from __future__ import annotations

from typing import Any

from idp.accounts.models import Session, User
from idp.audit.models import AuditEvent
from idp.audit.service import Page
from idp.clock import iso
from idp.mfa.masking import mask_email, mask_phone
from idp.mfa.models import TrustedDevice, TwoFactorMethod


def user_summary(user: User) -> dict[str, Any]:
    return {"id": user.id, "email": user.email, "username": user.username, "twoFactorEnabled": user.two_factor_enabled}


def user_registered(user: User) -> dict[str, Any]:
    return {**user_summary(user), "emailVerified": user.email_verified, "createdAt": iso(user.created_at)}


def user_profile(user: User) -> dict[str, Any]:
    return {
        **user_registered(user),
        "isActive": user.is_active,
        "updatedAt": iso(user.updated_at),
    }


def user_as_admin_sees(user: User) -> dict[str, Any]:
    """A user in the admin API and the `flask users` commands."""
    return {**user_profile(user), "isAdmin": user.is_admin}


def pagination_view(page: Page[Any]) -> dict[str, int]:
    return {"page": page.page, "limit": page.limit, "total": page.total, "totalPages": page.pages}


def session_view(session: Session, current_id: str | None) -> dict[str, Any]:
    return {
        "id": session.id,
        "ipAddress": session.ip_address,
        "userAgent": session.user_agent,
        "createdAt": iso(session.created_at),
        "lastUsedAt": iso(session.last_used_at),
        "expiresAt": iso(session.expires_at),
        "current": session.id == current_id,
    }


def audit_view(event: AuditEvent, *, as_owner: bool = False) -> dict[str, Any]:
    """`as_owner`: for the account's owner, who is not shown an administrator's address and browser."""
    hidden = as_owner and event.by_administrator
    return {
        "id": event.id,
        "action": event.event,
        "success": event.success,
        "ipAddress": None if hidden else event.ip_address,
        "userAgent": None if hidden else event.user_agent,
        "details": event.details,
        "createdAt": iso(event.created_at),
    }


def method_view(method: TwoFactorMethod) -> dict[str, Any]:
    view: dict[str, Any] = {
        "id": method.id,
        "type": method.type,
        "verifiedAt": iso(method.verified_at),
        "createdAt": iso(method.created_at),
    }
    if method.type == "sms":
        view["phoneNumber"] = mask_phone(method.phone_number)
    if method.type == "email":
        view["email"] = mask_email(method.email)
    return view


def device_view(device: TrustedDevice) -> dict[str, Any]:
    return {
        "id": device.id,
        "deviceName": device.device_name,
        "ipAddress": device.ip_address,
        "userAgent": device.user_agent,
        "createdAt": iso(device.created_at),
        "lastUsedAt": iso(device.last_used_at),
        "expiresAt": iso(device.expires_at),
    }
