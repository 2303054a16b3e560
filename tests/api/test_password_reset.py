"""Password reset (API.md /auth/password-reset) and SECURITY.md 3 and 5."""

from __future__ import annotations

from datetime import timedelta

import pyotp
import time_machine

from idp.clock import utcnow

NEW = "Brand-New-Secret-5%"


def request_reset(api, email: str):
    return api.client.post("/api/auth/password-reset/request", json={"email": email})


def test_request_answers_the_same_for_known_and_unknown_addresses(api):
    api.register("alice")
    known, unknown = request_reset(api, "alice@example.com"), request_reset(api, "nobody@example.com")
    assert known.status_code == unknown.status_code == 200
    assert known.json == unknown.json
    assert api.outbox.messages("nobody@example.com") == []
    assert "reset-password?token=" in api.outbox.last("alice@example.com")["text"]


def test_reset_sets_the_password_revokes_sessions_and_the_link_is_single_use(api):
    registered = api.register("alice")
    access = registered.json["data"]["accessToken"]
    request_reset(api, "ALICE@example.com")
    token = api.outbox.link_token("alice@example.com")
    response = api.client.post("/api/auth/password-reset/confirm", json={"token": token, "newPassword": NEW})
    assert response.status_code == 200, response.json
    assert api.client.get("/api/auth/me", headers=api.bearer(access)).status_code == 401
    assert api.login("alice").status_code == 401 and api.login("alice", NEW).status_code == 200
    again = api.client.post("/api/auth/password-reset/confirm", json={"token": token, "newPassword": "Another-One-77!"})
    assert again.status_code == 400 and again.json["code"] == "invalid_token"


def test_a_weak_new_password_is_refused_and_the_link_stays_usable(api):
    api.register("alice")
    request_reset(api, "alice@example.com")
    token = api.outbox.link_token("alice@example.com")
    weak = api.client.post("/api/auth/password-reset/confirm", json={"token": token, "newPassword": "password1"})
    assert weak.status_code == 400 and weak.json["errors"][0].startswith("newPassword:")
    assert api.client.post("/api/auth/password-reset/confirm", json={"token": token, "newPassword": NEW}).status_code == 200


def test_the_link_expires_after_an_hour(api):
    api.register("alice")
    request_reset(api, "alice@example.com")
    token = api.outbox.link_token("alice@example.com")
    with time_machine.travel(utcnow() + timedelta(hours=1, seconds=1), tick=False):
        assert api.client.post("/api/auth/password-reset/confirm", json={"token": token, "newPassword": NEW}).status_code == 400


def test_reset_never_bypasses_the_second_factor_and_forgets_trusted_devices(api):
    secret, _ = api.enable_totp(api.verified_token())
    trusted = api.client.post(
        "/api/2fa/verify", json={"tempToken": api.challenge()["tempToken"], "code": pyotp.TOTP(secret).now(), "trustDevice": True}
    ).json["data"]["deviceToken"]
    request_reset(api, "alice@example.com")
    token = api.outbox.link_token("alice@example.com")
    assert api.client.post("/api/auth/password-reset/confirm", json={"token": token, "newPassword": NEW}).status_code == 200
    after = api.login("alice", NEW, deviceToken=trusted)
    assert after.json["data"]["requiresTwoFactor"] is True


def test_change_password_is_announced_by_email(api):
    token = api.token("alice")
    api.client.post("/api/auth/change-password", headers=api.bearer(token), json={"currentPassword": api.PASSWORD, "newPassword": NEW})
    assert "password was changed" in api.outbox.last("alice@example.com")["text"].lower()


def test_reset_requests_do_not_use_up_the_codes_of_a_sign_in(make_app):
    """Anyone may ask for a reset of any address: the links have a counter of their own, so three
    requests an hour from a stranger do not stop the codes an email or SMS second factor needs."""
    from tests.conftest import Api

    api = Api(make_app(RATE_LIMIT_CODE_SEND="3 per hour").test_client())
    token = api.verified_token()  # the verification email: one code sent of three
    api.client.post("/api/2fa/email/setup", headers=api.bearer(token), json={"email": "codes@example.com"})
    api.client.post("/api/2fa/email/verify-setup", headers=api.bearer(token), json={"code": api.outbox.code("codes@example.com")})
    links = len(api.outbox.messages("alice@example.com"))
    for _ in range(4):
        assert request_reset(api, "alice@example.com").status_code == 200
    assert len(api.outbox.messages("alice@example.com")) == links + 3  # the fourth link is capped
    codes = len(api.outbox.messages("codes@example.com"))
    challenge = api.challenge()
    assert challenge["methods"] == ["email", "backup_code"]
    assert len(api.outbox.messages("codes@example.com")) == codes + 1  # the sign-in's code was sent
    signed_in = api.client.post("/api/2fa/verify", json={"tempToken": challenge["tempToken"], "code": api.outbox.code("codes@example.com")})
    assert signed_in.status_code == 200
