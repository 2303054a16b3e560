"""The old Node service's documented usage, step by step, with its exact paths and field names.

A client written for that service must work unchanged (API.md). The one behavioural difference a
client can meet is deliberate: a TOTP code is accepted once, so the login below uses the next code.
"""

from __future__ import annotations

from datetime import timedelta

import pyotp
import time_machine

from idp.clock import utcnow

PASSWORD = "SecurePass123!"  # the password of the old README's examples


def test_documented_usage_replays_unchanged(api):
    c = api.client
    # 1. Register User
    registered = c.post("/api/auth/register", json={"email": "user@example.com", "username": "testuser", "password": PASSWORD})
    assert registered.status_code == 201 and registered.json["success"] is True
    access = registered.json["data"]["accessToken"]
    auth = {"Authorization": f"Bearer {access}"}
    # (our addition: TOTP setup needs a verified address, as API.md requires)
    c.post("/api/email/send-verification", headers=auth)
    assert c.post("/api/email/verify", json={"token": api.outbox.link_token("user@example.com")}).status_code == 200

    # 2. Setup TOTP
    setup = c.post("/api/2fa/totp/setup", headers={**auth, "Content-Type": "application/json"})
    assert setup.status_code == 200
    assert {"secret", "otpauthUrl", "qrCode"} <= setup.json["data"].keys()
    secret = setup.json["data"]["secret"]

    # 3. Verify TOTP Setup, sending the secret back as the old README does
    now = utcnow()
    with time_machine.travel(now, tick=False):
        enabled = c.post("/api/2fa/totp/verify-setup", headers=auth, json={"secret": secret, "code": pyotp.TOTP(secret).at(now)})
    assert enabled.status_code == 200, enabled.json
    assert len(enabled.json["data"]["backupCodes"]) == 10

    later = now + timedelta(seconds=30)
    with time_machine.travel(later, tick=False):
        # 4. Login with 2FA, step 1
        step1 = c.post("/api/auth/login", json={"emailOrUsername": "testuser", "password": PASSWORD})
        assert step1.status_code == 200
        assert step1.json["data"]["requiresTwoFactor"] is True
        temp_token = step1.json["data"]["tempToken"]
        assert {"tempToken", "methods", "expiresIn"} <= step1.json["data"].keys()

        # 4. step 2: verify with trustDevice and deviceName
        step2 = c.post(
            "/api/2fa/verify",
            json={"tempToken": temp_token, "code": pyotp.TOTP(secret).at(later), "trustDevice": True, "deviceName": "My Laptop"},
        )
        assert step2.status_code == 200, step2.json
        access = step2.json["data"]["accessToken"]
        device_token = step2.json["data"]["deviceToken"]
        c.delete_cookie("deviceToken", path="/")

        # a later login that presents the device token skips the second factor
        trusted = c.post("/api/auth/login", json={"emailOrUsername": "user@example.com", "password": PASSWORD, "deviceToken": device_token})
        assert trusted.status_code == 200 and "requiresTwoFactor" not in trusted.json["data"]
        assert trusted.json["data"]["user"]["twoFactorEnabled"] is True

        # refresh with the cookie, then the documented reads
        refreshed = c.post("/api/auth/refresh")
        assert refreshed.status_code == 200
        auth = {"Authorization": f"Bearer {refreshed.json['data']['accessToken']}"}
        me = c.get("/api/auth/me", headers=auth).json["data"]["user"]
        assert me["username"] == "testuser" and me["twoFactorEnabled"] is True
        methods = c.get("/api/2fa/methods", headers=auth).json["data"]["methods"]
        assert [m["type"] for m in methods] == ["totp"]
        assert c.get("/api/2fa/backup-codes/count", headers=auth).json["data"]["count"] == 10
        devices = c.get("/api/2fa/devices", headers=auth).json["data"]["devices"]
        assert [d["deviceName"] for d in devices] == ["My Laptop"]
        assert {"id", "deviceName", "ipAddress", "userAgent", "createdAt", "lastUsedAt", "expiresAt"} <= devices[0].keys()

        # health as the old deployment guide checks it
        assert c.get("/api/health").json["status"] == "healthy"
