"""No secret in any log line: every flow that handles one, logged at DEBUG, then each secret looked for in every line.
And the redacting filter behind that rule, on the shapes it recognises."""

from __future__ import annotations

import io
import json
import logging
import re
import time

import pyotp
import pytest

from idp.config import ObservabilitySettings
from idp.observability.logs import configure_logging
from idp.observability.redaction import REDACTED, redact
from tests.conftest import Api
from tests.observability.conftest import capturing_logs

NEW_PASSWORD = "Brand-New-Horse-77!"
WRONG_PASSWORD = "Wrong-Horse-9!"


def refresh_cookie(api: Api) -> str:
    cookie = api.client.get_cookie("refreshToken", path="/api/auth")
    assert cookie is not None
    return cookie.value


def totp_codes_around_now(secret: str) -> set[str]:
    """Every code the flow may have used: enable_totp takes the previous step's, logins the current one."""
    now = time.time()
    return {pyotp.TOTP(secret).at(now + 30 * step) for step in range(-3, 2)}


def test_no_secret_of_register_login_2fa_reset_refresh_or_api_keys_reaches_a_log_line(make_app):
    api = Api(make_app(LOG_FORMAT="json", LOG_LEVEL="DEBUG").test_client())
    secrets: dict[str, str] = {"password": Api.PASSWORD, "new password": NEW_PASSWORD, "wrong password": WRONG_PASSWORD}
    with capturing_logs() as logs:
        secrets["registration access token"] = api.verified_token("alice")
        secrets["verification token"] = api.outbox.link_token("alice@example.com")
        secrets["registration refresh token"] = refresh_cookie(api)
        totp_secret, backup_codes = api.enable_totp(secrets["registration access token"])
        secrets["totp secret"] = totp_secret

        assert api.login("alice", WRONG_PASSWORD).status_code == 401
        temp_token = api.challenge("alice")["tempToken"]
        secrets["temp token"] = temp_token
        signed_in = api.client.post(
            "/api/2fa/verify", json={"tempToken": temp_token, "code": pyotp.TOTP(totp_secret).now(), "trustDevice": True}
        ).json["data"]
        secrets["login access token"], secrets["device token"] = signed_in["accessToken"], signed_in["deviceToken"]
        secrets["login refresh token"] = refresh_cookie(api)

        refreshed = api.client.post("/api/auth/refresh")  # the cookie
        secrets["refreshed access token"], secrets["rotated refresh token"] = refreshed.json["data"]["accessToken"], refresh_cookie(api)
        api.client.delete_cookie("refreshToken", path="/api/auth")
        in_body = api.client.post("/api/auth/refresh", json={"refreshToken": secrets["rotated refresh token"]})
        assert in_body.status_code == 200
        secrets["refresh token sent in a body"] = refresh_cookie(api)

        created = api.client.post(
            "/api/api-keys", headers=api.bearer(secrets["refreshed access token"]), json={"name": "ci", "scopes": ["*"]}
        )
        secrets["api key"] = created.json["data"]["key"]
        assert api.client.get("/api/auth/me", headers={"X-API-Key": secrets["api key"]}).status_code == 200

        assert api.client.post("/api/auth/password-reset/request", json={"email": "alice@example.com"}).status_code == 200
        secrets["reset token"] = api.outbox.link_token("alice@example.com")
        reset = api.client.post("/api/auth/password-reset/confirm", json={"token": secrets["reset token"], "newPassword": NEW_PASSWORD})
        assert reset.status_code == 200
        temp_token = api.challenge("alice", password=NEW_PASSWORD)["tempToken"]
        secrets["second temp token"] = temp_token
        with_backup = api.client.post("/api/2fa/verify-backup-code", json={"tempToken": temp_token, "code": backup_codes[0]})
        assert with_backup.status_code == 200, with_backup.json

    lines, records = logs.lines, logs.records()
    assert len(lines) > 30 and any(r.get("event") == "password_reset_completed" for r in records), "the flows were logged"
    assert any(r.get("event") == "backup_code_used" for r in records)
    for name, secret in secrets.items():
        assert len(secret) >= 8, name
        leaking = [line for line in lines if secret in line]
        assert not leaking, f"the {name} is in a log line: {leaking[0]}"
    # Short codes may match digits by chance in a timestamp: look for them in everything else.
    without_time = [json.dumps({k: v for k, v in r.items() if k != "timestamp"}) for r in records]
    for code in [*totp_codes_around_now(totp_secret), *backup_codes]:
        pattern = re.compile(rf"(?<![0-9A-Za-z]){re.escape(code)}(?![0-9A-Za-z])")
        assert not [line for line in without_time if pattern.search(line)], f"a code ({code}) is in a log line"


@pytest.mark.parametrize(
    "secret",
    [
        "eyJhbGciOiJFUzI1NiIsInR5cCI6ImF0K2p3dCJ9.eyJzdWIiOiIxMjMifQ.c2lnbmF0dXJl",
        "pk_live_" + "Ab3" * 14,
        "whsec_" + "Zm9vYmFy" * 4,
        "0b7d2a4e-9c1f-4d2b-8a6e-3f5c7d9e1b2a.Xk3-9fQ_2mZ8pLr4TnW6yHc1vBd7sGe0aJu5oKi",
        "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP",
    ],
)
def test_the_redacting_filter_scrubs_the_shapes_of_server_made_secrets(secret):
    assert redact(f"got {secret} here") == f"got {REDACTED} here"


def test_the_redacting_filter_scrubs_named_values_and_keeps_ids_and_words():
    text = ('GET /reset?token=abc&lang=en password=hunter2 "code": "123456" Authorization: Bearer abc.def '
            "user 0b7d2a4e-9c1f-4d2b-8a6e-3f5c7d9e1b2a status_code=200 reason=wrong_password")
    assert redact(text) == (
        f'GET /reset?token={REDACTED}&lang=en password={REDACTED} "code": "{REDACTED}" Authorization: {REDACTED} {REDACTED} '
        "user 0b7d2a4e-9c1f-4d2b-8a6e-3f5c7d9e1b2a status_code=200 reason=wrong_password"
    )


def test_a_log_record_is_scrubbed_in_its_message_fields_and_traceback():
    stream = io.StringIO()
    handler = configure_logging(ObservabilitySettings(log_format="json"), service="idp", stream=stream)
    log = logging.getLogger("tests.observability")
    jwt, api_key, webhook_secret = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiIxMjMifQ.c2ln", "pk_live_" + "x1" * 20, "whsec_" + "s3cr3t" * 5
    try:
        log.warning("issued %s", jwt, extra={"password": "hunter2", "note": f"key {api_key}", "body": {"refreshToken": "r"}})
        try:
            raise ValueError(f"{webhook_secret} refused")
        except ValueError:
            log.exception("delivery failed")
    finally:
        logging.getLogger().removeHandler(handler)
    written = stream.getvalue()
    assert not [secret for secret in ("hunter2", jwt, api_key, webhook_secret) if secret in written]
    first, second = (json.loads(line) for line in written.splitlines())
    assert first["message"] == f"issued {REDACTED}" and first["password"] == REDACTED and first["body"] == {"refreshToken": REDACTED}
    assert "ValueError" in second["exc_info"] and REDACTED in second["exc_info"]
