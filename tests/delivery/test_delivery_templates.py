"""The message templates render with the context services give them; HTML is escaped, a missing value is an error."""

from __future__ import annotations

import jinja2
import pytest

from idp.config import SmtpSettings
from idp.delivery.smtp import SmtpEmailSender
from idp.wiring import components

pytestmark = pytest.mark.parametrize("backend", ["embedded"])  # rendering does not touch the database

EMAILS = {
    "verify-email": {"username": "alice", "link": "https://id.example.com/verify-email?token=abc&x=1", "minutes": 30},
    "password-reset": {"username": "alice", "link": "https://id.example.com/reset-password?token=abc&x=1", "minutes": 60},
    "login-code": {"username": "alice", "code": "493021", "minutes": 5, "purpose": "sign in"},
    "security-alert": {
        "username": "alice",
        "event": "Two-factor authentication was turned on",
        "when": "2026-01-01 12:00 UTC",
        "ip_address": "203.0.113.9",
    },
}


@pytest.fixture
def renderer(app):
    with app.app_context():
        yield components().renderer


@pytest.mark.parametrize("name", sorted(EMAILS))
def test_every_email_renders_a_one_line_subject_and_both_bodies(renderer, name):
    context = EMAILS[name]
    mail = renderer.email("alice@example.com", name, context)
    assert mail.subject and "\n" not in mail.subject
    for value in context.values():
        assert str(value) in mail.text
    assert mail.html.lstrip().startswith("<!doctype html>")
    assert "alice" in mail.html


def test_links_are_escaped_in_html_and_plain_in_text(renderer):
    mail = renderer.email("alice@example.com", "verify-email", EMAILS["verify-email"])
    assert "token=abc&x=1" in mail.text
    assert 'href="https://id.example.com/verify-email?token=abc&amp;x=1"' in mail.html


def test_values_cannot_inject_markup_or_headers(renderer):
    mail = renderer.email(
        "alice@example.com", "security-alert", {**EMAILS["security-alert"], "username": "<img src=x onerror=alert(1)>", "event": "A\nB"}
    )
    assert "<img" not in mail.html and "&lt;img src=x onerror=alert(1)&gt;" in mail.html
    forged = renderer.email("a@example.com\r\nBcc: eve@example.com", "login-code", EMAILS["login-code"])
    with pytest.raises(ValueError):
        SmtpEmailSender(SmtpSettings("h", 25, False, False, None, None, "no-reply@example.com")).compose(forged)


def test_security_alert_reads_well_with_or_without_a_final_period(renderer):
    for event in ("Your password was changed", "Your password was changed."):
        mail = renderer.email("alice@example.com", "security-alert", {**EMAILS["security-alert"], "event": event})
        assert "Your password was changed.\n" in mail.text and ".." not in mail.text


def test_plural_minutes(renderer):
    one = renderer.email("a@example.com", "login-code", {**EMAILS["login-code"], "minutes": 1})
    assert "1 minute." in one.text
    assert "5 minutes." in renderer.email("a@example.com", "login-code", EMAILS["login-code"]).text


def test_sms_login_code_is_short_and_complete(renderer):
    sms = renderer.sms("+15551234567", "login-code", {"code": "493021", "minutes": 5, "service_name": "Example"})
    assert sms.body.startswith("493021 is your Example code.")
    assert "5 min" in sms.body and len(sms.body) <= 160 and "\n" not in sms.body


def test_a_missing_value_is_an_error_not_a_blank(renderer):
    with pytest.raises(jinja2.UndefinedError):
        renderer.email("a@example.com", "login-code", {"username": "alice", "code": "1", "minutes": 5})


@pytest.mark.parametrize("name", ["../base", "email/../x", "Login-Code", ""])
def test_template_names_are_plain_words(renderer, name):
    with pytest.raises(ValueError):
        renderer.email("a@example.com", name, {})
