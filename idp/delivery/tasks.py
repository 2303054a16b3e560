"""RQ jobs: they receive rendered strings only, and send them with the senders of the worker's app.

A job is a process entry point like a view or a CLI command, so it may read `current_app`
(the worker runs inside the app context of `flask --app wsgi worker`).
"""

from __future__ import annotations

import logging
import smtplib
from types import TracebackType
from typing import Any

from flask import current_app

from idp.delivery.messages import Message, OutgoingEmail, OutgoingSms, Senders, WebhookJob
from idp.errors import DeliveryUnavailable
from idp.observability import delivery_jobs

log = logging.getLogger("idp.delivery")


class WebhookAttemptFailed(Exception):
    """This attempt of a webhook delivery failed (and was recorded); RQ schedules the next one."""


def perform(message: Message, senders: Senders, *, last_chance: bool = False) -> None:
    """Send one message with the configured sender (the job body, queued or inline)."""
    if isinstance(message, WebhookJob):
        if senders.webhooks is None:
            raise DeliveryUnavailable("Webhook delivery is not configured")
        if senders.webhooks.attempt_delivery(message.delivery_id, last_chance=last_chance):
            raise WebhookAttemptFailed("will retry")
    elif isinstance(message, OutgoingEmail):
        if senders.email is None:
            raise DeliveryUnavailable("Email delivery is not configured")
        senders.email.send_email(message)
    else:
        if senders.sms is None:
            raise DeliveryUnavailable("SMS delivery is not configured")
        senders.sms.send_sms(message)


def deliver_email(to: str, subject: str, text: str, html: str) -> None:
    perform(OutgoingEmail(to=to, subject=subject, text=text, html=html), _senders())


def deliver_sms(to: str, body: str) -> None:
    perform(OutgoingSms(to=to, body=body), _senders())


def deliver_webhook(delivery_id: str) -> None:
    """One attempt; raises while attempts remain so that RQ retries after its backoff."""
    perform(WebhookJob(delivery_id), _senders())


def _senders() -> Senders:
    senders: Senders = current_app.extensions["idp"].senders
    return senders


def report_failure(job: Any, connection: Any, exc_type: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
    """RQ failure callback, run after every failed attempt: a warning while retries remain, then an error.

    Never logs the job's arguments: they hold the message body, codes and links.
    """
    delivery_jobs.job_failed(job, connection)
    if job.retries_left:
        log.warning("delivery job %s (%s) failed, will retry (%d left): %s", job.id, job.description, job.retries_left, failure_reason(exc))
    else:
        log.error(
            "delivery job %s (%s) failed for good; kept in the failed job registry of queue %s: %s",
            job.id,
            job.description,
            job.origin,
            failure_reason(exc),
        )


def failure_reason(exc: BaseException) -> str:
    """Why a send failed, without the content of the message (exception texts can quote it)."""
    name = type(exc).__name__
    if isinstance(exc, smtplib.SMTPResponseException):
        detail = exc.smtp_error.decode("utf-8", "replace") if isinstance(exc.smtp_error, bytes) else str(exc.smtp_error)
        return f"{name}: SMTP {exc.smtp_code} {detail[:200]}"
    if isinstance(exc, DeliveryUnavailable):
        return f"{name}: {exc.message}"
    if isinstance(exc, OSError) and exc.strerror:
        return f"{name}: {exc.strerror}"
    status = getattr(exc, "status", None)  # twilio.base.exceptions.TwilioRestException
    code = getattr(exc, "code", None)
    if isinstance(status, int):
        return f"{name}: HTTP {status}" + (f", error {code}" if code else "")
    return name
