"""Stand-ins for the outside world of delivery, on loopback: an SMTP server (aiosmtpd,
tests/support/smtp.py) and Twilio's Messages API (tests/support/twilio.py), shared with the browser
tests; TLS material and the RQ worker here."""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from flask import Flask
from rq import Queue

from idp.delivery.queue import RqDeliveryQueue
from idp.wiring import components
from tests.conftest import BurstWorker
from tests.support.smtp import SmtpStandIn as SmtpStandIn  # noqa: F401
from tests.support.smtp import free_port as free_port  # noqa: F401  (re-exported)
from tests.support.smtp import smtp_server as smtp_server  # noqa: F401  (the fixtures, also registered by tests/support/fixtures.py)
from tests.support.smtp import start_smtp as start_smtp  # noqa: F401
from tests.support.twilio import TWILIO_SID as TWILIO_SID  # noqa: F401  (re-exported)
from tests.support.twilio import TwilioStandIn as TwilioStandIn  # noqa: F401
from tests.support.twilio import twilio_server as twilio_server  # noqa: F401  (the fixture, also registered by tests/support/fixtures.py)


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
                BurstWorker(queue.queues, connection=rq_connection).work(burst=True)

    return run
