"""The process's log output: one handler on the root logger, JSON lines or text, every line with the
request id of the request it was written in and scrubbed of secrets (LOG_FORMAT, LOG_LEVEL)."""

from __future__ import annotations

import logging
import sys
from contextvars import ContextVar
from typing import TextIO

from pythonjsonlogger.orjson import OrjsonFormatter

from idp.config import ObservabilitySettings
from idp.observability.redaction import RedactSecrets

# The id of the request being served in this thread (set by `idp.observability.requests`).
current_request_id: ContextVar[str | None] = ContextVar("idp_request_id", default=None)

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"
JSON_FIELDS = "%(levelname)s %(name)s %(message)s %(request_id)s"


class WithRequestId(logging.Filter):
    """Puts the current request id on every record (None outside a request)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "request_id", None) is None:
            record.request_id = current_request_id.get()
        return True


class WithoutJobArguments(logging.Filter):
    """RQ logs a job that raised with its arguments (`extra=` fields, which the JSON format writes
    out): a delivery job's are the rendered message, its code or link. The line keeps the function
    and the job's id."""

    FIELDS = ("arguments", "kwargs")

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name.startswith("rq."):
            for name in self.FIELDS:
                record.__dict__.pop(name, None)
        return True


class LogHandler(logging.StreamHandler):
    """The app's handler on the root logger: the process's standard error unless told otherwise.

    `sys.__stderr__`, not `sys.stderr`: what replaces the latter for a while (a CLI runner capturing
    a command's output, say) is not where the log goes."""

    def __init__(self, stream: TextIO | None = None) -> None:
        super().__init__(stream or sys.__stderr__ or sys.stderr)


def json_formatter(static_fields: dict[str, str]) -> logging.Formatter:
    """One JSON object per line: timestamp (UTC, ISO 8601), level, logger, message, request_id, then
    the record's `extra=` fields (and `exc_info` with the traceback). Serialised by orjson: a line
    costs about a quarter less than with the standard library's json (the access line is one a request)."""
    return OrjsonFormatter(
        JSON_FIELDS,
        rename_fields={"levelname": "level", "name": "logger"},
        static_fields=static_fields,
        timestamp=True,
    )


def text_formatter() -> logging.Formatter:
    return logging.Formatter(TEXT_FORMAT)


def configure_logging(settings: ObservabilitySettings, *, service: str, stream: TextIO | None = None) -> LogHandler:
    """Install the app's handler on the root logger, replacing one installed before (each app built
    in a process reconfigures the same logging); other handlers, a test runner's say, stay."""
    root = logging.getLogger()
    for previous in [h for h in root.handlers if isinstance(h, LogHandler)]:
        root.removeHandler(previous)
    handler = LogHandler(stream)
    handler.addFilter(WithRequestId())
    handler.addFilter(WithoutJobArguments())
    handler.addFilter(RedactSecrets())
    handler.setFormatter(json_formatter({"service": service}) if settings.log_format == "json" else text_formatter())
    root.addHandler(handler)
    root.setLevel(settings.log_level)
    return handler
