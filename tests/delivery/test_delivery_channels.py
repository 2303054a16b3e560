"""Which sender carries a message, what happens when none is configured, and the development outbox."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from idp.config import ConfigError, delivery_settings
from idp.delivery.outbox import ConsoleOutbox
from idp.delivery.smtp import SmtpEmailSender
from idp.delivery.twilio_sms import TwilioSmsSender
from idp.errors import DeliveryUnavailable
from idp.extensions import db
from idp.wiring import components, delivery

STRONG_SECRET = "k3Jd9Qm2Xv7Lp4Zr8Tn1Wc6Hy5Bf0Gs_a-strong-one"


def production(make_app, **env: str):
    """A production app on the embedded backend's database, with the given delivery settings."""
    return make_app(IDP_ENV="production", SECRET_KEY=STRONG_SECRET, ENCRYPTION_KEYS=Fernet.generate_key().decode(), **env)


def with_send_routes(app):
    """Tiny routes standing in for the endpoints that send codes."""

    @app.post("/api/test-send/email")
    def send_email() -> dict[str, bool]:
        delivery().email("alice@example.com", "login-code", username="alice", code="493021", minutes=5, purpose="sign in")
        db.session.commit()
        return {"success": True}

    @app.post("/api/test-send/sms")
    def send_sms() -> dict[str, bool]:
        delivery().sms("+15551234567", "login-code", code="493021", minutes=5, service_name="Example")
        db.session.commit()
        return {"success": True}

    from idp.extensions import csrf

    csrf.exempt(send_email)  # API routes authenticate by token, not cookie (idp/__init__.py exempts /api)
    csrf.exempt(send_sms)
    return app


@pytest.mark.parametrize("channel", ["email", "sms"])
def test_production_without_a_configured_channel_answers_503(make_app, channel):
    app = with_send_routes(production(make_app))
    response = app.test_client().post(f"/api/test-send/{channel}")
    assert response.status_code == 503
    assert response.json["success"] is False and response.json["code"] == "delivery_unavailable"


def test_unavailable_is_raised_when_the_service_asks_not_later(make_app):
    app = production(make_app)
    with app.app_context():
        d = delivery()
        assert not d.email_available() and not d.sms_available()
        with pytest.raises(DeliveryUnavailable):
            d.email("alice@example.com", "login-code", username="alice", code="1", minutes=5, purpose="sign in")
        with pytest.raises(DeliveryUnavailable):
            d.sms("+15551234567", "login-code", code="1", minutes=5, service_name="Example")


def test_production_uses_the_outbox_only_when_told_to(make_app):
    app = with_send_routes(production(make_app, EMAIL_BACKEND="console", SMS_BACKEND="console", REDIS_URL=""))
    with app.app_context():
        assert isinstance(components().senders.email, ConsoleOutbox)
        assert isinstance(components().senders.sms, ConsoleOutbox)
    assert app.test_client().post("/api/test-send/sms").status_code == 200


def test_configured_senders_are_chosen_in_every_environment(make_app, smtp_server, twilio_server):
    for env in ("development", "test"):
        app = make_app(IDP_ENV=env, **smtp_server.env(), **twilio_server.env())
        with app.app_context():
            assert isinstance(components().senders.email, SmtpEmailSender)
            assert isinstance(components().senders.sms, TwilioSmsSender)
    app = production(make_app, **smtp_server.env())
    with app.app_context():
        assert isinstance(components().senders.email, SmtpEmailSender) and components().senders.sms is None


@pytest.mark.parametrize("env", ["development", "test"])
def test_development_and_test_fall_back_to_the_outbox(make_app, env):
    app = make_app(IDP_ENV=env)
    with app.app_context():
        assert isinstance(components().senders.email, ConsoleOutbox)
        assert isinstance(components().senders.sms, ConsoleOutbox)


def test_the_outbox_page_lists_messages_newest_first_escaped(make_app):
    app = make_app(IDP_ENV="development", REDIS_URL="")
    marker = uuid.uuid4().hex[:8]
    with app.app_context():
        delivery().email(f"first-{marker}@example.com", "verify-email", username="<b>bob</b>", link="https://example.com/v?a=1&b=2", minutes=30)
        delivery().sms("+15551234567", "login-code", code=f"{marker}", minutes=5, service_name="Example")
        db.session.commit()
        kept = ConsoleOutbox(components().settings.delivery.outbox_path).messages(limit=2)
    assert [m["kind"] for m in kept] == ["sms", "email"]

    response = app.test_client().get("/dev/outbox")

    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert page.index(f"{marker} is your Example code") < page.index(f"first-{marker}@example.com")
    assert "<b>bob</b>" not in page and "&lt;b&gt;bob&lt;/b&gt;" in page
    assert "<script>" not in page and "script" not in page.replace('<script src="/static/pages.js" defer></script>', "")  # only our own file
    assert "Confirm your email address" in page


def test_the_outbox_file_holds_one_json_line_per_message(tmp_path: Path):
    from idp.delivery import OutgoingEmail, OutgoingSms

    outbox = ConsoleOutbox(tmp_path / "outbox.jsonl")
    outbox.send_email(OutgoingEmail("a@example.com", "S", "text", "<p>html</p>"))
    outbox.send_sms(OutgoingSms("+15551234567", "body"))
    lines = [json.loads(line) for line in (tmp_path / "outbox.jsonl").read_text().splitlines()]
    assert [line["kind"] for line in lines] == ["email", "sms"]
    assert lines[0]["subject"] == "S" and lines[1]["body"] == "body"
    assert (tmp_path / "outbox.jsonl").stat().st_mode & 0o777 == 0o600


@pytest.mark.parametrize("env", ["test", "production"])
def test_the_outbox_page_exists_only_in_development(make_app, env):
    app = production(make_app) if env == "production" else make_app(IDP_ENV="test")
    assert app.test_client().get("/dev/outbox").status_code == 404


@pytest.mark.parametrize(
    ("env", "names"),
    [
        ({"EMAIL_BACKEND": "sendgrid"}, "EMAIL_BACKEND"),
        ({"EMAIL_BACKEND": "smtp"}, "EMAIL_HOST"),
        ({"SMS_BACKEND": "twilio"}, "TWILIO_ACCOUNT_SID"),
        ({"EMAIL_HOST": "smtp.example.com", "EMAIL_SECURE": "maybe", "EMAIL_FROM": "a@example.com"}, "EMAIL_SECURE"),
        ({"EMAIL_HOST": "smtp.example.com"}, "EMAIL_FROM"),
        ({"EMAIL_HOST": "smtp.example.com", "EMAIL_FROM": "a@example.com", "EMAIL_SECURE": "true", "EMAIL_STARTTLS": "true"}, "EMAIL_STARTTLS"),
        ({"TWILIO_ACCOUNT_SID": "AC1", "TWILIO_PHONE_NUMBER": "+15005550006"}, "TWILIO_AUTH_TOKEN"),
        ({"TWILIO_ACCOUNT_SID": "AC1", "TWILIO_AUTH_TOKEN": "t"}, "TWILIO_PHONE_NUMBER"),
        ({"DELIVERY_RETRY_INTERVALS": "10,soon"}, "DELIVERY_RETRY_INTERVALS"),
    ],
)
def test_bad_delivery_settings_fail_fast_and_name_the_variable(tmp_path: Path, env, names):
    with pytest.raises(ConfigError, match=names):
        delivery_settings(env, "production", tmp_path)


def test_by_default_a_failed_job_is_retried_five_times_with_growing_waits(tmp_path: Path):
    intervals = delivery_settings({}, "production", tmp_path).retry_intervals
    assert len(intervals) >= 5 and list(intervals) == sorted(intervals) and intervals[0] > 0
    assert delivery_settings({"DELIVERY_RETRY_INTERVALS": "0, 0,0"}, "test", tmp_path).retry_intervals == (0, 0, 0)


def test_the_outbox_lives_in_the_instance_folder_unless_outbox_path_says_otherwise(tmp_path: Path):
    assert delivery_settings({}, "development", tmp_path).outbox_path == tmp_path / "outbox.jsonl"
    assert delivery_settings({"OUTBOX_PATH": "/tmp/x.jsonl"}, "development", tmp_path).outbox_path == Path("/tmp/x.jsonl")


def test_smtp_defaults_follow_the_tls_mode(tmp_path: Path):
    plain = delivery_settings({"EMAIL_HOST": "smtp.example.com", "EMAIL_USER": "me@example.com"}, "production", tmp_path).smtp
    assert plain is not None and (plain.port, plain.starttls, plain.secure, plain.sender) == (587, True, False, "me@example.com")
    secure = delivery_settings({"EMAIL_HOST": "h", "EMAIL_FROM": "a@example.com", "EMAIL_SECURE": "true"}, "production", tmp_path).smtp
    assert secure is not None and (secure.port, secure.starttls, secure.secure) == (465, False, True)
    assert "hunter2" not in repr(delivery_settings({"EMAIL_HOST": "h", "EMAIL_USER": "u@example.com", "EMAIL_PASSWORD": "hunter2"}, "production", tmp_path))
