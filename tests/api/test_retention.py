"""`flask prune`: the rows that have served their purpose go, the live ones stay (idp.retention)."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select

from idp.accounts.models import AccountToken, Session, User
from idp.audit.models import AuditEvent
from idp.clock import utcnow
from idp.extensions import db
from idp.mfa.models import LoginChallenge, OneTimeCode, TrustedDevice
from idp.oidc.models import AuthorizationCode, OAuthClient, RevokedAccessToken
from idp.webhooks.models import Webhook, WebhookAttempt, WebhookDelivery
from tests.admin.conftest import cli

LONG_AGO = timedelta(days=40)


def _old_rows(user_id: str) -> None:
    """One row of each kind that ended 40 days ago, and a pending delivery as old."""
    then = utcnow() - LONG_AGO
    ended = {"created_at": then, "expires_at": then + timedelta(minutes=5)}
    challenge = LoginChallenge(user_id=user_id, token_hash="c" * 64, **ended)
    db.session.add_all([challenge, OAuthClient(client_id="notes", name="Notes", token_endpoint_auth_method="none", created_at=then)])
    db.session.flush()
    webhook = Webhook(user_id=user_id, url="https://hooks.example.com/", events=["user.login"], secret="s", created_at=then, updated_at=then)
    db.session.add(webhook)
    db.session.flush()
    done = WebhookDelivery(webhook_id=webhook.id, event="user.login", body="{}", status="delivered", attempts=1, created_at=then, completed_at=then)
    pending = WebhookDelivery(webhook_id=webhook.id, event="user.login", body="{}", status="pending", created_at=then)
    db.session.add_all([done, pending])
    db.session.flush()
    db.session.add_all([
        OneTimeCode(user_id=user_id, purpose="login", channel="email", challenge_id=challenge.id, code_hash="h", **ended),
        AccountToken(user_id=user_id, purpose="verify_email", token_hash="t" * 64, email="alice@example.com", **ended),
        AuthorizationCode(code_hash="a" * 64, client_id="notes", user_id=user_id, redirect_uri="https://notes.example.com/cb",
                          auth_time=then, amr="pwd", acr="urn:idp:acr:pwd", **ended),
        TrustedDevice(user_id=user_id, token_hash="d" * 64, **ended),
        Session(user_id=user_id, client_id="api", token_hash="e" * 64, auth_time=then, **ended),
        Session(user_id=user_id, client_id="api", token_hash="r" * 64, auth_time=then, created_at=then,
                expires_at=utcnow() + timedelta(days=1), revoked_at=then),
        RevokedAccessToken(jti="j", client_id="notes", expires_at=then, revoked_at=then),
        WebhookAttempt(delivery_id=done.id, attempt=1, status_code=200, success=True, duration_ms=5, created_at=then),
        AuditEvent(user_id=user_id, event="login_success", created_at=then),
    ])  # fmt: skip
    db.session.commit()


def _count(model: type) -> int:
    return db.session.scalar(select(func.count()).select_from(model)) or 0


def test_prune_deletes_what_ended_and_keeps_what_is_live(app, api):
    api.register("alice")  # a live session, its refresh token in the client's cookie jar
    with app.app_context():
        _old_rows(db.session.scalar(select(User.id)))
        audit = _count(AuditEvent)

    result = cli(app, "prune")
    assert result.exit_code == 0, result.output
    assert "deleted 1 one_time_codes, 1 login_challenges, 1 account_tokens, 1 authorization_codes" in result.output
    assert "2 sessions" in result.output and "1 webhook_deliveries" in result.output
    with app.app_context():
        for model in (OneTimeCode, LoginChallenge, AccountToken, AuthorizationCode, TrustedDevice, RevokedAccessToken, WebhookAttempt):
            assert _count(model) == 0, model
        assert db.session.scalars(select(WebhookDelivery.status)).all() == ["pending"]  # still to be sent
        assert _count(Session) == 1 and _count(AuditEvent) == audit  # audit events are kept unless asked
    assert api.client.post("/api/auth/refresh").status_code == 200  # the live session still works

    result = cli(app, "prune", "--audit-days", "30")
    assert result.exit_code == 0 and "1 audit_logs" in result.output, result.output
    with app.app_context():
        assert _count(AuditEvent) == audit - 1  # the old one only


def test_prune_keeps_what_ended_within_the_days_given(app, api):
    api.register("alice")
    with app.app_context():
        _old_rows(db.session.scalar(select(User.id)))
    result = cli(app, "prune", "--days", "60", "--delivery-days", "60")
    assert result.exit_code == 0, result.output
    with app.app_context():
        for model in (OneTimeCode, LoginChallenge, AccountToken, AuthorizationCode, TrustedDevice, WebhookAttempt):
            assert _count(model) == 1, model
        assert _count(WebhookDelivery) == 2 and _count(Session) == 3
