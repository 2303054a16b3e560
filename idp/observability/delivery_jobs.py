"""Delivery job counts kept in Redis, so that /metrics of any web process shows what the workers did.

RQ workers are processes of their own, possibly on other hosts, that nobody scrapes: each job
outcome is one HINCRBY on a hash named after the job's queue, from the job's own callbacks (the
web process counts `queued` the same way when it enqueues). /metrics reads the hash with one
HGETALL at scrape time. Counts survive restarts of web processes and workers alike.

A counting failure never fails a job or a request: it is logged and the count is lost.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

import redis
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector

log = logging.getLogger("idp.observability")

STATES = ("queued", "done", "retried", "failed")  # failed: after the last retry
COUNTED_AS = "idp_counted_as"  # a job's meta: the queue name its outcomes are counted under (else its own queue's)


def counts_key(queue_name: str) -> str:
    return f"idp:delivery-jobs:{queue_name}"


def job_kind(func_name: str) -> str:
    """`idp.delivery.tasks.deliver_email` -> `email` (and sms, webhook)."""
    return func_name.rpartition(".")[2].removeprefix("deliver_")


def count(connection: redis.Redis, queue_name: str, func_name: str, state: str) -> None:
    try:
        connection.hincrby(counts_key(queue_name), f"{job_kind(func_name)}:{state}", 1)
    except redis.RedisError as exc:
        log.warning("delivery job count %s not kept: %s", state, type(exc).__name__)


def job_done(job: Any, connection: redis.Redis, result: Any, *args: Any, **kwargs: Any) -> None:
    """RQ success callback."""
    count(connection, job.meta.get(COUNTED_AS, job.origin), job.func_name, "done")


def job_failed(job: Any, connection: redis.Redis) -> None:
    """From the RQ failure callback, after every failed attempt: `retried` while retries remain."""
    count(connection, job.meta.get(COUNTED_AS, job.origin), job.func_name, "retried" if job.retries_left else "failed")


class DeliveryJobCounts(Collector):
    """`idp_delivery_jobs_total{kind, state}`, read from Redis when /metrics is scraped."""

    def __init__(self, connection: redis.Redis, queue_name: str) -> None:
        self._connection = connection
        self._key = counts_key(queue_name)

    def describe(self) -> Iterable[CounterMetricFamily]:
        return []  # nothing to check at registration (which would read Redis at start-up)

    def collect(self) -> Iterable[CounterMetricFamily]:
        family = CounterMetricFamily(
            "idp_delivery_jobs", "Delivery jobs (email, sms, webhook) by state: queued, done, retried, failed.", labels=["kind", "state"]
        )
        try:
            counts = self._connection.hgetall(self._key)
        except redis.RedisError as exc:
            log.warning("delivery job counts unavailable: %s", type(exc).__name__)
            return []
        for field, value in sorted(counts.items()):  # type: ignore[union-attr]
            kind, _, state = field.decode().partition(":")
            family.add_metric([kind, state], float(value))
        return [family]
