"""RQ on the real Redis: jobs carry rendered strings, failed attempts are retried, jobs that never succeed are kept and logged."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import pytest
from rq import Queue
from rq.job import Job

from idp.config import DeliverySettings
from idp.delivery.queue import RqDeliveryQueue
from idp.extensions import db
from idp.wiring import components, delivery
from tests.observability.conftest import capturing_logs

CODE = "493021"
PRODUCTION_INTERVALS = ",".join(str(i) for i in DeliverySettings.retry_intervals)

pytestmark = pytest.mark.parametrize("backend", ["postgres"])  # the backend with Redis


def queue_of(app) -> Queue:
    with app.app_context():
        queue = components().delivery_queue
        assert isinstance(queue, RqDeliveryQueue)
        return queue.queue


def send_code(app) -> None:
    with app.app_context():
        delivery().email("alice@example.com", "login-code", username="alice", code=CODE, minutes=5, purpose="sign in")
        db.session.commit()


def test_a_job_carries_only_the_rendered_strings(make_app, smtp_server, queue_name, run_worker):
    app = make_app(**smtp_server.env(DELIVERY_QUEUE=queue_name, DELIVERY_RETRY_INTERVALS=PRODUCTION_INTERVALS))
    send_code(app)

    [job] = queue_of(app).get_jobs()
    assert job.func_name == "idp.delivery.tasks.deliver_email"
    to, subject, text, html = job.args
    assert (to, subject) == ("alice@example.com", "Your verification code")
    assert CODE in text and CODE in html and "<html" in html
    assert all(isinstance(a, str) for a in job.args) and job.kwargs == {}
    assert CODE not in job.description, "RQ logs the description"
    assert job.retries_left == 5 and job.retry_intervals == [10, 30, 60, 120, 300]

    run_worker(app)
    [mail] = smtp_server.messages()
    assert mail["Subject"] == "Your verification code" and mail["To"] == "alice@example.com"


def test_a_refused_delivery_is_retried_and_then_arrives(make_app, smtp_server, queue_name, run_worker, caplog):
    app = make_app(**smtp_server.env(DELIVERY_QUEUE=queue_name, DELIVERY_RETRY_INTERVALS="0,0,0,0,0"))
    smtp_server.refuse = 1  # 451 to the first attempt
    send_code(app)

    with caplog.at_level(logging.INFO):
        run_worker(app)

    assert smtp_server.attempts == 2
    [mail] = smtp_server.messages()
    assert CODE in mail.get_body(preferencelist=("plain",)).get_content()
    retried = [r for r in caplog.records if r.name == "idp.delivery" and "will retry" in r.getMessage()]
    assert len(retried) == 1 and "SMTP 451" in retried[0].getMessage()
    assert queue_of(app).failed_job_registry.count == 0


def test_a_message_the_server_took_is_not_sent_again_when_quit_goes_wrong(make_app, smtp_server, queue_name, run_worker):
    """The server took the message, then answered QUIT with 421: the job is done. `with smtp:` raised
    for it, and each of the five retries delivered the code once more."""

    async def handle_QUIT(server, session, envelope):  # noqa: N802 (aiosmtpd's hook)
        return "421 4.3.2 Service shutting down"

    smtp_server.handle_QUIT = handle_QUIT
    app = make_app(**smtp_server.env(DELIVERY_QUEUE=queue_name, DELIVERY_RETRY_INTERVALS="0,0,0,0,0"))
    send_code(app)
    run_worker(app)
    assert len(smtp_server.envelopes) == 1
    assert queue_of(app).failed_job_registry.count == 0


def test_an_sms_answered_with_500_is_retried_and_then_sent(make_app, twilio_server, queue_name, run_worker, caplog):
    app = make_app(**twilio_server.env(DELIVERY_QUEUE=queue_name, DELIVERY_RETRY_INTERVALS="0,0,0,0,0"))
    twilio_server.fail = 1
    with app.app_context():
        delivery().sms("+15551234567", "login-code", code=CODE, minutes=5, service_name="Example")
        db.session.commit()

    with caplog.at_level(logging.DEBUG):
        run_worker(app)

    assert [r["status"] for r in twilio_server.requests] == [500, 201]
    [sent] = twilio_server.accepted
    assert sent["user"] == twilio_server.account_sid
    assert sent["form"]["From"] == "+15005550006" and sent["form"]["To"] == "+15551234567"
    assert sent["form"]["Body"].startswith(f"{CODE} is your Example code.")
    retried = [r.getMessage() for r in caplog.records if r.name == "idp.delivery" and "will retry" in r.getMessage()]
    assert len(retried) == 1 and "HTTP 500" in retried[0]
    assert not [r for r in caplog.records if CODE in r.getMessage() or CODE in (r.exc_text or "")], "a log line holds the code"


def test_a_failed_jobs_message_reaches_no_json_log_line(make_app, twilio_server, queue_name, run_worker):
    """RQ logs a failed job with its arguments as `extra=` fields, which the JSON format (production's
    default) writes out: a delivery job's arguments are the message, its code with it."""
    app = make_app(**twilio_server.env(DELIVERY_QUEUE=queue_name, DELIVERY_RETRY_INTERVALS="0", LOG_FORMAT="json"))
    twilio_server.fail = 1
    with app.app_context():
        delivery().sms("+15551234567", "login-code", code=CODE, minutes=5, service_name="Example")
        db.session.commit()
    with capturing_logs() as logs:
        run_worker(app)
    assert len(twilio_server.accepted) == 1
    [failure] = [r for r in logs.records() if r["logger"] == "rq.worker" and r["level"] == "ERROR"]
    assert failure["func"] == "idp.delivery.tasks.deliver_sms" and failure["job_id"]  # what failed is still said
    assert not [line for line in logs.lines if CODE in line], "a log line holds the code"


def test_a_job_failing_every_attempt_lands_in_the_failed_registry_and_is_logged(
    make_app, smtp_server, queue_name, rq_connection, run_worker, caplog
):
    app = make_app(**smtp_server.env(DELIVERY_QUEUE=queue_name, DELIVERY_RETRY_INTERVALS="0,0,0,0,0"))
    smtp_server.refuse = 100
    send_code(app)
    [job_id] = queue_of(app).job_ids

    with caplog.at_level(logging.DEBUG):
        run_worker(app)

    assert smtp_server.attempts == 6  # the first attempt and 5 retries
    assert smtp_server.envelopes == []
    failed = queue_of(app).failed_job_registry
    assert failed.get_job_ids() == [job_id]
    assert Job.fetch(job_id, connection=rq_connection).get_status() == "failed"
    errors = [r for r in caplog.records if r.name == "idp.delivery" and r.levelno == logging.ERROR]
    assert len(errors) == 1
    assert job_id in errors[0].getMessage() and "failed for good" in errors[0].getMessage()
    ours = [r for r in caplog.records if r.name != "mail.log"]  # mail.log: the SMTP stand-in's own debug lines
    assert not [r for r in ours if CODE in r.getMessage() or CODE in (r.exc_text or "")], "a log line holds the code"


def test_retries_back_off_on_the_configured_schedule(make_app, smtp_server, queue_name, rq_connection, run_worker):
    """Production intervals: after a failure the job waits in the scheduled registry, it does not spin."""
    app = make_app(**smtp_server.env(DELIVERY_QUEUE=queue_name, DELIVERY_RETRY_INTERVALS=PRODUCTION_INTERVALS))
    smtp_server.refuse = 1
    send_code(app)
    [job_id] = queue_of(app).job_ids
    before = datetime.now(UTC)

    run_worker(app)

    assert smtp_server.attempts == 1
    scheduled = queue_of(app).scheduled_job_registry
    assert scheduled.get_job_ids() == [job_id]
    wait = (scheduled.get_scheduled_time(job_id).replace(tzinfo=UTC) - before).total_seconds()
    assert 9 <= wait <= 12
    assert Job.fetch(job_id, connection=rq_connection).retries_left == 4


def test_the_worker_command_sends_the_queued_mail(make_app, smtp_server, queue_name):
    app = make_app(**smtp_server.env(DELIVERY_QUEUE=queue_name))
    send_code(app)

    result = app.test_cli_runner().invoke(args=["worker", "--burst"])

    assert result.exit_code == 0, result.output
    assert queue_name in result.output
    [mail] = smtp_server.messages()
    assert mail["To"] == "alice@example.com"


def test_the_worker_command_explains_that_it_needs_redis(make_app):
    result = make_app(REDIS_URL="").test_cli_runner().invoke(args=["worker"])
    assert result.exit_code != 0
    assert "needs Redis" in result.output



def test_the_worker_command_names_a_redis_it_cannot_reach(make_app):
    """A wrong REDIS_URL, or Redis not up yet, ended the worker in a redis-py traceback."""
    app = make_app(REDIS_URL="redis://:hunter2@127.0.0.1:1/0")
    result = app.test_cli_runner().invoke(args=["worker", "--burst"])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "cannot reach Redis at 127.0.0.1:1" in result.output and "hunter2" not in result.output
