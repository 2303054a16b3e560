"""What the JSON API answers, as pydantic models: the envelopes, and the `data` of the account,
session, two-factor, email and audit endpoints (features with their own blueprint module keep
theirs there). Field names are the wire names. They describe the answers for the OpenAPI
document; the schemathesis test checks the real answers against them."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field

D = TypeVar("D")


def omitted(description: str | None = None) -> Any:
    """A field the answer leaves out when it has no value (never sent as null unless its type says so)."""
    return Field(default=None, description=description)


class Wire(BaseModel):
    """An object on the wire: exactly these fields, nothing more."""

    model_config = ConfigDict(extra="forbid")


# -- envelopes ---------------------------------------------------------------------------


class Failure(Wire):
    """Every failure under the API: the 4xx, a 503 when a dependency is missing, and the 500 that is a bug."""

    success: Literal[False]
    message: str
    code: str = Field(description="A stable machine-readable word: validation_failed, invalid_credentials, not_found, ...")
    errors: list[str] = omitted("`<field>: <reason>` for each invalid field of a validation failure")


class Success(Wire, Generic[D]):
    success: Literal[True]
    message: str = omitted()
    data: D


class SuccessMaybeData(Wire, Generic[D]):
    """A success whose `data` is there only in some cases."""

    success: Literal[True]
    message: str = omitted()
    data: D = omitted()


class Done(Wire):
    """A success that carries only a message."""

    success: Literal[True]
    message: str = omitted()


# -- users and sessions ------------------------------------------------------------------


class UserSummary(Wire):
    id: str
    email: str
    username: str
    twoFactorEnabled: bool


class RegisteredUser(UserSummary):
    emailVerified: bool
    createdAt: datetime


class UserProfile(RegisteredUser):
    isActive: bool
    updatedAt: datetime


class Registered(Wire):
    user: RegisteredUser
    accessToken: str


class SignedIn(Wire):
    """Signed in: the refresh token comes as the HttpOnly cookie `refreshToken`."""

    user: UserSummary
    accessToken: str


class TwoFactorSignedIn(SignedIn):
    deviceToken: str = omitted("With `trustDevice`: the trusted-device token (also set as the `deviceToken` cookie)")


class TwoFactorRequired(Wire):
    """The password was right; finish with `/2fa/verify` or `/2fa/verify-backup-code`."""

    requiresTwoFactor: Literal[True]
    tempToken: str
    methods: list[Literal["totp", "sms", "email", "backup_code"]]
    expiresIn: int = Field(description="Seconds the tempToken stays valid")
    codeSentBy: Literal["sms", "email"] | None = Field(
        description="The channel of the code that went out with this challenge; null when none did (an authenticator"
        " app is enabled, or the hourly allowance of such codes is used up): ask for one with `/2fa/resend`"
    )


class AccessToken(Wire):
    accessToken: str


class Me(Wire):
    user: UserProfile


class SessionsRevoked(Wire):
    revoked: int


class SessionView(Wire):
    id: str
    ipAddress: str | None
    userAgent: str | None
    createdAt: datetime
    lastUsedAt: datetime
    expiresAt: datetime
    current: bool = Field(description="Whether the access token of this request belongs to it")


class SessionList(Wire):
    sessions: list[SessionView]


class EmailStatus(Wire):
    emailVerified: bool


# -- audit log ---------------------------------------------------------------------------


class AuditEntry(Wire):
    id: int
    action: str
    success: bool
    ipAddress: str | None
    userAgent: str | None
    details: dict[str, Any]
    createdAt: datetime


class Pagination(Wire):
    page: int
    limit: int
    total: int
    totalPages: int


class AuditPage(Wire):
    logs: list[AuditEntry]
    pagination: Pagination


# -- two-factor --------------------------------------------------------------------------


class TotpSetup(Wire):
    secret: str = Field(description="Base32; kept server-side, encrypted, until verified")
    otpauthUrl: str
    qrCode: str = Field(description="A data: URL of the otpauth:// URI as an image")


class BackupCodes(Wire):
    backupCodes: list[str]


class MethodEnabled(Wire):
    backupCodes: list[str] = omitted("When this is the first method: the new backup codes")


class MethodView(Wire):
    id: str
    type: Literal["totp", "sms", "email"]
    verifiedAt: datetime | None
    createdAt: datetime
    phoneNumber: str | None = omitted("SMS: the number masked, `***1234`")
    email: str | None = omitted("Email: the address masked, `abc***@example.com`")


class MethodList(Wire):
    methods: list[MethodView]


class MethodRemoved(Wire):
    twoFactorEnabled: bool


class BackupCodeCount(Wire):
    count: int


class DeviceView(Wire):
    id: str
    deviceName: str | None
    ipAddress: str | None
    userAgent: str | None
    createdAt: datetime
    lastUsedAt: datetime | None
    expiresAt: datetime


class DeviceList(Wire):
    devices: list[DeviceView]


class DevicesRemoved(Wire):
    removed: int
