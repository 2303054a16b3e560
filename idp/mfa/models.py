"""Tables of the second factor. Secrets are encrypted (TOTP) or hashed (everything else)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, DateTime, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from idp.extensions import db
from idp.models import created_column, id_column


class TwoFactorMethod(db.Model):  # type: ignore[name-defined]
    """A TOTP app, a phone or an email address. `verified_at` is NULL while setup is pending; a
    pending method never replaces the verified one of its type until it is verified itself."""

    __tablename__ = "two_factor_methods"

    id: Mapped[str] = id_column()
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True)
    type: Mapped[str] = mapped_column(String(10), nullable=False)  # totp | sms | email
    secret: Mapped[str | None] = mapped_column(Text)  # TOTP secret, Fernet-encrypted
    phone_number: Mapped[str | None] = mapped_column(String(20))
    email: Mapped[str | None] = mapped_column(String(254))
    last_used_step: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)  # TOTP replay guard
    verified_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = created_column()


class BackupCode(db.Model):  # type: ignore[name-defined]
    __tablename__ = "backup_codes"

    id: Mapped[str] = id_column()
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True)
    code_hash: Mapped[str] = mapped_column(String(255), nullable=False)  # Argon2id
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = created_column()


class TrustedDevice(db.Model):  # type: ignore[name-defined]
    __tablename__ = "trusted_devices"

    id: Mapped[str] = id_column()
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True)
    token_hash: Mapped[str] = mapped_column(String(64), nullable=False, unique=True)
    device_name: Mapped[str | None] = mapped_column(String(100))
    ip_address: Mapped[str | None] = mapped_column(String(45))
    user_agent: Mapped[str | None] = mapped_column(String(512))
    created_at: Mapped[datetime] = created_column()
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)


class LoginChallenge(db.Model):  # type: ignore[name-defined]
    """The step between a correct password and a correct second factor (the API's tempToken)."""

    __tablename__ = "login_challenges"

    id: Mapped[str] = id_column()
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True)
    token_hash: Mapped[str] = mapped_column(String(64), nullable=False, unique=True)
    failed_attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    created_at: Mapped[datetime] = created_column()
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class OneTimeCode(db.Model):  # type: ignore[name-defined]
    """A 6-digit code sent by SMS or email, bound to its purpose and to a challenge or a pending method."""

    __tablename__ = "one_time_codes"

    id: Mapped[str] = id_column()
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True)
    purpose: Mapped[str] = mapped_column(String(20), nullable=False)  # login | setup
    channel: Mapped[str] = mapped_column(String(10), nullable=False)  # sms | email
    challenge_id: Mapped[str | None] = mapped_column(ForeignKey("login_challenges.id", ondelete="CASCADE"))
    method_id: Mapped[str | None] = mapped_column(ForeignKey("two_factor_methods.id", ondelete="CASCADE"))
    code_hash: Mapped[str] = mapped_column(String(64), nullable=False)  # HMAC-SHA256 with the server key
    failed_attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0)  # tries, counted before each check
    created_at: Mapped[datetime] = created_column()
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
