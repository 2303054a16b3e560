"""Messages leave only when the transaction that asked for them commits (RQ on postgres+redis, inline when embedded)."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select

from idp.audit.models import AuditEvent
from idp.audit.service import AuditLog, ClientInfo
from idp.clock import utcnow
from idp.delivery.after_commit import pending
from idp.delivery.queue import RqDeliveryQueue
from idp.extensions import db
from idp.wiring import components, delivery


@pytest.fixture
def mail_app(make_app, smtp_server, queue_name):
    return make_app(**smtp_server.env(DELIVERY_QUEUE=queue_name, DELIVERY_RETRY_INTERVALS="0,0,0,0,0"))


def ask_for_code(code: str = "493021") -> None:
    """What a service does: write something and ask for a message, in one unit of work."""
    AuditLog(db.session(), utcnow).record("logout", user_id=None, client=ClientInfo("203.0.113.9"))
    delivery().email("alice@example.com", "login-code", username="alice", code=code, minutes=5, purpose="sign in")
    db.session.flush()


def audit_rows() -> int:
    return db.session.scalar(select(func.count()).select_from(AuditEvent)) or 0


def test_queue_follows_the_backend(mail_app, backend):
    with mail_app.app_context():
        assert isinstance(components().delivery_queue, RqDeliveryQueue) is (backend == "postgres")


def test_nothing_is_sent_before_commit_and_the_message_goes_out_after(mail_app, smtp_server, run_worker):
    with mail_app.app_context():
        ask_for_code()
        assert smtp_server.attempts == 0 and len(pending(db.session())) == 1
        run_worker(mail_app)
        assert smtp_server.attempts == 0, "a worker found the job before the commit"
        db.session.commit()
        assert pending(db.session()) == []
    run_worker(mail_app)
    [mail] = smtp_server.messages()
    assert "493021" in mail.get_body(preferencelist=("plain",)).get_content()


def test_rollback_drops_the_message_with_the_data(mail_app, smtp_server, run_worker):
    with mail_app.app_context():
        ask_for_code()
        db.session.rollback()
        assert audit_rows() == 0
        db.session.commit()  # a later commit of the same session must not send it either
    run_worker(mail_app)
    assert smtp_server.attempts == 0


def test_a_session_closed_without_commit_sends_nothing(mail_app, smtp_server, run_worker):
    with mail_app.app_context():
        ask_for_code()
        db.session.close()
        db.session.commit()  # the same session, reused after close
    run_worker(mail_app)
    assert smtp_server.attempts == 0


def test_a_rolled_back_savepoint_drops_only_its_own_messages(mail_app, smtp_server, run_worker):
    with mail_app.app_context():
        ask_for_code("111111")
        savepoint = db.session.begin_nested()
        ask_for_code("222222")
        savepoint.rollback()
        with db.session.begin_nested():  # released: its message waits for the outer commit
            ask_for_code("333333")
        assert smtp_server.attempts == 0
        db.session.commit()
        assert audit_rows() == 2
    run_worker(mail_app)
    codes = sorted(re.search(r"\b\d{6}\b", m.get_body(preferencelist=("plain",)).get_content())[0] for m in smtp_server.messages())
    assert codes == ["111111", "333333"]


def test_a_released_savepoint_does_not_send_before_the_outer_rollback(mail_app, smtp_server, run_worker):
    with mail_app.app_context():
        db.session.execute(select(1))
        with db.session.begin_nested():
            ask_for_code()
        db.session.rollback()
        db.session.commit()
    run_worker(mail_app)
    assert smtp_server.attempts == 0


def test_sms_waits_for_the_commit_too(make_app, twilio_server, queue_name, run_worker):
    app = make_app(**twilio_server.env(DELIVERY_QUEUE=queue_name, DELIVERY_RETRY_INTERVALS="0"))
    with app.app_context():
        delivery().sms("+15551234567", "login-code", code="493021", minutes=5, service_name="Example")
        run_worker(app)
        assert twilio_server.requests == []
        db.session.commit()
    run_worker(app)
    [request] = twilio_server.accepted
    assert request["form"]["To"] == "+15551234567" and "493021" in request["form"]["Body"]
