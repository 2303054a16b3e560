"""What administrators do to other users' accounts: find them, disable and enable them, reset
their second factor, end their sessions. Every action is audited with the administrator's id."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session as DbSession

from idp.accounts.models import User
from idp.accounts.service import user_by_identifier
from idp.accounts.sessions import SessionService
from idp.apikeys.service import ApiKeyService
from idp.audit.service import AuditLog, ClientInfo, Page
from idp.errors import Conflict, NotFound
from idp.mfa.devices import TrustedDevices
from idp.mfa.methods import TwoFactorService
from idp.webhooks.service import WebhookService


class UserAdministration:
    def __init__(
        self,
        db: DbSession,
        sessions: SessionService,
        two_factor: TwoFactorService,
        devices: TrustedDevices,
        api_keys: ApiKeyService,
        webhooks: WebhookService,
        audit: AuditLog,
        clock: Callable[[], datetime],
    ) -> None:
        self._db = db
        self._sessions = sessions
        self._two_factor = two_factor
        self._devices = devices
        self._api_keys = api_keys
        self._webhooks = webhooks
        self._audit = audit
        self._clock = clock

    def search(self, text: str | None, *, active: bool | None, page: int, limit: int) -> Page[User]:
        """Users whose email or username contains `text` (any case), newest first."""
        conditions = []
        if text:
            needle = text.lower()
            conditions.append(
                or_(func.lower(User.email).contains(needle, autoescape=True), func.lower(User.username).contains(needle, autoescape=True))
            )
        if active is not None:
            conditions.append(User.is_active.is_(active))
        total = self._db.scalar(select(func.count()).select_from(User).where(*conditions)) or 0
        users = self._db.scalars(
            select(User).where(*conditions).order_by(User.created_at.desc(), User.id).offset((page - 1) * limit).limit(limit)
        ).all()
        return Page(list(users), page, limit, total)

    def get(self, user_id: str) -> User:
        user = self._db.get(User, user_id)
        if user is None:
            raise NotFound("User not found")
        return user

    def find(self, email_or_username: str) -> User:
        """A user by email or username (the CLI's way to name one)."""
        user = user_by_identifier(self._db, email_or_username)
        if user is None:
            raise NotFound(f"No user {email_or_username}")
        return user

    def disable(self, user_id: str, *, by: str | None, client: ClientInfo) -> User:
        """The user can no longer sign in, and every session, token and API key stops working at
        once, for good: enabling the account again brings none back (keys made by whoever had
        taken the account over must not work again), the user signs in and makes new keys. The
        trusted devices are forgotten too: a browser the taker trusted would otherwise skip the
        second factor again, with the password alone, once the account is enabled; and the
        webhooks paused (the taker's would go on receiving the owner's sign-ins), as a password
        reset does."""
        user = self.get(user_id)
        if user.id == by:
            raise Conflict("You cannot disable your own account")
        if user.is_active:
            user.is_active = False
            user.updated_at = self._clock()
            self._audit.record("user_disabled", user_id=user.id, client=client, details={"by": by})
        self._api_keys.revoke_all(user.id, client=client, details={"by": by, "reason": "user_disabled"})
        self._webhooks.pause_all(user.id, client=client, details={"by": by, "reason": "user_disabled"})
        self._devices.remove_all(user.id)  # as an administrator's 2FA reset does, within its own event
        self._sessions.revoke_all(user.id, reason="user_disabled", client=client, details={"by": by})  # commits
        return user

    def enable(self, user_id: str, *, by: str | None, client: ClientInfo) -> User:
        user = self.get(user_id)
        if not user.is_active:
            user.is_active = True
            user.updated_at = self._clock()
            self._audit.record("user_enabled", user_id=user.id, client=client, details={"by": by})
            self._db.commit()
        return user

    def reset_two_factor(self, user_id: str, *, by: str | None, client: ClientInfo) -> User:
        """Every factor, backup code and trusted device removed; the user's sessions end too, so
        nobody stays signed in on the strength of the factors that were reset. Not one's own: that
        goes through the account's own security settings, which ask for the password again."""
        user = self.get(user_id)
        if user.id == by:
            raise Conflict("Remove your own second factors from your account's security settings")
        self._two_factor.reset(user, by=by, client=client)
        self._sessions.revoke_all(user.id, reason="2fa_reset", client=client, details={"by": by})
        return user

    def revoke_sessions(self, user_id: str, *, by: str | None, client: ClientInfo) -> int:
        return self._sessions.revoke_all(self.get(user_id).id, reason="revoked_by_admin", client=client, details={"by": by})

    def set_admin(self, user_id: str, is_admin: bool, *, by: str | None, client: ClientInfo) -> User:
        user = self.get(user_id)
        if user.is_admin != is_admin:
            user.is_admin = is_admin
            user.updated_at = self._clock()
            self._audit.record("role_changed", user_id=user.id, client=client, details={"isAdmin": is_admin, "by": by})
        self._db.commit()
        return user
