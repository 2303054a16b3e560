"""The refresh-token and trusted-device cookies of the API."""

from __future__ import annotations

import math

from flask import Response, request

from idp.accounts.sessions import IssuedTokens
from idp.clock import utcnow
from idp.mfa.devices import TRUST_FOR
from idp.wiring import components

REFRESH_COOKIE = "refreshToken"
DEVICE_COOKIE = "deviceToken"
# __Host-: Secure, Path=/ and no Domain, so no sibling host can set it (needs HTTPS)
SECURE_DEVICE_COOKIE = "__Host-deviceToken"


def refresh_cookie_path() -> str:
    return components().settings.api_base_path + "/auth"


def set_refresh_cookie(response: Response, tokens: IssuedTokens) -> None:
    # the family's absolute lifetime does not grow with rotation, and neither does the cookie's
    remaining = math.ceil((tokens.refresh_expires_at - utcnow()).total_seconds())
    response.set_cookie(
        REFRESH_COOKIE,
        tokens.refresh_token,
        max_age=remaining,
        httponly=True,
        secure=components().settings.secure_cookies,
        samesite="Strict",
        path=refresh_cookie_path(),
    )


def clear_refresh_cookie(response: Response) -> None:
    response.delete_cookie(
        REFRESH_COOKIE, path=refresh_cookie_path(), httponly=True, samesite="Strict", secure=components().settings.secure_cookies
    )


def device_cookie_name() -> str:
    return SECURE_DEVICE_COOKIE if components().settings.secure_cookies else DEVICE_COOKIE


def presented_device_token() -> str | None:
    """This browser's trusted-device token: its cookie, or the unprefixed one that devices trusted
    before the prefix still carry (a token is honoured only for its own user, whoever set it)."""
    return request.cookies.get(device_cookie_name()) or request.cookies.get(DEVICE_COOKIE)


def set_device_cookie(response: Response, token: str) -> None:
    """Path / so the hosted login pages see it too; Lax so it comes along on the sign-in redirect."""
    response.set_cookie(
        device_cookie_name(),
        token,
        max_age=int(TRUST_FOR.total_seconds()),
        httponly=True,
        secure=components().settings.secure_cookies,
        samesite="Lax",
        path="/",
    )


def clear_device_cookie(response: Response) -> None:
    secure = components().settings.secure_cookies
    for name in {device_cookie_name(), DEVICE_COOKIE}:
        response.delete_cookie(name, path="/", httponly=True, samesite="Lax", secure=secure)
