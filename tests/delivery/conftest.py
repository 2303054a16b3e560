"""Stand-ins for the outside world of delivery, on loopback: an SMTP server (aiosmtpd) here, and Twilio's
Messages API (tests/support/twilio.py, shared with the browser tests)."""

from __future__ import annotations

import datetime as dt
import ipaddress
import socket
import ssl
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

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
from tests.support.twilio import TWILIO_SID as TWILIO_SID  # noqa: F401  (re-exported)
from tests.support.twilio import TwilioStandIn as TwilioStandIn  # noqa: F401
from tests.support.twilio import twilio_server as twilio_server  # noqa: F401  (the fixture, also registered by tests/support/fixtures.py)


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
