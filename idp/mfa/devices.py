"""Trusted devices: a 256-bit token in an HttpOnly cookie lets its user skip the second factor for 30 days."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session as DbSession

from idp.audit.service import ClientInfo
from idp.clock import as_utc
from idp.mfa.models import TrustedDevice
from idp.models import affected
from idp.security.digests import digest, random_token

TRUST_FOR = timedelta(days=30)
MAX_DEVICES = 10  # per user; trusting one more forgets the one least recently used


class TrustedDevices:
    def __init__(self, db: DbSession, clock: Callable[[], datetime]) -> None:
        self._db = db
        self._clock = clock

    def trust(
        self, user_id: str, *, name: str | None, client: ClientInfo, replacing: str | None = None
    ) -> tuple[TrustedDevice, str]:
        """Remember this device; returns the row and the token (shown once, stored as a digest).
        `replacing`: the token this browser presented, whose device it replaces (trusting the same
        browser again added a device each time, the old cookie's still valid). At most MAX_DEVICES
        live ones: the user's expired devices are deleted first, or one used shortly before it
        expired would outrank (and push out) a live device unused since it was trusted."""
        token = random_token()
        now = self._clock()
        self._db.execute(delete(TrustedDevice).where(TrustedDevice.user_id == user_id, TrustedDevice.expires_at <= now))
        if replacing:
            self._db.execute(delete(TrustedDevice).where(TrustedDevice.token_hash == digest(replacing), TrustedDevice.user_id == user_id))
        kept = self._db.scalars(
            select(TrustedDevice.id)
            .where(TrustedDevice.user_id == user_id)
            .order_by(TrustedDevice.last_used_at.desc())
            .offset(MAX_DEVICES - 1)
        ).all()
        if kept:
            self._db.execute(delete(TrustedDevice).where(TrustedDevice.id.in_(kept)))
        device = TrustedDevice(
            user_id=user_id,
            token_hash=digest(token),
            device_name=(name or "").strip()[:100] or None,
            ip_address=client.ip_address,
            user_agent=(client.user_agent or "")[:512] or None,
            created_at=now,
            last_used_at=now,
            expires_at=now + TRUST_FOR,
        )
        self._db.add(device)
        return device, token

    def recognise(self, user_id: str, token: str | None) -> TrustedDevice | None:
        """The live device behind `token` if it belongs to this user; records its use."""
        if not token:
            return None
        device = self._db.scalar(select(TrustedDevice).where(TrustedDevice.token_hash == digest(token)))
        now = self._clock()
        if device is None or device.user_id != user_id or as_utc(device.expires_at) <= now:
            return None
        device.last_used_at = now
        return device

    def list(self, user_id: str) -> list[TrustedDevice]:
        return list(
            self._db.scalars(
                select(TrustedDevice)
                .where(TrustedDevice.user_id == user_id, TrustedDevice.expires_at > self._clock())
                .order_by(TrustedDevice.created_at.desc())
            )
        )

    def remove(self, user_id: str, device_id: str) -> bool:
        return bool(
            affected(
                self._db.execute(delete(TrustedDevice).where(TrustedDevice.id == device_id, TrustedDevice.user_id == user_id))
            )
        )

    def remove_all(self, user_id: str) -> int:
        return affected(self._db.execute(delete(TrustedDevice).where(TrustedDevice.user_id == user_id)))
