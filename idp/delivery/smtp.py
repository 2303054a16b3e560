"""Email over SMTP with the standard library: implicit TLS or STARTTLS, optional login."""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formatdate, make_msgid, parseaddr

from idp.config import SmtpSettings
from idp.delivery.messages import OutgoingEmail


class SmtpEmailSender:
    """Opens one connection per message (jobs are rare and may run in different processes)."""

    def __init__(self, settings: SmtpSettings, *, ssl_context: ssl.SSLContext | None = None) -> None:
        self._settings = settings
        # Certificates are checked against the system store; tests pass a context that trusts their own CA.
        self._ssl_context = ssl_context or ssl.create_default_context()

    def compose(self, message: OutgoingEmail) -> EmailMessage:
        """A multipart/alternative message: the text part first, the HTML part preferred by clients that can."""
        mail = EmailMessage()
        mail["Subject"] = message.subject
        mail["From"] = self._settings.sender
        mail["To"] = message.to
        mail["Date"] = formatdate(localtime=False)
        domain = parseaddr(self._settings.sender)[1].rpartition("@")[2] or None
        mail["Message-ID"] = make_msgid(domain=domain)
        mail.set_content(message.text)
        mail.add_alternative(message.html, subtype="html")
        return mail

    def send_email(self, message: OutgoingEmail) -> None:
        s = self._settings
        mail = self.compose(message)
        smtp: smtplib.SMTP
        if s.secure:
            smtp = smtplib.SMTP_SSL(s.host, s.port, timeout=s.timeout, context=self._ssl_context)
        else:
            smtp = smtplib.SMTP(s.host, s.port, timeout=s.timeout)
        try:
            if s.starttls:
                smtp.starttls(context=self._ssl_context)
            if s.user and s.password:
                smtp.login(s.user, s.password)
            smtp.send_message(mail)
        finally:
            _say_goodbye(smtp)


def _say_goodbye(smtp: smtplib.SMTP) -> None:
    """QUIT, and close the connection whatever the answer. Once the server has taken the message,
    an odd reply to QUIT (or none) must not fail the job: its retry would send the message again.
    (`with smtp:` raises for any reply but 221.)"""
    try:
        smtp.quit()
    except (smtplib.SMTPException, OSError):
        smtp.close()
