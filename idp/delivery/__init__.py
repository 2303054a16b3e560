"""Outgoing email and SMS: rendered in the web process, sent after the database commits.

Services receive a `Delivery` (built by `idp.wiring.delivery()`) and call `email()` / `sms()`.
The message is rendered at once (a template error surfaces in the request), waits in the
session until the transaction commits, and then goes to the queue: an RQ job with retries when
Redis is configured (run by `flask --app wsgi worker`), or inline in this process otherwise.

Which sender carries it (DeliverySettings): EMAIL_HOST → SMTP, TWILIO_ACCOUNT_SID → Twilio;
otherwise the console outbox in development and test, and nothing in production (the channel is
unavailable and sending raises DeliveryUnavailable, a 503) unless EMAIL_BACKEND=console /
SMS_BACKEND=console explicitly asks for the outbox.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session, scoped_session

from idp.delivery.after_commit import send_after_commit
from idp.delivery.messages import EmailSender, Message, OutgoingEmail, OutgoingSms, Senders, SmsSender
from idp.delivery.queue import DeliveryQueue
from idp.delivery.render import MessageRenderer
from idp.errors import DeliveryUnavailable

__all__ = [
    "Delivery",
    "DeliveryQueue",
    "DeliveryUnavailable",
    "EmailSender",
    "Message",
    "MessageRenderer",
    "OutgoingEmail",
    "OutgoingSms",
    "Senders",
    "SmsSender",
]


class Delivery:
    """What services call to send a message to a person."""

    def __init__(self, session: Session | scoped_session[Session], renderer: MessageRenderer, senders: Senders, queue: DeliveryQueue) -> None:
        # The session events are set on one Session, never on the scoped_session's class.
        self._session = session() if isinstance(session, scoped_session) else session
        self._renderer = renderer
        self._senders = senders
        self._queue = queue

    def email(self, to: str, template: str, **context: Any) -> None:
        """Render templates/email/<template>/ now, send after commit; raises DeliveryUnavailable if email is not configured."""
        if not self.email_available():
            raise DeliveryUnavailable("Email delivery is not configured")
        message = self._renderer.email(to, template, context)
        send_after_commit(self._session, self._queue, message, f"email {template}")

    def sms(self, to: str, template: str, **context: Any) -> None:
        """Render templates/sms/<template>.txt now, send after commit; raises DeliveryUnavailable if SMS is not configured."""
        if not self.sms_available():
            raise DeliveryUnavailable("SMS delivery is not configured")
        message = self._renderer.sms(to, template, context)
        send_after_commit(self._session, self._queue, message, f"sms {template}")

    def email_available(self) -> bool:
        return self._senders.email is not None

    def sms_available(self) -> bool:
        return self._senders.sms is not None
