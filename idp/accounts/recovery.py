"""Email verification and password reset: single-use link tokens stored as digests."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING
from urllib.parse import urlencode

from sqlalchemy import select, update
from sqlalchemy.orm import Session as DbSession

from idp.accounts.models import AccountToken, User
from idp.accounts.service import normalise_email
from idp.accounts.sessions import SessionService
from idp.accounts.throttle import AccountThrottle
from idp.apikeys.service import ApiKeyService
from idp.audit.alerts import SecurityAlerts
from idp.audit.service import AuditLog, ClientInfo
from idp.clock import as_utc
from idp.errors import DeliveryUnavailable, InvalidToken, ValidationFailed
from idp.mfa.devices import TrustedDevices
from idp.security.digests import digest, random_token
from idp.security.password_policy import password_problems
from idp.security.passwords import PasswordHashing
from idp.webhooks.service import WebhookService

log = logging.getLogger(__name__)

VERIFY_TTL = timedelta(hours=1)
RESET_TTL = timedelta(hours=1)

if TYPE_CHECKING:
    from idp.delivery import Delivery


class AccountTokens:
    def __init__(self, db: DbSession, clock: Callable[[], datetime]) -> None:
        self._db = db
        self._clock = clock

    def issue(self, user: User, purpose: str, ttl: timedelta) -> str:
        """A new token; earlier unused ones of the same purpose stop working."""
        now = self._clock()
        self._db.execute(
            update(AccountToken)
            .where(AccountToken.user_id == user.id, AccountToken.purpose == purpose, AccountToken.used_at.is_(None))
            .values(used_at=now)
        )
        token = random_token()
        self._db.add(
            AccountToken(
                user_id=user.id, purpose=purpose, token_hash=digest(token), email=user.email, created_at=now, expires_at=now + ttl
            )
        )
        return token

    def peek(self, token: str, purpose: str) -> AccountToken | None:
        """The token's row if it is live, left unused (a page that asks before the link is spent)."""
        return self._db.scalar(
            select(AccountToken).where(
                AccountToken.token_hash == digest(token),
                AccountToken.purpose == purpose,
                AccountToken.used_at.is_(None),
                AccountToken.expires_at > self._clock(),
            )
        )

    def consume(self, token: str, purpose: str) -> AccountToken | None:
        """The token's row if it is live, marked used in the same statement (single use)."""
        now = self._clock()
        row = self._db.execute(
            update(AccountToken)
            .where(
                AccountToken.token_hash == digest(token),
                AccountToken.purpose == purpose,
                AccountToken.used_at.is_(None),
                AccountToken.expires_at > now,
            )
            .values(used_at=now)
            .returning(AccountToken.user_id, AccountToken.email, AccountToken.created_at)
        ).one_or_none()
        return AccountToken(user_id=row.user_id, email=row.email, created_at=row.created_at) if row else None


def _may_reset(user: User, link: AccountToken) -> bool:
    """A reset link sets a password only for an enabled account whose password has not changed
    since the link was sent: the owner who remembered it and changed it, or an administrator who
    disabled the account, would otherwise leave a forwarded or stolen link able to take it over."""
    changed = user.password_changed_at
    return user.is_active and (changed is None or as_utc(link.created_at) >= as_utc(changed))


class Recovery:
    """Email verification and password reset for the API and the pages."""

    def __init__(
        self,
        db: DbSession,
        tokens: AccountTokens,
        hashing: PasswordHashing,
        sessions: SessionService,
        devices: TrustedDevices,
        api_keys: ApiKeyService,
        webhooks: WebhookService,
        audit: AuditLog,
        alerts: SecurityAlerts,
        delivery: Delivery,
        send_throttle: AccountThrottle,
        reset_throttle: AccountThrottle,
        *,
        frontend_url: str,
        clock: Callable[[], datetime],
    ) -> None:
        self._db = db
        self._tokens = tokens
        self._hashing = hashing
        self._sessions = sessions
        self._devices = devices
        self._api_keys = api_keys
        self._webhooks = webhooks
        self._audit = audit
        self._alerts = alerts
        self._delivery = delivery
        self._send_throttle = send_throttle
        # Reset links are counted apart from the codes and verification emails a user asks for:
        # anyone may ask for a reset of any address, and were the two one counter, three such
        # requests an hour would stop the codes of that user's sign-ins (an SMS or email second factor).
        self._reset_throttle = reset_throttle
        self._frontend_url = frontend_url
        self._clock = clock

    def _link(self, path: str, token: str) -> str:
        return f"{self._frontend_url}/{path}?{urlencode({'token': token})}"

    def send_verification(self, user: User, *, client: ClientInfo) -> None:
        if user.email_verified:
            return
        self._send_throttle.take(user.id, "Too many emails sent; try again later")
        token = self._tokens.issue(user, "verify_email", VERIFY_TTL)
        minutes = int(VERIFY_TTL.total_seconds() // 60)
        self._delivery.email(
            user.email, "verify-email", username=user.username, link=self._link("verify-email", token), minutes=minutes
        )
        self._audit.record("email_verification_sent", user_id=user.id, client=client)
        self._db.commit()

    def _holder(self, row: AccountToken | None, purpose: str) -> User | None:
        """The user a live link token was sent to, if the address is still theirs (and, for a
        reset, the account may still be reset by it)."""
        user = self._db.get(User, row.user_id) if row else None
        if row is None or user is None or user.email != row.email or purpose == "password_reset" and not _may_reset(user, row):
            return None
        return user

    def _user_of(self, token: str, purpose: str, invalid: str) -> User:
        """The user a live link token was sent to (consumed now), if the address is still theirs."""
        user = self._holder(self._tokens.consume(token, purpose), purpose)
        if user is None:
            self._db.rollback()
            raise InvalidToken(invalid)
        return user

    def reset_link_holder(self, token: str) -> User | None:
        """The account a reset link would set a new password for, without spending the link: the
        page says at once that a used or expired link does not work, before a password is chosen."""
        return self._holder(self._tokens.peek(token, "password_reset"), "password_reset")

    def verify_email(self, token: str, *, client: ClientInfo) -> User:
        user = self._user_of(token, "verify_email", "This verification link is invalid or has expired")
        user.email_verified = True
        user.updated_at = self._clock()
        self._audit.record("email_verified", user_id=user.id, client=client)
        self._db.commit()
        return user

    def request_reset(self, email: str, *, client: ClientInfo) -> None:
        """Send a reset link if the address has an account. The answer is the same either way."""
        user = self._db.scalar(select(User).where(User.email == normalise_email(email)))
        if user is None or not user.is_active or not self._reset_throttle.acquire(user.id):
            return
        token = self._tokens.issue(user, "password_reset", RESET_TTL)
        minutes = int(RESET_TTL.total_seconds() // 60)
        try:
            self._delivery.email(
                user.email, "password-reset", username=user.username, link=self._link("reset-password", token), minutes=minutes
            )
        except DeliveryUnavailable:
            # the answer must not differ from an unknown address's; the operator sees the log
            log.warning("password reset for user %s not emailed: email delivery unavailable", user.id)
            self._db.rollback()
            return
        self._audit.record("password_reset_requested", user_id=user.id, client=client)
        self._db.commit()

    def reset_password(self, token: str, new_password: str, *, client: ClientInfo) -> User:
        """Set a new password from a reset link. Every session, trusted device and API key is
        revoked (a key acts as its owner without the password: one made by whoever held the
        account, or by someone who registered the address before its owner, would outlive the
        reset), and every webhook paused (one such person's would go on receiving the owner's
        sign-ins, with address and browser); an enabled second factor stays required at the next login."""
        user = self._user_of(token, "password_reset", "This reset link is invalid or has expired")
        problems = password_problems(new_password, email=user.email, username=user.username)
        if problems:
            self._db.rollback()  # the link stays usable for a better password
            raise ValidationFailed(errors=[f"newPassword: {p}" for p in problems])
        now = self._clock()
        user.password_hash = self._hashing.hash(new_password)
        user.password_changed_at = now
        user.updated_at = now
        self._devices.remove_all(user.id)
        self._api_keys.revoke_all(user.id, client=client, details={"reason": "password_reset"})
        self._webhooks.pause_all(user.id, client=client, details={"reason": "password_reset"})
        self._alerts.notify(
            "password_reset_completed", user, client=client, sentence="Your password was reset; every session was signed out."
        )
        self._sessions.revoke_all(user.id, reason="password_reset", client=client)
        return user
