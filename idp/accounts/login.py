"""The login flow shared by the JSON API and the hosted pages: password, then a second factor when
the account has one and the device is not trusted (or the relying party insists on one).

How a successful sign-in is kept differs (the API issues tokens, the pages open a browser
session), so the flow takes the function that opens it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from idp.accounts.models import User
from idp.accounts.service import AccountService
from idp.audit.alerts import SecurityAlerts
from idp.audit.service import ClientInfo
from idp.mfa.challenge import ChallengeStarted, LoginChallenges, SecondFactorPassed
from idp.mfa.devices import TrustedDevices

S = TypeVar("S")
# (user, client, amr, method) -> what "signed in" means to the caller; it also records the
# `login_success` event (with `method`), written together with the session it opens
SessionOpener = Callable[[User, ClientInfo, list[str], str], S]


@dataclass(frozen=True)
class LoginOutcome(Generic[S]):
    """Either a session (signed in) or a challenge (second factor needed)."""

    user: User
    session: S | None = None
    challenge: ChallengeStarted | None = None
    device_token: str | None = None


class LoginFlow(Generic[S]):
    """The second factor's collaborators are given as factories, called only when an account has
    a second factor: most sign-ins have none, and building them (the challenges need the
    two-factor service, one-time codes, backup codes, the throttles...) cost a tenth of a
    password login's own work."""

    def __init__(
        self,
        accounts: AccountService,
        challenges: Callable[[], LoginChallenges],
        devices: Callable[[], TrustedDevices],
        alerts: Callable[[], SecurityAlerts],
        open_session: SessionOpener[S],
    ) -> None:
        self._accounts = accounts
        self._challenges = challenges
        self._devices = devices
        self._alerts = alerts
        self._open = open_session

    def with_password(
        self,
        identifier: str,
        password: str,
        *,
        device_token: str | None,
        client: ClientInfo,
        second_factor_required: bool = False,
    ) -> LoginOutcome[S]:
        """`second_factor_required`: ask for the second factor even on a trusted device."""
        user = self._accounts.authenticate(identifier, password, client=client)
        if user.two_factor_enabled:
            if second_factor_required or self._devices().recognise(user.id, device_token) is None:
                return LoginOutcome(user, challenge=self._challenges().start(user, client=client))
            method = "pwd+trusted_device"
        else:
            method = "pwd"
        return LoginOutcome(user, session=self._open(user, client, ["pwd"], method))

    def with_second_factor(
        self, passed: SecondFactorPassed, *, trust_device: bool, device_name: str | None, client: ClientInfo,
        presented_device: str | None = None,
    ) -> LoginOutcome[S]:
        """`presented_device`: the trusted-device token this browser sent, replaced when it is trusted again."""
        user = passed.user
        device_token = None
        if trust_device:
            device, device_token = self._devices().trust(user.id, name=device_name, client=client, replacing=presented_device)
            self._alerts().notify(
                "trusted_device_added",
                user,
                client=client,
                sentence=f"A device ({device.device_name or 'unnamed'}) was trusted to skip the second factor for 30 days.",
                details={"deviceName": device.device_name},
            )
        return LoginOutcome(user, session=self._open(user, client, passed.amr, passed.method), device_token=device_token)
