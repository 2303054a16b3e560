"""Standard claims for the scopes a user granted (OpenID Connect Core §5.4), and `acr` values."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session as DbSession

from idp.mfa.models import TwoFactorMethod

SCOPE_CLAIMS = {
    "profile": ["preferred_username", "nickname", "updated_at"],
    "email": ["email", "email_verified"],
    "phone": ["phone_number", "phone_number_verified"],
}
CLAIMS_SUPPORTED = ["sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "acr", "amr", "sid", "at_hash"] + [
    claim for claims in SCOPE_CLAIMS.values() for claim in claims
]

ACR_PASSWORD = "urn:idp:acr:pwd"
ACR_MFA = "urn:idp:acr:mfa"
# asking for any of these forces a second factor, even on a trusted device
MFA_ACRS = (ACR_MFA, "mfa", "http://schemas.openid.net/pape/policies/2007/06/multi-factor")
ACR_VALUES_SUPPORTED = [ACR_PASSWORD, *MFA_ACRS]


def asks_for_mfa(acr_values: str | None) -> bool:
    return any(value in MFA_ACRS for value in (acr_values or "").split())


def acr_for(amr: list[str], acr_values: str | None) -> str:
    """The class reached: the requested multi-factor value when a second factor was used."""
    if "mfa" not in amr:
        return ACR_PASSWORD
    requested = [v for v in (acr_values or "").split() if v in MFA_ACRS]
    return requested[0] if requested else ACR_MFA


class ClaimSource(Protocol):
    """What claims are made of: a `User`, or the claim columns a hot path read."""

    @property
    def id(self) -> str: ...
    @property
    def username(self) -> str: ...
    @property
    def email(self) -> str: ...
    @property
    def email_verified(self) -> bool: ...
    @property
    def updated_at(self) -> datetime: ...


def user_claims(db: Callable[[], DbSession], user: ClaimSource, scopes: list[str] | set[str]) -> dict[str, Any]:
    """`sub` and the claims of each granted scope. `db` gives a session only when one is needed
    (the one extra query, for `phone`): userinfo for other scopes opens none."""
    claims: dict[str, Any] = {"sub": user.id}
    if "profile" in scopes:
        claims["preferred_username"] = user.username
        claims["nickname"] = user.username
        claims["updated_at"] = int(user.updated_at.timestamp())
    if "email" in scopes:
        claims["email"] = user.email
        claims["email_verified"] = bool(user.email_verified)
    if "phone" in scopes:
        phone = db().scalar(
            select(TwoFactorMethod.phone_number).where(
                TwoFactorMethod.user_id == user.id, TwoFactorMethod.type == "sms", TwoFactorMethod.verified_at.is_not(None)
            )
        )
        if phone:
            claims["phone_number"] = phone
            claims["phone_number_verified"] = True  # proven by the code sent to it
    return claims
