"""Senders and queue chosen by configuration (see DeliverySettings)."""

from __future__ import annotations

from collections.abc import Sequence

import redis

from idp.config import DeliverySettings
from idp.delivery.messages import EmailSender, Senders, SmsSender
from idp.delivery.outbox import ConsoleOutbox
from idp.delivery.queue import DeliveryQueue, InlineDeliveryQueue, RqDeliveryQueue, delivery_queues


def build_senders(settings: DeliverySettings) -> Senders:
    outbox = ConsoleOutbox(settings.outbox_path)
    email: EmailSender | None = None
    if settings.email_backend == "smtp" and settings.smtp:
        from idp.delivery.smtp import SmtpEmailSender

        email = SmtpEmailSender(settings.smtp)
    elif settings.email_backend == "console":
        email = outbox
    sms: SmsSender | None = None
    if settings.sms_backend == "twilio" and settings.twilio:
        from idp.delivery.twilio_sms import TwilioSmsSender

        sms = TwilioSmsSender(settings.twilio)
    elif settings.sms_backend == "console":
        sms = outbox
    return Senders(email=email, sms=sms)


def build_queue(
    settings: DeliverySettings, senders: Senders, connection: redis.Redis | None, *, webhook_retry_intervals: Sequence[int] = ()
) -> DeliveryQueue:
    """RQ on Redis when there is one, else inline in this process."""
    if connection is None:
        return InlineDeliveryQueue(senders)
    return RqDeliveryQueue(delivery_queues(settings.queue_name, connection), settings.retry_intervals, webhook_retry_intervals)
