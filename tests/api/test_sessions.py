"""Refresh rotation and reuse detection (SECURITY.md 14), logout and revocation (15), sessions, password change."""

from __future__ import annotations

from datetime import timedelta

import time_machine

from idp.accounts.models import Session
from idp.clock import utcnow
from idp.extensions import db


def refresh_cookie(response) -> str:
    cookie = response.headers["Set-Cookie"]
    return cookie.split(";")[0].split("=", 1)[1]


def refresh_with(client, token: str):
    """Refresh with this token in the body (the cookie, which would win, is dropped first)."""
    client.delete_cookie("refreshToken", path="/api/auth")
    return client.post("/api/auth/refresh", json={"refreshToken": token})


def test_refresh_from_cookie_rotates_the_token(api):
    api.register("alice")
    first = api.client.get_cookie("refreshToken", path="/api/auth").value
    response = api.client.post("/api/auth/refresh")
    assert response.status_code == 200
    assert set(response.json["data"]) == {"accessToken"}
    second = refresh_cookie(response)
    assert second != first
    assert api.client.get("/api/auth/me", headers=api.bearer(response.json["data"]["accessToken"])).status_code == 200


def test_refresh_from_body_for_clients_without_cookies(api):
    token = refresh_cookie(api.register("alice"))
    api.client.delete_cookie("refreshToken", path="/api/auth")
    response = refresh_with(api.client, token)
    assert response.status_code == 200 and refresh_cookie(response) != token


def test_reusing_a_rotated_refresh_token_revokes_the_whole_family(api):
    registered = api.register("alice")
    original = refresh_cookie(registered)
    api.client.delete_cookie("refreshToken", path="/api/auth")
    rotated = refresh_cookie(refresh_with(api.client, original))
    newest_access = refresh_with(api.client, rotated)
    newest = refresh_cookie(newest_access)
    access = newest_access.json["data"]["accessToken"]
    assert api.client.get("/api/auth/me", headers=api.bearer(access)).status_code == 200

    replay = refresh_with(api.client, original)  # the thief (or the victim) replays an old token
    assert replay.status_code == 401
    assert refresh_with(api.client, newest).status_code == 401  # the family is dead
    assert api.client.get("/api/auth/me", headers=api.bearer(access)).status_code == 401  # and its access tokens


def test_a_made_up_token_naming_a_live_session_ends_nothing(api):
    """A session's id is no secret (the `sid` of every access token it issues, the sessions list):
    a token made up around it is refused, at refresh and at logout, and the session lives on. Only
    a token the service issued, presented after its rotation, is a replay."""
    registered = api.register("alice")
    token, access = refresh_cookie(registered), registered.json["data"]["accessToken"]
    session_id = token.partition(".")[0]
    shaped_like_ours = token[:-8] + ("A" * 8 if not token.endswith("A" * 8) else "B" * 8)  # the tag no longer matches
    for forged in (f"{session_id}." + "A" * 43, f"{session_id}." + "A" * 64, shaped_like_ours):
        assert refresh_with(api.client, forged).status_code == 401
        api.client.delete_cookie("refreshToken", path="/api/auth")  # only the forged token, in the body
        assert api.client.post("/api/auth/logout", json={"refreshToken": forged}).status_code == 200
    assert api.client.get("/api/auth/me", headers=api.bearer(access)).status_code == 200
    assert refresh_with(api.client, token).status_code == 200  # still its current token


def test_missing_unknown_and_malformed_refresh_tokens_are_401(api):
    api.register("alice")
    api.client.delete_cookie("refreshToken", path="/api/auth")
    assert api.client.post("/api/auth/refresh").status_code == 401
    assert refresh_with(api.client, "garbage").status_code == 401
    assert refresh_with(api.client, "00000000-0000-0000-0000-000000000000." + "a" * 43).status_code == 401
    response = api.client.post("/api/auth/refresh", json={"refreshToken": 42})
    assert response.status_code == 400


def test_refresh_token_stops_at_its_absolute_lifetime(api):
    token = refresh_cookie(api.register("alice"))
    api.client.delete_cookie("refreshToken", path="/api/auth")
    with time_machine.travel(utcnow() + timedelta(days=6, hours=23), tick=False):
        token = refresh_cookie(refresh_with(api.client, token))  # rotation does not extend the family
    with time_machine.travel(utcnow() + timedelta(days=7, minutes=1), tick=False):
        assert refresh_with(api.client, token).status_code == 401


def test_refresh_tokens_are_stored_only_as_digests(api, app):
    token = refresh_cookie(api.register("alice"))
    with app.app_context():
        stored = db.session.scalar(db.select(Session.token_hash))
    assert token not in stored and len(stored) == 64


def test_logout_revokes_refresh_and_access_tokens_and_clears_the_cookie(api):
    registered = api.register("alice")
    token, access = refresh_cookie(registered), registered.json["data"]["accessToken"]
    response = api.client.post("/api/auth/logout", headers=api.bearer(access))
    assert response.status_code == 200 and response.json["success"] is True
    assert "refreshToken=;" in response.headers["Set-Cookie"]
    assert refresh_with(api.client, token).status_code == 401
    assert api.client.get("/api/auth/me", headers=api.bearer(access)).status_code == 401


def test_logout_with_only_an_access_token_ends_that_session(api):
    access = api.token("alice")
    api.client.delete_cookie("refreshToken", path="/api/auth")
    assert api.client.post("/api/auth/logout", headers=api.bearer(access)).status_code == 200
    assert api.client.get("/api/auth/me", headers=api.bearer(access)).status_code == 401


def test_logout_always_answers_200(api):
    assert api.client.post("/api/auth/logout").status_code == 200
    assert api.client.post("/api/auth/logout", data="{nope", content_type="application/json").status_code == 200
    assert api.client.post("/api/auth/logout", headers={"Authorization": "Bearer junk"}).status_code == 200


def test_revoke_sessions_stops_every_session_and_its_access_tokens(api):
    first = api.token("alice")
    second_login = api.login("alice")
    second = second_login.json["data"]["accessToken"]
    response = api.client.post("/api/auth/revoke-sessions", headers=api.bearer(first))
    assert response.status_code == 200 and response.json["data"]["revoked"] == 2
    for token in (first, second):
        assert api.client.get("/api/auth/me", headers=api.bearer(token)).status_code == 401
    assert refresh_with(api.client, refresh_cookie(second_login)).status_code == 401


def test_sessions_list_marks_the_current_one_and_one_can_be_deleted(api):
    first = api.token("alice")
    other = api.login("alice").json["data"]["accessToken"]
    sessions = api.client.get("/api/auth/sessions", headers=api.bearer(first)).json["data"]["sessions"]
    assert len(sessions) == 2 and sum(s["current"] for s in sessions) == 1
    other_id = next(s["id"] for s in sessions if not s["current"])
    assert api.client.delete(f"/api/auth/sessions/{other_id}", headers=api.bearer(first)).status_code == 200
    assert api.client.get("/api/auth/me", headers=api.bearer(other)).status_code == 401
    assert api.client.get("/api/auth/me", headers=api.bearer(first)).status_code == 200
    assert api.client.delete(f"/api/auth/sessions/{other_id}", headers=api.bearer(first)).status_code == 404


def test_a_user_cannot_delete_another_users_session(api):
    alice = api.token("alice")
    bob = api.token("bob")
    bob_session = api.client.get("/api/auth/sessions", headers=api.bearer(bob)).json["data"]["sessions"][0]["id"]
    response = api.client.delete(f"/api/auth/sessions/{bob_session}", headers=api.bearer(alice))
    assert response.status_code == 404
    assert api.client.get("/api/auth/me", headers=api.bearer(bob)).status_code == 200


def test_change_password_revokes_all_sessions_and_continues_in_a_new_one(api):
    first = api.token("alice")
    other_login = api.login("alice")
    response = api.client.post(
        "/api/auth/change-password",
        headers=api.bearer(first),
        json={"currentPassword": api.PASSWORD, "newPassword": "Another-Secret-7?"},
    )
    assert response.status_code == 200, response.json
    fresh = response.json["data"]["accessToken"]
    for old in (first, other_login.json["data"]["accessToken"]):
        assert api.client.get("/api/auth/me", headers=api.bearer(old)).status_code == 401
    assert refresh_with(api.client, refresh_cookie(other_login)).status_code == 401
    assert api.client.get("/api/auth/me", headers=api.bearer(fresh)).status_code == 200
    assert api.login("alice").status_code == 401
    assert api.login("alice", "Another-Secret-7?").status_code == 200


def test_change_password_checks_the_current_password_and_the_policy(api):
    token = api.token("alice")
    wrong = api.client.post(
        "/api/auth/change-password", headers=api.bearer(token), json={"currentPassword": "nope", "newPassword": "Another-Secret-7?"}
    )
    assert wrong.status_code == 400 and wrong.json["code"] == "invalid_credentials"
    weak = api.client.post(
        "/api/auth/change-password", headers=api.bearer(token), json={"currentPassword": api.PASSWORD, "newPassword": "password"}
    )
    assert weak.status_code == 400 and any(e.startswith("newPassword:") for e in weak.json["errors"])
    same = api.client.post(
        "/api/auth/change-password", headers=api.bearer(token), json={"currentPassword": api.PASSWORD, "newPassword": api.PASSWORD}
    )
    assert same.status_code == 400
    assert api.client.get("/api/auth/me", headers=api.bearer(token)).status_code == 200  # nothing was revoked


def test_wrong_current_passwords_count_against_the_account_like_failed_logins(make_app):
    """Whoever holds a recent access token gets no more password guesses at change-password than
    at login: the same per-account limit, across addresses, and a throttled account is answered
    like a wrong password, even with the right one."""
    from tests.conftest import Api

    api = Api(make_app(RATE_LIMIT_LOGIN_ACCOUNT="3 per 15 minutes").test_client())
    token = api.token("alice")
    change = {"currentPassword": "Wrong-Password-1!", "newPassword": "Another-Secret-7?"}
    for n in range(3):
        answer = api.client.post("/api/auth/change-password", headers=api.bearer(token), json=change, environ_base={"REMOTE_ADDR": f"203.0.113.{n}"})
        assert answer.status_code == 400 and answer.json["code"] == "invalid_credentials"
    right = api.client.post("/api/auth/change-password", headers=api.bearer(token), json={**change, "currentPassword": api.PASSWORD})
    assert right.status_code == 400 and right.json["code"] == "invalid_credentials"
    assert api.login("alice").status_code == 401  # the same count as the login's


def test_me_returns_the_full_profile(api):
    token = api.token("alice")
    user = api.client.get("/api/auth/me", headers=api.bearer(token)).json["data"]["user"]
    assert set(user) == {"id", "email", "username", "emailVerified", "twoFactorEnabled", "isActive", "createdAt", "updatedAt"}


def test_bearer_endpoints_need_a_token(api):
    for method, path in [("get", "/api/auth/me"), ("post", "/api/auth/revoke-sessions"), ("get", "/api/auth/sessions"),
                         ("post", "/api/auth/change-password"), ("get", "/api/audit-logs")]:
        response = getattr(api.client, method)(path)
        assert response.status_code == 401 and response.json["success"] is False, path


def test_audit_log_records_session_events_newest_first_and_paginates(api):
    token = api.token("alice")
    for _ in range(3):
        api.login("alice")
    api.client.post("/api/auth/logout")
    page = api.client.get("/api/audit-logs?page=1&limit=2", headers=api.bearer(token)).json["data"]
    assert [e["action"] for e in page["logs"]] == ["logout", "login_success"]
    assert page["pagination"] == {"page": 1, "limit": 2, "total": 5, "totalPages": 3}
    last = api.client.get("/api/audit-logs?page=3&limit=2", headers=api.bearer(token)).json["data"]["logs"]
    assert [e["action"] for e in last] == ["register"]
    assert api.client.get("/api/audit-logs?limit=1000", headers=api.bearer(token)).status_code == 400


def test_users_see_only_their_own_audit_log(api):
    alice = api.token("alice")
    api.token("bob")
    api.login("bob", "Wrong-Password-1!")
    actions = [e["action"] for e in api.client.get("/api/audit-logs", headers=api.bearer(alice)).json["data"]["logs"]]
    assert actions == ["register"]


def test_login_always_starts_a_new_session_even_with_a_refresh_cookie(api):
    """No session fixation: a cookie planted before login is not adopted."""
    api.register("alice")
    planted = api.client.get_cookie("refreshToken", path="/api/auth").value
    fresh = refresh_cookie(api.login("alice"))
    assert fresh.split(".")[0] != planted.split(".")[0]


def test_reuse_is_recorded_in_the_audit_log(api):
    original = refresh_cookie(api.register("alice"))
    refresh_with(api.client, original)
    refresh_with(api.client, original)
    token = api.login("alice").json["data"]["accessToken"]
    logs = api.client.get("/api/audit-logs", headers=api.bearer(token)).json["data"]["logs"]
    revoked = [e for e in logs if e["action"] == "session_revoked"]
    assert revoked and revoked[0]["details"]["reason"] == "refresh_token_reuse"


def test_refresh_cookie_expires_with_the_family_not_later(api):
    token = refresh_cookie(api.register("alice"))
    with time_machine.travel(utcnow() + timedelta(days=6), tick=False):
        response = refresh_with(api.client, token)
    max_age = int(response.headers["Set-Cookie"].split("Max-Age=")[1].split(";")[0])
    assert 86_000 < max_age <= 86_400


def test_change_password_needs_a_recent_sign_in_even_with_the_current_password(api):
    """SECURITY.md 6: a stolen access token older than the window cannot change the password."""
    token = api.token("alice")
    with time_machine.travel(utcnow() + timedelta(minutes=10, seconds=5), tick=False):
        response = api.client.post(
            "/api/auth/change-password", headers=api.bearer(token), json={"currentPassword": api.PASSWORD, "newPassword": "Another-Secret-7?"}
        )
    assert response.status_code == 403 and response.json["code"] == "reauthentication_required"
    assert api.login("alice").status_code == 200
