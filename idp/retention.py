"""Rows that have served their purpose: `flask prune` deletes them, or every table that records
sign-ins, codes and deliveries would grow for as long as the service runs.

Ended things (sessions expired or revoked, login challenges, one-time codes, email links,
authorization codes and trusted devices past their expiry) are kept `ended` more and then go: none
of them can be used again, and what they were is in the audit log. Webhook deliveries that are
finished go after `deliveries` (pending ones stay, whatever their age). Audit events are kept
unless `audit` is given: how long to keep a security record is the operator's decision.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import cast

from sqlalchemy import TableClause, delete, or_
from sqlalchemy.orm import Session as DbSession

from idp.accounts.models import AccountToken, Session
from idp.audit.models import AuditEvent
from idp.mfa.models import LoginChallenge, OneTimeCode, TrustedDevice
from idp.models import affected
from idp.oidc.models import AuthorizationCode, RevokedAccessToken
from idp.webhooks.models import WebhookDelivery


@dataclass(frozen=True)
class Retention:
    ended: timedelta = timedelta(days=30)
    deliveries: timedelta = timedelta(days=30)
    audit: timedelta | None = None


def prune(db: DbSession, now: datetime, retention: Retention) -> dict[str, int]:
    """Delete what `retention` lets go, one committed statement per table; the rows deleted, by table."""
    ended = now - retention.ended
    # codes before their challenges: each challenge deleted otherwise looks for its codes (ON DELETE
    # CASCADE) in a table with no index on challenge_id, which this keeps small
    steps = [
        delete(OneTimeCode).where(OneTimeCode.expires_at < ended),
        delete(LoginChallenge).where(LoginChallenge.expires_at < ended),
        delete(AccountToken).where(AccountToken.expires_at < ended),
        delete(AuthorizationCode).where(AuthorizationCode.expires_at < ended),
        delete(TrustedDevice).where(TrustedDevice.expires_at < ended),
        delete(Session).where(or_(Session.expires_at < ended, Session.revoked_at < ended)),
        delete(RevokedAccessToken).where(RevokedAccessToken.expires_at <= now),  # useless once the token expired
        delete(WebhookDelivery).where(WebhookDelivery.completed_at < now - retention.deliveries),  # with their attempts
    ]
    if retention.audit is not None:
        steps.append(delete(AuditEvent).where(AuditEvent.created_at < now - retention.audit))
    deleted = {}
    for statement in steps:
        deleted[cast(TableClause, statement.table).name] = affected(db.execute(statement))
        db.commit()
    return deleted
