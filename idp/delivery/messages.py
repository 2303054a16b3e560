"""What travels through delivery: rendered messages, and the interfaces of the senders that carry them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class OutgoingEmail:
    """A rendered email: every field is final text, nothing is looked up when it is sent."""

    to: str
    subject: str
    text: str
    html: str


@dataclass(frozen=True)
class OutgoingSms:
    """A rendered text message to one phone number (E.164)."""

    to: str
    body: str


@dataclass(frozen=True)
class WebhookJob:
    """One webhook delivery, by id: its body, target and secret stay in the database."""

    delivery_id: str


Message = OutgoingEmail | OutgoingSms | WebhookJob


class EmailSender(Protocol):
    """Hands one email to the outside world; raises on failure so the job can be retried."""

    def send_email(self, message: OutgoingEmail) -> None: ...


class SmsSender(Protocol):
    """Hands one text message to the outside world; raises on failure so the job can be retried."""

    def send_sms(self, message: OutgoingSms) -> None: ...


class WebhookCourier(Protocol):
    """Makes the next attempt of a webhook delivery and records it; `last_chance`: none follows.
    Returns whether another attempt should be scheduled."""

    def attempt_delivery(self, delivery_id: str, *, last_chance: bool) -> bool: ...


@dataclass(frozen=True)
class Senders:
    """The senders configured for this process; None means the channel is unavailable."""

    email: EmailSender | None
    sms: SmsSender | None
    webhooks: WebhookCourier | None = None
