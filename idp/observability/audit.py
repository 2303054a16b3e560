"""Audit observers (`idp.audit.service.AuditObserver`): every recorded security event is counted
in the metrics and written as a log line, so the logs tell a sign-in as it happened."""

from __future__ import annotations

import logging

from idp.audit.service import RecordedEvent
from idp.observability.metrics import AppMetrics
from idp.observability.redaction import log_scrubbed, redact

LOGIN_METHODS = frozenset({"pwd", "pwd+trusted_device", "totp", "sms", "email", "backup_code"})
# a wrong code at /2fa/verify cannot tell which method it was meant for: "code"
SECOND_FACTOR_METHODS = frozenset({"totp", "sms", "email", "backup_code", "code"})
GRANTS = frozenset({"api_login", "api_refresh", "authorization_code", "refresh_token", "client_credentials"})

# Details that say what happened and never hold a secret; the rest (scopes, ids, counts) stay in the audit log.
LOGGED_DETAILS = {"method": "method", "reason": "reason", "grantType": "grant", "clientId": "client_id"}
MAX_DETAIL_LENGTH = 64


def _bounded(value: object, allowed: frozenset[str], default: str = "other") -> str:
    return value if isinstance(value, str) and value in allowed else default


class OutcomeMetrics:
    """Counts sign-ins, second factors and issued tokens from their audit events."""

    def __init__(self, metrics: AppMetrics) -> None:
        self._metrics = metrics

    def observe(self, event: RecordedEvent) -> None:
        name, details = event.event, event.details or {}
        if name == "login_success":
            self._metrics.login(_bounded(details.get("method"), LOGIN_METHODS), success=True)
        elif name == "login_failed":  # only the password step fails a login; a wrong code is 2fa_failed
            self._metrics.login("pwd", success=False)
        elif name in ("2fa_verified", "2fa_failed"):
            self._metrics.second_factor(_bounded(details.get("method"), SECOND_FACTOR_METHODS), success=name == "2fa_verified")
        elif name == "token_issued":
            self._metrics.tokens_issued(_bounded(details.get("grantType"), GRANTS))


class AuditLogLines:
    """Writes each event to the `idp.audit` logger: name, user, success and the details that are safe."""

    def __init__(self, logger: logging.Logger | None = None) -> None:
        self._log = logger or logging.getLogger("idp.audit")

    def observe(self, event: RecordedEvent) -> None:
        # The event name and the user id are ours; a detail may hold what a client sent (a client_id): scrubbed here.
        fields: dict[str, object] = {"event": event.event, "user_id": event.user_id, "success": event.success}
        for key, field in LOGGED_DETAILS.items():
            value = (event.details or {}).get(key)
            if isinstance(value, str):
                fields[field] = redact(value[:MAX_DETAIL_LENGTH])
        level = logging.INFO if event.success else logging.WARNING
        described = " ".join(f"{k}={v}" for k, v in fields.items() if k != "event")
        log_scrubbed(self._log, level, "audit %s %s", (event.event, described), fields)
