"""API keys: shown once and stored as digests, scopes, expiry, revocation, rotation, hourly limit, ownership."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
import time_machine
from sqlalchemy import select

from idp.apikeys.models import ApiKey
from idp.audit.models import AuditEvent
from idp.clock import iso, utcnow
from idp.extensions import db
from idp.security.digests import digest

KEY_FORMAT = re.compile(r"^pk_live_[A-Za-z0-9_-]{43}$")


def create_key(api, token: str, **body: Any) -> dict[str, Any]:
    response = api.client.post("/api/api-keys", headers=api.bearer(token), json={"name": "ci", "scopes": ["*"], **body})
    assert response.status_code == 201, response.json
    return response.json["data"]


def with_key(key: str) -> dict[str, str]:
    return {"X-API-Key": key}


def test_created_key_is_shown_once_and_stored_as_its_digest(api, app):
    token = api.token("alice")
    data = create_key(api, token, scopes=["user:read", "2fa:read"])
    key = data["key"]
    assert KEY_FORMAT.match(key) and data["apiKey"]["key"] == key
    assert data["apiKey"]["scopes"] == ["user:read", "2fa:read"] and data["apiKey"]["prefix"] == key[:12]
    with app.app_context():
        rows = db.session.scalars(select(ApiKey)).all()
        assert len(rows) == 1 and rows[0].key_hash == digest(key)
        for row in db.session.execute(select(ApiKey.__table__)).mappings():
            assert key not in [str(value) for value in row.values()]
        events = {e.event for e in db.session.scalars(select(AuditEvent))}
    assert "api_key_created" in events
    listed = api.client.get("/api/api-keys", headers=api.bearer(token)).json["data"]["apiKeys"]
    assert [k["id"] for k in listed] == [data["apiKey"]["id"]]
    assert "key" not in listed[0] and key not in str(listed)
    shown = api.client.get(f"/api/api-keys/{listed[0]['id']}", headers=api.bearer(token)).json["data"]["apiKey"]
    assert "key" not in shown and key not in str(shown)


@pytest.mark.parametrize("header", ["X-API-Key", "Authorization"])
def test_both_header_forms_authenticate_as_the_owner(api, app, header):
    key = create_key(api, api.token("alice"), scopes=["user:read"])["key"]
    value = key if header == "X-API-Key" else f"Bearer {key}"
    response = api.client.get("/api/auth/me", headers={header: value})
    assert response.status_code == 200 and response.json["data"]["user"]["username"] == "alice"
    with app.app_context():
        assert db.session.scalars(select(ApiKey)).one().last_used_at is not None


def test_scopes_are_enforced_per_endpoint(api):
    token = api.token("alice")
    user_only = create_key(api, token, scopes=["user:read"])["key"]
    two_factor = create_key(api, token, scopes=["2fa:read", "2fa:write"])["key"]
    everything = create_key(api, token, scopes=["*"])["key"]
    assert api.client.get("/api/auth/me", headers=with_key(user_only)).status_code == 200
    outside = api.client.get("/api/2fa/methods", headers=with_key(user_only))
    assert outside.status_code == 403 and outside.json["code"] == "forbidden"
    assert api.client.get("/api/2fa/methods", headers=with_key(two_factor)).status_code == 200
    assert api.client.delete("/api/2fa/devices", headers=with_key(two_factor)).status_code == 200
    assert api.client.get("/api/auth/me", headers=with_key(two_factor)).status_code == 403
    for path in ("/api/auth/me", "/api/2fa/methods", "/api/2fa/devices", "/api/audit-logs"):
        assert api.client.get(path, headers=with_key(everything)).status_code == 200, path


def test_keys_never_reach_key_management_or_sensitive_endpoints(api):
    token = api.token("alice")
    data = create_key(api, token, scopes=["*"])
    key, key_id = data["key"], data["apiKey"]["id"]
    refused = [
        api.client.get("/api/api-keys", headers=with_key(key)),
        api.client.post("/api/api-keys", headers=with_key(key), json={"name": "more", "scopes": ["*"]}),
        api.client.post(f"/api/api-keys/{key_id}/rotate", headers=with_key(key)),
        api.client.post("/api/auth/revoke-sessions", headers=with_key(key)),
        api.client.post(
            "/api/auth/change-password", headers=with_key(key), json={"currentPassword": api.PASSWORD, "newPassword": "N3w-Passw0rd!x"}
        ),
        api.client.get("/api/auth/sessions", headers=with_key(key)),
        api.client.post("/api/2fa/backup-codes/generate", headers=with_key(key)),
        api.client.post("/api/2fa/totp/setup", headers={"Authorization": f"Bearer {key}"}),
    ]
    assert [r.status_code for r in refused] == [403] * len(refused)
    assert api.client.get("/api/auth/me", headers=api.bearer(token)).status_code == 200  # sessions intact


def test_expired_and_revoked_keys_are_refused(api):
    token = api.token("alice")
    expiring = create_key(api, token, scopes=["user:read"], expiresAt=iso(utcnow() + timedelta(hours=1)))["key"]
    revoked = create_key(api, token, scopes=["user:read"])
    assert api.client.get("/api/auth/me", headers=with_key(expiring)).status_code == 200
    with time_machine.travel(utcnow() + timedelta(hours=1, seconds=1), tick=False):
        response = api.client.get("/api/auth/me", headers=with_key(expiring))
    assert response.status_code == 401 and response.json["message"] == "Invalid or expired token"
    answer = api.client.post(f"/api/api-keys/{revoked['apiKey']['id']}/revoke", headers=api.bearer(token))
    assert answer.status_code == 200 and answer.json["data"]["apiKey"]["revokedAt"]
    assert api.client.get("/api/auth/me", headers=with_key(revoked["key"])).status_code == 401
    assert api.client.post(f"/api/api-keys/{revoked['apiKey']['id']}/rotate", headers=api.bearer(token)).status_code == 409
    assert api.client.get("/api/auth/me", headers=with_key("pk_live_" + "x" * 43)).status_code == 401


def test_rotation_shows_a_new_key_once_and_kills_the_old_one(api, app):
    token = api.token("alice")
    first = create_key(api, token, scopes=["user:read"])
    response = api.client.post(f"/api/api-keys/{first['apiKey']['id']}/rotate", headers=api.bearer(token))
    assert response.status_code == 200
    second = response.json["data"]["key"]
    assert KEY_FORMAT.match(second) and second != first["key"]
    assert api.client.get("/api/auth/me", headers=with_key(first["key"])).status_code == 401
    assert api.client.get("/api/auth/me", headers=with_key(second)).status_code == 200
    with app.app_context():
        assert db.session.scalars(select(ApiKey)).one().key_hash == digest(second)
        assert "api_key_rotated" in {e.event for e in db.session.scalars(select(AuditEvent))}


def test_hourly_limit_per_key_answers_429_with_retry_after(api):
    token = api.token("alice")
    limited = create_key(api, token, scopes=["user:read"], rateLimit=2)
    other = create_key(api, token, scopes=["user:read"])["key"]
    assert limited["apiKey"]["rateLimit"] == 2
    assert [api.client.get("/api/auth/me", headers=with_key(limited["key"])).status_code for _ in range(2)] == [200, 200]
    response = api.client.get("/api/auth/me", headers=with_key(limited["key"]))
    assert response.status_code == 429 and response.json["code"] == "rate_limited"
    assert 0 < int(response.headers["Retry-After"]) <= 3600
    assert api.client.get("/api/auth/me", headers=with_key(other)).status_code == 200  # each key its own count
    assert api.client.get("/api/auth/me", headers=api.bearer(token)).status_code == 200


def test_default_hourly_limit_comes_from_the_settings(make_app):
    from tests.conftest import Api

    api = Api(make_app(API_KEY_RATE_LIMIT="1").test_client())
    data = create_key(api, api.token("alice"), scopes=["user:read"])
    assert data["apiKey"]["rateLimit"] == 1
    assert api.client.get("/api/auth/me", headers=with_key(data["key"])).status_code == 200
    assert api.client.get("/api/auth/me", headers=with_key(data["key"])).status_code == 429


def test_a_user_holds_at_most_the_configured_number_of_keys(make_app):
    """API_KEY_MAX_PER_USER: each key has its own hourly allowance and its own row, so one user
    could grow both without bound. A revoked key no longer counts."""
    from tests.conftest import Api

    api = Api(make_app(API_KEY_MAX_PER_USER="2").test_client())
    token = api.token("alice")
    first, _ = (create_key(api, token, scopes=["user:read"]) for _ in range(2))
    refused = api.client.post("/api/api-keys", headers=api.bearer(token), json={"name": "third", "scopes": ["user:read"]})
    assert refused.status_code == 409 and refused.json["message"] == "At most 2 API keys per user; revoke or delete one first"
    assert len(api.client.get("/api/api-keys", headers=api.bearer(token)).json["data"]["apiKeys"]) == 2
    assert api.client.post(f"/api/api-keys/{first['apiKey']['id']}/revoke", headers=api.bearer(token)).status_code == 200
    assert api.client.post("/api/api-keys", headers=api.bearer(token), json={"name": "third", "scopes": ["user:read"]}).status_code == 201


def test_patch_changes_only_the_fields_given(api):
    token = api.token("alice")
    data = create_key(api, token, scopes=["user:read"], rateLimit=50)
    key_id = data["apiKey"]["id"]
    response = api.client.patch(f"/api/api-keys/{key_id}", headers=api.bearer(token), json={"name": "renamed", "scopes": ["2fa:read"]})
    assert response.status_code == 200
    changed = response.json["data"]["apiKey"]
    assert (changed["name"], changed["scopes"], changed["rateLimit"]) == ("renamed", ["2fa:read"], 50)
    assert api.client.get("/api/auth/me", headers=with_key(data["key"])).status_code == 403
    assert api.client.get("/api/2fa/methods", headers=with_key(data["key"])).status_code == 200
    assert api.client.delete(f"/api/api-keys/{key_id}", headers=api.bearer(token)).status_code == 200
    assert api.client.get(f"/api/api-keys/{key_id}", headers=api.bearer(token)).status_code == 404
    assert api.client.get("/api/2fa/methods", headers=with_key(data["key"])).status_code == 401


def test_a_created_key_is_audited_with_its_scopes_and_expiry(api):
    """A stolen access token could mint a key to everything that never expires: the log says so."""
    token = api.token("alice")
    expires_at = iso(utcnow() + timedelta(days=30))
    key_id = create_key(api, token, name="deploy", scopes=["webhooks:write", "*"], expiresAt=expires_at)["apiKey"]["id"]
    create_key(api, token, name="forever", scopes=["user:read"])
    logs = api.client.get("/api/audit-logs", headers=api.bearer(token)).json["data"]["logs"]
    created = [e["details"] for e in logs if e["action"] == "api_key_created"]
    assert created == [
        {"apiKeyId": created[0]["apiKeyId"], "name": "forever", "scopes": ["user:read"], "expiresAt": None},
        {"apiKeyId": key_id, "name": "deploy", "scopes": ["webhooks:write", "*"], "expiresAt": expires_at},
    ]


def test_changing_revoking_by_patch_and_deleting_a_key_are_audited(api):
    """Widening a key to `*` or lifting its expiry left no trace (a stolen access token could
    quietly escalate a key). `isActive: false` revokes, as the old service's PATCH did."""
    token = api.token("alice")
    key_id = create_key(api, token, scopes=["user:read"])["apiKey"]["id"]
    path = f"/api/api-keys/{key_id}"
    widened = api.client.patch(path, headers=api.bearer(token), json={"scopes": ["*"], "expiresAt": None})
    assert widened.status_code == 200, widened.json
    revoked = api.client.patch(path, headers=api.bearer(token), json={"isActive": False})
    assert revoked.status_code == 200 and revoked.json["data"]["apiKey"]["revokedAt"]
    again = api.client.patch(path, headers=api.bearer(token), json={"isActive": True})
    assert again.status_code == 409 and "stays revoked" in again.json["message"]
    assert api.client.delete(path, headers=api.bearer(token)).status_code == 200
    logs = api.client.get("/api/audit-logs", headers=api.bearer(token)).json["data"]["logs"]
    assert [e["action"] for e in logs[:4]] == ["api_key_deleted", "api_key_revoked", "api_key_updated", "api_key_created"]
    assert logs[2]["details"]["fields"] == ["expiresAt", "scopes"] and logs[2]["details"]["scopes"] == ["*"]


def test_a_user_never_sees_or_changes_another_users_keys(api):
    alice = api.token("alice")
    bob = api.token("bob")
    key_id = create_key(api, alice)["apiKey"]["id"]
    create_key(api, bob, name="bob's")
    listed = api.client.get("/api/api-keys", headers=api.bearer(bob)).json["data"]["apiKeys"]
    assert [k["name"] for k in listed] == ["bob's"]
    attempts = [
        api.client.get(f"/api/api-keys/{key_id}", headers=api.bearer(bob)),
        api.client.patch(f"/api/api-keys/{key_id}", headers=api.bearer(bob), json={"name": "mine"}),
        api.client.post(f"/api/api-keys/{key_id}/rotate", headers=api.bearer(bob)),
        api.client.post(f"/api/api-keys/{key_id}/revoke", headers=api.bearer(bob)),
        api.client.delete(f"/api/api-keys/{key_id}", headers=api.bearer(bob)),
    ]
    assert [(r.status_code, r.json["code"]) for r in attempts] == [(404, "not_found")] * len(attempts)
    mine = api.client.get(f"/api/api-keys/{key_id}", headers=api.bearer(alice)).json["data"]["apiKey"]
    assert mine["name"] == "ci" and mine["revokedAt"] is None


@pytest.mark.parametrize(
    "body, field",
    [
        ({"scopes": ["*"]}, "name"),
        ({"name": "x"}, "scopes"),
        ({"name": "x", "scopes": []}, "scopes"),
        ({"name": "x", "scopes": ["superuser"]}, "scopes.0"),
        ({"name": "x", "scopes": "*"}, "scopes"),
        ({"name": "x", "scopes": ["*"], "rateLimit": 0}, "rateLimit"),
        ({"name": "x", "scopes": ["*"], "rateLimit": "10"}, "rateLimit"),
        ({"name": "x", "scopes": ["*"], "expiresAt": "tomorrow"}, "expiresAt"),
        ({"name": "x", "scopes": ["*"], "expiresAt": "2001-01-01T00:00:00Z"}, "expiresAt"),
        ({"name": "x", "scopes": ["*"], "owner": "bob"}, "owner"),
    ],
)
def test_bad_input_is_a_400_with_errors(api, body, field):
    response = api.client.post("/api/api-keys", headers=api.bearer(api.token("alice")), json=body)
    assert response.status_code == 400 and response.json["code"] == "validation_failed"
    assert any(e.startswith(f"{field}:") for e in response.json["errors"]), response.json


def test_bad_patch_is_a_400_with_errors(api):
    token = api.token("alice")
    key_id = create_key(api, token)["apiKey"]["id"]
    for body in ({"scopes": ["nope"]}, {"name": None}, {"scopes": None}, {"rateLimit": -1}):
        response = api.client.patch(f"/api/api-keys/{key_id}", headers=api.bearer(token), json=body)
        assert response.status_code == 400 and response.json["errors"], body


def test_key_management_needs_authentication(api):
    assert api.client.get("/api/api-keys").status_code == 401
    assert api.client.post("/api/api-keys", json={"name": "x", "scopes": ["*"]}).status_code == 401


def test_an_expiry_with_an_offset_is_kept_as_that_instant_in_utc(api):
    """The offset says which instant is meant: 2030-01-01T00:00+05:00 is five hours before midnight
    UTC, not a label to drop (which kept the key five hours longer on SQLite)."""
    headers = api.bearer(api.token("alice"))
    created = api.client.post("/api/api-keys", headers=headers, json={"name": "k", "scopes": ["*"], "expiresAt": "2030-01-01T00:00:00+05:00"})
    assert created.status_code == 201, created.json
    assert created.json["data"]["apiKey"]["expiresAt"] == "2029-12-31T19:00:00.000Z"
    key_id = created.json["data"]["apiKey"]["id"]
    assert api.client.get(f"/api/api-keys/{key_id}", headers=headers).json["data"]["apiKey"]["expiresAt"] == "2029-12-31T19:00:00.000Z"


@pytest.mark.parametrize("expires_at", ["9999-12-31T23:00:00-05:00", "9999-06-01T00:00:00Z"])
def test_an_expiry_past_the_years_a_date_holds_is_refused(api, expires_at):
    """9999-12-31T23:00-05:00 is in the year 10000: stored, it made the key list, the key and its
    deletion answer 500 from then on."""
    headers = api.bearer(api.token("alice"))
    refused = api.client.post("/api/api-keys", headers=headers, json={"name": "k", "scopes": ["*"], "expiresAt": expires_at})
    assert refused.status_code == 400, refused.json
    assert refused.json["errors"] == [
        "expiresAt: must be a date-time between the years 1 and 9999 in UTC" if expires_at.endswith("-05:00") else "expiresAt: must be before 9999-01-01T00:00:00Z"
    ]
    assert api.client.get("/api/api-keys", headers=headers).status_code == 200
    far = api.client.post("/api/api-keys", headers=headers, json={"name": "k", "scopes": ["*"], "expiresAt": "9998-12-31T23:59:59+00:00"})
    assert far.status_code == 201, far.json
    assert api.client.get("/api/api-keys", headers=headers).status_code == 200
    assert api.client.get("/api/auth/me", headers={"X-API-Key": far.json["data"]["key"]}).status_code == 200


def test_keys_asked_for_at_once_stay_within_the_limit(make_app):
    """The limit was counted, then the key inserted: requests sent together all counted the same
    keys and all got one. The owner's row is taken first, so they count one after the other."""
    from tests.api.test_two_factor_concurrency import at_once
    from tests.conftest import Api

    app = make_app(API_KEY_MAX_PER_USER="2")
    api = Api(app.test_client())
    token = api.token("alice")
    body = {"name": "k", "scopes": ["user:read"]}
    answers = at_once(app, lambda client, n: client.post("/api/api-keys", headers=api.bearer(token), json=body).status_code, times=6)
    assert sorted(answers) == [201, 201, 409, 409, 409, 409]
    assert len(api.client.get("/api/api-keys", headers=api.bearer(token)).json["data"]["apiKeys"]) == 2
