"""The audit log: one row per security event."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from idp.extensions import db
from idp.models import BigId, created_column

# the `reason` of the events an administrator's action causes (the sessions a disable ends...)
ADMINISTRATOR_REASONS = frozenset({"user_disabled", "2fa_reset", "revoked_by_admin", "admin_reset"})


def done_by_administrator(user_id: str | None, details: Mapping[str, Any] | None) -> bool:
    """Whether an event of `user_id`'s account was an administrator's doing: the address and browser
    recorded with it are the administrator's, kept for the audit log across users and never told
    to the account's owner (their activity, security alert emails, webhooks)."""
    details = details or {}
    by = details.get("by")
    return (by is not None and by != user_id) or details.get("reason") in ADMINISTRATOR_REASONS


class AuditEvent(db.Model):  # type: ignore[name-defined]
    __tablename__ = "audit_logs"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    user_id: Mapped[str | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    event: Mapped[str] = mapped_column(String(64), nullable=False)
    success: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)
    ip_address: Mapped[str | None] = mapped_column(String(45))
    user_agent: Mapped[str | None] = mapped_column(String(512))
    details: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False, default=dict)
    created_at: Mapped[datetime] = created_column()

    __table_args__ = (
        Index("ix_audit_logs_user_created", "user_id", "created_at"),  # a user's own activity
        Index("ix_audit_logs_created", "created_at", "id"),  # the administrators' search across users, newest first
    )

    @property
    def by_administrator(self) -> bool:
        """Done to the account by an administrator (`done_by_administrator`)."""
        return done_by_administrator(self.user_id, self.details)
