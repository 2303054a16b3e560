"""Accounts: registration, password authentication and password changes."""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, cast

from email_validator import EmailNotValidError, validate_email
from sqlalchemy import ColumnElement, Engine, bindparam, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session as DbSession
from sqlalchemy.orm import make_transient_to_detached

from idp.accounts.models import User
from idp.accounts.sessions import SessionService
from idp.accounts.throttle import LoginThrottle
from idp.audit.alerts import SecurityAlerts
from idp.audit.service import AuditLog, ClientInfo
from idp.errors import AccountDisabled, Conflict, InvalidCredentials, ValidationFailed, WrongCurrentPassword
from idp.security.password_policy import SAME_AS_CURRENT, password_problems
from idp.security.passwords import PasswordHashing
from idp.statements import HotStatement


def normalise_email(email: str) -> str:
    """An address as it is stored: trimmed, in lower case, and normalised as registration's
    validation does (Unicode NFC, internationalised domain labels in Unicode), so that signing in
    or asking for a reset with what was typed at registration finds the account. Lower case comes
    last, as at registration: lowering first would make a capital sigma before a hyphen or a digit
    a final sigma (ς) where validation's IDNA mapping makes it σ, and name another domain."""
    address = email.strip()
    if address.isascii() and "xn--" not in address.lower():
        return address.lower()  # nearly every address: nothing more to normalise, no validation on a sign-in
    try:
        return validate_email(address, check_deliverability=False).normalized.lower()
    except EmailNotValidError:
        return unicodedata.normalize("NFC", address.lower())  # registration would have refused it: found by nothing


# Built once: a statement made per call is cache-keyed again on every sign-in (its literal values walked).
_EMAIL_IS = User.email == bindparam("identifier")
_USERNAME_IS = func.lower(User.username) == bindparam("identifier")
_BY_EMAIL = select(User).where(_EMAIL_IS)
_BY_USERNAME = select(User).where(_USERNAME_IS)


def identifier_as_stored(email_or_username: str) -> tuple[str, bool]:
    """The identifier as stored (a username trimmed and in lower case, an address as
    `normalise_email` has it) and whether it is an email address."""
    if "@" in email_or_username:
        return normalise_email(email_or_username), True
    return email_or_username.strip().lower(), False


def user_by_identifier(db: DbSession, email_or_username: str) -> User | None:
    """The user an email address or a username names, as typed (normalised here)."""
    identifier, is_email = identifier_as_stored(email_or_username)
    return db.scalar(_BY_EMAIL if is_email else _BY_USERNAME, {"identifier": identifier})


class AccountStatements:
    """A sign-in's account lookup on the autocommit engine (`idp.statements`): the user's row by
    email or by username, one round trip with no BEGIN, no COMMIT and no ORM query. `also` are
    more columns of that user read in the same round trip (its webhooks), handed to `AccountService`'s
    `also_read` as the row that holds them."""

    def __init__(self, autocommit: Engine, also: Sequence[ColumnElement[Any]] = ()) -> None:
        columns = [*User.__table__.c, *also]
        self.extra = frozenset(column.key for column in also)
        self.by_email = HotStatement(autocommit, select(*columns).where(_EMAIL_IS))
        self.by_username = HotStatement(autocommit, select(*columns).where(_USERNAME_IS))


class AccountService:
    """Everything about a user's credentials, shared by the JSON API and the hosted pages."""

    def __init__(
        self,
        db: DbSession,
        hashing: PasswordHashing,
        audit: AuditLog,
        sessions: SessionService,
        throttle: LoginThrottle,
        alerts: SecurityAlerts,
        clock: Callable[[], datetime],
        statements: AccountStatements | None = None,
        also_read: Callable[[str, Any], None] | None = None,
    ) -> None:
        self._db = db
        self._also_read = also_read
        self._statements = statements if statements is not None and statements.by_email.direct else None
        self._hashing = hashing
        self._audit = audit
        self._sessions = sessions
        self._throttle = throttle
        self._alerts = alerts
        self._clock = clock

    def get(self, user_id: str) -> User | None:
        return self._db.get(User, user_id)

    def find(self, email_or_username: str) -> User | None:
        return user_by_identifier(self._db, email_or_username)

    def _find_signing_in(self, email_or_username: str) -> User | None:
        """`find` for a sign-in. On PostgreSQL the row is read by a hot statement, without the
        query's cost or a transaction of its own, and the user is returned detached, as if loaded
        by a session since closed: every column is there, and a sign-in that changes it (a rehashed
        password) attaches it first (`_attached`). A copy the unit of work already holds is
        returned instead, with whatever it changed."""
        if self._statements is None:
            return self.find(email_or_username)
        identifier, is_email = identifier_as_stored(email_or_username)
        lookup = self._statements.by_email if is_email else self._statements.by_username
        row = lookup.first({"identifier": identifier})
        if row is None:
            return None
        if self._also_read is not None and self._statements.extra:
            self._also_read(row.id, row)
        held = self._db.identity_map.get(self._db.identity_key(User, row.id))
        if held is not None:  # the unit of work's own copy, with whatever it changed, wins
            return cast(User, held)
        extra = self._statements.extra
        user = User(**{name: value for name, value in row._asdict().items() if name not in extra})
        make_transient_to_detached(user)  # as if loaded: persistent once attached, nothing to write
        return user

    def _attached(self, user: User) -> User:
        """`user` in the unit of work, so that its changes are written (merge would copy it into
        another instance)."""
        if user not in self._db:
            self._db.add(user)
        return user

    def register(self, *, email: str, username: str, password: str, client: ClientInfo) -> User:
        """Create an account. Raises ValidationFailed (password policy) or Conflict (taken)."""
        email = normalise_email(email)
        problems = password_problems(password, email=email, username=username)
        if problems:
            raise ValidationFailed(errors=[f"password: {p}" for p in problems])
        # Hash before looking for a clash, so a taken address costs the same time as a new one.
        password_hash = self._hashing.hash(password)
        taken = self._db.scalar(
            select(func.count()).select_from(User).where(or_(User.email == email, func.lower(User.username) == username.lower()))
        )
        if taken:
            raise Conflict("An account with this email or username already exists")
        now = self._clock()
        user = User(
            email=email, username=username, password_hash=password_hash, created_at=now, updated_at=now, password_changed_at=now
        )
        self._db.add(user)
        try:
            self._db.flush()
        except IntegrityError:  # lost a race with an identical registration
            self._db.rollback()
            raise Conflict("An account with this email or username already exists") from None
        self._audit.record("register", user_id=user.id, client=client)
        self._db.commit()
        return user

    def authenticate(self, email_or_username: str, password: str, *, client: ClientInfo) -> User:
        """Check a password. Unknown user, wrong password and a throttled account all raise the
        same InvalidCredentials after the same amount of work; a disabled account is told only
        after its correct password. A client network past its failed sign-ins gets RateLimited."""
        self._throttle.admit(client.ip_address)
        user = self._find_signing_in(email_or_username)
        if user is None:
            right = self._hashing.verify_unknown_user(password)
        else:
            right = self._hashing.verify(user.password_hash, password)
        # Settled after the check, atomically with the decision (SECURITY.md 4): a test made before
        # the check and a count after it let concurrent guesses all pass the test.
        # an unknown account by its identifier as a lookup takes it: every spelling that would find
        # the same account (case, Unicode form, an internationalised domain) shares one budget
        throttle_key = user.id if user else "unknown:" + identifier_as_stored(email_or_username)[0]
        if not self._throttle.settle(client.ip_address, throttle_key, right=right):
            self._fail(user, client, "throttled")
        if user is None:
            self._fail(None, client, "unknown_user")
        assert user is not None
        if not right:
            self._fail(user, client, "wrong_password")
        if not user.is_active:
            self._fail(user, client, "disabled", error=AccountDisabled())
        if self._hashing.needs_rehash(user.password_hash):
            self._attached(user).password_hash = self._hashing.hash(password)
            self._db.commit()
        return user

    def _fail(self, user: User | None, client: ClientInfo, reason: str, *, error: Exception | None = None) -> None:
        """Record a failed sign-in (the throttle has counted it) and raise."""
        self._audit.record(
            "login_failed", user_id=user.id if user else None, client=client, success=False, details={"reason": reason}
        )
        self._db.commit()
        raise error or InvalidCredentials()

    def change_password(self, user: User, *, current_password: str, new_password: str, client: ClientInfo) -> None:
        """Replace the password after checking the current one; revokes every session. A wrong
        current password counts against the account and the client network like a failed sign-in
        (whoever holds a recent token must not get unlimited guesses), and a throttled account
        answers like a wrong one."""
        self._throttle.admit(client.ip_address)
        right = self._hashing.verify(user.password_hash, current_password)
        answered = self._throttle.settle(client.ip_address, user.id, right=right)
        if not answered or not right:
            reason = "wrong_password" if answered else "throttled"
            self._audit.record("password_changed", user_id=user.id, client=client, success=False, details={"reason": reason})
            self._db.commit()
            raise WrongCurrentPassword()
        problems = password_problems(new_password, email=user.email, username=user.username)
        if self._hashing.verify(user.password_hash, new_password):
            problems.append(SAME_AS_CURRENT)
        if problems:
            raise ValidationFailed(errors=[f"newPassword: {p}" for p in problems])
        now = self._clock()
        user.password_hash = self._hashing.hash(new_password)
        user.password_changed_at = now
        user.updated_at = now
        self._alerts.notify(
            "password_changed", user, client=client, sentence="Your password was changed; every session was signed out."
        )
        self._sessions.revoke_all(user.id, reason="password_changed", client=client)
