"""The webhook endpoints: secret shown once and stored encrypted, validation, targets refused,
API-key scopes and strict ownership."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from idp.extensions import db
from idp.webhooks.models import Webhook
from tests.webhooks.conftest import create_webhook


def test_events_are_listed_without_authentication(api):
    response = api.client.get("/api/webhooks/events")
    assert response.status_code == 200
    names = [e["name"] for e in response.json["data"]["events"]]
    assert names == ["2fa.enabled", "2fa.disabled", "2fa.verified", "2fa.failed", "user.login", "user.logout", "webhook.test"]


def test_secret_is_shown_once_and_stored_encrypted(api, app, receiver):
    token = api.token("alice")
    webhook = create_webhook(api, token, receiver, ["user.login", "2fa.enabled", "user.login"])
    secret = receiver.secret
    assert secret and secret.startswith("whsec_") and webhook["secret"] == secret
    assert webhook["events"] == ["user.login", "2fa.enabled"] and webhook["isActive"] is True
    listed = api.client.get("/api/webhooks", headers=api.bearer(token)).json["data"]["webhooks"]
    shown = api.client.get(f"/api/webhooks/{webhook['id']}", headers=api.bearer(token)).json["data"]["webhook"]
    assert [w["id"] for w in listed] == [webhook["id"]]
    assert secret not in str(listed) and secret not in str(shown) and "secret" not in shown
    with app.app_context():
        for row in db.session.execute(select(Webhook.__table__)).mappings():
            assert secret not in [str(value) for value in row.values()]


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ({"url": "ftp://example.com/hook", "events": ["user.login"]}, "url: must be an http or https URL"),
        ({"url": "https://user:pw@example.com/hook", "events": ["user.login"]}, "url: must not contain credentials"),
        ({"url": "not a url", "events": ["user.login"]}, "url: must be an http or https URL"),
        ({"url": "https://example.com/hook", "events": []}, "events: "),
        ({"url": "https://example.com/hook", "events": ["user.deleted"]}, "events.0: "),
        ({"url": "https://example.com/hook", "events": ["webhook.test"]}, "events.0: "),
        ({"url": "https://example.com/hook"}, "events: "),
        ({"url": "https://example.com/hook", "events": ["user.login"], "secret": "mine"}, "secret: "),
    ],
)
def test_invalid_webhooks_are_refused_with_the_reason(api, body, error):
    response = api.client.post("/api/webhooks", headers=api.bearer(api.token("alice")), json=body)
    assert response.status_code == 400 and response.json["code"] == "validation_failed", response.json
    assert any(e.startswith(error) for e in response.json["errors"]), response.json


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/hook",
        "http://localhost/hook",
        "http://10.1.2.3/hook",
        "http://192.168.0.10/hook",
        "http://172.16.5.4/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]/hook",
        "http://[::ffff:127.0.0.1]/hook",
        "http://[2002:c0a8:0101::1]/hook",  # 6to4 for 192.168.1.1
        "http://[2002:7f00:1::]/hook",  # and for 127.0.0.1
        "http://[64:ff9b::a9fe:a9fe]/hook",  # NAT64 for 169.254.169.254
        "http://[2001:0:4136:e378:8000:63bf:f5f7:fefe]/hook",  # Teredo
        "http://[fd00::1]/hook",
        "http://0.0.0.0/hook",
        "http://100.64.0.1/hook",
    ],
)
def test_private_and_loopback_targets_are_refused_by_default(make_app, url):
    from tests.conftest import Api

    api = Api(make_app().test_client())
    response = api.client.post("/api/webhooks", headers=api.bearer(api.token("alice")), json={"url": url, "events": ["user.login"]})
    assert response.status_code == 400, response.json
    assert response.json["errors"] == ["url: points to a private, loopback or reserved address"]


def test_https_is_required_when_configured(make_app):
    from tests.conftest import Api

    api = Api(make_app(WEBHOOK_REQUIRE_HTTPS="true", WEBHOOK_ALLOW_PRIVATE_TARGETS="true").test_client())
    response = api.client.post(
        "/api/webhooks", headers=api.bearer(api.token("alice")), json={"url": "http://127.0.0.1/hook", "events": ["user.login"]}
    )
    assert response.status_code == 400 and response.json["errors"] == ["url: must be an https URL"]


def test_update_changes_only_what_is_given(api, receiver):
    token = api.token("alice")
    webhook = create_webhook(api, token, receiver)
    path = f"/api/webhooks/{webhook['id']}"
    response = api.client.patch(path, headers=api.bearer(token), json={"events": ["2fa.enabled", "2fa.disabled"]})
    assert response.status_code == 200, response.json
    assert response.json["data"]["webhook"]["events"] == ["2fa.enabled", "2fa.disabled"]
    assert response.json["data"]["webhook"]["url"] == receiver.url
    off = api.client.patch(path, headers=api.bearer(token), json={"isActive": False})
    assert off.json["data"]["webhook"]["isActive"] is False
    for body in ({"url": None}, {"events": None}, {"isActive": "yes"}, {"events": []}, {"colour": "red"}):
        refused = api.client.patch(path, headers=api.bearer(token), json=body)
        assert refused.status_code == 400, (body, refused.json)
    assert api.client.patch(path, headers=api.bearer(token), json={"url": "http://10.0.0.1/x"}).status_code == 200  # allowed here
    assert api.client.delete(path, headers=api.bearer(token)).status_code == 200
    assert api.client.get(path, headers=api.bearer(token)).status_code == 404
    logs = api.client.get("/api/audit-logs", headers=api.bearer(token)).json["data"]["logs"]
    changes = [e["details"]["fields"] for e in logs if e["action"] == "webhook_updated"]
    assert changes == [["url"], ["isActive"], ["events"]]  # newest first: a changed URL is never silent


def test_a_user_never_sees_or_changes_another_users_webhooks(api, receiver):
    alice, bob = api.token("alice"), api.token("bob")
    webhook = create_webhook(api, alice, receiver)
    path = f"/api/webhooks/{webhook['id']}"
    assert api.client.get("/api/webhooks", headers=api.bearer(bob)).json["data"]["webhooks"] == []
    for method, suffix, body in (
        ("get", "", None),
        ("patch", "", {"isActive": False}),
        ("delete", "", None),
        ("post", "/test", None),
        ("get", "/deliveries", None),
    ):
        response = getattr(api.client, method)(path + suffix, headers=api.bearer(bob), json=body)
        assert response.status_code == 404 and response.json["message"] == "Webhook not found", (method, suffix)
    assert receiver.received == []
    still = api.client.get(path, headers=api.bearer(alice)).json["data"]["webhook"]
    assert still["isActive"] is True


def test_api_keys_need_the_webhook_scopes(api, receiver):
    token = api.token("alice")

    def key(*scopes: str) -> dict[str, str]:
        response = api.client.post("/api/api-keys", headers=api.bearer(token), json={"name": "k", "scopes": list(scopes)})
        return {"X-API-Key": response.json["data"]["key"]}

    reader, writer, other = key("webhooks:read"), key("webhooks:write"), key("user:read")
    body = {"url": receiver.url, "events": ["user.login"]}
    assert api.client.get("/api/webhooks", headers=reader).status_code == 200
    assert api.client.post("/api/webhooks", headers=reader, json=body).status_code == 403
    assert api.client.get("/api/webhooks", headers=other).status_code == 403
    created = api.client.post("/api/webhooks", headers=writer, json=body)
    assert created.status_code == 201
    listed = api.client.get("/api/webhooks", headers=api.bearer(token)).json["data"]["webhooks"]
    assert [w["id"] for w in listed] == [created.json["data"]["webhook"]["id"]]


def test_the_number_of_webhooks_per_user_is_bounded(make_app, receiver):
    from tests.conftest import Api

    api = Api(make_app(WEBHOOK_ALLOW_PRIVATE_TARGETS="true", WEBHOOK_MAX_PER_USER="2").test_client())
    token = api.token("alice")
    body = {"url": receiver.url, "events": ["user.login"]}
    assert [api.client.post("/api/webhooks", headers=api.bearer(token), json=body).status_code for _ in range(3)] == [201, 201, 409]


def test_a_password_reset_pauses_the_accounts_webhooks(api):
    """Someone who registered the address before its owner (or held the account before a reset)
    and made a webhook would go on receiving the owner's sign-ins, with address and browser, after
    the owner took the account back by a reset. The reset pauses every webhook, audited; the owner
    turns one back on once sure of where it sends."""
    squatter = api.register("squatter", email="owner@example.com").json["data"]["accessToken"]
    made = api.client.post("/api/webhooks", headers=api.bearer(squatter), json={"url": "http://127.0.0.1:9/hook", "events": ["user.login"]})
    hook = made.json["data"]["webhook"]["id"]
    api.client.post("/api/auth/password-reset/request", json={"email": "owner@example.com"})
    link = api.outbox.link_token("owner@example.com")
    new = "Taken-Back-4?x"
    assert api.client.post("/api/auth/password-reset/confirm", json={"token": link, "newPassword": new}).status_code == 200
    owner = api.bearer(api.login("owner@example.com", new).json["data"]["accessToken"])
    assert api.client.get(f"/api/webhooks/{hook}", headers=owner).json["data"]["webhook"]["isActive"] is False
    logs = api.client.get("/api/audit-logs", headers=owner).json["data"]["logs"]
    paused = [entry["details"] for entry in logs if entry["action"] == "webhook_disabled"]
    assert paused == [{"webhookId": hook, "reason": "password_reset"}]
    assert api.client.patch(f"/api/webhooks/{hook}", headers=owner, json={"isActive": True}).json["data"]["webhook"]["isActive"] is True


def test_disabling_an_account_pauses_its_webhooks(api, app):
    """As a password reset does: an account disabled because it was taken over would otherwise,
    once enabled again, go on sending its owner's sign-ins to the taker's webhooks."""
    from tests.admin.conftest import Admin

    admin = Admin(api, app)
    token = api.token("alice")
    made = api.client.post("/api/webhooks", headers=api.bearer(token), json={"url": "http://127.0.0.1:9/hook", "events": ["user.login"]})
    hook = made.json["data"]["webhook"]["id"]
    user_id = admin.user_id("alice")
    assert admin.post(f"/users/{user_id}/disable").status_code == 200
    assert admin.post(f"/users/{user_id}/enable").status_code == 200
    owner = api.bearer(api.login("alice").json["data"]["accessToken"])
    assert api.client.get(f"/api/webhooks/{hook}", headers=owner).json["data"]["webhook"]["isActive"] is False
    paused = admin.get("/audit-logs", userId=user_id, action="webhook_disabled").json["data"]["logs"]
    assert [entry["details"] for entry in paused] == [{"webhookId": hook, "by": admin.user_id("root"), "reason": "user_disabled"}]


def test_webhooks_asked_for_at_once_stay_within_the_limit(make_app):
    """WEBHOOK_MAX_PER_USER was counted, then the webhook inserted: requests sent together all
    counted the same webhooks and all got one."""
    from tests.api.test_two_factor_concurrency import at_once
    from tests.conftest import Api

    app = make_app(WEBHOOK_ALLOW_PRIVATE_TARGETS="true", WEBHOOK_MAX_PER_USER="2")
    api = Api(app.test_client())
    token = api.token("alice")
    body = {"url": "http://127.0.0.1:9/hook", "events": ["user.login"]}
    answers = at_once(app, lambda client, n: client.post("/api/webhooks", headers=api.bearer(token), json=body).status_code, times=6)
    assert sorted(answers) == [201, 201, 409, 409, 409, 409]
    assert len(api.client.get("/api/webhooks", headers=api.bearer(token)).json["data"]["webhooks"]) == 2
