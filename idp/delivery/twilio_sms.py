"""SMS through Twilio's Messages API with the official client, optionally at another base URL."""

from __future__ import annotations

from typing import Any

from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

from idp.config import TwilioSettings
from idp.delivery.messages import OutgoingSms

TWILIO_API = "https://api.twilio.com"


class BaseUrlHttpClient(TwilioHttpClient):
    """Sends what the client addresses to https://api.twilio.com to `base_url` instead.

    For an egress proxy in front of Twilio, or a local stand-in of the Messages API in tests.
    """

    def __init__(self, base_url: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.base_url = base_url.rstrip("/")

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        if url.startswith(TWILIO_API):
            url = self.base_url + url[len(TWILIO_API) :]
        return super().request(method, url, *args, **kwargs)


class TwilioSmsSender:
    def __init__(self, settings: TwilioSettings) -> None:
        self._from = settings.phone_number
        http_client = (
            BaseUrlHttpClient(settings.api_base_url, timeout=settings.timeout)
            if settings.api_base_url
            else TwilioHttpClient(timeout=settings.timeout)
        )
        # `environment` given so the client reads nothing from os.environ (TWILIO_EDGE/REGION would change the host).
        self._client = Client(
            settings.account_sid,
            settings.auth_token,
            http_client=http_client,
            environment={"TWILIO_ACCOUNT_SID": settings.account_sid},
        )

    def send_sms(self, message: OutgoingSms) -> None:
        """Raises twilio.base.exceptions.TwilioRestException when Twilio refuses or fails."""
        self._client.messages.create(to=message.to, from_=self._from, body=message.body)
