"""Request bodies of the JSON API; field names are the wire names of the old service."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, EmailStr, Field, StringConstraints

Password = Annotated[str, Field(min_length=1, max_length=1024)]


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=False)


class RegisterRequest(Body):
    email: Annotated[EmailStr, Field(max_length=254)]
    username: Annotated[
        str,
        StringConstraints(pattern=r"^[A-Za-z0-9_-]{3,30}$"),
        Field(description="3 to 30 letters, digits, underscores or hyphens"),
    ]
    password: Password


class LoginRequest(Body):
    email_or_username: Annotated[str, Field(alias="emailOrUsername", min_length=1, max_length=254)]
    password: Password
    device_token: Annotated[str | None, Field(alias="deviceToken", max_length=200)] = None


class RefreshRequest(Body):
    refresh_token: Annotated[str | None, Field(alias="refreshToken", max_length=200)] = None


class ChangePasswordRequest(Body):
    current_password: Annotated[str, Field(alias="currentPassword", min_length=1, max_length=1024)]
    new_password: Annotated[str, Field(alias="newPassword", min_length=1, max_length=1024)]


class PageQuery(Body):
    page: Annotated[int, Field(ge=1, le=100000)] = 1
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
    phone_number: Annotated[str, Field(alias="phoneNumber", pattern=r"^\+[1-9]\d{6,14}$", description="E.164, e.g. +14155550123")]


class EmailSetupRequest(Body):
    email: Annotated[EmailStr, Field(max_length=254)]


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
    new_password: Annotated[str, Field(alias="newPassword", min_length=1, max_length=1024)]
