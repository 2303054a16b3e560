"""Relying parties through the admin API: create, list, show, update, rotate the secret, delete;
checked as the CLI checks them, audited with the administrator's id."""

from __future__ import annotations

from sqlalchemy import select

from idp.extensions import db
from idp.oidc.clients import ClientRegistry
from idp.oidc.models import OAuthClient

CONFIDENTIAL = {
    "name": "Notes",
    "redirectUris": ["https://notes.example.com/callback"],
    "postLogoutRedirectUris": ["https://notes.example.com/"],
    "scopes": ["openid", "profile", "email"],
}


def secret_works(app, client_id: str, secret: str) -> bool:
    with app.app_context():
        client = db.session.get(OAuthClient, client_id)
        return client is not None and ClientRegistry.secret_matches(client, secret)


def test_clients_are_managed_through_the_admin_api(admin):
    created = admin.post("/clients", CONFIDENTIAL)
    assert created.status_code == 201, created.json
    client = created.json["data"]["client"]
    client_id, secret = client["clientId"], client["clientSecret"]
    assert secret and client["public"] is False and client["grantTypes"] == ["authorization_code", "refresh_token"]
    assert secret_works(admin.app, client_id, secret)
    listed = admin.get("/clients").json["data"]["clients"]
    assert [c["clientId"] for c in listed] == [client_id] and "clientSecret" not in listed[0]
    assert admin.get(f"/clients/{client_id}").json["data"]["client"]["name"] == "Notes"

    changed = admin.patch(f"/clients/{client_id}", {"redirectUris": ["https://notes.example.com/cb2"], "requireMfa": True})
    assert changed.status_code == 200, changed.json
    shown = changed.json["data"]["client"]
    assert shown["redirectUris"] == ["https://notes.example.com/cb2"] and shown["requireMfa"] is True
    assert shown["postLogoutRedirectUris"] == ["https://notes.example.com/"] and shown["name"] == "Notes"

    rotated = admin.post(f"/clients/{client_id}/rotate-secret")
    new_secret = rotated.json["data"]["clientSecret"]
    assert rotated.status_code == 200 and new_secret != secret
    assert secret_works(admin.app, client_id, new_secret) and not secret_works(admin.app, client_id, secret)

    assert admin.delete(f"/clients/{client_id}").status_code == 200
    assert admin.get(f"/clients/{client_id}").status_code == 404
    actions = [e["action"] for e in admin.get("/audit-logs", userId=admin.user_id("root")).json["data"]["logs"]]
    assert {"client_created", "client_updated", "client_secret_rotated", "client_deleted"} <= set(actions)


def test_public_clients_have_no_secret(admin):
    created = admin.post("/clients", {**CONFIDENTIAL, "public": True, "redirectUris": ["http://localhost:5000/callback"]})
    assert created.status_code == 201 and created.json["data"]["client"]["clientSecret"] is None
    client_id = created.json["data"]["client"]["clientId"]
    assert created.json["data"]["client"]["tokenEndpointAuthMethod"] == "none"
    assert admin.post(f"/clients/{client_id}/rotate-secret").status_code == 409


def test_invalid_clients_are_refused_with_reasons(admin):
    cases = [
        ({**CONFIDENTIAL, "redirectUris": ["http://notes.example.com/callback"]}, "redirect_uris: "),
        ({**CONFIDENTIAL, "redirectUris": []}, "redirect_uris: the authorization_code grant needs at least one"),
        ({**CONFIDENTIAL, "grantTypes": ["password"]}, "grantTypes.0: "),
        ({**CONFIDENTIAL, "grantTypes": ["implicit"]}, "grantTypes.0: "),
        ({**CONFIDENTIAL, "public": True, "grantTypes": ["client_credentials"], "redirectUris": []}, "grant_types: "),
        ({**CONFIDENTIAL, "scopes": ["admin"]}, "scopes.0: "),
        ({**CONFIDENTIAL, "name": " "}, "name: "),
        ({**CONFIDENTIAL, "firstParty": "yes"}, "firstParty: "),
        ({**CONFIDENTIAL, "clientSecret": "mine"}, "clientSecret: "),
        ({**CONFIDENTIAL, "redirectUris": ["https://[::1/callback"]}, "redirect_uris: https://[::1/callback is not a valid URL"),
        ({**CONFIDENTIAL, "redirectUris": ["https://notes.example.com:99999/cb"]}, "redirect_uris: "),
        ({**CONFIDENTIAL, "postLogoutRedirectUris": ["http://[::1"]}, "post_logout_redirect_uris: "),
    ]
    for body, error in cases:
        response = admin.post("/clients", body)
        assert response.status_code == 400, (body, response.json)
        assert any(e.startswith(error) for e in response.json["errors"]), (body, response.json)
    client_id = admin.post("/clients", CONFIDENTIAL).json["data"]["client"]["clientId"]
    for body in ({"redirectUris": None}, {"name": None}, {"public": True}, {"redirectUris": ["javascript:alert(1)"]}, {"redirectUris": ["http://[::1"]}):
        assert admin.patch(f"/clients/{client_id}", body).status_code == 400, body
    with admin.app.app_context():
        assert db.session.scalars(select(OAuthClient)).one().redirect_uris == CONFIDENTIAL["redirectUris"]
    assert admin.patch("/clients/nope", {"name": "x"}).status_code == 404


def test_the_admin_api_sets_and_changes_the_algorithm(admin):
    created = admin.post("/clients", {"name": "Notes", "redirectUris": ["https://notes.example.com/cb"], "idTokenSignedResponseAlg": "ES256"})
    assert created.status_code == 201, created.json
    client = created.json["data"]["client"]
    assert client["idTokenSignedResponseAlg"] == "ES256"
    changed = admin.patch(f"/clients/{client['clientId']}", {"idTokenSignedResponseAlg": "RS256"})
    assert changed.status_code == 200 and changed.json["data"]["client"]["idTokenSignedResponseAlg"] == "RS256"
    for refused in ("HS256", "none", None, 256):
        answer = admin.patch(f"/clients/{client['clientId']}", {"idTokenSignedResponseAlg": refused})
        assert answer.status_code == 400, (refused, answer.json)
    assert admin.get(f"/clients/{client['clientId']}").json["data"]["client"]["idTokenSignedResponseAlg"] == "RS256"
