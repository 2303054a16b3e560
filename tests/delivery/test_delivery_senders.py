"""The senders at their boundary: smtplib against an aiosmtpd server, the twilio client against a Messages API stand-in."""

from __future__ import annotations

import smtplib
import ssl

import pytest
from twilio.base.exceptions import TwilioRestException

from idp.config import SmtpSettings, TwilioSettings
from idp.delivery import OutgoingEmail, OutgoingSms
from idp.delivery.smtp import SmtpEmailSender
from idp.delivery.twilio_sms import TwilioSmsSender

MAIL = OutgoingEmail(
    to="alice@example.com",
    subject="Your verification code",
    text="Hi alice,\n\nYour code: 493021\n",
    html="<p>Hi alice,</p><p>Your code: <b>493021</b></p>",
)


def smtp_settings(server, **overrides) -> SmtpSettings:
    values = {
        "host": server.host,
        "port": server.port,
        "secure": False,
        "starttls": False,
        "user": None,
        "password": None,
        "sender": "Identity <no-reply@example.com>",
        "timeout": 5.0,
    }
    values.update(overrides)
    return SmtpSettings(**values)


def test_smtp_sender_delivers_headers_and_both_parts(smtp_server):
    SmtpEmailSender(smtp_settings(smtp_server)).send_email(MAIL)

    [envelope] = smtp_server.envelopes
    assert envelope.mail_from == "no-reply@example.com"
    assert envelope.rcpt_tos == ["alice@example.com"]
    [mail] = smtp_server.messages()
    assert mail["Subject"] == "Your verification code"
    assert mail["From"] == "Identity <no-reply@example.com>"
    assert mail["To"] == "alice@example.com"
    assert mail["Date"] and mail["Message-ID"].endswith("@example.com>")
    assert mail.get_content_type() == "multipart/alternative"
    text = mail.get_body(preferencelist=("plain",))
    html = mail.get_body(preferencelist=("html",))
    assert text is not None and text.get_content().replace("\r\n", "\n") == MAIL.text
    assert html is not None and html.get_content().strip() == MAIL.html


def test_smtp_sender_upgrades_with_starttls_and_logs_in(start_smtp, server_tls, client_tls):
    server = start_smtp(tls_context=server_tls, require_starttls=True, with_auth=True)
    settings = smtp_settings(server, starttls=True, user="mailer", password="s3cret")

    SmtpEmailSender(settings, ssl_context=client_tls).send_email(MAIL)

    assert server.logins == ["mailer"]
    assert len(server.envelopes) == 1


def test_smtp_sender_speaks_implicit_tls_when_secure(start_smtp, server_tls, client_tls):
    # aiosmtpd does not see the implicit TLS layer, so it must be told AUTH is fine here
    server = start_smtp(ssl_context=server_tls, with_auth=True, auth_require_tls=False)
    settings = smtp_settings(server, secure=True, user="mailer", password="s3cret")

    SmtpEmailSender(settings, ssl_context=client_tls).send_email(MAIL)

    assert server.logins == ["mailer"] and len(server.envelopes) == 1


def test_smtp_sender_refuses_an_untrusted_certificate(start_smtp, server_tls):
    """The default context verifies the server: a self-signed certificate is not accepted."""
    server = start_smtp(ssl_context=server_tls)
    with pytest.raises(ssl.SSLCertVerificationError):
        SmtpEmailSender(smtp_settings(server, secure=True)).send_email(MAIL)
    assert server.envelopes == []


def test_smtp_temporary_refusal_raises_so_the_job_can_retry(smtp_server):
    smtp_server.refuse = 1
    with pytest.raises(smtplib.SMTPDataError) as raised:
        SmtpEmailSender(smtp_settings(smtp_server)).send_email(MAIL)
    assert raised.value.smtp_code == 451


def test_twilio_client_posts_the_message_to_the_configured_base_url(twilio_server):
    settings = TwilioSettings(
        account_sid=twilio_server.account_sid, auth_token="tok", phone_number="+15005550006", api_base_url=twilio_server.url
    )

    TwilioSmsSender(settings).send_sms(OutgoingSms(to="+15551234567", body="493021 is your idp code."))

    [request] = twilio_server.requests
    assert request["path"] == f"/2010-04-01/Accounts/{twilio_server.account_sid}/Messages.json"
    assert request["user"] == twilio_server.account_sid
    assert request["form"] == {"To": "+15551234567", "From": "+15005550006", "Body": "493021 is your idp code."}


def test_twilio_error_raises(twilio_server):
    twilio_server.fail = 1
    settings = TwilioSettings(account_sid=twilio_server.account_sid, auth_token="tok", phone_number="+15005550006", api_base_url=twilio_server.url)
    with pytest.raises(TwilioRestException) as raised:
        TwilioSmsSender(settings).send_sms(OutgoingSms(to="+15551234567", body="hello"))
    assert raised.value.status == 500
