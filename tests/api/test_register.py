"""POST /api/auth/register: validation, policy, conflicts, tokens and the refresh cookie."""

from __future__ import annotations

import pytest


def test_register_returns_201_user_access_token_and_refresh_cookie(api):
    response = api.register("alice", email="Alice@Example.COM")
    assert response.status_code == 201
    body = response.json
    assert body["success"] is True
    user = body["data"]["user"]
    assert user["email"] == "alice@example.com"  # normalised to lower case
    assert user["username"] == "alice"
    assert user["emailVerified"] is False and user["twoFactorEnabled"] is False
    assert set(user) == {"id", "email", "username", "emailVerified", "twoFactorEnabled", "createdAt"}
    assert body["data"]["accessToken"].count(".") == 2
    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith("refreshToken=")
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Max-Age=604800" in cookie


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ({"username": "alice", "password": "Correct-Horse-9!"}, "email: is required"),
        ({"email": "not-an-email", "username": "alice", "password": "Correct-Horse-9!"}, "email:"),
        ({"email": "a@example.com", "username": "al", "password": "Correct-Horse-9!"}, "username:"),
        ({"email": "a@example.com", "username": "al ice!", "password": "Correct-Horse-9!"}, "username:"),
        ({"email": "a@example.com", "username": "a" * 31, "password": "Correct-Horse-9!"}, "username:"),
        ({"email": "a@example.com", "username": "alice", "password": "short1!"}, "password: must be at least 8"),
        ({"email": "a@example.com", "username": "alice", "password": "Password1!"}, "password: is too common"),
        ({"email": "a@example.com", "username": "alice", "password": 12345678}, "password: must be a string"),
        ({"email": "a@example.com", "username": "alice", "password": "Correct-Horse-9!", "role": "admin"}, "role: is not an allowed field"),
    ],
)
def test_invalid_registration_is_400_with_field_errors(api, body, error):
    response = api.client.post("/api/auth/register", json=body)
    assert response.status_code == 400
    assert response.json["message"] == "Validation failed" and response.json["code"] == "validation_failed"
    assert any(e.startswith(error) for e in response.json["errors"]), response.json["errors"]


@pytest.mark.parametrize("clash", [{"email": "ALICE@example.com", "username": "other"}, {"email": "x@example.com", "username": "ALICE"}])
def test_taken_email_or_username_is_409(api, clash):
    assert api.register("alice").status_code == 201
    response = api.client.post("/api/auth/register", json={**clash, "password": "Correct-Horse-9!"})
    assert response.status_code == 409
    assert response.json["code"] == "conflict"


def test_password_of_128_characters_is_kept_whole(api):
    password = "Aa1!" * 32
    assert api.register("alice", password=password).status_code == 201
    assert api.login("alice", password).status_code == 200
    assert api.login("alice", password[:72]).status_code == 401  # no truncation (bcrypt would cut at 72)


def test_registration_writes_an_audit_event(api):
    token = api.token("alice")
    logs = api.client.get("/api/audit-logs", headers=api.bearer(token)).json["data"]["logs"]
    assert [entry["action"] for entry in logs] == ["register"]

