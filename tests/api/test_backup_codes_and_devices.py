"""Backup codes (SECURITY.md 9) and trusted devices (SECURITY.md 12)."""

from __future__ import annotations

from datetime import timedelta

import pyotp
import time_machine

from idp.clock import utcnow
from idp.extensions import db
from idp.mfa.models import BackupCode, TrustedDevice


def test_backup_codes_are_ten_50_bit_codes_stored_as_argon2id(api, app):
    _, codes = api.enable_totp(api.verified_token())
    assert len(codes) == 10
    for code in codes:
        assert len(code) == 11 and code[5] == "-"  # 10 symbols of a 32-letter alphabet = 50 bits
        assert all(c in "abcdefghijklmnopqrstuvwxyz234567" for c in code.replace("-", ""))
    # drawn from all 32 letters: 100 draws show about 31 of them (a smaller alphabet, fewer bits, would show)
    assert len(set("".join(codes).replace("-", ""))) >= 20
    with app.app_context():
        hashes = db.session.scalars(db.select(BackupCode.code_hash)).all()
    assert len(hashes) == 10 and all(h.startswith("$argon2id$") for h in hashes)


def test_a_backup_code_signs_in_once_in_any_case_and_without_the_dash(api):
    _, codes = api.enable_totp(api.verified_token())
    typed = codes[0].upper().replace("-", "")
    first = api.client.post("/api/2fa/verify-backup-code", json={"tempToken": api.challenge()["tempToken"], "code": typed})
    assert first.status_code == 200 and first.json["data"]["accessToken"]
    token = first.json["data"]["accessToken"]
    again = api.client.post("/api/2fa/verify-backup-code", json={"tempToken": api.challenge()["tempToken"], "code": codes[0]})
    assert again.status_code == 400 and again.json["code"] == "invalid_code"
    assert api.client.get("/api/2fa/backup-codes/count", headers=api.bearer(token)).json["data"] == {"count": 9}


def test_regenerating_backup_codes_replaces_the_old_ones(api):
    token = api.verified_token()
    _, old = api.enable_totp(token)
    response = api.client.post("/api/2fa/backup-codes/generate", headers=api.bearer(token))
    assert response.status_code == 200
    new = response.json["data"]["backupCodes"]
    assert len(new) == 10 and not set(new) & set(old)
    stale = api.client.post("/api/2fa/verify-backup-code", json={"tempToken": api.challenge()["tempToken"], "code": old[0]})
    assert stale.status_code == 400
    assert api.client.post("/api/2fa/verify-backup-code", json={"tempToken": api.challenge()["tempToken"], "code": new[0]}).status_code == 200


def test_regenerating_without_2fa_is_409(api):
    token = api.verified_token()
    assert api.client.post("/api/2fa/backup-codes/generate", headers=api.bearer(token)).status_code == 409


def trust(api, secret: str, name: str = "My Laptop"):
    response = api.client.post(
        "/api/2fa/verify", json={"tempToken": api.challenge()["tempToken"], "code": pyotp.TOTP(secret).now(), "trustDevice": True, "deviceName": name}
    )
    assert response.status_code == 200, response.json
    return response


def test_trusting_a_device_returns_a_token_and_an_httponly_cookie_and_skips_2fa_next_time(api, app):
    secret, _ = api.enable_totp(api.verified_token())
    response = trust(api, secret)
    device_token = response.json["data"]["deviceToken"]
    cookies = response.headers.getlist("Set-Cookie")
    device_cookie = next(c for c in cookies if c.startswith("deviceToken="))
    assert "HttpOnly" in device_cookie and "Max-Age=2592000" in device_cookie
    with app.app_context():
        stored = db.session.scalar(db.select(TrustedDevice.token_hash))
    assert stored != device_token and len(device_token) >= 43

    by_cookie = api.login("alice")  # the test client sends the cookie back
    assert by_cookie.status_code == 200 and "accessToken" in by_cookie.json["data"]
    api.client.delete_cookie("deviceToken", path="/")
    assert api.login("alice").json["data"]["requiresTwoFactor"] is True
    by_body = api.login("alice", deviceToken=device_token)
    assert "accessToken" in by_body.json["data"]
    token = by_body.json["data"]["accessToken"]
    devices = api.client.get("/api/2fa/devices", headers=api.bearer(token)).json["data"]["devices"]
    assert [d["deviceName"] for d in devices] == ["My Laptop"]
    assert devices[0]["lastUsedAt"] and devices[0]["expiresAt"] and devices[0]["ipAddress"] == "127.0.0.1"


def test_at_most_ten_devices_are_trusted_the_least_recently_used_forgotten(api):
    """Nothing capped how many devices a user had trusted."""
    from idp.mfa.devices import MAX_DEVICES

    secret, _ = api.enable_totp(api.verified_token())
    now = utcnow()
    tokens = []
    for step in range(MAX_DEVICES + 1):  # as many browsers: no cookie
        api.client.delete_cookie("deviceToken", path="/")
        with time_machine.travel(now + timedelta(seconds=30 * step), tick=False):
            tokens.append(trust(api, secret, name=f"Browser {step}").json["data"]["deviceToken"])
    api.client.delete_cookie("deviceToken", path="/")
    with time_machine.travel(now + timedelta(seconds=30 * (MAX_DEVICES + 2)), tick=False):
        assert api.login("alice", deviceToken=tokens[0]).json["data"]["requiresTwoFactor"] is True
        signed_in = api.login("alice", deviceToken=tokens[-1])
        assert signed_in.status_code == 200, signed_in.json
        listed = api.client.get("/api/2fa/devices", headers=api.bearer(signed_in.json["data"]["accessToken"]))
    names = [d["deviceName"] for d in listed.json["data"]["devices"]]
    assert len(names) == MAX_DEVICES and "Browser 0" not in names


def test_an_expired_device_does_not_take_the_place_of_a_trusted_one(api):
    """Expired devices stayed and counted towards MAX_DEVICES: one used shortly before it expired
    ranked as more recently used than live devices, and trusting a browser forgot a live device
    while the user had fewer than MAX_DEVICES that still worked."""
    from idp.mfa.devices import MAX_DEVICES, TRUST_FOR

    secret, _ = api.enable_totp(api.verified_token())
    start = utcnow()
    with time_machine.travel(start, tick=False):
        old = trust(api, secret, name="Old").json["data"]["deviceToken"]
    api.client.delete_cookie("deviceToken", path="/")
    with time_machine.travel(start + TRUST_FOR - timedelta(hours=1), tick=False):  # used just before it expires
        assert "accessToken" in api.login("alice", deviceToken=old).json["data"]
    tokens = []
    for step in range(MAX_DEVICES - 1):  # as many other browsers, trusted once and not used since
        api.client.delete_cookie("deviceToken", path="/")
        with time_machine.travel(start + timedelta(days=1, seconds=30 * step), tick=False):
            tokens.append(trust(api, secret, name=f"Browser {step}").json["data"]["deviceToken"])
    api.client.delete_cookie("deviceToken", path="/")
    later = start + TRUST_FOR + timedelta(minutes=1)  # "Old" has expired; the others have a day left
    with time_machine.travel(later, tick=False):
        newest = trust(api, secret, name="Newest").json["data"]
        listed = api.client.get("/api/2fa/devices", headers=api.bearer(newest["accessToken"])).json["data"]["devices"]
        assert len(listed) == MAX_DEVICES, [d["deviceName"] for d in listed]
        api.client.delete_cookie("deviceToken", path="/")
        assert "accessToken" in api.login("alice", deviceToken=tokens[0]).json["data"]


def test_a_device_token_works_only_for_its_own_user(api):
    secret, _ = api.enable_totp(api.verified_token("alice"))
    alice_device = trust(api, secret).json["data"]["deviceToken"]
    api.client.delete_cookie("deviceToken", path="/")
    api.enable_totp(api.verified_token("bob"))
    response = api.login("bob", deviceToken=alice_device)
    assert response.json["data"]["requiresTwoFactor"] is True


def test_a_device_is_trusted_for_30_days_only(api):
    secret, _ = api.enable_totp(api.verified_token())
    device = trust(api, secret).json["data"]["deviceToken"]
    api.client.delete_cookie("deviceToken", path="/")
    with time_machine.travel(utcnow() + timedelta(days=30, seconds=1), tick=False):
        assert api.login("alice", deviceToken=device).json["data"]["requiresTwoFactor"] is True


def test_removing_devices_one_or_all(api):
    secret, _ = api.enable_totp(api.verified_token())
    first = trust(api, secret, "Laptop").json["data"]
    api.client.delete_cookie("deviceToken", path="/")
    now = utcnow() + timedelta(seconds=31)
    with time_machine.travel(now, tick=False):
        second = api.client.post(
            "/api/2fa/verify",
            json={"tempToken": api.challenge()["tempToken"], "code": pyotp.TOTP(secret).at(now), "trustDevice": True, "deviceName": "Phone"},
        ).json["data"]
        token = second["accessToken"]
        headers = api.bearer(token)
        devices = api.client.get("/api/2fa/devices", headers=headers).json["data"]["devices"]
        assert {d["deviceName"] for d in devices} == {"Laptop", "Phone"}
        laptop = next(d["id"] for d in devices if d["deviceName"] == "Laptop")
        assert api.client.delete(f"/api/2fa/devices/{laptop}", headers=headers).status_code == 200
        assert api.client.delete(f"/api/2fa/devices/{laptop}", headers=headers).status_code == 404
        api.client.delete_cookie("deviceToken", path="/")
        assert api.login("alice", deviceToken=first["deviceToken"]).json["data"]["requiresTwoFactor"] is True
        removed = api.client.delete("/api/2fa/devices", headers=headers)
        assert removed.status_code == 200 and removed.json["data"]["removed"] == 1
        assert api.login("alice", deviceToken=second["deviceToken"]).json["data"]["requiresTwoFactor"] is True


def test_another_users_device_cannot_be_removed(api):
    secret, _ = api.enable_totp(api.verified_token("alice"))
    alice = trust(api, secret).json["data"]
    device_id = api.client.get("/api/2fa/devices", headers=api.bearer(alice["accessToken"])).json["data"]["devices"][0]["id"]
    bob = api.verified_token("bob")
    assert api.client.delete(f"/api/2fa/devices/{device_id}", headers=api.bearer(bob)).status_code == 404
    assert len(api.client.get("/api/2fa/devices", headers=api.bearer(alice["accessToken"])).json["data"]["devices"]) == 1


def test_removing_this_browsers_own_device_clears_its_cookie(api):
    """As the account page's removal does: the cookie of a device no longer trusted went on being
    sent (dead on the server, but stale); removing another device leaves this one's cookie alone."""
    secret, _ = api.enable_totp(api.verified_token())
    now = utcnow()
    with time_machine.travel(now, tick=False):
        trust(api, secret, name="Other")
    api.client.delete_cookie("deviceToken", path="/")
    with time_machine.travel(now + timedelta(seconds=30), tick=False):  # the next step's code
        signed_in = trust(api, secret, name="This one")
        bearer = api.bearer(signed_in.json["data"]["accessToken"])
        devices = {d["deviceName"]: d["id"] for d in api.client.get("/api/2fa/devices", headers=bearer).json["data"]["devices"]}
        kept = api.client.delete(f"/api/2fa/devices/{devices['Other']}", headers=bearer)
        assert kept.status_code == 200 and not any(c.startswith("deviceToken=") for c in kept.headers.getlist("Set-Cookie"))
        assert api.client.get_cookie("deviceToken") is not None
        cleared = api.client.delete(f"/api/2fa/devices/{devices['This one']}", headers=bearer)
        assert cleared.status_code == 200 and api.client.get_cookie("deviceToken") is None
