"""A user's webhooks (each user reaches only their own) and the deliveries that events create."""

from __future__ import annotations

import builtins
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, bindparam, func, select
from sqlalchemy.orm import Session as DbSession

from idp.accounts.models import hold_account
from idp.audit.service import AuditLog, ClientInfo, RecordedEvent
from idp.clock import iso
from idp.config import WebhookSettings
from idp.errors import Conflict, NotFound, ValidationFailed
from idp.models import new_id
from idp.security.secretbox import SecretBox
from idp.statements import HotStatement
from idp.webhooks.events import FROM_AUDIT, event_data
from idp.webhooks.models import Webhook, WebhookAttempt, WebhookDelivery
from idp.webhooks.signing import new_secret
from idp.webhooks.targets import Resolver, TargetRefused, check_webhook_target, resolve

# Called with a new delivery (added to the session); sends it once the transaction commits.
Dispatch = Callable[[WebhookDelivery], None]


@dataclass(frozen=True)
class DeliveryRecord:
    delivery: WebhookDelivery
    attempts: list[WebhookAttempt]


def delivery_for(webhook_id: str, event: str, data: dict[str, Any], now: datetime) -> WebhookDelivery:
    """A delivery of `event` to the webhook, its body fixed now: every attempt sends (and signs) these bytes."""
    delivery_id = new_id()
    body = json.dumps({"id": delivery_id, "event": event, "data": data, "timestamp": iso(now)}, separators=(",", ":"))
    return WebhookDelivery(id=delivery_id, webhook_id=webhook_id, event=event, body=body, created_at=now)


class WebhookService:
    """Webhooks of one user at a time; a webhook of someone else is as absent as one that does not exist."""

    def __init__(
        self,
        db: DbSession,
        box: SecretBox,
        audit: AuditLog,
        dispatch: Dispatch,
        settings: WebhookSettings,
        clock: Callable[[], datetime],
        resolver: Resolver = resolve,
    ) -> None:
        self._db = db
        self._box = box
        self._audit = audit
        self._dispatch = dispatch
        self._settings = settings
        self._clock = clock
        self._resolver = resolver

    def create(self, user_id: str, *, url: str, events: list[str], client: ClientInfo) -> tuple[Webhook, str]:
        """A new webhook; returns it and its signing secret (shown once). Commits."""
        self._check_url(url)
        hold_account(self._db, user_id)  # requests sent at once count one after the other
        count = self._db.scalar(select(func.count()).select_from(Webhook).where(Webhook.user_id == user_id)) or 0
        if count >= self._settings.max_per_user:
            raise Conflict(f"At most {self._settings.max_per_user} webhooks per user")
        now = self._clock()
        secret = new_secret()
        webhook = Webhook(
            user_id=user_id,
            url=url,
            events=list(dict.fromkeys(events)),
            secret=self._box.encrypt(secret),
            is_active=True,
            consecutive_failures=0,
            created_at=now,
            updated_at=now,
        )
        self._db.add(webhook)
        self._db.flush()
        self._audit.record("webhook_created", user_id=user_id, client=client, details={"webhookId": webhook.id})
        self._db.commit()
        return webhook, secret

    def list(self, user_id: str) -> list[Webhook]:
        return list(self._db.scalars(select(Webhook).where(Webhook.user_id == user_id).order_by(Webhook.created_at.desc())))

    def get(self, user_id: str, webhook_id: str) -> Webhook:
        webhook = self._db.scalar(select(Webhook).where(Webhook.id == webhook_id, Webhook.user_id == user_id))
        if webhook is None:
            raise NotFound("Webhook not found")
        return webhook

    def update(self, user_id: str, webhook_id: str, *, changes: dict[str, Any], client: ClientInfo) -> Webhook:
        """Change url, events or isActive (only the fields given); turning a webhook back on
        forgets its failures. Audited: a changed URL sends the account's events elsewhere. Commits."""
        webhook = self.get(user_id, webhook_id)
        if "url" in changes:
            self._check_url(changes["url"])
            webhook.url = changes["url"]
        if "events" in changes:
            webhook.events = list(dict.fromkeys(changes["events"]))
        if "is_active" in changes:
            active = bool(changes["is_active"])
            if active and not webhook.is_active:
                webhook.consecutive_failures = 0
                webhook.disabled_at = None
            webhook.is_active = active
        webhook.updated_at = self._clock()
        fields = sorted("isActive" if name == "is_active" else name for name in changes)
        self._audit.record("webhook_updated", user_id=user_id, client=client, details={"webhookId": webhook.id, "fields": fields})
        self._db.commit()
        return webhook

    def pause_all(self, user_id: str, *, client: ClientInfo, details: dict[str, Any]) -> None:
        """Turn off every active webhook of the user, each audited as `webhook_disabled` with
        `details` (its reason; the administrator); the owner turns them back on (PATCH isActive)
        once sure of where they send. Left to the caller's unit of work."""
        now = self._clock()
        for webhook in self._db.scalars(select(Webhook).where(Webhook.user_id == user_id, Webhook.is_active.is_(True))):
            webhook.is_active, webhook.disabled_at, webhook.updated_at = False, now, now
            self._audit.record("webhook_disabled", user_id=user_id, client=client, details={"webhookId": webhook.id, **details})

    def delete(self, user_id: str, webhook_id: str, *, client: ClientInfo) -> None:
        webhook = self.get(user_id, webhook_id)
        self._db.delete(webhook)
        self._audit.record("webhook_deleted", user_id=user_id, client=client, details={"webhookId": webhook_id})
        self._db.commit()

    def send_test(self, user_id: str, webhook_id: str) -> WebhookDelivery:
        """Queue a `webhook.test` event to this webhook, whichever events it subscribes to. Commits."""
        webhook = self.get(user_id, webhook_id)
        if not webhook.is_active:
            raise Conflict("This webhook is disabled; turn it on first")
        now = self._clock()
        delivery = delivery_for(webhook.id, "webhook.test", {"webhookId": webhook.id, "message": "This is a test event"}, now)
        self._db.add(delivery)
        self._dispatch(delivery)
        self._db.commit()
        return delivery

    def deliveries(self, user_id: str, webhook_id: str, *, limit: int = 20) -> builtins.list[DeliveryRecord]:
        """The webhook's latest deliveries, newest first, each with its attempts in order."""
        webhook = self.get(user_id, webhook_id)
        deliveries = list(
            self._db.scalars(
                select(WebhookDelivery)
                .where(WebhookDelivery.webhook_id == webhook.id)
                .order_by(WebhookDelivery.created_at.desc(), WebhookDelivery.id)
                .limit(limit)
            )
        )
        attempts: dict[str, builtins.list[WebhookAttempt]] = {d.id: [] for d in deliveries}
        if deliveries:
            for attempt in self._db.scalars(
                select(WebhookAttempt).where(WebhookAttempt.delivery_id.in_(attempts)).order_by(WebhookAttempt.attempt)
            ):
                attempts[attempt.delivery_id].append(attempt)
        return [DeliveryRecord(d, attempts[d.id]) for d in deliveries]

    def _check_url(self, url: str) -> None:
        try:
            check_webhook_target(url, self._settings, self._resolver)
        except TargetRefused as refused:
            raise ValidationFailed(errors=[f"url: {refused}"]) from None


_ACTIVE_WEBHOOKS = select(Webhook.id, Webhook.events).where(Webhook.user_id == bindparam("user_id"), Webhook.is_active.is_(True))
ACTIVE_WEBHOOKS_COLUMN = "active_webhooks"


def active_webhooks_of(user_id: Any) -> Any:
    """The active webhooks of the user whose id is `user_id` (a column), as a column of a query
    that reads that user: a JSON array of `[id, events]` pairs, or NULL. A sign-in reads them with
    the account's row (PostgreSQL), so the event it records needs no lookup of its own."""
    pair = func.json_build_array(Webhook.id, Webhook.events)
    return (
        select(func.json_agg(pair))
        .where(Webhook.user_id == user_id, Webhook.is_active.is_(True))
        .scalar_subquery()
        .label(ACTIVE_WEBHOOKS_COLUMN)
    )


def active_webhooks_lookup(autocommit: Engine) -> HotStatement:
    """The webhook lookup of `WebhookEvents` as a hot statement (`idp.statements`), built once per app."""
    return HotStatement(autocommit, _ACTIVE_WEBHOOKS)


class WebhookEvents:
    """An audit observer: a recorded event that maps to a webhook event becomes one delivery per
    active webhook of that user subscribed to it, sent after the transaction commits (and never
    if it rolls back)."""

    def __init__(
        self, db: DbSession, dispatch: Dispatch, clock: Callable[[], datetime], lookup: HotStatement | None = None
    ) -> None:
        self._db = db
        self._dispatch = dispatch
        self._clock = clock
        # on PostgreSQL the lookup runs on the autocommit engine (`active_webhooks_lookup`): a
        # sign-in's unit of work then holds no connection and its commit is no round trip
        self._lookup = lookup if lookup is not None and lookup.direct else None
        # per user, (id, events) of the active webhooks: one query for all the events of a request
        self._active: dict[str, Sequence[tuple[str, list[str]]]] = {}

    def know(self, user_id: str, webhooks: Sequence[Sequence[Any]] | None) -> None:
        """The user's active webhooks as `[id, events]` pairs, read already (`active_webhooks_of`)."""
        self._active[user_id] = [(webhook_id, events) for webhook_id, events in webhooks or ()]

    def observe(self, event: RecordedEvent) -> None:
        name = FROM_AUDIT.get(event.event)
        if name is None or event.user_id is None:
            return
        webhooks = self._active.get(event.user_id)
        if webhooks is None:
            # two columns, no ORM objects: most users have no webhook and every sign-in asks
            params = {"user_id": event.user_id}
            if self._lookup is not None:
                rows = self._lookup.all(params)
            else:
                with self._db.no_autoflush:  # a logout records one event per session it ends
                    rows = list(self._db.execute(_ACTIVE_WEBHOOKS, params))
            webhooks = self._active[event.user_id] = [(row.id, row.events) for row in rows]
        now = self._clock()
        for webhook_id, events in webhooks:
            if name in events:
                delivery = delivery_for(webhook_id, name, event_data(event), now)
                self._db.add(delivery)
                self._dispatch(delivery)


def reencrypt_webhook_secrets(db: DbSession, box: SecretBox) -> int:
    """Re-encrypt every webhook secret under the newest ENCRYPTION_KEYS entry (key rotation)."""
    webhooks = db.scalars(select(Webhook)).all()
    for webhook in webhooks:
        webhook.secret = box.rotate(webhook.secret)
    db.commit()
    return len(webhooks)
