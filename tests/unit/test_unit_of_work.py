"""When a sign-in's session is opened, the request's unit of work is committed only if that
commits something: a transaction it began, or messages waiting for a commit."""

from sqlalchemy.orm import Session

from idp.accounts.sessions import _has_work
from idp.delivery.after_commit import send_after_commit
from idp.delivery.messages import OutgoingSms


class Kept:
    def __init__(self) -> None:
        self.sent: list[str] = []

    def submit(self, message, label: str) -> None:
        self.sent.append(label)


def test_an_untouched_session_has_nothing_to_commit():
    assert not _has_work(Session())


def test_a_begun_transaction_is_work():
    session = Session()
    session.begin()
    assert _has_work(session)


def test_messages_queued_before_any_transaction_are_work_and_leave_with_the_commit():
    session, queue = Session(), Kept()
    send_after_commit(session, queue, OutgoingSms("+15550100", "code 493021"), "sms login-code")
    assert not session.in_transaction() and _has_work(session)
    session.commit()
    assert queue.sent == ["sms login-code"] and not _has_work(session)
