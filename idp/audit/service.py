"""Recording and reading security events."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, Protocol, TypeVar

from sqlalchemy import ColumnElement, Insert, bindparam, func, insert, select
from sqlalchemy.orm import Session as DbSession

from idp.audit.models import AuditEvent
from idp.statements import HotStatement

EVENTS = frozenset(
    {
        "register",
        "login_success",
        "login_failed",
        "logout",
        "session_revoked",
        "2fa_enabled",
        "2fa_disabled",
        "2fa_verified",
        "2fa_failed",
        "backup_code_used",
        "backup_codes_generated",
        "trusted_device_added",
        "trusted_device_removed",
        "email_verification_sent",
        "email_verified",
        "password_changed",
        "password_reset_requested",
        "password_reset_completed",
        "authorize",
        "consent_granted",
        "token_issued",
        "token_revoked",
        "api_key_created",
        "api_key_rotated",
        "api_key_revoked",
        "api_key_updated",
        "api_key_deleted",
        "webhook_created",
        "webhook_updated",
        "webhook_deleted",
        "webhook_disabled",
        "user_disabled",
        "user_enabled",
        "role_changed",
        "client_created",
        "client_updated",
        "client_deleted",
        "client_secret_rotated",
    }
)


@dataclass(frozen=True)
class ClientInfo:
    """Who is on the other end of the request, as far as the service needs to know."""

    ip_address: str | None = None
    user_agent: str | None = None


T = TypeVar("T")
MAX_PAGE = 100_000  # the highest page number a list is asked for: its offset must fit the database's integers


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    page: int
    limit: int
    total: int

    @property
    def pages(self) -> int:
        return (self.total + self.limit - 1) // self.limit


@dataclass(frozen=True)
class RecordedEvent:
    """An event as it was written (the row's columns but its id): what observers are told."""

    event: str
    user_id: str | None
    success: bool
    ip_address: str | None
    user_agent: str | None
    details: dict[str, Any]
    created_at: datetime


class AuditObserver(Protocol):
    """Told of every event as it is recorded, inside the caller's unit of work (before its commit):
    webhooks queue their deliveries there, metrics count outcomes."""

    def observe(self, event: RecordedEvent) -> None: ...


_INSERT_EVENT = insert(AuditEvent.__table__)
_EVENT_PARAM = "event_"  # the event's parameters, where it rides in another statement


def with_event(statement: Insert) -> Insert:
    """`statement` with the event's INSERT as a data-modifying CTE: both rows in one statement,
    hence one round trip and one atomic write (PostgreSQL; for `AuditLog.record_with`)."""
    columns = [column.name for column in AuditEvent.__table__.c if column.name != "id"]
    event = insert(AuditEvent.__table__).values({name: bindparam(_EVENT_PARAM + name) for name in columns})
    return statement.add_cte(event.cte("recorded_event"))


class AuditLog:
    """Writes events in the caller's unit of work; the caller commits."""

    def __init__(self, session: DbSession, clock: Callable[[], datetime], observers: Sequence[AuditObserver] = ()) -> None:
        self._session = session
        self._clock = clock
        self._observers = observers

    def record(
        self,
        event: str,
        *,
        user_id: str | None,
        client: ClientInfo,
        success: bool = True,
        details: dict[str, Any] | None = None,
    ) -> None:
        row = self._recorded(event, user_id, client, success, details)
        # A Core INSERT in the caller's transaction (what it added before is flushed first, so the
        # user a new account's event names exists): no ORM object to build, track, flush and expire.
        self._session.execute(_INSERT_EVENT, vars(row))
        self._notify(row)

    def record_with(
        self,
        statement: HotStatement,
        params: dict[str, Any],
        event: str,
        *,
        user_id: str | None,
        client: ClientInfo,
        details: dict[str, Any] | None = None,
    ) -> None:
        """Record a successful event by running `statement` (made with `with_event`, such as the
        session a sign-in opens): the event rides in it as a CTE, so both rows are one autocommit
        statement on PostgreSQL: one round trip, atomic by itself, outside the caller's unit of
        work (whose own writes the caller commits first). Observers are told as by `record`."""
        row = self._recorded(event, user_id, client, True, details)
        event_params = {_EVENT_PARAM + k: v for k, v in vars(row).items()}
        event_params[_EVENT_PARAM + "details"] = json.dumps(row.details)  # the JSON column's bind processing
        statement.first({**params, **event_params})
        self._notify(row)

    def _recorded(
        self, event: str, user_id: str | None, client: ClientInfo, success: bool, details: dict[str, Any] | None
    ) -> RecordedEvent:
        if event not in EVENTS:
            raise ValueError(f"unknown audit event {event!r}")
        return RecordedEvent(
            event=event,
            user_id=user_id,
            success=success,
            ip_address=client.ip_address,
            user_agent=(client.user_agent or "")[:512] or None,
            details=details or {},
            created_at=self._clock(),
        )

    def _notify(self, row: RecordedEvent) -> None:
        for observer in self._observers:
            observer.observe(row)

    def for_user(self, user_id: str, *, page: int, limit: int) -> Page[AuditEvent]:
        """The user's own events, newest first."""
        return self.search(AuditSearch(user_id=user_id), page=page, limit=limit)

    def search(self, criteria: AuditSearch, *, page: int, limit: int) -> Page[AuditEvent]:
        """Events across users (administrators), newest first."""
        conditions = criteria.conditions()
        total = self._session.scalar(select(func.count()).select_from(AuditEvent).where(*conditions)) or 0
        items = self._session.scalars(
            select(AuditEvent)
            .where(*conditions)
            .order_by(AuditEvent.created_at.desc(), AuditEvent.id.desc())
            .offset((page - 1) * limit)
            .limit(limit)
        ).all()
        return Page(list(items), page, limit, total)


@dataclass(frozen=True)
class AuditSearch:
    """What to look for; None matches anything."""

    user_id: str | None = None
    event: str | None = None
    success: bool | None = None
    ip_address: str | None = None
    since: datetime | None = None
    until: datetime | None = None

    def conditions(self) -> list[ColumnElement[bool]]:
        found: list[ColumnElement[bool]] = []
        if self.user_id is not None:
            found.append(AuditEvent.user_id == self.user_id)
        if self.event is not None:
            found.append(AuditEvent.event == self.event)
        if self.success is not None:
            found.append(AuditEvent.success.is_(self.success))
        if self.ip_address is not None:
            found.append(AuditEvent.ip_address == self.ip_address)
        if self.since is not None:
            found.append(AuditEvent.created_at >= self.since)
        if self.until is not None:
            found.append(AuditEvent.created_at < self.until)
        return found
