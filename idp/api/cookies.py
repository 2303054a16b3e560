"""The refresh-token and trusted-device cookies of the API."""

from __future__ import annotations

import math

from flask import Response

from idp.accounts.sessions import IssuedTokens
from idp.clock import utcnow
from idp.mfa.devices import TRUST_FOR
from idp.wiring import components

REFRESH_COOKIE = "refreshToken"
DEVICE_COOKIE = "deviceToken"


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


def set_device_cookie(response: Response, token: str) -> None:
    """Path / so the hosted login pages see it too; Lax so it comes along on the sign-in redirect."""
    response.set_cookie(
        DEVICE_COOKIE,
        token,
        max_age=int(TRUST_FOR.total_seconds()),
        httponly=True,
        secure=components().settings.secure_cookies,
        samesite="Lax",
        path="/",
    )


def clear_device_cookie(response: Response) -> None:
    response.delete_cookie(DEVICE_COOKIE, path="/", httponly=True, samesite="Lax", secure=components().settings.secure_cookies)
