"""Which audit events become which webhook events, and what their `data` says.

Events are fired where the audit log records them, so every path that enables a factor or signs
someone in (API, hosted pages, OIDC) fires the same event without knowing about webhooks.
"""

from __future__ import annotations

from typing import Any

from idp.audit.models import done_by_administrator
from idp.audit.service import RecordedEvent

EVENTS: dict[str, str] = {
    "2fa.enabled": "A second factor was turned on",
    "2fa.disabled": "A second factor was removed",
    "2fa.verified": "A second-factor code was accepted at sign-in",
    "2fa.failed": "A second-factor code was refused at sign-in",
    "user.login": "The user signed in",
    "user.logout": "A session was signed out",
    "webhook.test": "A test event sent on request",
}
SUBSCRIBABLE = tuple(name for name in EVENTS if name != "webhook.test")

FROM_AUDIT = {
    "2fa_enabled": "2fa.enabled",
    "2fa_disabled": "2fa.disabled",
    "2fa_verified": "2fa.verified",
    "2fa_failed": "2fa.failed",
    "login_success": "user.login",
    "logout": "user.logout",
}
# what of an audit event's details a receiver may see (never codes, tokens or secrets)
SHARED_DETAILS = ("method", "sessionId", "clientId", "reason", "attemptsLeft")


def event_data(row: RecordedEvent) -> dict[str, Any]:
    shared = {key: row.details[key] for key in SHARED_DETAILS if key in (row.details or {})}
    hidden = done_by_administrator(row.user_id, row.details)  # the administrator's address and browser
    return {"userId": row.user_id, **shared, "ipAddress": None if hidden else row.ip_address, "userAgent": None if hidden else row.user_agent}
