"""Webhook delivery to a real receiver on loopback: events fired where they happen, both signatures,
retries with exponential backoff by the RQ worker, every attempt recorded, disabling after
repeated failures, and the target checked again at delivery time."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler

import pyotp
import pytest
from flask import Flask
from rq import Queue
from rq.scheduler import RQScheduler
from sqlalchemy import select

from idp.audit.models import AuditEvent
from idp.delivery.queue import RqDeliveryQueue
from idp.extensions import db
from idp.webhooks.models import Webhook, WebhookAttempt, WebhookDelivery
from tests.admin.conftest import Admin
from tests.conftest import Api, BurstWorker
from tests.support.loopback import serving
from tests.webhooks.conftest import create_webhook

ALL_EVENTS = ["2fa.enabled", "2fa.disabled", "2fa.verified", "2fa.failed", "user.login", "user.logout"]


def delivery_queue(app: Flask) -> RqDeliveryQueue | None:
    queue = app.extensions["idp"].delivery_queue
    return queue if isinstance(queue, RqDeliveryQueue) else None


def rq_queue(app: Flask) -> Queue | None:
    """The queue of the webhooks' jobs."""
    queue = delivery_queue(app)
    return queue.webhooks if queue is not None else None


def run_jobs(app: Flask) -> None:
    """Work the queues until they are empty (inline delivery has already happened)."""
    queue = delivery_queue(app)
    if queue is not None:
        with app.app_context():
            BurstWorker(queue.queues, connection=queue.queue.connection).work(burst=True)


def attempts_of(app: Flask, delivery_id: str) -> list[tuple[int, int | None, bool]]:
    with app.app_context():
        rows = db.session.scalars(select(WebhookAttempt).where(WebhookAttempt.delivery_id == delivery_id).order_by(WebhookAttempt.attempt))
        return [(a.attempt, a.status_code, a.success) for a in rows]


def delivery(app: Flask, delivery_id: str) -> WebhookDelivery:
    with app.app_context():
        found = db.session.get(WebhookDelivery, delivery_id)
        assert found is not None
        return found


def send_test(api: Api, token: str, webhook_id: str) -> str:
    response = api.client.post(f"/api/webhooks/{webhook_id}/test", headers=api.bearer(token))
    assert response.status_code == 200, response.json
    return str(response.json["data"]["deliveryId"])


def test_a_password_login_fires_user_login_to_the_webhooks_that_want_it(api, app, receiver):
    """A sign-in reads the user's webhooks with the account's row (PostgreSQL) instead of looking
    them up for its event: the subscribed one gets user.login once, the other nothing."""
    token = api.token("alice")
    create_webhook(api, token, receiver, ["user.login"])
    create_webhook(api, token, receiver, ["user.logout"])
    assert api.login("alice").status_code == 200
    assert api.login("alice").status_code == 200
    run_jobs(app)
    assert receiver.events() == ["user.login", "user.login"]  # the user.logout webhook got none


def test_events_are_fired_where_they_happen_and_signed_both_ways(api, app, receiver):
    token = api.verified_token("alice")
    create_webhook(api, token, receiver, ALL_EVENTS)
    secret, backup_codes = api.enable_totp(token)  # 2fa.enabled
    wrong = api.client.post("/api/2fa/verify", json={"tempToken": api.challenge()["tempToken"], "code": "000000"})
    assert wrong.status_code == 400  # 2fa.failed
    temp = api.challenge()["tempToken"]
    signed_in = api.client.post("/api/2fa/verify", json={"tempToken": temp, "code": pyotp.TOTP(secret).now()})
    assert signed_in.status_code == 200, signed_in.json  # 2fa.verified, user.login
    fresh = signed_in.json["data"]["accessToken"]
    me = api.client.get("/api/auth/me", headers=api.bearer(fresh)).json["data"]["user"]
    method_id = api.client.get("/api/2fa/methods", headers=api.bearer(fresh)).json["data"]["methods"][0]["id"]
    assert api.client.post("/api/auth/logout", headers=api.bearer(fresh)).status_code == 200  # user.logout
    again = api.client.post("/api/2fa/verify-backup-code", json={"tempToken": api.challenge()["tempToken"], "code": backup_codes[0]})
    assert again.status_code == 200, again.json  # 2fa.verified (backup code), user.login
    removed = api.client.delete(f"/api/2fa/methods/{method_id}", headers=api.bearer(again.json["data"]["accessToken"]))
    assert removed.status_code == 200, removed.json  # 2fa.disabled
    run_jobs(app)

    events = receiver.events()
    assert events == [
        "2fa.enabled", "2fa.failed", "2fa.verified", "user.login", "user.logout", "2fa.verified", "user.login", "2fa.disabled"
    ], events
    user_id = me["id"]
    for item in receiver.received:
        assert item.legacy_valid and item.standard_valid, item.headers
        payload = item.payload
        assert set(payload) == {"id", "event", "data", "timestamp"}
        assert item.headers["X-Webhook-Event"] == payload["event"]
        assert item.headers["X-Webhook-Id"] == item.headers["Webhook-Id"] == payload["id"]
        assert abs(int(item.headers["X-Webhook-Timestamp"]) - time.time()) < 60
        assert datetime.fromisoformat(payload["timestamp"].replace("Z", "+00:00")).tzinfo == UTC
        assert payload["data"]["userId"] == user_id
        assert secret not in item.body.decode() and "000000" not in item.body.decode()
    by_event = {r.event: r.payload["data"] for r in reversed(receiver.received)}  # the first of each
    assert by_event["2fa.enabled"]["method"] == "totp" and by_event["2fa.verified"]["method"] == "totp"
    assert receiver.received[5].payload["data"]["method"] == "backup_code"
    assert by_event["2fa.failed"]["method"] == "code" and by_event["2fa.failed"]["attemptsLeft"] == 4
    assert by_event["user.logout"]["sessionId"]
    assert len({r.payload["id"] for r in receiver.received}) == len(receiver.received)


def test_a_password_login_fires_its_webhook(api, app, receiver):
    """A sign-in without a second factor writes its session and event in one autocommit statement
    and skips the unit of work's commit when nothing else was written: a delivery the event
    queued is such a write, committed and sent."""
    token = api.verified_token("alice")
    create_webhook(api, token, receiver, ["user.login"])
    assert api.login("alice").status_code == 200
    run_jobs(app)
    assert receiver.events() == ["user.login"]
    assert receiver.received[0].payload["data"]["method"] == "pwd"


def test_an_administrators_reset_tells_the_owner_nothing_of_the_administrators_address(api, app, receiver):
    """The owner's webhook and security alert get no address or browser of the administrator who
    reset their second factor, as their activity page does not; the audit log across users keeps them."""
    token = api.verified_token("alice")
    create_webhook(api, token, receiver, ["2fa.disabled"])
    api.enable_totp(token)
    admin = Admin(api, app)
    reset = api.client.post(
        f"/api/admin/users/{admin.user_id('alice')}/reset-2fa",
        headers={**admin.headers, "User-Agent": "AdminBrowser/1.0"},
        environ_base={"REMOTE_ADDR": "203.0.113.9"},
    )
    assert reset.status_code == 200, reset.json
    run_jobs(app)
    (told,) = receiver.received
    assert told.event == "2fa.disabled" and told.payload["data"]["reason"] == "admin_reset"
    assert told.payload["data"]["ipAddress"] is None and told.payload["data"]["userAgent"] is None
    alert = api.outbox.last("alice@example.com")
    assert "administrator reset" in alert["text"] and "203.0.113.9" not in alert["text"] + alert["html"]
    kept = admin.get("/audit-logs", userId=admin.user_id("alice"), action="2fa_disabled").json["data"]["logs"][0]
    assert kept["ipAddress"] == "203.0.113.9" and kept["userAgent"] == "AdminBrowser/1.0"


def test_only_subscribed_events_of_the_owner_are_sent(api, app, receiver):
    alice = api.verified_token("alice")
    create_webhook(api, alice, receiver, ["2fa.enabled"])
    assert api.login("alice").status_code == 200  # user.login: not subscribed
    bob = api.verified_token("bob")
    api.enable_totp(bob)  # bob's event: not alice's webhook
    api.enable_totp(alice)
    run_jobs(app)
    assert receiver.events() == ["2fa.enabled"]


def test_a_sign_in_on_the_hosted_pages_fires_the_same_event(api, app, receiver):
    token = api.token("alice")
    create_webhook(api, token, receiver, ["user.login"])
    browser = app.test_client()
    page = browser.get("/login")
    import re

    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.get_data(as_text=True))
    assert csrf
    response = browser.post("/login", data={"csrf_token": csrf.group(1), "identifier": "alice", "password": Api.PASSWORD})
    assert response.status_code in (302, 303), response.get_data(as_text=True)[:500]
    run_jobs(app)
    assert receiver.events() == ["user.login"]


def test_a_test_event_reaches_a_webhook_whatever_it_subscribes_to(api, app, receiver):
    token = api.token("alice")
    webhook = create_webhook(api, token, receiver, ["2fa.enabled"])
    delivery_id = send_test(api, token, webhook["id"])
    run_jobs(app)
    assert receiver.events() == ["webhook.test"] and receiver.received[0].payload["id"] == delivery_id
    assert receiver.received[0].payload["data"]["webhookId"] == webhook["id"]
    assert receiver.received[0].legacy_valid and receiver.received[0].standard_valid


@pytest.mark.parametrize("backend", ["postgres"])  # RQ on Redis
def test_two_failures_then_success_are_all_recorded(api, app, receiver):
    token = api.token("alice")
    webhook = create_webhook(api, token, receiver, ["user.login"])
    receiver.script = [500, 503]
    delivery_id = send_test(api, token, webhook["id"])
    run_jobs(app)
    assert attempts_of(app, delivery_id) == [(1, 500, False), (2, 503, False), (3, 200, True)]
    assert delivery(app, delivery_id).status == "delivered" and delivery(app, delivery_id).attempts == 3
    assert len({r.payload["id"] for r in receiver.received}) == 1  # the same message each time
    assert all(r.legacy_valid and r.standard_valid for r in receiver.received)
    listed = api.client.get(f"/api/webhooks/{webhook['id']}/deliveries", headers=api.bearer(token)).json["data"]["deliveries"]
    assert listed[0]["id"] == delivery_id and listed[0]["status"] == "delivered"
    assert [(a["attempt"], a["statusCode"], a["success"]) for a in listed[0]["attempts"]] == [(1, 500, False), (2, 503, False), (3, 200, True)]
    assert listed[0]["attempts"][0]["error"] == "HTTP 500"


@pytest.mark.parametrize("backend", ["postgres"])  # RQ on Redis
def test_a_delivery_stops_after_five_attempts(api, app, receiver):
    token = api.token("alice")
    webhook = create_webhook(api, token, receiver)
    receiver.script = [500] * 10
    delivery_id = send_test(api, token, webhook["id"])
    run_jobs(app)
    assert attempts_of(app, delivery_id) == [(n, 500, False) for n in range(1, 6)]
    assert delivery(app, delivery_id).status == "failed" and len(receiver.received) == 5
    shown = api.client.get(f"/api/webhooks/{webhook['id']}", headers=api.bearer(token)).json["data"]["webhook"]
    assert shown["consecutiveFailures"] == 1 and shown["isActive"] is True


@pytest.mark.parametrize("backend", ["postgres"])  # RQ on Redis
def test_retries_wait_with_exponential_backoff(api, make_app, receiver):
    """RQ holds each retry in its scheduled registry, 1 s, then 2 s after the failure (base 1 s),
    and the scheduler moves it back to the queue when it is due."""
    app = make_app(WEBHOOK_ALLOW_PRIVATE_TARGETS="true", WEBHOOK_RETRY_BASE_SECONDS="1")
    api = Api(app.test_client())
    token = api.token("alice")
    webhook = create_webhook(api, token, receiver)
    receiver.script = [500, 500]
    delivery_id = send_test(api, token, webhook["id"])
    queue = rq_queue(app)
    assert queue is not None
    scheduler = RQScheduler([queue], connection=queue.connection)
    scheduler.prepare_registries([queue.name])
    waits = []
    for _ in range(2):
        failed_at = time.time()
        run_jobs(app)
        registry = queue.scheduled_job_registry
        (job_id,) = registry.get_job_ids()
        due = registry.get_scheduled_time(job_id).timestamp()
        waits.append(due - failed_at)
        deadline = time.time() + 5
        while registry.get_job_ids() and time.time() < deadline:  # RQ counts in whole seconds
            time.sleep(0.1)
            scheduler.enqueue_scheduled_jobs()
    run_jobs(app)
    # RQ keeps whole seconds (rounded down): 1 s is seen as (0, 1], 2 s as (1, 2], plus the run's own time
    assert 0 < waits[0] <= 1.5 and 1 < waits[1] <= 2.5, waits
    assert attempts_of(app, delivery_id) == [(1, 500, False), (2, 500, False), (3, 200, True)]


@pytest.mark.parametrize("backend", ["embedded"])  # no Redis
def test_without_redis_a_delivery_is_attempted_once_inline(api, app, receiver):
    token = api.token("alice")
    webhook = create_webhook(api, token, receiver)
    receiver.script = [500]
    delivery_id = send_test(api, token, webhook["id"])  # delivered during the request, after its commit
    assert attempts_of(app, delivery_id) == [(1, 500, False)] and delivery(app, delivery_id).status == "failed"


def test_a_webhook_is_disabled_after_ten_failed_deliveries_in_a_row(make_app, receiver):
    app = make_app(WEBHOOK_ALLOW_PRIVATE_TARGETS="true", WEBHOOK_RETRY_BASE_SECONDS="0", WEBHOOK_MAX_ATTEMPTS="1")
    api = Api(app.test_client())
    token = api.token("alice")
    webhook = create_webhook(api, token, receiver)
    receiver.script = [500] * 9 + [200] + [500] * 10
    for _ in range(10):  # nine failures, then a success: the count starts again
        send_test(api, token, webhook["id"])
        run_jobs(app)
    path = f"/api/webhooks/{webhook['id']}"
    assert api.client.get(path, headers=api.bearer(token)).json["data"]["webhook"]["consecutiveFailures"] == 0
    for _ in range(10):
        send_test(api, token, webhook["id"])
        run_jobs(app)
    shown = api.client.get(path, headers=api.bearer(token)).json["data"]["webhook"]
    assert shown["isActive"] is False and shown["disabledAt"] and shown["consecutiveFailures"] == 10
    with app.app_context():
        assert db.session.scalars(select(AuditEvent).where(AuditEvent.event == "webhook_disabled")).one().details["webhookId"] == webhook["id"]
    refused = api.client.post(f"{path}/test", headers=api.bearer(token))
    assert refused.status_code == 409
    assert api.login("alice").status_code == 200 and len(receiver.received) == 20  # a disabled webhook gets nothing
    turned_on = api.client.patch(path, headers=api.bearer(token), json={"isActive": True}).json["data"]["webhook"]
    assert turned_on["isActive"] and turned_on["consecutiveFailures"] == 0 and turned_on["disabledAt"] is None


def test_the_target_is_checked_again_when_delivering(make_app, receiver, backend):
    """A webhook saved while private targets were allowed is not delivered once they are not."""
    allowed = make_app(WEBHOOK_ALLOW_PRIVATE_TARGETS="true", WEBHOOK_MAX_ATTEMPTS="1")
    api = Api(allowed.test_client())
    token = api.token("alice")
    webhook = create_webhook(api, token, receiver)
    strict = make_app(WEBHOOK_MAX_ATTEMPTS="1", DELIVERY_QUEUE=_queue_name(allowed))
    strict_api = Api(strict.test_client())
    response = strict_api.client.post(f"/api/webhooks/{webhook['id']}/test", headers=strict_api.bearer(token))
    assert response.status_code == 200
    run_jobs(strict)
    assert receiver.received == []
    with strict.app_context():
        attempt = db.session.scalars(select(WebhookAttempt)).one()
        assert attempt.status_code is None and attempt.error == "target refused: points to a private, loopback or reserved address"


def _queue_name(app: Flask) -> str:
    queue = delivery_queue(app)
    return queue.queue.name if queue is not None else "unused"


@pytest.mark.parametrize("backend", ["postgres"])  # inline delivery leaves nothing pending
def test_a_disabled_webhook_gets_no_pending_delivery(api, app, receiver):
    token = api.token("alice")
    webhook = create_webhook(api, token, receiver)
    delivery_id = send_test(api, token, webhook["id"])
    assert api.client.patch(f"/api/webhooks/{webhook['id']}", headers=api.bearer(token), json={"isActive": False}).status_code == 200
    run_jobs(app)
    assert receiver.received == [] and delivery(app, delivery_id).status == "cancelled"
    with app.app_context():
        assert db.session.scalars(select(Webhook)).one().consecutive_failures == 0


class Trickle(BaseHTTPRequestHandler):
    """A 200 answer sent one byte at a time, 0.2 s apart (about 9 s in all): every read is quick."""

    def do_POST(self) -> None:  # noqa: N802 (http.server's name)
        self.rfile.read(int(self.headers["Content-Length"]))
        for byte in b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Slow: aaaaaaaaaa\r\n\r\nok":
            try:
                self.wfile.write(bytes([byte]))
                self.wfile.flush()
            except OSError:  # cut off: the attempt is over
                return
            time.sleep(0.2)

    def log_message(self, *args) -> None:
        pass


def _deliver_once(make_app, url: str, username: str = "alice", **env: str) -> tuple[str, list[WebhookAttempt]]:
    app = make_app(WEBHOOK_ALLOW_PRIVATE_TARGETS="true", WEBHOOK_RETRY_BASE_SECONDS="0", WEBHOOK_MAX_ATTEMPTS="1", **env)
    api = Api(app.test_client())
    token = api.token(username)
    made = api.client.post("/api/webhooks", headers=api.bearer(token), json={"url": url, "events": ["user.login"]})
    assert made.status_code == 201, made.json
    delivery_id = send_test(api, token, made.json["data"]["webhook"]["id"])
    run_jobs(app)
    with app.app_context():
        attempts = db.session.scalars(select(WebhookAttempt).where(WebhookAttempt.delivery_id == delivery_id)).all()
        return delivery(app, delivery_id).status, list(attempts)


def test_the_timeout_bounds_the_whole_attempt(make_app):
    """WEBHOOK_TIMEOUT_SECONDS is the attempt's, not each read's: a receiver answering byte by byte
    held the worker (and the login codes queued behind it) for 9 s, then counted as delivered."""
    with serving(Trickle) as port:
        started = time.monotonic()
        status, [attempt] = _deliver_once(make_app, f"http://127.0.0.1:{port}/slow", WEBHOOK_TIMEOUT_SECONDS="1")
        assert time.monotonic() - started < 5
    assert status == "failed" and attempt.success is False and attempt.status_code is None and attempt.error == "timeout"
    assert attempt.duration_ms < 2500


def test_an_internationalised_host_is_reached_by_its_a_label(make_app, receiver, monkeypatch):
    """A host name beyond Latin-1 went into the Host header as it was: http.client raised
    UnicodeEncodeError, no attempt was recorded and the delivery stayed pending for ever."""
    import socket

    asked: list[str] = []
    real = socket.getaddrinfo

    def example_on_loopback(host, *args, **kwargs):
        asked.append(host)
        return real("127.0.0.1" if host == "xn--r8jz45g.example" else host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", example_on_loopback)
    hosts: list[str] = []
    take = receiver.take
    receiver.take = lambda headers, body: hosts.append(headers.get("Host", "")) or take(headers, body)
    app = make_app(WEBHOOK_ALLOW_PRIVATE_TARGETS="true", WEBHOOK_MAX_ATTEMPTS="1")
    api = Api(app.test_client())
    token = api.token("alice")
    url = f"http://例え.example:{receiver.port}/hooks/idp?source=test"
    made = api.client.post("/api/webhooks", headers=api.bearer(token), json={"url": url, "events": ["user.login"]})
    assert made.status_code == 201, made.json
    receiver.secret = made.json["data"]["secret"]
    delivery_id = send_test(api, token, made.json["data"]["webhook"]["id"])
    run_jobs(app)
    assert attempts_of(app, delivery_id) == [(1, 200, True)] and delivery(app, delivery_id).status == "delivered"
    assert hosts == [f"xn--r8jz45g.example:{receiver.port}"] and "例え.example" not in asked


def test_an_attempt_that_fails_unexpectedly_is_recorded_and_counted(make_app, receiver, monkeypatch):
    """Whatever an attempt raises (here what RQ raises in a job past its time limit) is recorded as a
    failure; the delivery stayed pending, never counted towards disabling the webhook."""
    import urllib3
    from rq.timeouts import JobTimeoutException

    def stuck(*args, **kwargs):
        raise JobTimeoutException("Task exceeded maximum timeout value (60 seconds)")

    monkeypatch.setattr(urllib3.HTTPConnectionPool, "urlopen", stuck)
    status, [attempt] = _deliver_once(make_app, receiver.url)
    assert status == "failed" and attempt.error == "JobTimeoutException" and attempt.status_code is None


def test_an_https_target_is_delivered_to_when_its_certificate_is_trusted(make_app, server_tls, tls_files, monkeypatch):
    """Over TLS, through the same deadline-bound connection: a certificate the system does not trust
    is a failed attempt ("TLS error"); trusted (SSL_CERT_FILE, as an operator would add a CA), the
    answer counts."""
    from http.server import ThreadingHTTPServer
    from threading import Thread

    class Answer(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server's name)
            self.rfile.read(int(self.headers["Content-Length"]))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Answer)
    server.socket = server_tls.wrap_socket(server.socket, server_side=True)
    Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    url = f"https://127.0.0.1:{server.server_address[1]}/hooks"
    try:
        status, [attempt] = _deliver_once(make_app, url)
        assert status == "failed" and attempt.error == "TLS error"
        monkeypatch.setenv("SSL_CERT_FILE", str(tls_files[0]))
        status, [attempt] = _deliver_once(make_app, url, username="bob")
        assert status == "delivered" and attempt.status_code == 204, attempt.error
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("backend", ["postgres"])  # the queues of the worker (Redis)
def test_a_code_is_sent_before_the_webhooks_queued_ahead_of_it(api, app, receiver, monkeypatch):
    """Webhooks have a queue of their own, taken when the one of email and SMS is empty: a sign-in
    code waited behind every delivery queued before it, each up to WEBHOOK_TIMEOUT_SECONDS."""
    from idp.delivery import tasks
    from idp.observability import delivery_jobs
    from idp.wiring import delivery as outgoing

    token = api.token("alice")
    webhook = create_webhook(api, token, receiver)
    for _ in range(3):
        send_test(api, token, webhook["id"])
    with app.app_context():
        outgoing().email("alice@example.com", "login-code", username="alice", code="493021", minutes=5, purpose="sign in")
        db.session.commit()
    done: list[str] = []
    perform = tasks.perform

    def recorded(message, *args, **kwargs):
        done.append(type(message).__name__)
        return perform(message, *args, **kwargs)

    monkeypatch.setattr(tasks, "perform", recorded)
    run_jobs(app)
    assert done.count("WebhookJob") == 3 and "OutgoingEmail" in done
    assert done == sorted(done, key=lambda kind: kind == "WebhookJob"), done  # every email first
    queues = delivery_queue(app)
    assert queues is not None  # the counts of both queues' jobs, under DELIVERY_QUEUE's name (/metrics)
    counts = queues.queue.connection.hgetall(delivery_jobs.counts_key(queues.queue.name))
    assert counts[b"webhook:queued"] == counts[b"webhook:done"] == b"3"
