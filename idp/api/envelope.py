"""The JSON API's envelope and request-body parsing."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any, TypeVar

from flask import Response, jsonify, request
from pydantic import BaseModel, ValidationError
from werkzeug.exceptions import NotFound

from idp.errors import MalformedJson, ValidationFailed

M = TypeVar("M", bound=BaseModel)

READABLE = {
    "missing": "is required",
    "extra_forbidden": "is not an allowed field",
    "string_type": "must be a string",
    "bool_type": "must be true or false",
    "bool_parsing": "must be true or false",
    "int_type": "must be a whole number",
    "int_parsing": "must be a whole number",
}


def ok(data: dict[str, Any] | None = None, *, message: str | None = None, status: int = 200) -> Response:
    body: dict[str, Any] = {"success": True}
    if message:
        body["message"] = message
    if data is not None:
        body["data"] = data
    response = jsonify(body)
    response.status_code = status
    return response


def json_body() -> dict[str, Any]:
    """The request body as a JSON object; an empty body is `{}`; anything else is a 400."""
    raw = request.get_data(cache=True)
    if not raw.strip():
        return {}
    try:
        # not request.get_json: its `silent` lets a RecursionError through (a body of 30,000
        # nested brackets fits in the size limit), which would be a 500
        payload = json.loads(raw)
    except (ValueError, RecursionError):
        raise MalformedJson() from None
    if not isinstance(payload, dict):
        raise ValidationFailed(errors=["body: must be a JSON object"])
    return without_nul(payload)


def without_nul(payload: dict[str, Any]) -> dict[str, Any]:
    """The payload, refused (400) when a string in it holds U+0000: no text column stores one
    (PostgreSQL refuses it), so such a value can only be a mistake or a probe."""
    found = list(_nul_fields(payload))
    if found:
        raise ValidationFailed(errors=[f"{field}: must not contain the NUL character" for field in found])
    return payload


def _nul_fields(payload: Any) -> Iterator[str]:
    """Where strings holding U+0000 are, in the body's order, walked without recursion: a parser
    with a larger nesting limit (Python 3.12's) hands over bodies deeper than the call stack."""
    pending: list[tuple[Any, str, bool]] = [(payload, "", False)]  # (value, its place, a key holding NUL)
    while pending:
        value, at, nul_key = pending.pop()
        if nul_key or (isinstance(value, str) and "\x00" in value):
            yield at or "body"
        elif isinstance(value, dict):
            pending.extend(reversed([(item, f"{at}.{key}" if at else str(key), "\x00" in key) for key, item in value.items()]))
        elif isinstance(value, list):
            pending.extend(reversed([(item, f"{at}.{index}" if at else str(index), False) for index, item in enumerate(value)]))


def refuse_nul_in_path(endpoint: str | None, values: dict[str, Any] | None) -> None:
    """A path parameter holding U+0000 names nothing there can be: the route is not found (404)."""
    if values and any(isinstance(value, str) and "\x00" in value for value in values.values()):
        raise NotFound()


def parse(model: type[M], payload: dict[str, Any] | None = None) -> M:
    """Validate a body against a schema; errors read `<field>: <reason>`."""
    try:
        return model.model_validate(json_body() if payload is None else without_nul(payload))
    except ValidationError as exc:
        raise ValidationFailed(errors=[describe(err) for err in exc.errors()]) from None


def describe(err: Any) -> str:
    field = ".".join(str(part) for part in err["loc"]) or "body"
    reason = READABLE.get(err["type"]) or err["msg"]
    reason = reason.removeprefix("Value error, ")
    return f"{field}: {reason[0].lower()}{reason[1:]}"
