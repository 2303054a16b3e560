"""Reading a page's form with the JSON API's own request schemas, so both validate alike."""

from __future__ import annotations

import re
from typing import TypeVar

from flask import request
from flask import session as flask_session
from flask_babel import gettext as _
from pydantic import BaseModel, ValidationError

from idp.api.envelope import describe
from idp.errors import ValidationFailed

M = TypeVar("M", bound=BaseModel)


def field_errors(messages: list[str]) -> dict[str, str]:
    """`["phoneNumber: must be ...", ...]` (the API's error strings) as {field: message}, the
    first message per field, starting with a capital letter as the pages show it."""
    found: dict[str, str] = {}
    for message in messages:
        field, _, reason = message.partition(": ")
        if not reason:
            field, reason = "__all__", message
        found.setdefault(field, reason[:1].upper() + reason[1:])
    return found


def read_form(model: type[M], *fields: str) -> tuple[M | None, dict[str, str]]:
    """The named form fields validated by `model` (fields use the schema's aliases, e.g.
    `phoneNumber`); returns the model or the errors by field."""
    data = {name: request.form.get(name, "") for name in fields}
    try:
        return model.model_validate(data), {}
    except ValidationError as exc:
        return None, field_errors([describe(err) for err in exc.errors()])


def domain_errors(exc: ValidationFailed) -> dict[str, str]:
    """A service's ValidationFailed (e.g. the password policy) as {field: message}."""
    return field_errors(list(exc.errors or [exc.message]))


def typed_code() -> str:
    """The form's `code` as typed, spaces and dashes ignored (`123 456`, `123-456`)."""
    return re.sub(r"[\s\-]", "", request.form.get("code", ""))


def code_error(code: str, *, empty: str) -> str | None:
    """What is wrong with a 6-digit code's form, said before it is checked (and counted as a try)."""
    if not code:
        return empty
    if not re.fullmatch(r"[0-9]{6}", code):
        return _("Enter the code as 6 digits, for example 123456")
    return None


def after_redirect(key: str, flag: str) -> str | None:
    """What a form's Post/Redirect/Get left under `key` in this browser's Flask session for the page
    it redirected to (a GET with `?<flag>=1`), so that reloading that page sends nothing again;
    None on any other visit."""
    value = flask_session.get(key) if request.method == "GET" and request.args.get(flag) else None
    return value if isinstance(value, str) and value else None


def email_unavailable() -> str:
    """What a page says when this server has no way to send email (production without SMTP)."""
    return _("This service cannot send email at the moment, so the link was not sent. Please tell its administrator.")
