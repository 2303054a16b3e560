"""Request bodies of the JSON API; field names are the wire names of the old service."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, EmailStr, Field, StringConstraints

from idp.audit.service import MAX_PAGE
from idp.security import password_policy

Password = Annotated[str, Field(min_length=1, max_length=1024)]


def _address_alone(value: object) -> object:
    """EmailStr takes "Ana <ana@example.com>" and keeps the address: a name beside it is refused."""
    if isinstance(value, str) and ("<" in value or ">" in value):
        raise ValueError("must be an address alone, without a name")
    return value


Email = Annotated[
    EmailStr,
    BeforeValidator(_address_alone),
    Field(max_length=254, description="An address mail can reach: special-use domains (.test, .local, localhost, ...) are refused"),
]


def _whole_float_as_int(value: object) -> object:
    return int(value) if isinstance(value, float) and value.is_integer() else value


# A strict int refuses "5" and true, and 5.0 too, which JSON Schema counts as an integer: after a
# strict int's constraints, `Annotated[int, Field(strict=True, ge=1), WHOLE_FLOATS_AS_INTS]`.
WHOLE_FLOATS_AS_INTS = BeforeValidator(_whole_float_as_int)
# Parsed as any Password; the policy (length, character classes, breach list) is the service's,
# with a "validation_failed" answer of its own words. The document shows the policy's bounds.
NewPassword = Annotated[
    str,
    Field(
        min_length=1,
        max_length=1024,
        description="At least one lower-case and one upper-case letter, a digit and a symbol; not a common breached password",
        json_schema_extra={"minLength": password_policy.MIN_LENGTH, "maxLength": password_policy.MAX_LENGTH},
    ),
]


RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$")


def _rfc3339_text(value: object) -> object:
    """Only RFC 3339 date-times with a zone (as JavaScript's toJSON writes them), never a number
    read as a Unix time or a date without its zone."""
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str) or not RFC3339.match(value):
        raise ValueError("must be a date-time like 2026-12-31T23:59:59Z")
    return value


def _in_utc(value: datetime) -> datetime:
    """The same instant in UTC, as it is stored and compared: an offset is not a label to keep."""
    try:
        return value.astimezone(UTC)
    except OverflowError:  # 9999-12-31T23:00:00-05:00 is in the year 10000, 0001-01-01T00:30+01:00 in the year 0
        raise ValueError("must be a date-time between the years 1 and 9999 in UTC") from None


# A point in time in a body or a query string, in UTC
Timestamp = Annotated[datetime, BeforeValidator(_rfc3339_text), AfterValidator(_in_utc)]


def _no_default(schema: dict[str, Any]) -> None:
    schema.pop("default", None)


def left_out() -> Any:
    """The default of a field that may be left out but never sent as null: its type refuses null
    (with a plain "input should be ..." error), and the document shows no default."""
    return Field(default=None, json_schema_extra=_no_default)


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=False)


class RegisterRequest(Body):
    email: Email
    username: Annotated[
        str,
        StringConstraints(pattern=r"^[A-Za-z0-9_-]{3,30}$"),
        Field(description="3 to 30 letters, digits, underscores or hyphens"),
    ]
    password: NewPassword


class LoginRequest(Body):
    email_or_username: Annotated[str, Field(alias="emailOrUsername", min_length=1, max_length=254)]
    password: Password
    device_token: Annotated[str | None, Field(alias="deviceToken", max_length=200)] = None
    trust_device: Annotated[
        bool,
        Field(alias="trustDevice", strict=True, description="Taken for the old service's clients, which sent it here; a device is trusted at /2fa/verify"),
    ] = False


class RefreshRequest(Body):
    refresh_token: Annotated[str | None, Field(alias="refreshToken", max_length=200)] = None


class ChangePasswordRequest(Body):
    current_password: Annotated[str, Field(alias="currentPassword", min_length=1, max_length=1024)]
    new_password: Annotated[NewPassword, Field(alias="newPassword")]


class PageQuery(Body):
    page: Annotated[int, Field(ge=1, le=MAX_PAGE)] = 1
    limit: Annotated[int, Field(ge=1, le=100)] = 20


Code = Annotated[str, Field(min_length=1, max_length=32)]
Token = Annotated[str, Field(alias="token", min_length=1, max_length=200)]
TempToken = Annotated[str, Field(alias="tempToken", min_length=1, max_length=200)]


class VerifySetupRequest(Body):
    code: Code
    secret: Annotated[str | None, Field(max_length=128)] = None


class CodeRequest(Body):
    code: Code


class SmsSetupRequest(Body):
    # [0-9], not \d: the validator's \d takes any Unicode digit (the document's, ASCII only)
    phone_number: Annotated[str, Field(alias="phoneNumber", pattern=r"^\+[1-9][0-9]{6,14}$", description="E.164, e.g. +14155550123")]


class EmailSetupRequest(Body):
    email: Email


class VerifyLoginRequest(Body):
    temp_token: TempToken
    code: Code
    trust_device: Annotated[bool, Field(alias="trustDevice", strict=True)] = False
    device_name: Annotated[str | None, Field(alias="deviceName", max_length=100)] = None


class VerifyBackupCodeRequest(Body):
    temp_token: TempToken
    code: Code


class ResendRequest(Body):
    temp_token: TempToken
    method: Literal["sms", "email"]


class EmailVerifyRequest(Body):
    token: Token


class PasswordResetRequest(Body):
    email: Annotated[str, Field(min_length=3, max_length=254)]


class PasswordResetConfirm(Body):
    token: Token
    new_password: Annotated[NewPassword, Field(alias="newPassword")]
