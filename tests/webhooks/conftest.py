"""A webhook receiver on loopback that checks both signatures of every request it gets, and the
app configured to reach it (private targets allowed, as an operator would for an internal receiver)."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

import pytest
from flask import Flask
from standardwebhooks.webhooks import Webhook as StandardWebhook

from tests.conftest import Api
from tests.delivery.conftest import server_tls as server_tls  # noqa: F401  (the fixtures, for a TLS receiver)
from tests.delivery.conftest import tls_files as tls_files  # noqa: F401
from tests.support.loopback import serving


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    legacy_valid: bool
    standard_valid: bool

    @property
    def payload(self) -> dict[str, Any]:
        return json.loads(self.body)

    @property
    def event(self) -> str:
        return str(self.payload["event"])


@dataclass
class Receiver:
    """Answers `script` statuses in turn (then 200); `secret` is set once the webhook is created."""

    port: int
    secret: str | None = None
    script: list[int] = field(default_factory=list)
    received: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/idp?source=test"

    def events(self) -> list[str]:
        return [r.event for r in self.received]

    def take(self, headers: dict[str, str], body: bytes) -> int:
        assert self.secret is not None, "a request arrived before the webhook was created"
        expected = hmac.new(self.secret.encode(), body, hashlib.sha256).hexdigest()
        legacy_valid = hmac.compare_digest(headers.get("X-Webhook-Signature", ""), expected)
        try:
            StandardWebhook(self.secret).verify(body, {k.lower(): v for k, v in headers.items()})
            standard_valid = True
        except Exception:
            standard_valid = False
        with self.lock:
            self.received.append(Received(headers, body, legacy_valid, standard_valid))
            return self.script.pop(0) if self.script else 200


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    holder: list[Receiver] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
            assert self.path == "/hooks/idp?source=test", self.path
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            status = holder[0].take(dict(self.headers.items()), body)
            self.send_response(status)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, format: str, *args: Any) -> None:
            pass

    with serving(Handler) as port:
        holder.append(Receiver(port))
        yield holder[0]


@pytest.fixture
def app(make_app: Callable[..., Flask]) -> Flask:
    """Private targets allowed (the receiver is on loopback); retries at once, no backoff, so that
    a burst worker runs every attempt (the backoff itself has its own test)."""
    return make_app(WEBHOOK_ALLOW_PRIVATE_TARGETS="true", WEBHOOK_RETRY_BASE_SECONDS="0")


def create_webhook(api: Api, token: str, receiver: Receiver, events: list[str] | None = None) -> dict[str, Any]:
    response = api.client.post(
        "/api/webhooks", headers=api.bearer(token), json={"url": receiver.url, "events": events or ["user.login"]}
    )
    assert response.status_code == 201, response.json
    data = response.json["data"]
    receiver.secret = data["secret"]
    return data["webhook"]
