"""Column helpers shared by the feature models."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, cast

from sqlalchemy import BigInteger, CursorResult, DateTime, Integer, Result, String
from sqlalchemy.orm import Mapped, mapped_column

from idp.clock import utcnow

BigId = BigInteger().with_variant(Integer(), "sqlite")


def new_id() -> str:
    return str(uuid.uuid4())


def id_column() -> Mapped[str]:
    return mapped_column(String(36), primary_key=True, default=new_id)


def created_column() -> Mapped[datetime]:
    return mapped_column(DateTime(timezone=True), nullable=False, default=utcnow)


def affected(result: Result[Any]) -> int:
    """Rows changed by an UPDATE or DELETE (SQLAlchemy types `execute()` as a plain Result)."""
    return cast(CursorResult[Any], result).rowcount
