"""Where messages go once their transaction commits: an RQ queue (with retries), or inline."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Protocol

from redis import Redis
from rq import Callback, Queue, Retry

from idp.delivery import tasks
from idp.delivery.messages import Message, OutgoingEmail, OutgoingSms, Senders
from idp.observability import delivery_jobs

log = logging.getLogger("idp.delivery")

JOB_TIMEOUT = 60  # seconds: an SMTP or HTTP call that takes longer is stuck
FAILED_TTL = 7 * 24 * 3600  # failed jobs hold codes and links: keep them for a week, not RQ's default year


class DeliveryQueue(Protocol):
    def submit(self, message: Message, label: str) -> None:
        """Send `message` now or later; `label` (e.g. "email login-code") names it in logs, never its content."""


def delivery_queues(queue_name: str, connection: Redis) -> list[Queue]:
    """The queues of DELIVERY_QUEUE, in the order a worker takes them: email and SMS, then webhooks
    (taken only when the first is empty)."""
    return [Queue(name, connection=connection) for name in (queue_name, f"{queue_name}-webhooks")]


class RqDeliveryQueue:
    """Enqueues one RQ job per message; failed attempts are retried after `retry_intervals` seconds
    (`webhook_retry_intervals` for webhooks, whose every attempt is recorded).

    Email and SMS go on `queue`, webhooks on a queue of their own that the worker takes only when
    the first is empty (`queues`, from `delivery_queues`): a sign-in code never waits behind
    deliveries to slow receivers. Their job counts are kept under `queue`'s name alike."""

    def __init__(self, queues: Sequence[Queue], retry_intervals: Sequence[int], webhook_retry_intervals: Sequence[int] = ()) -> None:
        self.queues = list(queues)
        self.queue, self.webhooks = self.queues
        self._retry_intervals = list(retry_intervals)
        self._webhook_retry_intervals = list(webhook_retry_intervals)

    def submit(self, message: Message, label: str) -> None:
        func: Callable[..., None]
        args: tuple[str, ...]
        intervals, queue = self._retry_intervals, self.queue
        if isinstance(message, OutgoingEmail):
            func, args = tasks.deliver_email, (message.to, message.subject, message.text, message.html)
        elif isinstance(message, OutgoingSms):
            func, args = tasks.deliver_sms, (message.to, message.body)
        else:
            func, args = tasks.deliver_webhook, (message.delivery_id,)
            intervals, queue = self._webhook_retry_intervals, self.webhooks
        job = queue.enqueue_call(
            func,
            args=args,
            description=label,  # RQ logs the description; the default one would quote the arguments
            retry=Retry(max=len(intervals), interval=intervals) if intervals else None,
            on_failure=Callback(tasks.report_failure),
            on_success=Callback(delivery_jobs.job_done),  # counted in Redis for /metrics
            timeout=JOB_TIMEOUT,
            result_ttl=0,  # a sent message leaves nothing behind in Redis
            failure_ttl=FAILED_TTL,
            meta={delivery_jobs.COUNTED_AS: self.queue.name},
        )
        log.info("delivery: queued %s as job %s", label, job.id)
        delivery_jobs.count(self.queue.connection, self.queue.name, func.__name__, "queued")


class InlineDeliveryQueue:
    """No Redis: the job body runs right away in this process (after the commit), once, without retries."""

    def __init__(self, senders: Senders) -> None:
        self._senders = senders

    def submit(self, message: Message, label: str) -> None:
        try:
            tasks.perform(message, self._senders, last_chance=True)
        except Exception as exc:
            log.error("delivery of %s failed (inline, not retried): %s", label, tasks.failure_reason(exc))
