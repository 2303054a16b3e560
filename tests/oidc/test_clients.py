"""Relying parties registered by the CLI (`flask clients ...`), secrets stored as digests."""

from __future__ import annotations

import json

import pytest

from idp.extensions import db
from idp.oidc.clients import ClientRegistry
from idp.oidc.models import OAuthClient


def cli(app, *args: str):
    return app.test_cli_runner().invoke(args=["clients", *args])


def create(app, *args: str) -> dict:
    result = cli(app, "create", "--json", *args)
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_a_confidential_client_gets_a_secret_shown_once_and_stored_as_a_digest(app):
    made = create(app, "--name", "Shop", "--redirect-uri", "https://shop.example/callback")
    assert made["public"] is False and made["tokenEndpointAuthMethod"] == "client_secret_basic"
    assert made["grantTypes"] == ["authorization_code", "refresh_token"] and made["scopes"] == ["openid", "profile", "email"]
    secret = made["clientSecret"]
    assert len(secret) >= 43
    with app.app_context():
        client = db.session.get(OAuthClient, made["clientId"])
        assert client.client_secret_hash != secret and len(client.client_secret_hash) == 64
        assert ClientRegistry.secret_matches(client, secret) and not ClientRegistry.secret_matches(client, secret + "x")
    shown = json.loads(cli(app, "show", made["clientId"], "--json").output)
    assert "clientSecret" not in shown and shown["redirectUris"] == ["https://shop.example/callback"]


def test_a_public_client_has_no_secret_and_cannot_use_client_credentials(app):
    made = create(app, "--name", "SPA", "--public", "--redirect-uri", "http://localhost:5173/cb")
    assert made["public"] is True and made["clientSecret"] is None and made["tokenEndpointAuthMethod"] == "none"
    refused = cli(app, "create", "--name", "Bad", "--public", "--grant", "client_credentials")
    assert refused.exit_code == 1 and "public client cannot use client_credentials" in refused.output
    # a secret's method for a client without one was silently dropped; the text said "clientSecret: None"
    with_method = cli(app, "create", "--name", "Bad", "--public", "--auth-method", "client_secret_post", "--redirect-uri", "http://localhost:5173/cb")
    assert with_method.exit_code == 2 and "--auth-method is for confidential clients" in with_method.output
    text = cli(app, "create", "--name", "SPA 2", "--public", "--redirect-uri", "http://localhost:5173/cb")
    assert text.exit_code == 0 and "tokenEndpointAuthMethod: none" in text.output and "clientSecret" not in text.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--redirect-uri", "http://shop.example/cb"], "must be https"),
        (["--redirect-uri", "https://shop.example/cb#frag"], "fragment"),
        ([], "needs at least one"),
        (["--redirect-uri", "https://a.example/cb", "--post-logout-redirect-uri", "javascript:alert(1)"], "post_logout_redirect_uris"),
    ],
)
def test_unsafe_or_missing_redirect_uris_are_refused(app, args, message):
    result = cli(app, "create", "--name", "X", *args)
    assert result.exit_code == 1 and message in result.output


def test_implicit_and_password_grants_do_not_exist(app):
    result = cli(app, "create", "--name", "X", "--grant", "implicit")
    assert result.exit_code == 2 and "implicit" in result.output


def test_list_rotate_and_delete(app):
    made = create(app, "--name", "Reports", "--grant", "client_credentials")
    listed = json.loads(cli(app, "list", "--json").output)
    assert [c["clientId"] for c in listed] == [made["clientId"]]
    rotated = json.loads(cli(app, "rotate-secret", made["clientId"], "--json").output)["clientSecret"]
    with app.app_context():
        client = db.session.get(OAuthClient, made["clientId"])
        assert ClientRegistry.secret_matches(client, rotated) and not ClientRegistry.secret_matches(client, made["clientSecret"])
    assert cli(app, "delete", made["clientId"]).exit_code == 0
    missing = cli(app, "show", made["clientId"])
    assert missing.exit_code == 1 and "No client" in missing.output


def test_a_chosen_client_id_must_be_free(app):
    create(app, "--name", "Demo", "--client-id", "demo", "--redirect-uri", "https://d.example/cb")
    again = cli(app, "create", "--name", "Demo", "--client-id", "demo", "--redirect-uri", "https://d.example/cb")
    assert again.exit_code == 1 and "exists" in again.output


@pytest.mark.parametrize("reserved", ["idp-api", "idp-browser"])
def test_the_providers_own_client_ids_cannot_be_registered(app, reserved):
    """The JSON API knows its own tokens by `client_id` idp-api, the browser's sign-in session is
    idp-browser: a client registered as idp-api got code-flow tokens that worked on /api (an
    administrator's reached /api/admin), one as idp-browser could refresh the browser's cookie."""
    refused = cli(app, "create", "--name", "Internal tool", "--client-id", reserved, "--redirect-uri", "https://t.example/cb")
    assert refused.exit_code == 1 and "the provider's own" in refused.output
    assert json.loads(cli(app, "list", "--json").output) == []


def test_generated_client_ids_are_letters_and_digits_so_a_command_line_never_reads_them_as_options():
    from idp.oidc.clients import new_client_id

    ids = {new_client_id() for _ in range(2000)}
    assert len(ids) == 2000 and all(len(i) == 24 and i.isalnum() for i in ids)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["create", "--name", "X", "--redirect-uri", "https://a.example/cb", "--client-id", "x" * 65], "client_id: 1 to 64"),
        (["create", "--name", "X", "--redirect-uri", "https://a.example/cb", "--client-id", "tab\there"], "client_id"),
        (["create", "--name", "X" * 101, "--redirect-uri", "https://a.example/cb"], "name: at most 100"),
        (["show", "a\x00b"], "NUL"),
        (["delete", "a\x00b"], "NUL"),
    ],
)
def test_wrong_input_is_a_clean_error_not_a_traceback(app, args, message):
    """On PostgreSQL these were DataError or ValueError tracebacks."""
    result = cli(app, *args)
    assert result.exit_code == 1 and message in result.output and isinstance(result.exception, SystemExit), result.output
