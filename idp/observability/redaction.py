"""Secrets out of log lines: a defence in depth behind the rule that no code logs one.

Server-made secrets have shapes that can be recognised (JWTs, `pk_live_` API keys, `whsec_`
webhook secrets, refresh tokens, 256-bit random strings, base32 TOTP secrets); values that have
none (passwords, 6-digit codes) are caught when they appear as `name=value` or `"name": "value"`
under a name that says what they are.
"""

from __future__ import annotations

import functools
import logging
import re
from typing import Any

REDACTED = "[REDACTED]"
# A record attribute: its maker scrubbed every text in it that a client chose, and the filter
# lets it through as it is (the access line, one a request). Leading "_": never a log field.
SCRUBBED = "_idp_scrubbed"

_SECRET_NAMES = (
    r"password|passwd|new_?password|current_?password|secret|client_?secret|token|access_?token|refresh_?token"
    r"|temp_?token|device_?token|id_?token|code|otp|api_?key|authorization|cookie"
)
_TOKEN_CHAR = r"A-Za-z0-9_\-"
_UUID = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"

PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # JWTs (access and ID tokens): three base64url parts, the header starting with {"
    (re.compile(rf"eyJ[{_TOKEN_CHAR}]+\.[{_TOKEN_CHAR}]+\.[{_TOKEN_CHAR}]*"), REDACTED),
    (re.compile(rf"\b(?:pk_live|pk_test|whsec)_[{_TOKEN_CHAR}]+"), REDACTED),
    (re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=\-]+"), rf"\1 {REDACTED}"),
    # name=value, name: value, "name": "value" (query strings, form bodies, JSON, headers)
    (
        re.compile(rf"(?i)(?<![A-Za-z0-9_])((?:{_SECRET_NAMES})\"?\s*[=:]\s*\"?)([^\s\"'&,;}}\]]+)"),
        rf"\1{REDACTED}",
    ),
    # refresh tokens and browser-session cookies: `<session uuid>.<random>`
    (re.compile(rf"\b{_UUID}\.[{_TOKEN_CHAR}]{{16,}}"), REDACTED),
    # long random strings (256-bit tokens are 43 characters, TOTP secrets 32): with a digit, so that
    # long words and identifiers stay readable, and not a UUID (the ids of users, sessions, jobs)
    (
        re.compile(rf"(?<![{_TOKEN_CHAR}])(?!{_UUID}(?![{_TOKEN_CHAR}]))(?=[A-Za-z_\-]*[0-9])[{_TOKEN_CHAR}]{{32,}}(?![{_TOKEN_CHAR}])"),
        REDACTED,
    ),
)

# Attributes every LogRecord has; anything else was passed with `extra=` (or added by a filter).
_STANDARD_ATTRIBUTES = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}
# Field names (of `extra=`, of a dict logged) that hold a secret, lower case without _ or -.
_SECRET_FIELDS = frozenset(
    {
        "password", "passwd", "newpassword", "currentpassword", "secret", "clientsecret", "token", "accesstoken",
        "refreshtoken", "temptoken", "devicetoken", "idtoken", "code", "otp", "apikey", "authorization", "cookie",
    }
)
_KEEP_FIELDS = frozenset({"request_id"})  # ours, generated or checked: may be 32 hex characters (nginx's $request_id)


# What every secret above needs somewhere: a run of 16 token characters, an authorization scheme, or
# a secret's name followed by = or :. A line with none of them (most lines) is let through after
# three quick scans instead of six slow ones.
_LONG_RUN = re.compile(rf"[{_TOKEN_CHAR}]{{16}}")
_SCHEME = re.compile(r"(?i:bearer|basic)\s")
_NAMED = re.compile(rf"(?i:{_SECRET_NAMES})\"?\s*[=:]")


def _suspect(text: str) -> bool:
    return bool(_LONG_RUN.search(text) or _SCHEME.search(text) or (("=" in text or ":" in text) and _NAMED.search(text)))


def log_scrubbed(log: logging.Logger, level: int, msg: str, args: tuple[Any, ...], fields: dict[str, Any]) -> None:
    """Log a line whose maker has already scrubbed every text in it that a client chose: the
    filter lets it through unscanned, and no caller's frame is looked up (lines of every request)."""
    if log.isEnabledFor(level):
        log.handle(log.makeRecord(log.name, level, "", 0, msg, args, None, extra={**fields, SCRUBBED: True}))


def redact(text: str) -> str:
    """`text` with every recognisable secret replaced by [REDACTED]."""
    if not _suspect(text):
        return text
    for pattern, replacement in PATTERNS:
        text = pattern.sub(replacement, text)
    return text


class RedactSecrets(logging.Filter):
    """A handler filter: scrubs the message, the `extra=` fields and the exception text of each record.

    The record is changed in place (every handler then sees the scrubbed one); it is never dropped."""

    _formatter = logging.Formatter()

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, SCRUBBED, False):
            return True
        message = record.getMessage()
        clean = redact(message)
        if clean != message or record.args:
            record.msg, record.args = clean, None
        fields = record.__dict__
        for name in fields.keys() - _STANDARD_ATTRIBUTES - _KEEP_FIELDS:
            value = fields[name]
            if value is None or isinstance(value, int | float):  # bool is an int
                continue
            if _is_secret_field(name):
                fields[name] = REDACTED
            elif isinstance(value, str):
                fields[name] = redact(value)
            elif isinstance(value, dict | list | tuple):
                fields[name] = _redacted_structure(value)
        if record.exc_info:  # formatted here, so the formatter prints the scrubbed text
            record.exc_text = self._formatter.formatException(record.exc_info)
            record.exc_info = None
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


@functools.lru_cache(maxsize=1024)
def _is_secret_field(name: str) -> bool:
    return name.lower().replace("_", "").replace("-", "") in _SECRET_FIELDS


def _redacted_structure(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: REDACTED if isinstance(k, str) and _is_secret_field(k) else _redacted_structure(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_redacted_structure(v) for v in value]
    if isinstance(value, str):
        return redact(value)
    return value
