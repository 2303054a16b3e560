"""Stand-ins for the outside world of delivery, on loopback: an SMTP server (aiosmtpd) and Twilio's Messages API."""

from __future__ import annotations

import base64
import datetime as dt
import ipaddress
import json
import re
import socket
import ssl
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest
import redis
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, Envelope
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from flask import Flask
from rq import Queue

from idp.delivery.queue import RqDeliveryQueue
from idp.wiring import components
from tests.conftest import BurstWorker

TWILIO_SID = "AC" + "0123456789abcdef" * 2


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class SmtpStandIn:
    """Records what it accepts; refuses the next `refuse` deliveries with 451 (a temporary failure)."""

    host: str = "127.0.0.1"
    port: int = 0
    refuse: int = 0
    attempts: int = 0
    envelopes: list[Envelope] = field(default_factory=list)
    logins: list[str] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Envelope) -> str:
        self.attempts += 1
        if self.refuse > 0:
            self.refuse -= 1
            return "451 4.3.0 Try again later"
        self.envelopes.append(envelope)
        return "250 2.0.0 OK"

    def authenticate(self, server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
        ok = auth_data.login == b"mailer" and auth_data.password == b"s3cret"
        if ok:
            self.logins.append(auth_data.login.decode())
        return AuthResult(success=ok)

    def env(self, **extra: str) -> dict[str, str]:
        """Settings that point the app's SMTP sender here (plain SMTP, no login)."""
        return {
            "EMAIL_HOST": self.host,
            "EMAIL_PORT": str(self.port),
            "EMAIL_STARTTLS": "false",
            "EMAIL_FROM": "Identity <no-reply@example.com>",
            **extra,
        }

    def messages(self) -> list[EmailMessage]:
        return [message_from_bytes(e.original_content or b"", policy=policy.default) for e in self.envelopes]


@pytest.fixture
def start_smtp() -> Iterator[Callable[..., SmtpStandIn]]:
    """Start an aiosmtpd server on loopback; keyword arguments go to its Controller (TLS, auth)."""
    controllers: list[Controller] = []

    def start(**kwargs: Any) -> SmtpStandIn:
        stand_in = SmtpStandIn(port=free_port())
        if kwargs.pop("with_auth", False):
            kwargs["authenticator"] = stand_in.authenticate
        controller = Controller(stand_in, hostname=stand_in.host, port=stand_in.port, **kwargs)
        controller.start()
        controllers.append(controller)
        return stand_in

    yield start
    for controller in controllers:
        controller.stop()


@pytest.fixture
def smtp_server(start_smtp: Callable[..., SmtpStandIn]) -> SmtpStandIn:
    return start_smtp()


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (and its key), trusted by the tests' client context only."""
    folder = tmp_path_factory.mktemp("tls")
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    return cert_path, key_path


@pytest.fixture
def server_tls(tls_files: tuple[Path, Path]) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*tls_files)
    return context


@pytest.fixture
def client_tls(tls_files: tuple[Path, Path]) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(tls_files[0]))


@dataclass
class TwilioStandIn:
    """Plays POST /2010-04-01/Accounts/{sid}/Messages.json; answers 500 to the next `fail` requests."""

    url: str = ""
    fail: int = 0
    requests: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    account_sid: str = TWILIO_SID

    def env(self, **extra: str) -> dict[str, str]:
        """Settings that point the app's Twilio client here."""
        return {
            "TWILIO_ACCOUNT_SID": self.account_sid,
            "TWILIO_AUTH_TOKEN": "twilio-test-token",
            "TWILIO_PHONE_NUMBER": "+15005550006",
            "TWILIO_API_BASE_URL": self.url,
            **extra,
        }

    @property
    def accepted(self) -> list[dict[str, Any]]:
        return [r for r in self.requests if r["status"] == 201]


MESSAGES_PATH = re.compile(r"^/2010-04-01/Accounts/(?P<sid>AC[0-9a-f]{32})/Messages\.json$")


def _twilio_handler(stand_in: TwilioStandIn) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            match = MESSAGES_PATH.match(self.path)
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            form = {k: v[0] for k, v in parse_qs(raw.decode()).items()}
            auth = self.headers.get("Authorization", "")
            user = base64.b64decode(auth.removeprefix("Basic ")).decode().partition(":")[0] if auth.startswith("Basic ") else None
            with stand_in.lock:
                failing = stand_in.fail > 0
                stand_in.fail -= 1 if failing else 0
            if match is None:
                status, body = 404, {"code": 20404, "message": "The requested resource was not found", "status": 404}
            elif failing:
                status, body = 500, {"code": 20500, "message": "Internal Server Error", "status": 500}
            else:
                sid = "SM" + uuid.uuid4().hex
                status, body = 201, {
                    "sid": sid,
                    "account_sid": match["sid"],
                    "to": form.get("To"),
                    "from": form.get("From"),
                    "body": form.get("Body"),
                    "status": "queued",
                    "direction": "outbound-api",
                    "api_version": "2010-04-01",
                    "num_segments": "1",
                    "price": None,
                    "error_code": None,
                    "date_created": "Thu, 01 Jan 2026 00:00:00 +0000",
                    "uri": f"/2010-04-01/Accounts/{match['sid']}/Messages/{sid}.json",
                }
            stand_in.requests.append({"path": self.path, "form": form, "user": user, "status": status})
            payload = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@pytest.fixture
def twilio_server() -> Iterator[TwilioStandIn]:
    stand_in = TwilioStandIn()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _twilio_handler(stand_in))
    stand_in.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield stand_in
    server.shutdown()
    server.server_close()
    thread.join()


@pytest.fixture
def queue_name(redis_url: str) -> Iterator[str]:
    """A queue of this test's own; its jobs and registries are deleted afterwards."""
    name = f"test-delivery-{uuid.uuid4().hex}"
    yield name
    connection = redis.Redis.from_url(redis_url)
    Queue(name, connection=connection).delete(delete_jobs=True)
    for key in connection.scan_iter(f"rq:*{name}*"):
        connection.delete(key)


@pytest.fixture
def rq_connection(redis_url: str) -> redis.Redis:
    return redis.Redis.from_url(redis_url)


@pytest.fixture
def run_worker(rq_connection: redis.Redis) -> Callable[[Flask], None]:
    """Work the app's delivery queue until it is empty (inline delivery has nothing left to do)."""

    def run(app: Flask) -> None:
        with app.app_context():
            queue = components().delivery_queue
            if isinstance(queue, RqDeliveryQueue):
                BurstWorker([queue.queue], connection=rq_connection).work(burst=True)

    return run
