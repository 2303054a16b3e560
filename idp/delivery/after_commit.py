"""Messages wait in `session.info` and leave only when the session's transaction commits.

- commit of the outermost transaction: every pending message is submitted to its queue;
- rollback (of the whole transaction, or of a savepoint): the messages queued inside it are dropped;
- a transaction that ends any other way (session closed without commit): its messages are dropped.

A savepoint that is released (nested commit) keeps its messages waiting for the outer commit.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy import event
from sqlalchemy.orm import Session, SessionTransaction

from idp.delivery.messages import Message
from idp.delivery.queue import DeliveryQueue

log = logging.getLogger("idp.delivery")

PENDING = "idp.delivery.pending"
LISTENING = "idp.delivery.listening"


@dataclass(frozen=True)
class Pending:
    message: Message
    label: str
    queue: DeliveryQueue
    # The innermost transaction open when the message was queued; None: before the session began one.
    transaction: SessionTransaction | None


def send_after_commit(session: Session, queue: DeliveryQueue, message: Message, label: str) -> None:
    """Submit `message` to `queue` once `session` commits; forget it if the work is rolled back."""
    if not session.info.get(LISTENING):
        event.listen(session, "after_commit", _after_commit)
        event.listen(session, "after_soft_rollback", _after_soft_rollback)
        event.listen(session, "after_transaction_end", _after_transaction_end)
        session.info[LISTENING] = True
    transaction = session.get_nested_transaction() or session.get_transaction()
    session.info.setdefault(PENDING, []).append(Pending(message, label, queue, transaction))


def pending(session: Session) -> list[Pending]:
    """Messages waiting for this session's commit (for tests and diagnostics)."""
    return list(session.info.get(PENDING, []))


def _after_commit(session: Session) -> None:
    if session.in_nested_transaction():
        return  # a savepoint was released: the outer transaction may still roll back
    waiting: list[Pending] = session.info.pop(PENDING, [])
    for item in waiting:
        try:
            item.queue.submit(item.message, item.label)
        except Exception:
            # The data is committed already: raising here would turn a success into a 500.
            log.exception("delivery: could not submit %s after commit; the message is lost", item.label)


def _after_soft_rollback(session: Session, previous_transaction: SessionTransaction) -> None:
    _drop_within(session, previous_transaction)


def _after_transaction_end(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is None:
        _drop_within(session, transaction)


def _drop_within(session: Session, ended: SessionTransaction) -> None:
    waiting: list[Pending] | None = session.info.get(PENDING)
    if not waiting:
        return
    kept = [item for item in waiting if not _inside(item.transaction, ended)]
    if len(kept) != len(waiting):
        log.info("delivery: %d message(s) dropped with their rolled-back transaction", len(waiting) - len(kept))
    session.info[PENDING] = kept


def _inside(transaction: SessionTransaction | None, ended: SessionTransaction) -> bool:
    if transaction is None:
        return ended.parent is None  # queued before the session began: belongs to the outermost one
    current: SessionTransaction | None = transaction
    while current is not None:
        if current is ended:
            return True
        current = current.parent
    return False
