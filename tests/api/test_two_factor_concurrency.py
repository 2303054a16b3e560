"""Second factors used twice at the same moment (a double click, two tabs, a replay racing the
owner): each is used once (SECURITY.md 7 and 9), and a replacement leaves one set of backup codes.
Each test is sure to fail when the check that makes it hold is taken out of its statement."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from threading import Barrier
from typing import Any

import pyotp


def at_once(app, request: Callable[[Any, int], Any], times: int = 2) -> list[Any]:
    """`request(client, n)` from `times` threads, each with its own client, released together."""
    start = Barrier(times)

    def run(n: int) -> Any:
        client = app.test_client()
        start.wait(timeout=30)
        return request(client, n)

    with ThreadPoolExecutor(times) as pool:
        return list(pool.map(run, range(times)))


def test_one_totp_code_signs_in_once(app, api):
    secret, _ = api.enable_totp(api.verified_token())
    begun = [api.challenge()["tempToken"] for _ in range(2)]
    code = pyotp.TOTP(secret).now()
    answers = at_once(app, lambda client, n: client.post("/api/2fa/verify", json={"tempToken": begun[n], "code": code}).status_code)
    assert sorted(answers) == [200, 400]


def test_one_backup_code_signs_in_once(app, api):
    _, codes = api.enable_totp(api.verified_token())
    begun = [api.challenge()["tempToken"] for _ in range(2)]
    answers = at_once(
        app, lambda client, n: client.post("/api/2fa/verify-backup-code", json={"tempToken": begun[n], "code": codes[0]}).status_code
    )
    assert sorted(answers) == [200, 400]


def test_wrong_setup_codes_sent_at_once_each_count(app, api):
    """A code's five tries hold for guesses sent together: each was counted from the value its
    request had read, so ten at once could count as one or two and the right code still worked."""
    phone = "+14155550123"
    token = api.verified_token()
    api.client.post("/api/2fa/sms/setup", headers=api.bearer(token), json={"phoneNumber": phone})
    right = api.outbox.code(phone)
    wrong = [f"{(int(right) + n) % 1_000_000:06d}" for n in range(1, 11)]
    answers = at_once(
        app,
        lambda client, n: client.post("/api/2fa/sms/verify-setup", headers=api.bearer(token), json={"code": wrong[n]}).status_code,
        times=len(wrong),
    )
    assert answers == [400] * len(wrong)
    assert api.client.post("/api/2fa/sms/verify-setup", headers=api.bearer(token), json={"code": right}).status_code == 400
    assert api.client.get("/api/2fa/methods", headers=api.bearer(token)).json["data"]["methods"] == []


def test_new_backup_codes_asked_for_twice_at_once_leave_one_set(app, api, monkeypatch):
    """Both requests answer with codes, and the user is told the old ones no longer work: only the
    set of the later one may work. Both sets did (20 codes) on PostgreSQL, whose DELETE does not see
    the rows of a transaction still open. Each request here keeps its transaction open after
    generating until the other has generated too (at most a second), so that they overlap: only
    the lock on the account's row keeps the second DELETE waiting for the first commit."""
    import threading

    from idp.mfa.backup_codes import BackupCodes

    token = api.verified_token()
    api.enable_totp(token)
    both_generated = threading.Barrier(2)
    generate = BackupCodes.generate

    def generate_then_wait(self, user_id):
        codes = generate(self, user_id)
        try:
            both_generated.wait(timeout=1)
        except threading.BrokenBarrierError:  # the other one waits for this commit (the lock)
            pass
        return codes

    monkeypatch.setattr(BackupCodes, "generate", generate_then_wait)
    sets = at_once(app, lambda client, n: client.post("/api/2fa/backup-codes/generate", headers=api.bearer(token)).json["data"]["backupCodes"])
    assert all(len(codes) == 10 for codes in sets)
    assert api.client.get("/api/2fa/backup-codes/count", headers=api.bearer(token)).json["data"]["count"] == 10
    working = [
        codes for codes in sets
        if api.client.post("/api/2fa/verify-backup-code", json={"tempToken": api.challenge()["tempToken"], "code": codes[0]}).status_code == 200
    ]
    assert len(working) == 1


def test_the_last_two_methods_removed_at_once_turn_two_factor_off(app, api, monkeypatch):
    """Removing the last method turns 2FA off and deletes the backup codes (API.md). Each removal
    counted the methods left inside its own transaction and saw the other's method, its delete not
    yet committed: both answered "still on", leaving 2FA on with no method and ten backup codes.
    Each removal here waits (at most a second) after its delete until the other has deleted too;
    only the lock on the account's row makes the second wait for the first commit instead."""
    import threading

    from idp.mfa.methods import TwoFactorService

    token = api.verified_token()
    headers = api.bearer(token)
    api.enable_totp(token)
    api.client.post("/api/2fa/email/setup", headers=headers, json={"email": "codes@example.com"})
    enabled = api.client.post("/api/2fa/email/verify-setup", headers=headers, json={"code": api.outbox.code("codes@example.com")})
    assert enabled.status_code == 200, enabled.json
    ids = [m["id"] for m in api.client.get("/api/2fa/methods", headers=headers).json["data"]["methods"]]
    assert len(ids) == 2
    both_deleted = threading.Barrier(2)
    methods = TwoFactorService.methods

    def methods_once_both_deleted(self, user_id):
        try:
            both_deleted.wait(timeout=1)
        except threading.BrokenBarrierError:  # the other one waits for this commit (the lock)
            pass
        return methods(self, user_id)

    monkeypatch.setattr(TwoFactorService, "methods", methods_once_both_deleted)
    answers = at_once(app, lambda client, n: client.delete(f"/api/2fa/methods/{ids[n]}", headers=headers))
    monkeypatch.setattr(TwoFactorService, "methods", methods)
    assert sorted(a.json["data"]["twoFactorEnabled"] for a in answers) == [False, True]
    assert api.client.get("/api/2fa/methods", headers=headers).json["data"]["methods"] == []
    assert api.client.get("/api/auth/me", headers=headers).json["data"]["user"]["twoFactorEnabled"] is False
    assert api.client.get("/api/2fa/backup-codes/count", headers=headers).json["data"]["count"] == 0


def test_one_reset_link_sets_one_password(app, api):
    api.register("alice")
    api.client.post("/api/auth/password-reset/request", json={"email": "alice@example.com"})
    link = api.outbox.link_token("alice@example.com")
    answers = at_once(
        app,
        lambda client, n: client.post("/api/auth/password-reset/confirm", json={"token": link, "newPassword": f"Brand-New-Secret-{n}%"}).status_code,
    )
    assert sorted(answers) == [200, 400]
