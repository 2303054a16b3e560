"""Signing keys: private half encrypted at rest, public JWK published while tokens may still carry it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, DateTime, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from idp.extensions import db
from idp.models import created_column


class SigningKey(db.Model):  # type: ignore[name-defined]
    __tablename__ = "signing_keys"

    kid: Mapped[str] = mapped_column(String(64), primary_key=True)
    alg: Mapped[str] = mapped_column(String(10), nullable=False)
    private_key: Mapped[str] = mapped_column(Text, nullable=False)  # Fernet token of the PEM
    public_jwk: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False)
    created_at: Mapped[datetime] = created_column()
    retired_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    publish_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
