"""Signing keys: JWKS publication, caching headers, rotation, encryption at rest (SECURITY.md 10 for keys)."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
import time_machine
from cryptography.fernet import Fernet
from joserfc import jwt
from joserfc.jwk import KeySet
from sqlalchemy import select

from idp.clock import utcnow
from idp.extensions import db
from idp.security.models import SigningKey
from idp.wiring import components

PRIVATE_MEMBERS = {"d", "p", "q", "dp", "dq", "qi"}


@pytest.fixture
def fresh_keys(app):
    """Tests that rotate or re-encrypt keys leave an empty key table; the next app makes new keys."""
    yield
    with app.app_context():
        db.session.execute(db.delete(SigningKey))
        db.session.commit()


def jwks(client) -> dict:
    response = client.get("/.well-known/jwks.json")
    assert response.status_code == 200
    return response.json


def test_jwks_publishes_an_es256_and_an_rs256_public_key(client):
    keys = jwks(client)["keys"]
    assert {(k["kty"], k["alg"]) for k in keys} >= {("EC", "ES256"), ("RSA", "RS256")}
    for key in keys:
        assert key["use"] == "sig" and key["kid"]
        assert not PRIVATE_MEMBERS & key.keys()


def test_jwks_is_cacheable_and_answers_304_to_its_etag(client):
    first = client.get("/.well-known/jwks.json")
    assert first.headers["Cache-Control"] == "public, max-age=300"
    assert first.mimetype == "application/jwk-set+json"
    again = client.get("/.well-known/jwks.json", headers={"If-None-Match": first.headers["ETag"]})
    assert again.status_code == 304 and again.headers["ETag"] == first.headers["ETag"]


@pytest.mark.parametrize("path", ["/.well-known/jwks.json", "/.well-known/openid-configuration"])
@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PROPFIND"])
def test_the_well_known_documents_refuse_other_methods_naming_theirs(client, path, method):
    """Answered before Flask: another method went on to the app, which has no route there (404, as
    if the document did not exist) instead of RFC 9110 15.5.6's 405 with Allow."""
    response = client.open(path, method=method)
    assert response.status_code == 405 and response.headers["Allow"] == "GET, HEAD"
    assert response.json == {"error": "invalid_request", "error_description": "Method not allowed"}
    assert "public" not in response.headers.get("Cache-Control", "")


def test_access_tokens_verify_against_the_published_jwks(api):
    token = api.token("alice")
    published = KeySet.import_key_set(jwks(api.client))
    decoded = jwt.decode(token, published, algorithms=["ES256"])
    assert decoded.header["kid"] in {k["kid"] for k in jwks(api.client)["keys"]}


def test_private_keys_are_encrypted_at_rest(app, client):
    jwks(client)
    with app.app_context():
        rows = db.session.scalars(db.select(SigningKey)).all()
        assert rows
        for row in rows:
            assert "PRIVATE KEY" not in row.private_key and "BEGIN" not in row.private_key
            assert "PRIVATE KEY" in components().box.decrypt(row.private_key)


def test_rotation_publishes_new_keys_and_keeps_old_ones_until_their_tokens_expire(app, api, fresh_keys):
    old_token = api.token("alice")
    old_kids = {k["kid"] for k in jwks(api.client)["keys"]}
    retired = {k["kid"] for k in json.loads(app.test_cli_runner().invoke(args=["keys", "list", "--json"]).output) if k["retiredAt"]}
    result = app.test_cli_runner().invoke(args=["keys", "rotate"])
    assert result.exit_code == 0, result.output
    with app.app_context():
        components().keys.reload()
    published = {k["kid"] for k in jwks(api.client)["keys"]}
    assert old_kids < published and len(published) == len(old_kids) + 2
    new_token = api.login("alice").json["data"]["accessToken"]
    assert jwt.decode(new_token, KeySet.import_key_set(jwks(api.client))).header["kid"] not in old_kids
    assert api.client.get("/api/auth/me", headers=api.bearer(old_token)).status_code == 200  # still verifies
    listing = json.loads(app.test_cli_runner().invoke(args=["keys", "list", "--json"]).output)
    newly_retired = {k["kid"] for k in listing if k["retiredAt"]} - retired  # an earlier test's retired keys may be listed too
    assert len(newly_retired) == 2 and newly_retired <= old_kids
    with time_machine.travel(utcnow() + timedelta(minutes=15 + 61), tick=False), app.app_context():
        components().keys.reload()
        assert {k["kid"] for k in json.loads(components().keys.snapshot().jwks_body)["keys"]} == published - old_kids


def test_a_rotation_under_encryption_keys_that_cannot_read_the_keys_changes_nothing(make_app, app, client, fresh_keys):
    """`keys rotate` in a shell whose ENCRYPTION_KEYS differs from the servers' retired the keys they
    read and made new ones they could not: within a minute every server answered sign-ins, tokens
    and its JWKS with 500s, and a second rotation did not help while the unreadable keys stayed
    published (an hour and a quarter); the command ended in a traceback. Now it refuses first, as
    `secrets reencrypt` does."""
    before = jwks(client)["keys"]
    wrong = make_app(ENCRYPTION_KEYS=Fernet.generate_key().decode())
    for args in (["keys", "rotate"], ["keys", "rotate", "--alg", "ES256"], ["secrets", "reencrypt"]):
        result = wrong.test_cli_runner().invoke(args=args)
        assert result.exit_code == 1 and "Traceback" not in result.output, result.output
        assert "ENCRYPTION_KEYS" in result.output and "reencrypt" in result.output
    with app.app_context():
        assert {row.kid for row in db.session.scalars(select(SigningKey).where(SigningKey.retired_at.is_(None)))} == {
            key["kid"] for key in before
        }
        assert components().keys.reload().signers  # the servers' key still reads every published key


def test_ensure_under_encryption_keys_that_cannot_read_the_keys_adds_none(make_app, app, client, fresh_keys):
    """As `keys rotate`: with an algorithm left without an active key, `keys ensure` in a shell
    whose ENCRYPTION_KEYS differs from the servers' made one the servers could not read."""
    assert jwks(client)["keys"]  # the servers' keys exist
    with app.app_context():
        es256 = db.session.scalar(select(SigningKey).where(SigningKey.alg == "ES256", SigningKey.retired_at.is_(None)))
        es256.retired_at = utcnow()
        db.session.commit()
    wrong = make_app(ENCRYPTION_KEYS=Fernet.generate_key().decode())
    result = wrong.test_cli_runner().invoke(args=["keys", "ensure"])
    assert result.exit_code == 1 and "Traceback" not in result.output and "ENCRYPTION_KEYS" in result.output, result.output
    with app.app_context():
        assert db.session.scalar(select(SigningKey).where(SigningKey.alg == "ES256", SigningKey.retired_at.is_(None))) is None
    assert app.test_cli_runner().invoke(args=["keys", "ensure"]).exit_code == 0  # with the servers' keys it does


def test_keys_ensure_is_idempotent(app):
    runner = app.test_cli_runner()
    runner.invoke(args=["keys", "ensure"])
    assert runner.invoke(args=["keys", "ensure"]).output.strip() == "signing keys present"


def test_reencrypt_moves_keys_and_totp_secrets_to_a_new_encryption_key(make_app, app, api, fresh_keys):
    import pyotp

    from idp.webhooks.models import Webhook

    token = api.verified_token()
    secret, _ = api.enable_totp(token)
    hook = api.client.post(
        "/api/webhooks", headers=api.bearer(token), json={"url": "https://93.184.215.14/hook", "events": ["user.login"]}
    )
    webhook_secret = hook.json["data"]["secret"]
    with app.app_context():
        old_key = components().settings.encryption_keys[0]
    new_key = Fernet.generate_key().decode()
    both = make_app(ENCRYPTION_KEYS=f"{new_key},{old_key}")
    result = both.test_cli_runner().invoke(args=["secrets", "reencrypt"])
    assert result.exit_code == 0 and "signing keys, 1 TOTP secrets and 1 webhook secrets" in result.output
    only_new = make_app(ENCRYPTION_KEYS=new_key)
    assert jwks(only_new.test_client())["keys"]
    with only_new.app_context():
        assert components().keys.signer("ES256").key  # decrypts with the new key alone
        assert components().box.decrypt(db.session.scalars(select(Webhook)).one().secret) == webhook_secret
    from tests.conftest import Api

    fresh = Api(only_new.test_client())
    temp = fresh.challenge()["tempToken"]
    assert fresh.client.post("/api/2fa/verify", json={"tempToken": temp, "code": pyotp.TOTP(secret).now()}).status_code == 200


def test_a_reload_imports_only_keys_it_has_not_seen(app, fresh_keys, monkeypatch):
    """The periodic reload (every minute in each process) reuses what signs with a known kid: an RSA
    import checks the key, tens of milliseconds during which the process's signing waits."""
    from idp.security import keys as keys_module

    imported: list[str] = []
    real_import = keys_module._import

    def counting_import(alg: str, pem: str, kid: str):
        imported.append(kid)
        return real_import(alg, pem, kid)

    monkeypatch.setattr(keys_module, "_import", counting_import)
    with app.app_context():
        ring = components().keys
        before = ring.snapshot().signers
        imported.clear()
        after = ring.reload().signers
        assert imported == [] and after == before  # the same signers, nothing decrypted or imported
        new_kids = ring.rotate(db.session)
        assert sorted(imported) == sorted(new_kids)  # a rotation imports its new keys only
        assert {alg: s.key.kid for alg, s in ring.snapshot().signers.items()}.keys() == before.keys()
        assert {s.key.kid for s in ring.snapshot().signers.values()} == set(new_kids)
