"""TOTP setup and login (API.md /2fa), SECURITY.md 7, 10 and 11."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from threading import Barrier

import pyotp
import time_machine
from sqlalchemy import text

from idp.clock import utcnow
from idp.extensions import db
from idp.mfa.models import TwoFactorMethod


def test_setup_needs_a_verified_email_on_every_path(api):
    token = api.token("alice")
    for path, body in [("/api/2fa/totp/setup", None), ("/api/2fa/sms/setup", {"phoneNumber": "+14155550123"}),
                       ("/api/2fa/email/setup", {"email": "second@example.com"})]:
        response = api.client.post(path, headers=api.bearer(token), json=body)
        assert response.status_code == 403 and response.json["code"] == "email_not_verified", path


def test_email_verification_link_is_single_use(api):
    token = api.token("alice")
    assert api.client.get("/api/email/status", headers=api.bearer(token)).json["data"] == {"emailVerified": False}
    api.client.post("/api/email/send-verification", headers=api.bearer(token))
    link = api.outbox.link_token("alice@example.com")
    assert api.client.post("/api/email/verify", json={"token": link}).status_code == 200
    assert api.client.get("/api/email/status", headers=api.bearer(token)).json["data"] == {"emailVerified": True}
    again = api.client.post("/api/email/verify", json={"token": link})
    assert again.status_code == 400 and again.json["code"] == "invalid_token"


def test_email_verification_link_expires_after_an_hour(api):
    token = api.token("alice")
    api.client.post("/api/email/send-verification", headers=api.bearer(token))
    link = api.outbox.link_token("alice@example.com")
    with time_machine.travel(utcnow() + timedelta(hours=1, seconds=1), tick=False):
        assert api.client.post("/api/email/verify", json={"token": link}).status_code == 400


def test_totp_setup_returns_secret_uri_and_qr_code_and_keeps_the_secret_encrypted(api, app):
    token = api.verified_token()
    data = api.client.post("/api/2fa/totp/setup", headers=api.bearer(token)).json["data"]
    assert len(data["secret"]) >= 32
    assert data["otpauthUrl"].startswith("otpauth://totp/") and f"secret={data['secret']}" in data["otpauthUrl"]
    assert data["qrCode"].startswith("data:image/svg+xml;base64,")
    with app.app_context():
        stored = db.session.scalar(db.select(TwoFactorMethod.secret))
    assert stored and data["secret"] not in stored


def test_verify_setup_refuses_a_secret_the_client_chose_and_a_wrong_code(api):
    token = api.verified_token()
    secret = api.client.post("/api/2fa/totp/setup", headers=api.bearer(token)).json["data"]["secret"]
    chosen = pyotp.random_base32()
    response = api.client.post("/api/2fa/totp/verify-setup", headers=api.bearer(token), json={"secret": chosen, "code": pyotp.TOTP(chosen).now()})
    assert response.status_code == 400 and response.json["code"] == "invalid_code"
    wrong = api.client.post("/api/2fa/totp/verify-setup", headers=api.bearer(token), json={"code": "000000" if pyotp.TOTP(secret).now() != "000000" else "111111"})
    assert wrong.status_code == 400 and wrong.json["message"] == "Invalid verification code"
    me = api.client.get("/api/auth/me", headers=api.bearer(token)).json["data"]["user"]
    assert me["twoFactorEnabled"] is False


def test_enabling_totp_returns_ten_backup_codes_and_login_then_asks_for_the_second_factor(api):
    token = api.verified_token()
    secret, codes = api.enable_totp(token)
    assert len(codes) == 10 and len(set(codes)) == 10
    response = api.login("alice")
    assert response.status_code == 200 and "Set-Cookie" not in response.headers
    data = response.json["data"]
    assert data["requiresTwoFactor"] is True and data["expiresIn"] == 300
    assert data["methods"] == ["totp", "backup_code"] and "accessToken" not in data
    verified = api.client.post("/api/2fa/verify", json={"tempToken": data["tempToken"], "code": pyotp.TOTP(secret).now()})
    assert verified.status_code == 200, verified.json
    assert verified.json["data"]["accessToken"] and "refreshToken=" in verified.headers["Set-Cookie"]


def test_a_totp_code_is_accepted_once_even_in_the_next_window(api):
    """SECURITY.md 7: a replay inside the ±1 window is refused and logged."""
    secret, _ = api.enable_totp(api.verified_token())
    now = utcnow()
    code = pyotp.TOTP(secret).at(now)
    with time_machine.travel(now, tick=False):
        first = api.challenge()["tempToken"]
        assert api.client.post("/api/2fa/verify", json={"tempToken": first, "code": code}).status_code == 200
    with time_machine.travel(now + timedelta(seconds=30), tick=False):  # the code is still inside the drift window
        second = api.challenge()["tempToken"]
        replay = api.client.post("/api/2fa/verify", json={"tempToken": second, "code": code})
        assert replay.status_code == 400 and replay.json["code"] == "invalid_code"
        fresh = api.client.post("/api/2fa/verify", json={"tempToken": second, "code": pyotp.TOTP(secret).at(now + timedelta(seconds=30))})
        assert fresh.status_code == 200, fresh.json
        token = fresh.json["data"]["accessToken"]
        logs = api.client.get("/api/audit-logs", headers=api.bearer(token)).json["data"]["logs"]
    assert any(e["action"] == "2fa_failed" and e["details"].get("reason") == "replay" for e in logs)


def test_codes_one_step_away_are_accepted_two_steps_are_not(api):
    secret, _ = api.enable_totp(api.verified_token())
    now = utcnow() + timedelta(minutes=5)
    with time_machine.travel(now, tick=False):
        old = pyotp.TOTP(secret).at(now - timedelta(seconds=60))
        assert api.client.post("/api/2fa/verify", json={"tempToken": api.challenge()["tempToken"], "code": old}).status_code == 400
        previous = pyotp.TOTP(secret).at(now - timedelta(seconds=30))
        assert api.client.post("/api/2fa/verify", json={"tempToken": api.challenge()["tempToken"], "code": previous}).status_code == 200


def test_the_sixth_code_is_refused_even_when_right(api):
    """SECURITY.md 11: five wrong codes kill the tempToken."""
    secret, _ = api.enable_totp(api.verified_token())
    temp = api.challenge()["tempToken"]
    right = pyotp.TOTP(secret).now()
    wrong = "123456" if right != "123456" else "654321"
    for attempt in range(4):
        response = api.client.post("/api/2fa/verify", json={"tempToken": temp, "code": wrong})
        assert response.status_code == 400 and response.json["code"] == "invalid_code", attempt
    fifth = api.client.post("/api/2fa/verify", json={"tempToken": temp, "code": wrong})
    assert fifth.status_code == 401 and fifth.json["code"] == "invalid_temp_token"
    sixth = api.client.post("/api/2fa/verify", json={"tempToken": temp, "code": right})
    assert sixth.status_code == 401 and sixth.json["code"] == "invalid_temp_token"


def test_the_challenge_expires_after_five_minutes(api):
    secret, _ = api.enable_totp(api.verified_token())
    temp = api.challenge()["tempToken"]
    later = utcnow() + timedelta(minutes=5, seconds=1)
    with time_machine.travel(later, tick=False):
        response = api.client.post("/api/2fa/verify", json={"tempToken": temp, "code": pyotp.TOTP(secret).at(later)})
    assert response.status_code == 401 and response.json["code"] == "invalid_temp_token"


def test_the_challenge_is_single_use(api):
    secret, _ = api.enable_totp(api.verified_token())
    temp = api.challenge()["tempToken"]
    now = utcnow()
    with time_machine.travel(now, tick=False):
        assert api.client.post("/api/2fa/verify", json={"tempToken": temp, "code": pyotp.TOTP(secret).at(now)}).status_code == 200
    with time_machine.travel(now + timedelta(seconds=30), tick=False):
        again = api.client.post("/api/2fa/verify", json={"tempToken": temp, "code": pyotp.TOTP(secret).at(now + timedelta(seconds=30))})
    assert again.status_code == 401


def test_second_factor_shows_in_the_access_token_amr(api, app):
    from joserfc import jwt

    from idp.wiring import components

    secret, _ = api.enable_totp(api.verified_token())
    token = api.client.post("/api/2fa/verify", json={"tempToken": api.challenge()["tempToken"], "code": pyotp.TOTP(secret).now()}).json["data"]["accessToken"]
    with app.app_context():
        claims = jwt.decode(token, components().keys.snapshot().verifying).claims
    assert claims["amr"] == ["pwd", "otp", "mfa"]


def test_a_password_change_keeps_the_sign_ins_factors_and_time(api, app):
    """The API session that goes on after a password change is the same sign-in (as on the account
    pages): its second factor still counts, and the change does not make an old sign-in recent. It
    said amr ["pwd"], as if the user had signed in with a password alone."""
    from joserfc import jwt

    from idp.wiring import components

    secret, _ = api.enable_totp(api.verified_token())
    signed_in = api.client.post("/api/2fa/verify", json={"tempToken": api.challenge()["tempToken"], "code": pyotp.TOTP(secret).now()})
    before = signed_in.json["data"]["accessToken"]
    changed = api.client.post(
        "/api/auth/change-password", headers=api.bearer(before), json={"currentPassword": api.PASSWORD, "newPassword": "Another-Secret-7?"}
    )
    assert changed.status_code == 200, changed.json
    with app.app_context():
        verifying = components().keys.snapshot().verifying
        old, new = (jwt.decode(t, verifying).claims for t in (before, changed.json["data"]["accessToken"]))
    assert new["sid"] != old["sid"]
    assert new["amr"] == old["amr"] == ["pwd", "otp", "mfa"] and new["auth_time"] == old["auth_time"]


def test_a_database_dump_holds_no_usable_secret(api, app, backend):
    """SECURITY.md 10: TOTP secrets, private keys, tokens and codes are encrypted or hashed."""
    token = api.verified_token()
    secret, backup = api.enable_totp(token)
    login = api.login("alice")
    temp = login.json["data"]["tempToken"]
    verified = api.client.post("/api/2fa/verify", json={"tempToken": temp, "code": pyotp.TOTP(secret).now(), "trustDevice": True})
    device_token = verified.json["data"]["deviceToken"]
    refresh = verified.headers["Set-Cookie"].split("refreshToken=")[1].split(";")[0]
    with app.app_context():
        dump = []
        for table in db.metadata.sorted_tables:
            for row in db.session.execute(text(f"SELECT * FROM {table.name}")):
                dump.append(" ".join(str(value) for value in row))
    everything = "\n".join(dump)
    for plain in [secret, device_token, refresh, temp, api.PASSWORD, "PRIVATE KEY", *backup]:
        assert plain not in everything, plain


def test_a_code_in_other_digits_is_a_wrong_code_not_a_500(api):
    """Arabic-Indic digits pass str.isdigit; compared with the expected code they raised a TypeError."""
    token = api.verified_token("alice")
    api.client.post("/api/2fa/totp/setup", headers=api.bearer(token))
    other_digits = "\u0661\u0662\u0663\u0664\u0665\u0666"
    response = api.client.post("/api/2fa/totp/verify-setup", headers=api.bearer(token), json={"code": other_digits})
    assert response.status_code == 400, response.json
    assert response.json["code"] == "invalid_code"
    api.enable_totp(token)
    challenge = api.challenge("alice")
    response = api.client.post("/api/2fa/verify", json={"tempToken": challenge["tempToken"], "code": other_digits})
    assert response.status_code == 400, response.json
    assert response.json["code"] == "invalid_code"


def test_a_setup_submitted_twice_at_once_is_enabled_once(api, app):
    """A double click on "verify": one answer enables TOTP and hands out backup codes; the other is
    a 409, whether it reaches the claim together with the first or after its commit. Both used to
    succeed, with two sets of codes of which one worked."""
    token = api.verified_token("alice")
    secret = api.client.post("/api/2fa/totp/setup", headers=api.bearer(token)).json["data"]["secret"]
    code = pyotp.TOTP(secret).now()
    start = Barrier(2)

    def submit(_: int) -> tuple[int, dict]:
        client = app.test_client()
        start.wait(timeout=30)
        answer = client.post("/api/2fa/totp/verify-setup", headers=api.bearer(token), json={"code": code})
        return answer.status_code, answer.json

    with ThreadPoolExecutor(2) as pool:
        answers = sorted(pool.map(submit, range(2)), key=lambda answer: answer[0])
    assert [status for status, _ in answers] == [200, 409], answers
    assert answers[1][1]["code"] == "conflict"
    backup_codes = answers[0][1]["data"]["backupCodes"]
    assert api.client.get("/api/2fa/backup-codes/count", headers=api.bearer(token)).json["data"]["count"] == 10
    challenge = api.challenge("alice")
    signed_in = api.client.post("/api/2fa/verify-backup-code", json={"tempToken": challenge["tempToken"], "code": backup_codes[0]})
    assert signed_in.status_code == 200, signed_in.json
