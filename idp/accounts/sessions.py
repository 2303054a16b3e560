"""Sessions: refresh-token families with rotation and reuse detection, and bearer-token checks."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, bindparam, insert, or_, select, update
from sqlalchemy.orm import Session as DbSession
from sqlalchemy.orm import scoped_session

from idp.accounts.models import Session, User
from idp.audit.service import AuditLog, ClientInfo, with_event
from idp.clock import as_utc
from idp.delivery.after_commit import pending
from idp.errors import InvalidRefreshToken, NotFound, Unauthorized
from idp.models import affected, new_id
from idp.security.digests import b64url, derived_key, digest
from idp.security.tokens import AccessTokenClaims, AccessTokens, InvalidAccessToken
from idp.statements import HotStatement

API_CLIENT_ID = "idp-api"
BROWSER_CLIENT_ID = "idp-browser"  # the provider's own sign-in session in a browser (SSO)

_sessions = Session.__table__
# A new session's row (explicit parameters, so a sign-in's audit event can ride along: AuditLog.record_with)
_OPENED_COLUMNS = (
    "id", "user_id", "client_id", "token_hash", "auth_time", "amr", "scope", "acr", "browser_session_id",
    "ip_address", "user_agent", "created_at", "last_used_at", "expires_at",
)
# (parameters named apart from the columns: an execution's parameter named like a column of the
# CTE's table would be taken as that table's value too)
_INSERT_SESSION = insert(_sessions).values({name: bindparam(f"opened_{name}") for name in _OPENED_COLUMNS})
_users = User.__table__
# What the claims of an ID token or of userinfo are made of (idp.oidc.claims.user_claims)
CLAIM_COLUMNS = (_users.c.id, _users.c.username, _users.c.email, _users.c.email_verified, _users.c.updated_at)


def _of_session_user(column: Any) -> Any:
    return select(column).where(_users.c.id == _sessions.c.user_id).correlate(_sessions).scalar_subquery().label(column.name)


# Refresh-token rotation as one Core statement: matches only the current token of a live session.
ROTATE = (
    update(_sessions)
    .where(
        _sessions.c.id == bindparam("session_id"),
        _sessions.c.token_hash == bindparam("old_hash"),
        _sessions.c.client_id == bindparam("for_client"),
        _sessions.c.revoked_at.is_(None),
        _sessions.c.expires_at > bindparam("now"),
    )
    .values(token_hash=bindparam("new_hash"), last_used_at=bindparam("now"))
    .returning(
        _sessions.c.user_id,
        _sessions.c.auth_time,
        _sessions.c.amr,
        _sessions.c.scope,
        _sessions.c.acr,
        _sessions.c.browser_session_id,
        _sessions.c.expires_at,
    )
)
# The same, also returning the user's claim columns (a relying party's refresh answers with an ID
# token): still one round trip (scalar subqueries by primary key; SQLite's RETURNING cannot name
# the table of an UPDATE … FROM).
ROTATE_WITH_CLAIMS = ROTATE.returning(*(_of_session_user(c) for c in CLAIM_COLUMNS[1:]))
# A bearer token's session and user, for userinfo: live session, active user, the claim columns.
LIVE_BEARER = (
    select(*CLAIM_COLUMNS)
    .select_from(_sessions.join(_users, _users.c.id == _sessions.c.user_id))
    .where(
        _sessions.c.id == bindparam("session_id"),
        _users.c.id == bindparam("user_id"),
        _users.c.is_active.is_(True),
        _sessions.c.revoked_at.is_(None),
        _sessions.c.expires_at > bindparam("now"),
    )
)
# An access token's session is live: not revoked, not past its absolute expiry (introspection)
LIVE_SESSION = select(_sessions.c.id).where(
    _sessions.c.id == bindparam("session_id"), _sessions.c.revoked_at.is_(None), _sessions.c.expires_at > bindparam("now")
)


@dataclass(frozen=True, slots=True)
class ClaimColumns:
    """The user columns claims are made of (`idp.oidc.claims.user_claims`), read with a hot-path
    statement: a plain object, not an ORM instance (instrumenting one cost more than the query)."""

    id: str
    username: str
    email: str
    email_verified: bool
    updated_at: datetime


def claims_user(row: Any) -> ClaimColumns:
    return ClaimColumns(row.id, row.username, row.email, bool(row.email_verified), row.updated_at)


class SessionStatements:
    """The statements of the hot paths, compiled once per app for its autocommit engine: each is
    one round trip with no BEGIN, no ROLLBACK and no ORM identity map (`idp.statements`). A
    rotation does not wait for PostgreSQL's write-ahead-log flush unless `rotation_waits_for_flush`
    (REFRESH_SYNCHRONOUS_COMMIT); what that can cost is in the README ("Commit latency")."""

    def __init__(self, autocommit: Engine, *, rotation_waits_for_flush: bool = False) -> None:
        self.rotate = HotStatement(autocommit, ROTATE, wait_for_flush=rotation_waits_for_flush)
        self.rotate_with_claims = HotStatement(autocommit, ROTATE_WITH_CLAIMS, wait_for_flush=rotation_waits_for_flush)
        self.live_bearer = HotStatement(autocommit, LIVE_BEARER)
        self.live_session = HotStatement(autocommit, LIVE_SESSION)
        # a sign-in's session with its `login_success` event (AuditLog.record_with)
        self.open_with_event = HotStatement(autocommit, with_event(_INSERT_SESSION))

    def session_live(self, session_id: str, now: datetime) -> bool:
        """One primary-key read (introspection): an access token refreshed just before its
        session's absolute expiry outlives it, and is then inactive, as userinfo refuses it."""
        return self.live_session.first({"session_id": session_id, "now": now}) is not None


@dataclass(frozen=True)
class SessionGrant:
    """What a session was opened with: carried by its access tokens (and ID tokens)."""

    user_id: str
    client_id: str
    amr: list[str]
    auth_time: datetime
    scope: str = ""
    browser_session_id: str | None = None
    acr: str | None = None  # a relying party's: the `acr` of its ID tokens (idp.oidc.claims.acr_for)


@dataclass(frozen=True)
class IssuedTokens:
    access_token: str
    refresh_token: str
    session_id: str
    expires_in: int
    refresh_expires_at: datetime
    grant: SessionGrant
    user: ClaimColumns | None = None  # with `refresh(with_claims=True)`: the claim columns (`claims_user`)


@dataclass(frozen=True)
class BrowserSession:
    """The provider's sign-in in one browser: what `prompt`, `max_age` and `acr_values` are checked against."""

    id: str
    user: User
    auth_time: datetime
    amr: list[str]

    @property
    def multi_factor(self) -> bool:
        return "mfa" in self.amr


@dataclass(frozen=True)
class BearerIdentity:
    user: User
    claims: AccessTokenClaims


@dataclass(frozen=True)
class ClaimsIdentity:
    """A bearer token's claims and its user's claim columns (userinfo)."""

    user: ClaimColumns
    claims: AccessTokenClaims


# `<session id>.<secret>`: a UUID, then base64url (64 characters in tokens issued now)
SESSION_TOKEN = re.compile(r"([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})\.([A-Za-z0-9_-]{40,})")


def split_session_token(token: str) -> tuple[str, str] | None:
    """A refresh token, like a browser session's cookie, is `<session id>.<secret>`; only its digest
    is stored. None for anything else (a JWT, garbage, a cookie whose quoted value decoded to a
    control character): not worth a query, and no text the database refuses reaches it."""
    matched = SESSION_TOKEN.fullmatch(token)
    return (matched[1], matched[2]) if matched else None


class SessionSecrets:
    """The secrets of refresh tokens and browser-session cookies: 256 random bits and a 128-bit tag,
    HMAC-SHA256 of the session id and those bits under a key derived from SECRET_KEY, so that a
    token this service issued can be told from one made up, without storing every token ever issued.

    Presenting a token that was issued but is no longer its session's current one is a replay, which
    ends the session (SECURITY.md 14); a made-up token is only refused. Were any token naming a live
    session taken for a replay, knowing a session's id (the `sid` claim of each of its access
    tokens, the sessions list) would be enough to end it."""

    RANDOM_BYTES = 32
    TAG_BYTES = 16

    def __init__(self, secret_key: str) -> None:
        self._key = derived_key(secret_key, "session-token-tags")

    def new_token(self, session_id: str) -> str:
        random_part = secrets.token_bytes(self.RANDOM_BYTES)
        return f"{session_id}.{b64url(random_part + self._tag(session_id, random_part))}"

    def issued(self, token: str) -> bool:
        """Whether this service issued `token` (for some session, now current or not)."""
        parts = split_session_token(token)
        if parts is None:
            return False
        session_id, secret = parts
        try:
            raw = base64.b64decode(secret + "=" * (-len(secret) % 4), altchars=b"-_", validate=True)
        except (binascii.Error, ValueError):
            return False
        if len(raw) != self.RANDOM_BYTES + self.TAG_BYTES:
            return False
        random_part, tag = raw[: self.RANDOM_BYTES], raw[self.RANDOM_BYTES :]
        return hmac.compare_digest(tag, self._tag(session_id, random_part))

    def _tag(self, session_id: str, random_part: bytes) -> bytes:
        return hmac.new(self._key, session_id.encode() + b"." + random_part, hashlib.sha256).digest()[: self.TAG_BYTES]


class SessionService:
    """Start, rotate, revoke and check sessions."""

    def __init__(
        self,
        db: DbSession,
        tokens: AccessTokens,
        audit: AuditLog,
        *,
        refresh_ttl: int,
        clock: Callable[[], datetime],
        statements: SessionStatements,
        session_secrets: SessionSecrets,
    ) -> None:
        self._db = db
        self._secrets = session_secrets
        self._tokens = tokens
        self._audit = audit
        self._refresh_ttl = timedelta(seconds=refresh_ttl)
        self._clock = clock
        self._statements = statements

    def start(
        self,
        user: User,
        *,
        client: ClientInfo,
        amr: list[str],
        client_id: str = API_CLIENT_ID,
        auth_time: datetime | None = None,
        scope: str = "",
        browser_session_id: str | None = None,
        signed_in_by: str | None = None,
        acr: str | None = None,
    ) -> IssuedTokens:
        """Open a session after a successful authentication and issue its first tokens.
        Adds to the unit of work and commits it. `signed_in_by` (a sign-in's method): the session
        is a login's, whose `login_success` event is written with it."""
        now = self._clock()
        grant = SessionGrant(user.id, client_id, amr, auth_time or now, scope, browser_session_id, acr)
        session_id, refresh_token = self._open(grant, client, now, now + self._refresh_ttl, signed_in_by)
        return self._issue(session_id, grant, refresh_token, now + self._refresh_ttl)

    def _open(
        self, grant: SessionGrant, client: ClientInfo, now: datetime, expires_at: datetime, signed_in_by: str | None
    ) -> tuple[str, str]:
        session_id = new_id()
        token = self._secrets.new_token(session_id)
        values = {
            "id": session_id,
            "user_id": grant.user_id,
            "client_id": grant.client_id,
            "token_hash": digest(token),
            "auth_time": grant.auth_time,
            "amr": " ".join(grant.amr),
            "scope": grant.scope,
            "acr": grant.acr,
            "browser_session_id": grant.browser_session_id,
            "ip_address": client.ip_address,
            "user_agent": (client.user_agent or "")[:512] or None,
            "created_at": now,
            "last_used_at": now,
            "expires_at": expires_at,
        }
        row = {f"opened_{name}": value for name, value in values.items()}
        if signed_in_by is None:
            # a Core INSERT in the unit of work: no ORM object to build, track, flush and expire
            self._db.execute(_INSERT_SESSION, row)
        elif self._statements.open_with_event.direct:
            # PostgreSQL: what the sign-in wrote before (a used challenge, a trusted device) is
            # committed first; then the session and its event, one autocommit statement: one round
            # trip, no BEGIN or COMMIT, and no success recorded for a session that was not written
            if _has_work(self._db):  # a password sign-in has none: no commit walked for nothing
                self._db.commit()
            self._audit.record_with(self._statements.open_with_event, row, "login_success", user_id=grant.user_id, client=client, details={"method": signed_in_by})
            if not _has_work(self._db):  # no observer wrote anything (a webhook delivery) since
                return session_id, token
        else:
            # SQLite has no data-modifying CTEs: two INSERTs in the unit of work, one commit
            self._audit.record("login_success", user_id=grant.user_id, client=client, details={"method": signed_in_by})
            self._db.execute(_INSERT_SESSION, row)
        self._db.commit()
        return session_id, token

    def refresh(
        self,
        refresh_token: str,
        *,
        client: ClientInfo,
        client_id: str = API_CLIENT_ID,
        with_claims: bool = False,
        scope: str | None = None,
        allowed: Sequence[str] | None = None,
    ) -> IssuedTokens:
        """Rotate: the presented token is replaced in one UPDATE … RETURNING. A token that names a
        live session of this client but is not its current one has been used before: the session
        is revoked. A token of another client is refused and changes nothing. `with_claims`: the
        same statement also returns the user's claim columns (`IssuedTokens.user`), for an ID token.
        `scope`: the new tokens are narrowed to what of it the session was granted (all of that when
        the two share nothing); the session keeps its whole grant. `allowed`: the scopes the client
        is registered for now; an administrator's narrowing holds at the next refresh."""
        parts = split_session_token(refresh_token)
        if parts is None:
            raise InvalidRefreshToken()
        session_id, _ = parts
        now = self._clock()
        new_token = self._secrets.new_token(session_id)
        # The hot path: one statement, one round trip (autocommit; the UPDATE is atomic by itself).
        params = {
            "session_id": session_id,
            "old_hash": digest(refresh_token),
            "new_hash": digest(new_token),
            "for_client": client_id,
            "now": now,
        }
        row = (self._statements.rotate_with_claims if with_claims else self._statements.rotate).first(params)
        if row is None:
            if self._secrets.issued(refresh_token):  # a replay; a made-up token changes nothing
                self._detect_reuse(session_id, client_id, now, client)
            raise InvalidRefreshToken()
        granted = row.scope if not scope else " ".join(s for s in dict.fromkeys(scope.split()) if s in row.scope.split()) or row.scope
        if allowed is not None:
            granted = " ".join(s for s in granted.split() if s in allowed)
        grant = SessionGrant(row.user_id, client_id, row.amr.split(), as_utc(row.auth_time), granted, row.browser_session_id, row.acr)
        issued = self._issue(session_id, grant, new_token, row.expires_at)
        if with_claims:
            user = ClaimColumns(row.user_id, row.username, row.email, bool(row.email_verified), row.updated_at)
            issued = replace(issued, user=user)  # a plain object, as for userinfo: no ORM instance on the hot path
        return issued

    def _detect_reuse(self, session_id: str, client_id: str, now: datetime, client: ClientInfo) -> None:
        session = self._db.get(Session, session_id)
        if session is None or session.client_id != client_id or session.revoked_at is not None:
            return
        if as_utc(session.expires_at) <= now:
            return
        self._revoke(session, "refresh_token_reuse", client, now)
        self._db.commit()

    def _issue(self, session_id: str, grant: SessionGrant, refresh_token: str, expires_at: datetime) -> IssuedTokens:
        access = self._tokens.issue(
            subject=grant.user_id,
            client_id=grant.client_id,
            scope=grant.scope,
            session_id=session_id,
            auth_time=as_utc(grant.auth_time),
            amr=grant.amr,
        )
        return IssuedTokens(access, refresh_token, session_id, self._tokens.ttl, as_utc(expires_at), grant)

    # -- the browser session (SSO) ---------------------------------------------------------

    def start_browser(
        self, user: User, *, client: ClientInfo, amr: list[str], ttl: int, signed_in_by: str | None = None,
        auth_time: datetime | None = None,
    ) -> tuple[BrowserSession, str]:
        """Open the provider's own session in a browser; returns it and the cookie value (shown once,
        stored as a digest). No tokens: relying parties get theirs from authorization codes.
        `signed_in_by` as for `start`; `auth_time`: of a sign-in this session continues (now by default)."""
        now = self._clock()
        signed_in_at = auth_time or now
        grant = SessionGrant(user.id, BROWSER_CLIENT_ID, amr, signed_in_at)
        session_id, token = self._open(grant, client, now, now + timedelta(seconds=ttl), signed_in_by)
        return BrowserSession(session_id, user, signed_in_at, amr), token

    def browser_session(self, cookie: str | None) -> BrowserSession | None:
        """The live browser session behind a cookie value, for an active user (one query)."""
        parts = split_session_token(cookie) if cookie else None
        if parts is None:
            return None
        row = self._db.execute(
            select(Session.auth_time, Session.amr, User)
            .join(User, User.id == Session.user_id)
            .where(
                Session.id == parts[0],
                Session.token_hash == digest(cookie or ""),
                Session.client_id == BROWSER_CLIENT_ID,
                Session.revoked_at.is_(None),
                Session.expires_at > self._clock(),
                User.is_active.is_(True),
            )
        ).one_or_none()
        if row is None:
            return None
        return BrowserSession(parts[0], row.User, as_utc(row.auth_time), row.amr.split())

    def replace_browser_session(self, old_id: str, new: BrowserSession, *, client: ClientInfo) -> None:
        """A new sign-in in a browser that had one. The same user keeps the relying-party sessions
        of the old one (they now end with the new one); another user's are ended."""
        old = self._db.get(Session, old_id)
        if old is None or old.revoked_at is not None:
            return
        if old.user_id != new.user.id:
            self.end_browser_session(old_id, client=client)
            return
        self._db.execute(
            update(Session).where(Session.browser_session_id == old_id).values(browser_session_id=new.id)
            .execution_options(synchronize_session=False)
        )
        old.revoked_at = self._clock()
        old.revoke_reason = "replaced"
        self._db.commit()

    def end_browser_session(self, session_id: str, *, client: ClientInfo) -> None:
        """Sign the browser out: its session and every relying-party session opened from it."""
        self._end_sign_in(session_id, "logout", client)
        self._db.commit()

    def _end_sign_in(self, session_id: str, reason: str, client: ClientInfo) -> None:
        """Revoke a browser's session and the live relying-party sessions opened from it."""
        now = self._clock()
        sessions = self._db.scalars(
            select(Session).where(
                or_(Session.id == session_id, Session.browser_session_id == session_id), Session.revoked_at.is_(None)
            )
        ).all()
        for session in sessions:
            self._revoke(session, reason, client, now)

    # -- revocation ------------------------------------------------------------------------

    def _revoke(self, session: Session, reason: str, client: ClientInfo, now: datetime) -> None:
        session.revoked_at = now
        session.revoke_reason = reason
        event = "logout" if reason == "logout" else "session_revoked"
        self._audit.record(event, user_id=session.user_id, client=client, details={"sessionId": session.id, "reason": reason})

    def logout(self, *, refresh_token: str | None, access_token: str | None, client: ClientInfo) -> None:
        """End the session of the refresh token and of the access token. Never fails. Only the JSON
        API's own access tokens count, as for `authenticate_bearer`: a relying party's is seen by
        every resource server it calls, none of which may end the app's session with it."""
        now = self._clock()
        session_ids = set()
        if refresh_token and self._secrets.issued(refresh_token):  # not a made-up one naming someone's session
            session_ids.add(refresh_token.partition(".")[0])
        if access_token:
            try:
                claims = self._session_token(access_token)
            except Unauthorized:
                claims = None
            if claims is not None and claims.sid and claims.client_id == API_CLIENT_ID:
                session_ids.add(claims.sid)
        for session_id in session_ids:
            session = self._db.get(Session, session_id)
            if session is not None and session.revoked_at is None:
                self._revoke(session, "logout", client, now)
        self._db.commit()

    def revoke_session(self, session_id: str, *, reason: str, client: ClientInfo) -> None:
        """Revoke one session if it is live (a replayed authorization code, a client's revocation)."""
        session = self._db.get(Session, session_id)
        if session is not None and session.revoked_at is None:
            self._revoke(session, reason, client, self._clock())
            self._db.commit()

    def revoke_one(self, user_id: str, session_id: str, *, client: ClientInfo) -> None:
        """The user ends one of their sessions. A browser's sign-in ends with the relying-party
        sessions opened from it, as when that browser signs out (`end_browser_session`)."""
        session = self._db.get(Session, session_id)
        if session is None or session.user_id != user_id or session.revoked_at is not None:
            raise NotFound("Session not found")
        if session.client_id == BROWSER_CLIENT_ID:
            self._end_sign_in(session.id, "revoked_by_user", client)
        else:
            self._revoke(session, "revoked_by_user", client, self._clock())
        self._db.commit()

    def revoke_all(self, user_id: str, *, reason: str, client: ClientInfo, details: dict[str, Any] | None = None) -> int:
        """Revoke every live session of the user; their access tokens stop working at once.
        `details` go into the event (an administrator's id, `by`)."""
        return self._revoke_matching(user_id, reason=reason, client=client, details=details)

    def revoke_all_except(self, user_id: str, keep_session_id: str, *, reason: str, client: ClientInfo) -> int:
        """Revoke every live session of the user but one browser session and the relying-party
        sessions opened from it ("sign out everywhere else"); returns how many ended (commits)."""
        return self._revoke_matching(
            user_id,
            Session.id != keep_session_id,
            or_(Session.browser_session_id.is_(None), Session.browser_session_id != keep_session_id),
            reason=reason,
            client=client,
        )

    def revoke_for_client(self, user_id: str, client_id: str, *, reason: str, client: ClientInfo) -> int:
        """End every live session the user has with one client (commits)."""
        return self._revoke_matching(
            user_id, Session.client_id == client_id, reason=reason, client=client, event="token_revoked", details={"clientId": client_id}
        )

    def end_all_of_client(self, client_id: str, *, reason: str) -> int:
        """End every live session of one client, whoever's (the client is going); returns how many.
        The caller records the event and commits."""
        ended = self._db.execute(
            update(Session)
            .where(Session.client_id == client_id, Session.revoked_at.is_(None))
            .values(revoked_at=self._clock(), revoke_reason=reason)
            .execution_options(synchronize_session=False)
        )
        return affected(ended)

    def _revoke_matching(
        self, user_id: str, *conditions: Any, reason: str, client: ClientInfo, event: str = "session_revoked",
        details: dict[str, Any] | None = None,
    ) -> int:
        """Revoke the user's live sessions that meet `conditions`, record one event, commit."""
        now = self._clock()
        sessions = self._db.scalars(
            select(Session).where(Session.user_id == user_id, Session.revoked_at.is_(None), *conditions)
        ).all()
        for session in sessions:
            session.revoked_at = now
            session.revoke_reason = reason
        self._audit.record(event, user_id=user_id, client=client, details={**(details or {}), "count": len(sessions), "reason": reason})
        self._db.commit()
        return len(sessions)

    def active(self, user_id: str) -> list[Session]:
        now = self._clock()
        return list(
            self._db.scalars(
                select(Session)
                .where(Session.user_id == user_id, Session.revoked_at.is_(None), Session.expires_at > now)
                .order_by(Session.last_used_at.desc())
            )
        )

    # -- bearer tokens ---------------------------------------------------------------------

    def _session_token(self, token: str) -> AccessTokenClaims:
        """The claims of a valid access token that names a session (its liveness is the caller's check)."""
        try:
            claims = self._tokens.verify(token)
        except InvalidAccessToken:
            raise Unauthorized() from None
        if not claims.sid:
            raise Unauthorized()
        return claims

    def bearer_claims(self, token: str) -> ClaimsIdentity:
        """Like `authenticate_bearer`, for userinfo: one read on the autocommit engine (no BEGIN or
        ROLLBACK around it), and the identity's user holds only the claim columns (`claims_user`)."""
        claims = self._session_token(token)
        row = self._statements.live_bearer.first({"session_id": claims.sid, "user_id": claims.sub, "now": self._clock()})
        if row is None:
            raise Unauthorized()
        return ClaimsIdentity(claims_user(row), claims)

    def authenticate_bearer(self, token: str) -> BearerIdentity:
        """A valid access token of the JSON API's own sessions whose session is still live, for an
        active user (one query). A relying party's access tokens (its `client_id`, signed by the
        same keys) are for userinfo: were they keys to the API, a client granted `openid email`
        would act as its user there, an administrator's included, and could mint API keys."""
        claims = self._session_token(token)
        if claims.client_id != API_CLIENT_ID:
            raise Unauthorized()
        user = self._db.scalar(
            select(User)
            .join(Session, Session.user_id == User.id)
            .where(
                Session.id == claims.sid,
                User.id == claims.sub,
                User.is_active.is_(True),
                Session.revoked_at.is_(None),
                Session.expires_at > self._clock(),
            )
        )
        if user is None:
            raise Unauthorized()
        return BearerIdentity(user, claims)


def _unit_of_work(db: DbSession) -> DbSession:
    """The ORM session itself, where `db` is the request's scoped session (which does not pass on every method)."""
    return db.registry() if isinstance(db, scoped_session) else db


def _has_work(db: DbSession) -> bool:
    """Whether a commit of `db` would do anything: a transaction begun, or messages waiting for a
    commit. An untouched session's commit sends nothing to the database, but still costs a sign-in
    the unit of work's Python (its transaction opened and closed, its commit events)."""
    session = _unit_of_work(db)
    return session.in_transaction() or bool(pending(session))
