"""The login flow shared by the JSON API and the hosted pages: password, then a second factor when
the account has one and the device is not trusted."""

from __future__ import annotations

from dataclasses import dataclass

from idp.accounts.models import User
from idp.accounts.service import AccountService
from idp.accounts.sessions import IssuedTokens, SessionService
from idp.audit.alerts import SecurityAlerts
from idp.audit.service import ClientInfo
from idp.mfa.challenge import ChallengeStarted, LoginChallenges, SecondFactorPassed
from idp.mfa.devices import TrustedDevices


@dataclass(frozen=True)
class LoginOutcome:
    """Either tokens (signed in) or a challenge (second factor needed)."""

    user: User
    tokens: IssuedTokens | None = None
    challenge: ChallengeStarted | None = None
    device_token: str | None = None


class LoginFlow:
    def __init__(
        self,
        accounts: AccountService,
        sessions: SessionService,
        challenges: LoginChallenges,
        devices: TrustedDevices,
        alerts: SecurityAlerts,
    ) -> None:
        self._accounts = accounts
        self._sessions = sessions
        self._challenges = challenges
        self._devices = devices
        self._alerts = alerts

    def with_password(self, identifier: str, password: str, *, device_token: str | None, client: ClientInfo) -> LoginOutcome:
        user = self._accounts.authenticate(identifier, password, client=client)
        if user.two_factor_enabled:
            if self._devices.recognise(user.id, device_token) is None:
                return LoginOutcome(user, challenge=self._challenges.start(user, client=client))
            self._accounts.record_login(user, client=client, method="pwd+trusted_device")
        else:
            self._accounts.record_login(user, client=client)
        return LoginOutcome(user, tokens=self._sessions.start(user, client=client, amr=["pwd"]))

    def with_second_factor(
        self, passed: SecondFactorPassed, *, trust_device: bool, device_name: str | None, client: ClientInfo
    ) -> LoginOutcome:
        user = passed.user
        device_token = None
        if trust_device:
            device, device_token = self._devices.trust(user.id, name=device_name, client=client)
            self._alerts.notify(
                "trusted_device_added",
                user,
                client=client,
                sentence=f"A device ({device.device_name or 'unnamed'}) was trusted to skip the second factor for 30 days.",
                details={"deviceName": device.device_name},
            )
        self._accounts.record_login(user, client=client, method=passed.method)
        tokens = self._sessions.start(user, client=client, amr=passed.amr)
        return LoginOutcome(user, tokens=tokens, device_token=device_token)
