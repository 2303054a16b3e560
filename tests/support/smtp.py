"""An SMTP server on loopback (aiosmtpd) that records what the app sends."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, Envelope


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


