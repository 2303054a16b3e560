"""Security alerts: every factor or credential change is audited and the user is told by email."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from idp.audit.models import done_by_administrator
from idp.audit.service import AuditLog, ClientInfo
from idp.errors import DeliveryUnavailable

if TYPE_CHECKING:
    from idp.accounts.models import User
    from idp.delivery import Delivery

log = logging.getLogger(__name__)


class SecurityAlerts:
    def __init__(self, audit: AuditLog, delivery: Delivery, clock: Callable[[], datetime]) -> None:
        self._audit = audit
        self._delivery = delivery
        self._clock = clock

    def notify(self, event: str, user: User, *, client: ClientInfo, sentence: str, details: dict[str, Any] | None = None) -> None:
        """Record `event` and email the user `sentence`, after the caller commits."""
        self._audit.record(event, user_id=user.id, client=client, details=details)
        try:
            self._delivery.email(
                user.email,
                "security-alert",
                username=user.username,
                event=sentence,
                when=self._clock().strftime("%Y-%m-%d %H:%M UTC"),
                # an administrator's doing was not done from the user's address: theirs is not told
                ip_address=None if done_by_administrator(user.id, details) else client.ip_address,
            )
        except DeliveryUnavailable:
            # the change itself must not fail because no mail server is configured
            log.warning("security alert %s for user %s not emailed: email delivery unavailable", event, user.id)
