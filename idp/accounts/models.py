"""Users and their sessions (one session = one refresh-token family)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, DateTime, ForeignKey, Index, String, false, func, text, update
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.orm import Session as DbSession

from idp.clock import utcnow
from idp.extensions import db
from idp.models import created_column, id_column


class User(db.Model):  # type: ignore[name-defined]
    __tablename__ = "users"

    id: Mapped[str] = id_column()
    email: Mapped[str] = mapped_column(String(254), unique=True, nullable=False)
    username: Mapped[str] = mapped_column(String(30), nullable=False)
    password_hash: Mapped[str] = mapped_column(String(255), nullable=False)
    email_verified: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    two_factor_enabled: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    is_active: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)
    is_admin: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False, server_default=false())
    created_at: Mapped[datetime] = created_column()
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, default=utcnow, onupdate=utcnow)
    password_changed_at: Mapped[datetime] = created_column()

    __table_args__ = (Index("uq_users_username_lower", func.lower(username), unique=True),)


class Session(db.Model):  # type: ignore[name-defined]
    """A login: the family of refresh tokens issued from it, and the access tokens naming it in `sid`.

    Only the SHA-256 digest of the current refresh token is kept; presenting an older token of
    the family (one that no longer matches) revokes the session.
    """

    __tablename__ = "sessions"

    id: Mapped[str] = id_column()
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True)
    client_id: Mapped[str] = mapped_column(String(100), nullable=False)
    token_hash: Mapped[str] = mapped_column(String(64), nullable=False)
    auth_time: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    amr: Mapped[str] = mapped_column(String(100), nullable=False, default="pwd")
    scope: Mapped[str] = mapped_column(String(500), nullable=False, default="", server_default=text("''"))  # 0004's, for the rows it found
    # A relying party's session: the `acr` its sign-in reached, as the client asked for it
    # (`acr_values`), for the ID tokens of its refreshes; None elsewhere
    acr: Mapped[str | None] = mapped_column(String(200))
    # A relying party's session points at the browser (SSO) session it came from: ending that
    # session (logout at the provider) ends these too.
    browser_session_id: Mapped[str | None] = mapped_column(String(36), index=True)
    ip_address: Mapped[str | None] = mapped_column(String(45))
    user_agent: Mapped[str | None] = mapped_column(String(512))
    created_at: Mapped[datetime] = created_column()
    last_used_at: Mapped[datetime] = created_column()
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoke_reason: Mapped[str | None] = mapped_column(String(40))


class AccountToken(db.Model):  # type: ignore[name-defined]
    """A single-use link token: email verification or password reset. Only its digest is kept."""

    __tablename__ = "account_tokens"

    id: Mapped[str] = id_column()
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True)
    purpose: Mapped[str] = mapped_column(String(20), nullable=False)  # verify_email | password_reset
    token_hash: Mapped[str] = mapped_column(String(64), nullable=False, unique=True)
    email: Mapped[str] = mapped_column(String(254), nullable=False)  # the address it was sent to
    created_at: Mapped[datetime] = created_column()
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


def hold_account(session: DbSession, user_id: str) -> None:
    """Take the account's row until the commit, so that requests sent at once for one account (a
    count under a cap, then an insert) run one after the other. A write that changes nothing: a
    row lock on PostgreSQL, and the write lock on SQLite, whose SELECT ... FOR UPDATE does nothing
    and whose reads take no lock."""
    session.execute(update(User).where(User.id == user_id).values(updated_at=User.updated_at))
