"""Creating, listing, changing and checking API keys; each user only ever reaches their own."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session as DbSession

from idp.accounts.models import User, hold_account
from idp.accounts.throttle import AccountThrottle
from idp.apikeys.models import ApiKey
from idp.audit.service import AuditLog, ClientInfo
from idp.clock import as_utc, iso
from idp.errors import Conflict, Forbidden, NotFound, Unauthorized, ValidationFailed
from idp.security.digests import digest, random_token

KEY_PREFIX = "pk_live_"
KEY_MARK = "pk_"  # what tells a key from an access token in `Authorization: Bearer`
SCOPES = ("*", "2fa:read", "2fa:write", "user:read", "webhooks:read", "webhooks:write", "admin")
ADMIN_SCOPE = "admin"  # never implied by "*": a key acts as an administrator only when it says so
VISIBLE = len(KEY_PREFIX) + 4  # what a listing shows of a key
_WIRE_NAMES = {"expires_at": "expiresAt", "rate_limit": "rateLimit"}  # a change's fields, as the audit log names them


def new_key() -> str:
    return KEY_PREFIX + random_token()


@dataclass(frozen=True)
class KeyIdentity:
    """A request authenticated by an API key: its owner, and what the key may do."""

    user: User
    key_id: str
    scopes: tuple[str, ...]


class ApiKeyService:
    """API keys of one user at a time. Keys are shown once and stored as SHA-256 digests.

    `throttle` builds the per-key hourly counter for a limit of N requests per hour."""

    def __init__(
        self,
        db: DbSession,
        audit: AuditLog,
        throttle: Callable[[int], AccountThrottle],
        clock: Callable[[], datetime],
        *,
        default_rate_limit: int,
        max_per_user: int,
    ) -> None:
        self._db = db
        self._audit = audit
        self._throttle = throttle
        self._clock = clock
        self._default_rate_limit = default_rate_limit
        self._max_per_user = max_per_user

    # -- management --------------------------------------------------------------------------

    def create(
        self,
        user_id: str,
        *,
        name: str,
        scopes: list[str],
        expires_at: datetime | None,
        rate_limit: int | None,
        client: ClientInfo,
    ) -> tuple[ApiKey, str]:
        """A new key; returns the row and the key itself (shown once). Commits. At most
        `max_per_user` keys not revoked: each has its own hourly allowance and its own row."""
        now = self._clock()
        self._check_expiry(expires_at, now)
        self._check_scopes(user_id, scopes)
        hold_account(self._db, user_id)  # requests sent at once count one after the other
        held = self._db.scalar(select(func.count()).select_from(ApiKey).where(ApiKey.user_id == user_id, ApiKey.revoked_at.is_(None)))
        if (held or 0) >= self._max_per_user:
            raise Conflict(f"At most {self._max_per_user} API keys per user; revoke or delete one first")
        key = new_key()
        row = ApiKey(
            user_id=user_id,
            name=name,
            prefix=key[:VISIBLE],
            key_hash=digest(key),
            scopes=_unique(scopes),
            rate_limit=rate_limit or self._default_rate_limit,
            expires_at=expires_at,
            created_at=now,
            updated_at=now,
        )
        self._db.add(row)
        self._db.flush()
        # what the key may do and for how long, as a change records them: the log tells which keys act as an administrator
        details = {"apiKeyId": row.id, "name": name, "scopes": list(row.scopes), "expiresAt": iso(expires_at)}
        self._audit.record("api_key_created", user_id=user_id, client=client, details=details)
        self._db.commit()
        return row, key

    def list(self, user_id: str) -> list[ApiKey]:
        return list(self._db.scalars(select(ApiKey).where(ApiKey.user_id == user_id).order_by(ApiKey.created_at.desc())))

    def get(self, user_id: str, key_id: str) -> ApiKey:
        """The user's own key; anyone else's is as absent as one that does not exist."""
        row = self._db.scalar(select(ApiKey).where(ApiKey.id == key_id, ApiKey.user_id == user_id))
        if row is None:
            raise NotFound("API key not found")
        return row

    def update(
        self,
        user_id: str,
        key_id: str,
        *,
        changes: dict[str, object],
        client: ClientInfo,
    ) -> ApiKey:
        """Change name, scopes, expiry or hourly limit (only the fields given), or revoke the key
        (`is_active` false, as the old service's PATCH did); a revoked key is never active again.
        Audited, with the fields changed. Commits."""
        row = self.get(user_id, key_id)
        now = self._clock()
        if "is_active" in changes:
            if changes["is_active"] and row.revoked_at is not None:
                raise Conflict("A revoked API key stays revoked; create a new one")
            if not changes["is_active"] and row.revoked_at is None:
                row.revoked_at = now
                self._audit.record("api_key_revoked", user_id=user_id, client=client, details={"apiKeyId": row.id})
        if "name" in changes:
            row.name = str(changes["name"])
        if "scopes" in changes:
            self._check_scopes(user_id, changes["scopes"])  # type: ignore[arg-type]
            row.scopes = _unique(changes["scopes"])  # type: ignore[arg-type]
        if "expires_at" in changes:
            expires_at = changes["expires_at"]
            assert expires_at is None or isinstance(expires_at, datetime)
            self._check_expiry(expires_at, now)
            row.expires_at = expires_at
        if "rate_limit" in changes:
            limit = changes["rate_limit"]
            row.rate_limit = limit if isinstance(limit, int) else self._default_rate_limit
        row.updated_at = now
        settings = sorted(set(changes) - {"is_active"})
        if settings:
            details = {"apiKeyId": row.id, "name": row.name, "fields": [_WIRE_NAMES.get(f, f) for f in settings]}
            self._audit.record("api_key_updated", user_id=user_id, client=client, details={**details, "scopes": list(row.scopes)})
        self._db.commit()
        return row

    def delete(self, user_id: str, key_id: str, *, client: ClientInfo) -> None:
        row = self.get(user_id, key_id)
        self._db.delete(row)
        self._audit.record("api_key_deleted", user_id=user_id, client=client, details={"apiKeyId": row.id, "name": row.name})
        self._db.commit()

    def rotate(self, user_id: str, key_id: str, *, client: ClientInfo) -> tuple[ApiKey, str]:
        """A new secret for a live key; the old one stops working at once. Commits."""
        row = self.get(user_id, key_id)
        now = self._clock()
        if row.revoked_at is not None:
            raise Conflict("A revoked API key cannot be rotated")
        key = new_key()
        row.prefix = key[:VISIBLE]
        row.key_hash = digest(key)
        row.updated_at = now
        self._audit.record("api_key_rotated", user_id=user_id, client=client, details={"apiKeyId": row.id})
        self._db.commit()
        return row, key

    def revoke(self, user_id: str, key_id: str, *, client: ClientInfo) -> ApiKey:
        row = self.get(user_id, key_id)
        if row.revoked_at is None:
            row.revoked_at = row.updated_at = self._clock()
            self._audit.record("api_key_revoked", user_id=user_id, client=client, details={"apiKeyId": row.id})
            self._db.commit()
        return row

    def revoke_all(self, user_id: str, *, client: ClientInfo, details: dict[str, Any]) -> None:
        """Revoke every key of the user not revoked yet, each audited with `details` (an
        administrator disabling the account). Left to the caller's unit of work."""
        now = self._clock()
        for row in self._db.scalars(select(ApiKey).where(ApiKey.user_id == user_id, ApiKey.revoked_at.is_(None))):
            row.revoked_at = row.updated_at = now
            self._audit.record("api_key_revoked", user_id=user_id, client=client, details={"apiKeyId": row.id, **details})

    # -- authentication ----------------------------------------------------------------------

    def authenticate(self, key: str, *, scope: str | None) -> KeyIdentity:
        """The owner behind a live key, if the key covers `scope` (None: no key may call it) and is
        under its hourly limit. 401 for an unknown, expired or revoked key, 403 outside its
        scopes, 429 over its limit. Records the key's last use."""
        now = self._clock()
        row = self._db.execute(
            select(ApiKey, User)
            .join(User, User.id == ApiKey.user_id)
            .where(ApiKey.key_hash == digest(key), ApiKey.revoked_at.is_(None), User.is_active.is_(True))
        ).one_or_none()
        if row is None or not key.startswith(KEY_PREFIX):
            raise Unauthorized()
        api_key, user = row.ApiKey, row.User
        if api_key.expires_at is not None and as_utc(api_key.expires_at) <= now:
            raise Unauthorized()
        throttle = self._throttle(api_key.rate_limit)
        throttle.take(api_key.id, "API key rate limit exceeded")
        if scope is None:
            raise Forbidden("API keys cannot be used for this endpoint")
        if not covers(api_key.scopes, scope):
            raise Forbidden(f"This API key lacks the {scope} scope")
        api_key.last_used_at = now
        self._db.commit()
        return KeyIdentity(user, api_key.id, tuple(api_key.scopes))

    def _check_scopes(self, user_id: str, scopes: Sequence[str]) -> None:
        if ADMIN_SCOPE in scopes:
            owner = self._db.get(User, user_id)  # in the session already: the caller was authenticated
            if owner is None or not owner.is_admin:
                raise Forbidden("Only administrators can create keys with the admin scope")

    @staticmethod
    def _check_expiry(expires_at: datetime | None, now: datetime) -> None:
        if expires_at is not None and as_utc(expires_at) <= now:
            raise ValidationFailed(errors=["expiresAt: must be in the future"])


def covers(scopes: Sequence[str], scope: str) -> bool:
    return scope in scopes or ("*" in scopes and scope != ADMIN_SCOPE)


def _unique(scopes: list[str]) -> list[str]:
    return list(dict.fromkeys(scopes))
