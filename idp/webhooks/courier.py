"""One delivery attempt: check the target again, POST the signed body, record what happened.

Runs in the worker (or inline without Redis) with a database session of its own. The outcome
tells the job whether to raise (RQ then retries after its backoff) or to stop.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
from collections.abc import Callable
from datetime import datetime
from enum import Enum
from typing import Any

import urllib3
import urllib3.connection
from sqlalchemy import update
from sqlalchemy.orm import Session as DbSession

from idp.audit.service import AuditLog, ClientInfo
from idp.config import WebhookSettings
from idp.security.secretbox import SecretBox
from idp.webhooks.models import Webhook, WebhookAttempt, WebhookDelivery
from idp.webhooks.signing import signed_headers
from idp.webhooks.targets import Resolver, Target, TargetRefused, check_webhook_target, resolve

log = logging.getLogger("idp.webhooks")

MAX_RESPONSE_BYTES = 4096  # a receiver's answer is read (to free the connection) but not kept


class Outcome(Enum):
    DELIVERED = "delivered"
    RETRY = "retry"  # failed, attempts remain: the job raises so RQ tries again later
    FAILED = "failed"  # failed for good
    SKIPPED = "skipped"  # already finished, or the webhook is gone or disabled


class _CutAtDeadline:
    """A connection that is shut down when the attempt's time is up. Socket timeouts bound each
    read, not the whole answer: a receiver sending one byte every second would hold the worker
    (and the queue's codes behind it) for as long as it liked."""

    sock: socket.socket | None

    def __init__(self, *args: Any, deadline: float, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.deadline = deadline  # time.monotonic() by which the attempt is over

    def connect(self) -> None:
        super().connect()  # type: ignore[misc]
        self._cutter = threading.Timer(max(0.0, self.deadline - time.monotonic()), self._cut)
        self._cutter.daemon = True
        self._cutter.start()

    def _cut(self) -> None:
        sock = self.sock
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)  # the blocked read returns at once

    def close(self) -> None:
        cutter = getattr(self, "_cutter", None)
        if cutter is not None:
            cutter.cancel()
        super().close()  # type: ignore[misc]


class _HTTPConnection(_CutAtDeadline, urllib3.connection.HTTPConnection):
    pass


class _HTTPSConnection(_CutAtDeadline, urllib3.connection.HTTPSConnection):
    pass


class _HTTPPool(urllib3.HTTPConnectionPool):
    ConnectionCls = _HTTPConnection  # given the pool's `deadline` with its other connection settings


class _HTTPSPool(urllib3.HTTPSConnectionPool):
    ConnectionCls = _HTTPSConnection


class DeadlinePassed(urllib3.exceptions.TimeoutError):
    """The receiver took longer than WEBHOOK_TIMEOUT_SECONDS over the whole attempt."""


def post(target: Target, body: bytes, headers: dict[str, str], timeout: float) -> int:
    """POST to the checked address (never a fresh lookup), TLS checked against the host name; no
    redirects. `timeout` bounds the whole attempt, from connecting to the answer's last byte read."""
    deadline = time.monotonic() + timeout
    pool: urllib3.HTTPConnectionPool
    if target.scheme == "https":
        pool = _HTTPSPool(
            target.address,
            target.port,
            maxsize=1,
            retries=False,
            timeout=urllib3.Timeout(total=timeout),
            server_hostname=target.host,
            assert_hostname=target.host,
            deadline=deadline,
        )
    else:
        pool = _HTTPPool(target.address, target.port, maxsize=1, retries=False, timeout=urllib3.Timeout(total=timeout), deadline=deadline)
    try:
        with pool:
            response = pool.urlopen(
                "POST", target.path, body=body, headers={**headers, "Host": target.host_header}, redirect=False, preload_content=False
            )
            try:
                response.read(MAX_RESPONSE_BYTES)
            finally:
                response.release_conn()
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        if time.monotonic() >= deadline:
            raise DeadlinePassed() from exc
        raise
    if time.monotonic() >= deadline:  # the answer came, but its last byte too late
        raise DeadlinePassed()
    return int(response.status)


class WebhookCourier:
    def __init__(
        self,
        open_session: Callable[[], DbSession],
        box: SecretBox,
        settings: WebhookSettings,
        clock: Callable[[], datetime],
        *,
        resolver: Resolver = resolve,
        sender: Callable[[Target, bytes, dict[str, str], float], int] = post,
    ) -> None:
        self._open_session = open_session
        self._box = box
        self._settings = settings
        self._clock = clock
        self._resolver = resolver
        self._sender = sender

    def attempt_delivery(self, delivery_id: str, *, last_chance: bool) -> bool:
        """The delivery job's call: True when another attempt should follow."""
        return self.attempt(delivery_id, last_chance=last_chance) is Outcome.RETRY

    def attempt(self, delivery_id: str, *, last_chance: bool = False) -> Outcome:
        """Make the next attempt of a delivery; `last_chance`: no retry will follow (inline delivery)."""
        with self._open_session() as db:
            delivery = db.get(WebhookDelivery, delivery_id)
            if delivery is None or delivery.status != "pending":
                return Outcome.SKIPPED
            webhook = db.get(Webhook, delivery.webhook_id)
            if webhook is None or not webhook.is_active:
                delivery.status, delivery.completed_at = "cancelled", self._clock()
                db.commit()
                return Outcome.SKIPPED
            number = delivery.attempts + 1
            status, error, duration_ms = self._send(webhook, delivery)
            success = status is not None and 200 <= status < 300
            now = self._clock()
            db.add(
                WebhookAttempt(
                    delivery_id=delivery.id,
                    attempt=number,
                    status_code=status,
                    success=success,
                    error=error,
                    duration_ms=duration_ms,
                    created_at=now,
                )
            )
            delivery.attempts = number
            if success:
                delivery.status, delivery.completed_at = "delivered", now
                webhook.consecutive_failures, webhook.last_delivery_at = 0, now
                outcome = Outcome.DELIVERED
            elif last_chance or number >= self._settings.max_attempts:
                delivery.status, delivery.completed_at = "failed", now
                self._count_failure(db, webhook, now)
                outcome = Outcome.FAILED
            else:
                outcome = Outcome.RETRY
            db.commit()
            log.info("webhook %s delivery %s attempt %d: %s", webhook.id, delivery.id, number, error or status)
            return outcome

    def _send(self, webhook: Webhook, delivery: WebhookDelivery) -> tuple[int | None, str | None, int]:
        """(HTTP status or None, why it failed or None, milliseconds)."""
        started = time.perf_counter()
        body = delivery.body.encode()
        headers = signed_headers(
            self._box.decrypt(webhook.secret), message_id=delivery.id, event=delivery.event, timestamp=int(time.time()), body=body
        )
        status: int | None = None
        error: str | None = None
        try:
            target = check_webhook_target(webhook.url, self._settings, self._resolver)
            status = self._sender(target, body, headers, self._settings.timeout)
            if not 200 <= status < 300:
                error = f"HTTP {status}"
        except TargetRefused as refused:
            error = f"target refused: {refused}"
        except urllib3.exceptions.HTTPError as exc:
            error = _reason(exc)
        except OSError as exc:
            error = type(exc).__name__
        except Exception as exc:  # whatever else went wrong, the attempt is recorded and counted
            log.exception("webhook %s delivery %s: the attempt failed unexpectedly", webhook.id, delivery.id)
            error = type(exc).__name__
        return status, error[:200] if error else None, int((time.perf_counter() - started) * 1000)

    def _count_failure(self, db: DbSession, webhook: Webhook, now: datetime) -> None:
        """One more failed delivery in a row (counted in SQL: concurrent jobs must not lose one);
        the webhook is turned off at the configured number."""
        db.execute(
            update(Webhook)
            .where(Webhook.id == webhook.id)
            .values(consecutive_failures=Webhook.consecutive_failures + 1)
            .execution_options(synchronize_session=False)
        )
        db.refresh(webhook, ["consecutive_failures"])
        if webhook.consecutive_failures >= self._settings.disable_after and webhook.is_active:
            webhook.is_active, webhook.disabled_at = False, now
            AuditLog(db, self._clock).record(
                "webhook_disabled",
                user_id=webhook.user_id,
                client=ClientInfo(),
                success=False,
                details={"webhookId": webhook.id, "failures": webhook.consecutive_failures},
            )
            log.warning("webhook %s disabled after %d failed deliveries in a row", webhook.id, webhook.consecutive_failures)


def _reason(exc: urllib3.exceptions.HTTPError) -> str:
    """Why a request failed, by kind (the exception text can hold the URL's query)."""
    if isinstance(exc, urllib3.exceptions.TimeoutError):
        return "timeout"
    if isinstance(exc, urllib3.exceptions.SSLError):
        return "TLS error"
    if isinstance(exc, urllib3.exceptions.NewConnectionError):
        return "connection refused"
    return type(exc).__name__
