"""The console outbox: development's email and SMS sender.

Every message is appended as one JSON line to a file under the instance folder
(instance/outbox.jsonl), which the development-only page /dev/outbox lists. The log says only who
it went to and where it is kept: bodies hold codes and links, and no log line holds a secret.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from idp.delivery.messages import OutgoingEmail, OutgoingSms

log = logging.getLogger("idp.delivery.outbox")


class ConsoleOutbox:
    """Implements EmailSender and SmsSender by printing and keeping the messages, never sending them."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()

    def send_email(self, message: OutgoingEmail) -> None:
        log.info("outbox: email to %s (%s), kept in %s", message.to, message.subject, self.path)
        self._keep({"kind": "email", **asdict(message)})

    def send_sms(self, message: OutgoingSms) -> None:
        log.info("outbox: sms to %s, kept in %s", message.to, self.path)
        self._keep({"kind": "sms", **asdict(message)})

    def messages(self, limit: int = 100) -> list[dict[str, Any]]:
        """The last `limit` messages kept, newest first."""
        try:
            lines = self.path.read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            return []
        kept: list[dict[str, Any]] = []
        for line in reversed(lines):
            if len(kept) >= limit:
                break
            try:
                kept.append(json.loads(line))
            except ValueError:
                continue  # a line cut short by a crash
        return kept

    def _keep(self, record: dict[str, Any]) -> None:
        record["at"] = datetime.now(UTC).isoformat(timespec="seconds")
        line = (json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._lock:
            # one O_APPEND write per message, so processes sharing the file do not interleave lines;
            # 0600 because the messages hold codes and links
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, line)
            finally:
                os.close(fd)
