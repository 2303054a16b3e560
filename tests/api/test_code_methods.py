"""SMS and email methods, sent codes (SECURITY.md 8), method management, recent authentication (6) and alerts (13)."""

from __future__ import annotations

from datetime import timedelta

import time_machine

from idp.clock import utcnow
from idp.extensions import db
from idp.mfa.models import OneTimeCode

PHONE = "+14155550123"


def enable_sms(api, token: str) -> dict:
    assert api.client.post("/api/2fa/sms/setup", headers=api.bearer(token), json={"phoneNumber": PHONE}).status_code == 200
    response = api.client.post("/api/2fa/sms/verify-setup", headers=api.bearer(token), json={"code": api.outbox.code(PHONE)})
    assert response.status_code == 200, response.json
    return response.json["data"]


def test_sms_setup_sends_a_six_digit_code_and_enables_sms(api, app):
    token = api.verified_token()
    data = enable_sms(api, token)
    assert len(data["backupCodes"]) == 10  # 2FA went from off to on
    methods = api.client.get("/api/2fa/methods", headers=api.bearer(token)).json["data"]["methods"]
    assert [(m["type"], m["phoneNumber"]) for m in methods] == [("sms", "***0123")]
    assert methods[0]["verifiedAt"] and methods[0]["createdAt"]
    with app.app_context():
        stored = db.session.scalars(db.select(OneTimeCode.code_hash)).all()
    assert stored and all(len(h) == 64 for h in stored)


def test_phone_numbers_must_be_e164(api):
    token = api.verified_token()
    response = api.client.post("/api/2fa/sms/setup", headers=api.bearer(token), json={"phoneNumber": "0415 555 0123"})
    assert response.status_code == 400 and response.json["errors"][0].startswith("phoneNumber:")


def test_email_method_login_sends_the_code_by_itself_and_accepts_it_once(api):
    token = api.verified_token()
    api.client.post("/api/2fa/email/setup", headers=api.bearer(token), json={"email": "Codes@Example.com"})
    api.client.post("/api/2fa/email/verify-setup", headers=api.bearer(token), json={"code": api.outbox.code("codes@example.com")})
    methods = api.client.get("/api/2fa/methods", headers=api.bearer(token)).json["data"]["methods"]
    assert methods[0]["email"] == "cod***@example.com"
    challenge = api.challenge()
    assert challenge["methods"] == ["email", "backup_code"]
    code = api.outbox.code("codes@example.com")
    ok = api.client.post("/api/2fa/verify", json={"tempToken": challenge["tempToken"], "code": code})
    assert ok.status_code == 200
    replay = api.client.post("/api/2fa/verify", json={"tempToken": api.challenge()["tempToken"], "code": code})
    assert replay.status_code == 400


def test_a_sent_code_expires_after_five_minutes(api):
    token = api.verified_token()
    api.client.post("/api/2fa/sms/setup", headers=api.bearer(token), json={"phoneNumber": PHONE})
    code = api.outbox.code(PHONE)
    with time_machine.travel(utcnow() + timedelta(minutes=5, seconds=1), tick=False):
        late = api.client.post("/api/2fa/sms/verify-setup", headers=api.bearer(token), json={"code": code})
    assert late.status_code == 400 and late.json["code"] == "invalid_code"
    api.client.post("/api/2fa/sms/setup", headers=api.bearer(token), json={"phoneNumber": PHONE})
    with time_machine.travel(utcnow() + timedelta(minutes=4, seconds=50), tick=False):
        in_time = api.client.post("/api/2fa/sms/verify-setup", headers=api.bearer(token), json={"code": api.outbox.code(PHONE)})
    assert in_time.status_code == 200


def test_a_login_code_is_bound_to_its_challenge(api):
    enable_sms(api, api.verified_token())
    first = api.challenge()["tempToken"]
    first_code = api.outbox.code(PHONE)
    now = utcnow() + timedelta(seconds=31)
    with time_machine.travel(now, tick=False):
        second = api.challenge()["tempToken"]
        assert api.client.post("/api/2fa/verify", json={"tempToken": second, "code": first_code}).status_code == 400
        assert api.client.post("/api/2fa/verify", json={"tempToken": first, "code": first_code}).status_code == 200


def test_resend_waits_30_seconds_and_sends_a_new_code(api):
    enable_sms(api, api.verified_token())
    temp = api.challenge()["tempToken"]
    too_soon = api.client.post("/api/2fa/resend", json={"tempToken": temp, "method": "sms"})
    assert too_soon.status_code == 429 and 0 < int(too_soon.headers["Retry-After"]) <= 30
    old = api.outbox.code(PHONE)
    with time_machine.travel(utcnow() + timedelta(seconds=31), tick=False):
        assert api.client.post("/api/2fa/resend", json={"tempToken": temp, "method": "sms"}).status_code == 200
        new = api.outbox.code(PHONE)
        if new != old:
            assert api.client.post("/api/2fa/verify", json={"tempToken": temp, "code": old}).status_code == 400
        assert api.client.post("/api/2fa/verify", json={"tempToken": temp, "code": new}).status_code == 200


def test_resend_for_a_method_the_user_does_not_have_is_400(api):
    enable_sms(api, api.verified_token())
    response = api.client.post("/api/2fa/resend", json={"tempToken": api.challenge()["tempToken"], "method": "email"})
    assert response.status_code == 400


def test_codes_sent_per_user_are_capped_per_hour(make_app):
    from tests.conftest import Api

    api = Api(make_app(RATE_LIMIT_CODE_SEND="3 per hour").test_client())
    token = api.verified_token()  # the verification email is the first code sent
    for _ in range(2):
        assert api.client.post("/api/2fa/sms/setup", headers=api.bearer(token), json={"phoneNumber": PHONE}).status_code == 200
    capped = api.client.post("/api/2fa/sms/setup", headers=api.bearer(token), json={"phoneNumber": PHONE})
    assert capped.status_code == 429 and int(capped.headers["Retry-After"]) > 0


def test_codes_sent_by_themselves_at_sign_in_have_an_hourly_allowance(make_app):
    """Each sign-in sends its first code by itself (not one of the capped code sends), up to
    RATE_LIMIT_LOGIN_CODE an hour per user: signing in again and again does not pump SMS."""
    from tests.conftest import Api

    api = Api(make_app(RATE_LIMIT_LOGIN_CODE="2 per hour").test_client())
    enable_sms(api, api.verified_token())
    sent = [api.challenge()["codeSentBy"] for _ in range(3)]
    assert sent == ["sms", "sms", None]
    assert len(api.outbox.messages(PHONE)) == 1 + 2  # the setup code and two sign-ins
    temp = api.challenge()["tempToken"]
    asked = api.client.post("/api/2fa/resend", json={"tempToken": temp, "method": "sms"})  # asking still works, counted
    assert asked.status_code == 200 and len(api.outbox.messages(PHONE)) == 4
    assert api.client.post("/api/2fa/verify", json={"tempToken": temp, "code": api.outbox.code(PHONE)}).status_code == 200


def test_a_new_phone_does_not_replace_the_old_one_until_verified(api):
    token = api.verified_token()
    enable_sms(api, token)
    api.client.post("/api/2fa/sms/setup", headers=api.bearer(token), json={"phoneNumber": "+442071234567"})
    methods = api.client.get("/api/2fa/methods", headers=api.bearer(token)).json["data"]["methods"]
    assert [m["phoneNumber"] for m in methods] == ["***0123"]  # the pending number is not active
    api.challenge()
    assert api.outbox.last(PHONE)  # login codes still go to the verified phone
    response = api.client.post("/api/2fa/sms/verify-setup", headers=api.bearer(token), json={"code": api.outbox.code("+442071234567")})
    assert response.status_code == 200 and "backupCodes" not in response.json["data"]
    methods = api.client.get("/api/2fa/methods", headers=api.bearer(token)).json["data"]["methods"]
    assert [m["phoneNumber"] for m in methods] == ["***4567"]


def test_removing_the_last_method_turns_2fa_off_and_deletes_backup_codes(api):
    token = api.verified_token()
    api.enable_totp(token)
    method = api.client.get("/api/2fa/methods", headers=api.bearer(token)).json["data"]["methods"][0]
    response = api.client.delete(f"/api/2fa/methods/{method['id']}", headers=api.bearer(token))
    assert response.status_code == 200 and response.json["data"]["twoFactorEnabled"] is False
    assert api.client.get("/api/2fa/backup-codes/count", headers=api.bearer(token)).json["data"]["count"] == 0
    assert "accessToken" in api.login("alice").json["data"]


def test_removing_one_of_two_methods_keeps_2fa_on(api):
    token = api.verified_token()
    secret, _ = api.enable_totp(token)
    enable_sms(api, token)
    methods = api.client.get("/api/2fa/methods", headers=api.bearer(token)).json["data"]["methods"]
    totp = next(m for m in methods if m["type"] == "totp")
    assert api.client.delete(f"/api/2fa/methods/{totp['id']}", headers=api.bearer(token)).json["data"]["twoFactorEnabled"] is True
    assert api.challenge()["methods"] == ["sms", "backup_code"]


def _sms_code_for_a_challenge(api, token: str, phone: str = PHONE) -> tuple[str, str]:
    """A user with TOTP and text messages, signing in: the tempToken and the code sent to `phone`."""
    temp = api.challenge()["tempToken"]
    assert api.client.post("/api/2fa/resend", json={"tempToken": temp, "method": "sms"}).status_code == 200
    return temp, api.outbox.code(phone)


def test_a_sign_in_code_stops_working_when_its_phone_is_removed(api):
    """The owner who removes a lost phone stops the codes already sent to it at once, not 5
    minutes later."""
    token = api.verified_token()
    api.enable_totp(token)
    enable_sms(api, token)
    temp, code = _sms_code_for_a_challenge(api, token)
    sms = next(m for m in api.client.get("/api/2fa/methods", headers=api.bearer(token)).json["data"]["methods"] if m["type"] == "sms")
    assert api.client.delete(f"/api/2fa/methods/{sms['id']}", headers=api.bearer(token)).status_code == 200
    refused = api.client.post("/api/2fa/verify", json={"tempToken": temp, "code": code})
    assert refused.status_code == 400 and refused.json["code"] == "invalid_code"


def test_a_sign_in_code_stops_working_when_its_phone_is_replaced(api):
    token = api.verified_token()
    api.enable_totp(token)
    enable_sms(api, token)
    temp, code = _sms_code_for_a_challenge(api, token)
    api.client.post("/api/2fa/sms/setup", headers=api.bearer(token), json={"phoneNumber": "+442071234567"})
    assert api.client.post(
        "/api/2fa/sms/verify-setup", headers=api.bearer(token), json={"code": api.outbox.code("+442071234567")}
    ).status_code == 200
    refused = api.client.post("/api/2fa/verify", json={"tempToken": temp, "code": code})
    assert refused.status_code == 400 and refused.json["code"] == "invalid_code"


def test_sensitive_changes_need_a_recent_sign_in(api):
    """SECURITY.md 6: after the 10-minute window, removing a method or regenerating backup codes is
    refused although the access token (15 minutes) is still valid."""
    token = api.verified_token()
    api.enable_totp(token)
    method = api.client.get("/api/2fa/methods", headers=api.bearer(token)).json["data"]["methods"][0]
    with time_machine.travel(utcnow() + timedelta(minutes=10, seconds=5), tick=False):
        assert api.client.get("/api/auth/me", headers=api.bearer(token)).status_code == 200
        for method_name, path in [("delete", f"/api/2fa/methods/{method['id']}"), ("post", "/api/2fa/backup-codes/generate")]:
            response = getattr(api.client, method_name)(path, headers=api.bearer(token))
            assert response.status_code == 403 and response.json["code"] == "reauthentication_required", path
    assert api.client.get("/api/2fa/methods", headers=api.bearer(token)).json["data"]["methods"]  # nothing was removed


def test_replacing_a_factor_needs_a_recent_sign_in_but_adding_the_first_does_not(api):
    token = api.verified_token()
    with time_machine.travel(utcnow() + timedelta(minutes=10, seconds=5), tick=False):
        assert api.client.post("/api/2fa/totp/setup", headers=api.bearer(token)).status_code == 200  # 2FA still off
    api.enable_totp(token)
    with time_machine.travel(utcnow() + timedelta(minutes=10, seconds=5), tick=False):
        for path, body in [("/api/2fa/totp/setup", None), ("/api/2fa/totp/verify-setup", {"code": "123456"}),
                           ("/api/2fa/sms/setup", {"phoneNumber": PHONE}), ("/api/2fa/email/verify-setup", {"code": "123456"})]:
            response = api.client.post(path, headers=api.bearer(token), json=body)
            assert response.status_code == 403 and response.json["code"] == "reauthentication_required", path


def test_every_factor_change_is_audited_and_emailed(api):
    """SECURITY.md 13."""
    token = api.verified_token()
    secret, _ = api.enable_totp(token)
    api.client.post("/api/2fa/backup-codes/generate", headers=api.bearer(token))
    method = api.client.get("/api/2fa/methods", headers=api.bearer(token)).json["data"]["methods"][0]
    api.client.delete(f"/api/2fa/methods/{method['id']}", headers=api.bearer(token))
    actions = [e["action"] for e in api.client.get("/api/audit-logs?limit=50", headers=api.bearer(token)).json["data"]["logs"]]
    assert {"2fa_enabled", "backup_codes_generated", "2fa_disabled"} <= set(actions)
    alerts = [m for m in api.outbox.messages("alice@example.com") if "verify" not in m["subject"].lower()]
    texts = " ".join(m["text"] for m in alerts)
    assert len(alerts) >= 3
    assert "authenticator app" in texts.lower() and "backup codes" in texts.lower() and "removed" in texts.lower()


def test_replacing_a_factor_reports_what_it_replaced(api):
    """SECURITY.md 13: a new authenticator app or phone retires the old one (and a new app the
    backup codes); the event and the email say so, not only that a factor was added."""
    token = api.verified_token()
    api.enable_totp(token)
    old_app = api.client.get("/api/2fa/methods", headers=api.bearer(token)).json["data"]["methods"][0]["id"]
    api.enable_totp(token)
    enable_sms(api, token)
    methods = api.client.get("/api/2fa/methods", headers=api.bearer(token)).json["data"]["methods"]
    old_phone = next(m["id"] for m in methods if m["type"] == "sms")
    api.client.post("/api/2fa/sms/setup", headers=api.bearer(token), json={"phoneNumber": "+14155550999"})
    api.client.post("/api/2fa/sms/verify-setup", headers=api.bearer(token), json={"code": api.outbox.code("+14155550999")})
    logs = api.client.get("/api/audit-logs?limit=50", headers=api.bearer(token)).json["data"]["logs"]
    enabled = [(e["details"]["method"], e["details"]["replacedMethodIds"], e["details"]["backupCodesReplaced"])
               for e in reversed(logs) if e["action"] == "2fa_enabled"]
    assert enabled == [("totp", [], False), ("totp", [old_app], True), ("sms", [], False), ("sms", [old_phone], False)]
    texts = [m["text"] for m in api.outbox.messages("alice@example.com")]
    assert any("An authenticator app replaced the one set up before. New backup codes were generated" in t for t in texts)
    assert any("Text messages to your phone replaced the one set up before." in t for t in texts)


def test_a_setup_code_dies_after_five_wrong_tries(api):
    token = api.verified_token()
    api.client.post("/api/2fa/sms/setup", headers=api.bearer(token), json={"phoneNumber": PHONE})
    right = api.outbox.code(PHONE)
    wrong = "000000" if right != "000000" else "111111"
    for _ in range(5):
        assert api.client.post("/api/2fa/sms/verify-setup", headers=api.bearer(token), json={"code": wrong}).status_code == 400
    response = api.client.post("/api/2fa/sms/verify-setup", headers=api.bearer(token), json={"code": right})
    assert response.status_code == 400
    assert api.client.get("/api/2fa/methods", headers=api.bearer(token)).json["data"]["methods"] == []


def test_a_code_is_bound_to_its_purpose(api):
    """A setup code for a new phone does not pass a login challenge, and a login code does not confirm a setup."""
    token = api.verified_token()
    enable_sms(api, token)
    api.client.post("/api/2fa/email/setup", headers=api.bearer(token), json={"email": "codes@example.com"})
    setup_code = api.outbox.code("codes@example.com")
    now = utcnow() + timedelta(seconds=31)
    with time_machine.travel(now, tick=False):
        temp = api.challenge()["tempToken"]
        login_code = api.outbox.code(PHONE)
        if login_code != setup_code:
            assert api.client.post("/api/2fa/verify", json={"tempToken": temp, "code": setup_code}).status_code == 400
            assert api.client.post("/api/2fa/email/verify-setup", headers=api.bearer(token), json={"code": login_code}).status_code in (400, 401)


def production_twin(make_app, app, **extra):
    """The same database as a production app: no SMS provider, email only where forced."""
    from idp.wiring import components

    with app.app_context():
        keys = ",".join(components().settings.encryption_keys)
    return make_app(IDP_ENV="production", SECRET_KEY="Zr8Tn1Wc6Hy5Bf0Gs-k3Jd9Qm2Xv7Lp4-twin-secret", ENCRYPTION_KEYS=keys, **extra)


def test_a_right_password_is_not_revealed_when_the_login_code_cannot_be_sent(make_app, app, api):
    enable_sms(api, api.verified_token())
    from tests.conftest import Api

    twin = Api(production_twin(make_app, app, EMAIL_BACKEND="console").test_client())
    right = twin.login("alice")
    assert right.status_code == 200 and right.json["data"]["requiresTwoFactor"] is True  # not a 503
    assert twin.login("alice", "Wrong-Password-1!").status_code == 401


def test_password_reset_answers_alike_when_email_cannot_be_sent(make_app, app, api):
    api.register("alice")
    from tests.conftest import Api

    twin = Api(production_twin(make_app, app).test_client())
    known = twin.client.post("/api/auth/password-reset/request", json={"email": "alice@example.com"})
    unknown = twin.client.post("/api/auth/password-reset/request", json={"email": "nobody@example.com"})
    assert known.status_code == unknown.status_code == 200 and known.json == unknown.json


def test_sms_setup_without_a_provider_is_503(make_app, app, api):
    token = api.verified_token()
    from tests.conftest import Api

    twin = Api(production_twin(make_app, app).test_client())
    response = twin.client.post("/api/2fa/sms/setup", headers=twin.bearer(token), json={"phoneNumber": PHONE})
    assert response.status_code == 503 and response.json["code"] == "delivery_unavailable"


def test_asking_again_for_a_code_spends_no_tries_of_the_right_one(make_app):
    """API.md counts /2fa/resend as a code sent (per user), not under the two-factor limit of
    tries: ten impatient clicks answered by the cooldown locked the right code out for 15 minutes."""
    from tests.conftest import Api

    api = Api(make_app(RATE_LIMIT_TWO_FACTOR="3 per 15 minutes").test_client())
    enable_sms(api, api.verified_token())
    temp = api.challenge()["tempToken"]
    code = api.outbox.code(PHONE)
    for _ in range(5):
        assert api.client.post("/api/2fa/resend", json={"tempToken": temp, "method": "sms"}).status_code == 429  # the cooldown
    assert api.client.post("/api/2fa/verify", json={"tempToken": temp, "code": code}).status_code == 200


def test_a_code_works_once_and_only_for_its_own_binding(api, app):
    """SECURITY.md 8, at the level of `OneTimeCodes` itself: the tests through the API cannot see a
    code used twice on one binding (the challenge ends with its first right code), nor a code of
    one purpose offered to another (the challenge and method bindings refuse it first)."""
    from sqlalchemy import select

    from idp.accounts.models import User
    from idp.wiring import one_time_codes

    api.verified_token()
    with app.test_request_context():
        user_id = db.session.scalar(select(User.id).where(User.username == "alice"))
        codes = one_time_codes()
        setup = codes.issue(user_id=user_id, purpose="setup", channel="email")
        assert codes.check(setup, user_id=user_id, purpose="login") is None  # another purpose, the same (empty) binding
        assert codes.check(setup, user_id=user_id, purpose="setup") is not None
        assert codes.check(setup, user_id=user_id, purpose="setup") is None  # used
        db.session.rollback()
