"""Consents: which scopes a user allowed a client, remembered so the question is asked once."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime

from flask_babel import lazy_gettext as _l
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session as DbSession

from idp.accounts.sessions import SessionService
from idp.audit.service import AuditLog, ClientInfo
from idp.oidc.models import AuthorizationCode, Consent

# what each scope means, in the words the consent page uses (lazy: str() gives the page's language)
SCOPE_WORDS = {
    "openid": _l("Know who you are (a stable identifier for your account)"),
    "profile": _l("Your username"),
    "email": _l("Your email address"),
    "phone": _l("Your verified phone number"),
    "offline_access": _l("Stay connected when you are not using it"),
}


class ConsentService:
    def __init__(self, db: DbSession, audit: AuditLog, sessions: SessionService, clock: Callable[[], datetime]) -> None:
        self._db = db
        self._audit = audit
        self._sessions = sessions
        self._clock = clock

    def _find(self, user_id: str, client_id: str) -> Consent | None:
        return self._db.scalar(select(Consent).where(Consent.user_id == user_id, Consent.client_id == client_id))

    def covers(self, user_id: str, client_id: str, scopes: Iterable[str]) -> bool:
        consent = self._find(user_id, client_id)
        return consent is not None and set(scopes) <= set(consent.scopes)

    def grant(self, user_id: str, client_id: str, scopes: Iterable[str], *, client: ClientInfo) -> None:
        """Remember the scopes (added to any given before)."""
        now = self._clock()
        consent = self._find(user_id, client_id) or self._first(user_id, client_id, now)
        consent.scopes = sorted(set(consent.scopes) | set(scopes))
        consent.updated_at = now
        self._audit.record("consent_granted", user_id=user_id, client=client, details={"clientId": client_id, "scopes": consent.scopes})
        self._db.commit()

    def _first(self, user_id: str, client_id: str, now: datetime) -> Consent:
        """A new consent; or, when another request made it meanwhile (a double click on "Allow",
        two tabs), that one."""
        try:
            with self._db.begin_nested():
                consent = Consent(user_id=user_id, client_id=client_id, scopes=[], created_at=now)
                self._db.add(consent)
            return consent
        except IntegrityError:
            made = self._find(user_id, client_id)
            if made is None:
                raise
            return made

    def given(self, user_id: str) -> list[Consent]:
        return list(self._db.scalars(select(Consent).where(Consent.user_id == user_id).order_by(Consent.updated_at.desc())))

    def revoke(self, user_id: str, client_id: str, *, client: ClientInfo) -> bool:
        """Withdraw an app's access: the consent is forgotten and the app's sessions with this
        user end (refresh and access tokens); it must ask again."""
        consent = self._find(user_id, client_id)
        if consent is None:
            return False
        self._db.delete(consent)
        # codes issued before (for up to five minutes) would otherwise still be exchanged for tokens
        self._db.execute(
            delete(AuthorizationCode).where(AuthorizationCode.user_id == user_id, AuthorizationCode.client_id == client_id)
        )
        self._sessions.revoke_for_client(user_id, client_id, reason="consent_revoked", client=client)
        return True
