"""The login challenge: after a correct password, one correct second factor within 5 minutes and 5 tries."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session as DbSession

from idp.accounts.models import User
from idp.accounts.throttle import AccountThrottle
from idp.audit.service import AuditLog, ClientInfo
from idp.clock import as_utc
from idp.errors import DeliveryUnavailable, DomainError, InvalidCode, InvalidTempToken, RateLimited, ValidationFailed
from idp.mfa import totp
from idp.mfa.backup_codes import BackupCodes
from idp.mfa.codes import OneTimeCodes
from idp.mfa.methods import TwoFactorService
from idp.mfa.models import LoginChallenge, TwoFactorMethod
from idp.models import affected
from idp.security.digests import digest, random_token
from idp.security.secretbox import SecretBox

log = logging.getLogger(__name__)

CHALLENGE_TTL = timedelta(minutes=5)
MAX_WRONG = 5
RESEND_COOLDOWN = timedelta(seconds=30)
AMR = {
    "totp": ["pwd", "otp", "mfa"],
    "sms": ["pwd", "sms", "mfa"],
    "email": ["pwd", "otp", "mfa"],
    "backup_code": ["pwd", "otp", "mfa"],
}


@dataclass(frozen=True)
class ChallengeStarted:
    temp_token: str
    methods: list[str]
    expires_in: int
    code_sent_by: str | None = None  # "sms" or "email": the channel of the code sent by itself, if one was


@dataclass(frozen=True)
class SecondFactorPassed:
    user: User
    method: str

    @property
    def amr(self) -> list[str]:
        return AMR[self.method]


class LoginChallenges:
    def __init__(
        self,
        db: DbSession,
        box: SecretBox,
        two_factor: TwoFactorService,
        codes: OneTimeCodes,
        backup_codes: BackupCodes,
        audit: AuditLog,
        throttle: AccountThrottle,
        first_codes: AccountThrottle,
        clock: Callable[[], datetime],
    ) -> None:
        self._db = db
        self._box = box
        self._two_factor = two_factor
        self._codes = codes
        self._backup = backup_codes
        self._audit = audit
        self._throttle = throttle
        self._first_codes = first_codes
        self._clock = clock

    def start(self, user: User, *, client: ClientInfo, send_first_code: bool = True) -> ChallengeStarted:
        """Open a challenge. A user with no authenticator app gets a code by SMS or email at once,
        unless `send_first_code` is False (the user then asks for one)."""
        token = random_token()
        now = self._clock()
        challenge = LoginChallenge(user_id=user.id, token_hash=digest(token), created_at=now, expires_at=now + CHALLENGE_TTL)
        self._db.add(challenge)
        self._db.flush()
        methods = self._two_factor.methods(user.id)
        kinds = list(dict.fromkeys(m.type for m in methods))
        if self._backup.count(user.id):
            kinds.append("backup_code")
        sent_by = None
        if "totp" not in kinds and send_first_code:
            sendable = [m for m in methods if m.type in ("sms", "email")]
            if sendable and self._may_send_first_code(user.id):
                try:
                    self._send(user, challenge, sendable[0])
                    sent_by = sendable[0].type
                except DeliveryUnavailable:
                    # answer as usual: a 503 here would confirm the password; backup codes still work
                    log.warning("login code for user %s not sent: %s delivery unavailable", user.id, sendable[0].type)
        self._db.commit()
        return ChallengeStarted(token, kinds, int(CHALLENGE_TTL.total_seconds()), sent_by)

    def _may_send_first_code(self, user_id: str) -> bool:
        """The first code of a sign-in goes out by itself. It is not one of the code sends a user
        asks for (API.md caps those at 3 an hour, and a user over that cap gets none), but it has an
        hourly allowance of its own (RATE_LIMIT_LOGIN_CODE): each sign-in, and each visit to the
        step-up page, which any site can send a signed-in browser to, would otherwise send an SMS.
        Past either, the user asks for a code (counted) or uses a backup code."""
        return not self._two_factor.code_sends_blocked(user_id) and self._first_codes.acquire(user_id)

    def _send(self, user: User, challenge: LoginChallenge, method: TwoFactorMethod) -> None:
        code = self._codes.issue(user_id=user.id, purpose="login", channel=method.type, challenge_id=challenge.id)
        self._two_factor.deliver_code(user, method, code, purpose="sign in")

    def _live(self, temp_token: str) -> tuple[LoginChallenge, User]:
        challenge = self._db.scalar(select(LoginChallenge).where(LoginChallenge.token_hash == digest(temp_token)))
        if (
            challenge is None
            or challenge.finished_at is not None
            or as_utc(challenge.expires_at) <= self._clock()
            or challenge.failed_attempts >= MAX_WRONG
        ):
            raise InvalidTempToken()
        user = self._db.get(User, challenge.user_id)
        if user is None or not user.is_active or _opened_before_password_change(challenge, user):
            raise InvalidTempToken()
        return challenge, user

    def still_open(self, temp_token: str, user_id: str) -> bool:
        """Whether this challenge of this user can still be answered."""
        try:
            _, user = self._live(temp_token)
        except InvalidTempToken:
            return False
        return user.id == user_id

    def _guard(self, user: User) -> None:
        """Count the attempt before its check, atomically (a right code forgets it again, with the
        account's earlier failures): counted after a wrong code, concurrent guesses all passed a
        test made before any of them was counted."""
        self._throttle.take(user.id, "Too many verification attempts; try again later")

    def verify(self, temp_token: str, code: str, *, client: ClientInfo) -> SecondFactorPassed:
        """Accept a code from any enabled method: TOTP first, then the SMS or email code sent for
        this challenge."""
        challenge, user = self._live(temp_token)
        self._guard(user)
        method = self._check_totp(user, code, client) or self._check_sent_code(user, challenge, code)
        if method is None:
            raise self._wrong(challenge, user, client, "code")
        self._throttle.forget(user.id)
        return self._finish(challenge, user, method, client)

    def verify_backup_code(self, temp_token: str, code: str, *, client: ClientInfo) -> SecondFactorPassed:
        challenge, user = self._live(temp_token)
        self._guard(user)
        if not self._backup.use(user.id, code):
            raise self._wrong(challenge, user, client, "backup_code")
        self._throttle.forget(user.id)
        self._audit.record("backup_code_used", user_id=user.id, client=client, details={"remaining": self._backup.count(user.id)})
        return self._finish(challenge, user, "backup_code", client)

    def _check_totp(self, user: User, code: str, client: ClientInfo) -> str | None:
        method = self._db.scalar(
            select(TwoFactorMethod).where(
                TwoFactorMethod.user_id == user.id, TwoFactorMethod.type == "totp", TwoFactorMethod.verified_at.is_not(None)
            )
        )
        if method is None or method.secret is None:
            return None
        secret = self._box.decrypt(method.secret)
        now = self._clock()
        step = totp.verify(secret, code, now=now, last_step=method.last_used_step)
        if step is None:
            if totp.verify(secret, code, now=now, last_step=0) is not None:
                self._audit.record(
                    "2fa_failed", user_id=user.id, client=client, success=False, details={"method": "totp", "reason": "replay"}
                )
            return None
        # atomic: of two concurrent uses of one code, only one moves the step forward
        moved = affected(
            self._db.execute(
                update(TwoFactorMethod)
                .where(TwoFactorMethod.id == method.id, TwoFactorMethod.last_used_step < step)
                .values(last_used_step=step)
                .execution_options(synchronize_session=False)
            )
        )
        return "totp" if moved else None

    def _check_sent_code(self, user: User, challenge: LoginChallenge, code: str) -> str | None:
        row = self._codes.check(code, user_id=user.id, purpose="login", challenge_id=challenge.id)
        return row.channel if row else None

    def _wrong(self, challenge: LoginChallenge, user: User, client: ClientInfo, kind: str) -> DomainError:
        """Count a wrong code (the fifth kills the challenge) and return the error to raise."""
        # counted by the database (failed_attempts + 1), not from the value read: concurrent wrong
        # codes must not overwrite each other's count
        challenge.failed_attempts = LoginChallenge.failed_attempts + 1
        self._db.flush()
        left = MAX_WRONG - challenge.failed_attempts  # read back after the UPDATE
        self._audit.record(
            "2fa_failed", user_id=user.id, client=client, success=False, details={"method": kind, "attemptsLeft": max(left, 0)}
        )
        self._db.commit()
        if left <= 0:
            return InvalidTempToken("Too many wrong codes; sign in again")
        return InvalidCode()

    def _finish(self, challenge: LoginChallenge, user: User, method: str, client: ClientInfo) -> SecondFactorPassed:
        finished = affected(
            self._db.execute(
                update(LoginChallenge)
                .where(LoginChallenge.id == challenge.id, LoginChallenge.finished_at.is_(None))
                .values(finished_at=self._clock())
                .execution_options(synchronize_session=False)
            )
        )
        if not finished:
            self._db.rollback()
            raise InvalidTempToken()
        self._audit.record("2fa_verified", user_id=user.id, client=client, details={"method": method})
        return SecondFactorPassed(user, method)

    def resend(self, temp_token: str, kind: str, *, client: ClientInfo) -> None:
        """Send a new SMS or email code for this challenge (30 s apart on each channel, and the
        hourly cap per user). The wait is per channel: a user whose phone is out of reach asks for
        the email code at once ("use another way"), not 30 seconds after the text message."""
        challenge, user = self._live(temp_token)
        method = next((m for m in self._two_factor.methods(user.id) if m.type == kind), None)
        if method is None:
            raise ValidationFailed(errors=[f"method: {kind} is not enabled for this account"])
        last = self._codes.last_sent_at(user_id=user.id, purpose="login", challenge_id=challenge.id, channel=kind)
        if last is not None and (wait := (last + RESEND_COOLDOWN - self._clock()).total_seconds()) > 0:
            raise RateLimited("Please wait before asking for another code", retry_after=int(wait) + 1, limit=1)
        self._two_factor.throttle_code_send(user.id)
        self._send(user, challenge, method)
        self._db.commit()


def _opened_before_password_change(challenge: LoginChallenge, user: User) -> bool:
    """A challenge is the rest of a sign-in begun with a password: once that password is replaced
    (reset or changed), the sign-in is over, like every session (SECURITY.md 5). Whoever had the
    old password and a second factor (a phished code) would otherwise still get a session."""
    return as_utc(challenge.created_at) < as_utc(user.password_changed_at)
