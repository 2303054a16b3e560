"""A stand-in for Twilio's Messages API on loopback: the app's real twilio client talks to it
(`twilio_server.env()` gives the settings), and it records what it accepts."""

from __future__ import annotations

import base64
import json
import re
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs

import pytest

from tests.support.loopback import serving

TWILIO_SID = "AC" + "0123456789abcdef" * 2


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
    with serving(_twilio_handler(stand_in)) as port:
        stand_in.url = f"http://127.0.0.1:{port}"
        yield stand_in
