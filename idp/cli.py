"""`flask` commands for operators: signing keys, encryption-key rotation, clients, the delivery worker,
the deletion of rows that have served their purpose (`flask prune`), and (in development only) a demo relying party and user.

`flask --app wsgi worker` runs an RQ worker on the configured Redis (REDIS_URL or REDIS_HOST)
for the app's delivery queue (DELIVERY_QUEUE, default idp-delivery): it sends the email and SMS
jobs the web processes enqueue after their commits, retries failed ones after
DELIVERY_RETRY_INTERVALS, and leaves jobs that fail every attempt in RQ's failed job registry
(`rq info --url $REDIS_URL`, `rq requeue --all --queue idp-delivery`). Run one or more next to
the web processes, with the same configuration. Without Redis there is nothing to run: messages
are sent inside the web process after each commit.
"""

from __future__ import annotations

import functools
import json
import os
import secrets
import string
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import click
import redis
from flask import Flask, current_app
from flask.cli import AppGroup, with_appcontext
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.exc import DataError

from idp.accounts.models import User
from idp.api.envelope import describe
from idp.api.schemas import RegisterRequest
from idp.api.users import user_as_admin_sees
from idp.audit.service import ClientInfo
from idp.clock import iso, utcnow
from idp.errors import DomainError, NotFound
from idp.extensions import db
from idp.mfa.methods import reencrypt_totp_secrets
from idp.oidc.clients import AUTH_METHODS, GRANT_TYPES, SCOPES, ClientSpec, describe_client
from idp.oidc.id_tokens import DEFAULT_ID_TOKEN_ALG, ID_TOKEN_ALGS
from idp.oidc.models import OAuthClient
from idp.retention import Retention
from idp.retention import prune as prune_rows
from idp.security.keys import SUPPORTED_ALGS
from idp.security.models import SigningKey
from idp.security.password_policy import password_problems
from idp.security.secretbox import SecretBoxError
from idp.webhooks.service import reencrypt_webhook_secrets
from idp.wiring import account_service, client_registry, components, user_administration

keys = AppGroup("keys", help="Signing keys published in the JWKS.")
secrets_group = AppGroup("secrets", help="Secrets encrypted at rest.")


def _unreadable_secrets(command: Callable[..., None]) -> Callable[..., None]:
    """A secret that ENCRYPTION_KEYS cannot decrypt is an operator's setting, told as such (exit 1), not a traceback."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        try:
            command(*args, **kwargs)
        except SecretBoxError as exc:
            db.session.rollback()
            raise click.ClickException(
                f"{exc}: they were encrypted with a key ENCRYPTION_KEYS does not list (run this with the servers' "
                "ENCRYPTION_KEYS; when changing the key, keep the old one after the new one until "
                "`flask secrets reencrypt` has run)"
            ) from None

    return wrapper


@keys.command("ensure")
@_unreadable_secrets
def keys_ensure() -> None:
    """Create a signing key for every supported algorithm that has none (idempotent)."""
    created = components().keys.ensure(db.session())
    components().keys.reload()  # every key decrypts: a server started without them answers 500s
    click.echo(f"created {', '.join(created)}" if created else "signing keys present")


@keys.command("rotate")
@click.option("--alg", type=click.Choice(SUPPORTED_ALGS), multiple=True, help="Only these algorithms (default: all).")
@_unreadable_secrets
def keys_rotate(alg: tuple[str, ...]) -> None:
    """Start signing with new keys; the old ones stay published until their tokens expire."""
    created = components().keys.rotate(db.session(), alg or SUPPORTED_ALGS)
    click.echo(f"new signing keys: {', '.join(created)}")


@keys.command("list")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def keys_list(as_json: bool) -> None:
    """Every key with its state."""
    rows = db.session.scalars(select(SigningKey).order_by(SigningKey.created_at)).all()
    listing = [
        {
            "kid": r.kid,
            "alg": r.alg,
            "createdAt": iso(r.created_at),
            "retiredAt": iso(r.retired_at),
            "publishedUntil": iso(r.publish_until),
        }
        for r in rows
    ]
    if as_json:
        click.echo(json.dumps(listing, indent=2))
        return
    for k in listing:
        state = "active" if not k["retiredAt"] else f"retired, published until {k['publishedUntil']}"
        click.echo(f"{k['kid']}  {k['alg']}  created {k['createdAt']}  {state}")


@secrets_group.command("reencrypt")
@_unreadable_secrets
def secrets_reencrypt() -> None:
    """Re-encrypt every secret (signing keys, TOTP secrets, webhook secrets) under the first ENCRYPTION_KEYS entry.

    Rotation: put the new key first with the old one after it, restart every process, run this,
    then drop the old key."""
    keys_count = components().keys.reencrypt(db.session())
    totp_count = reencrypt_totp_secrets(db.session(), components().box)
    webhook_count = reencrypt_webhook_secrets(db.session(), components().box)
    click.echo(f"re-encrypted {keys_count} signing keys, {totp_count} TOTP secrets and {webhook_count} webhook secrets")


@click.command("worker")
@click.option("--burst", is_flag=True, help="Stop when the queue is empty instead of waiting for jobs.")
@with_appcontext
def worker(burst: bool) -> None:
    """Send queued email, SMS and webhooks (an RQ worker on the delivery queues; needs Redis)."""
    from rq import SimpleWorker

    from idp.delivery.queue import delivery_queues

    settings = components().settings
    if not settings.redis_url:
        raise click.ClickException(
            "the worker needs Redis: set REDIS_URL (or REDIS_HOST). Without Redis no worker is needed, "
            "messages are sent by the web process itself after each commit."
        )
    # Its own connection, without the web client's 2-second socket timeout: workers block on Redis while idle.
    connection = redis.Redis.from_url(settings.redis_url)
    try:
        connection.ping()
    except redis.RedisError as exc:  # a wrong REDIS_URL, or Redis not up yet: the reason, not a traceback
        where = connection.connection_pool.connection_kwargs
        place = where.get("path") or f"{where.get('host')}:{where.get('port')}"  # never the password
        raise click.ClickException(f"the worker cannot reach Redis at {place}: {exc}") from None
    queues = delivery_queues(settings.delivery.queue_name, connection)
    click.echo(f"delivery worker on queue {queues[0].name} ({settings.delivery.email_backend or 'no'} email, "
               f"{settings.delivery.sms_backend or 'no'} sms), then {queues[1].name}")
    # SimpleWorker runs jobs in this process: a delivery job is one SMTP or HTTP call on rendered
    # strings, and forking per job cost more CPU (30 ms) than the job itself. with_scheduler:
    # retries after a delay are scheduled jobs, moved back to the queue by the scheduler.
    SimpleWorker(queues, connection=connection).work(burst=burst, with_scheduler=True)


@click.command("prune")
@click.option("--days", default=30, show_default=True, type=click.IntRange(min=1),
              help="Keep sessions, login challenges, codes, email links and trusted devices this long after they end.")
@click.option("--delivery-days", default=30, show_default=True, type=click.IntRange(min=1),
              help="Keep finished webhook deliveries (and their attempts) this long.")
@click.option("--audit-days", type=click.IntRange(min=1), help="Also delete audit events older than this (default: keep them).")
@with_appcontext
def prune(days: int, delivery_days: int, audit_days: int | None) -> None:
    """Delete the rows that have served their purpose (idp.retention). Run it daily, from one place."""
    retention = Retention(timedelta(days=days), timedelta(days=delivery_days), timedelta(days=audit_days) if audit_days else None)
    deleted = prune_rows(db.session(), utcnow(), retention)
    click.echo("deleted " + ", ".join(f"{count} {table}" for table, count in deleted.items()))


clients = AppGroup("clients", help="Relying parties (OAuth 2.0 / OpenID Connect clients).")


def _emit(payload: Any, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(payload, indent=2))
        return
    for item in payload if isinstance(payload, list) else [payload]:
        click.echo("\n".join(f"{key}: {value}" for key, value in item.items()) + "\n")


def _domain_errors(command: Callable[..., None]) -> Callable[..., None]:
    """Show a service's refusal as a clean CLI error (exit 1), not a traceback; so too a value the
    database cannot hold (longer than its column, or a NUL character)."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        if any(isinstance(v, str) and "\x00" in v for v in (*args, *kwargs.values())):
            raise click.ClickException("a value holds the NUL character")
        try:
            command(*args, **kwargs)
        except DomainError as exc:
            raise click.ClickException("; ".join(exc.errors or [exc.message])) from None
        except DataError as exc:
            db.session.rollback()
            raise click.ClickException(f"the database refused a value: {str(exc.orig).strip().splitlines()[0]}") from None

    return wrapper


@clients.command("create")
@click.option("--name", required=True)
@click.option("--redirect-uri", "redirect_uris", multiple=True, help="Exact redirect URI (repeatable).")
@click.option("--post-logout-redirect-uri", "post_logout_uris", multiple=True, help="Exact post-logout URI (repeatable).")
@click.option("--grant", "grants", multiple=True, type=click.Choice(GRANT_TYPES), help="Default: authorization_code, refresh_token.")
@click.option("--scope", "scopes", multiple=True, type=click.Choice(SCOPES), help="Default: openid profile email.")
@click.option("--public", is_flag=True, help="No secret; PKCE required (browser and native apps).")
@click.option(
    "--auth-method", type=click.Choice(AUTH_METHODS[:2]),
    help="How a confidential client sends its secret (default client_secret_basic); not for --public.",
)
@click.option("--first-party", is_flag=True, help="Skip the consent page.")
@click.option("--require-mfa", is_flag=True, help="Users must pass a second factor (and enrol one if they have none).")
@click.option(
    "--id-token-alg", type=click.Choice(ID_TOKEN_ALGS), default=DEFAULT_ID_TOKEN_ALG,
    help="How its ID tokens are signed (id_token_signed_response_alg).",
)
@click.option("--client-id", help="Choose the id (default: random).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@_domain_errors
def clients_create(
    name: str, redirect_uris: tuple[str, ...], post_logout_uris: tuple[str, ...], grants: tuple[str, ...], scopes: tuple[str, ...],
    public: bool, auth_method: str | None, first_party: bool, require_mfa: bool, id_token_alg: str, client_id: str | None,
    as_json: bool,
) -> None:
    """Register a client; its secret is shown once."""
    if public and auth_method:
        raise click.UsageError("--auth-method is for confidential clients: a public client has no secret to send (it uses PKCE)")
    spec = ClientSpec(
        name=name,
        redirect_uris=redirect_uris,
        post_logout_redirect_uris=post_logout_uris,
        grant_types=grants or ClientSpec.grant_types,
        scopes=scopes or ClientSpec.scopes,
        public=public,
        first_party=first_party,
        require_mfa=require_mfa,
        auth_method=auth_method or "client_secret_basic",
        id_token_alg=id_token_alg,
    )
    client, secret = client_registry().create(spec, client_id=client_id)
    # a public client has none: JSON says null, the text leaves the line out
    _emit({**describe_client(client), "clientSecret": secret} if secret or as_json else describe_client(client), as_json)


@clients.command("list")
@click.option("--json", "as_json", is_flag=True)
def clients_list(as_json: bool) -> None:
    """Every registered client."""
    _emit([describe_client(c) for c in client_registry().all()], as_json)


@clients.command("show")
@click.argument("client_id")
@click.option("--json", "as_json", is_flag=True)
@_domain_errors
def clients_show(client_id: str, as_json: bool) -> None:
    _emit(describe_client(client_registry().get(client_id)), as_json)


@clients.command("delete")
@click.argument("client_id")
@_domain_errors
def clients_delete(client_id: str) -> None:
    client_registry().delete(client_id)
    click.echo(f"deleted {client_id}")


@clients.command("rotate-secret")
@click.argument("client_id")
@click.option("--json", "as_json", is_flag=True)
@_domain_errors
def clients_rotate_secret(client_id: str, as_json: bool) -> None:
    """Replace the secret (the old one stops working at once); the new one is shown once."""
    _emit({"clientId": client_id, "clientSecret": client_registry().rotate_secret(client_id)}, as_json)


demo = AppGroup("demo", help="A demo relying party and user to try the provider with (development only).")

DEMO_CLIENT_ID = "demo"
DEMO_CLIENT = ClientSpec(
    name="Demo app",
    redirect_uris=("http://localhost:5000/callback",),
    post_logout_redirect_uris=("http://localhost:5000/",),
    grant_types=("authorization_code", "refresh_token"),
    scopes=("openid", "profile", "email", "offline_access"),
    public=True,  # no secret: PKCE instead
    first_party=False,  # so the consent page shows
)
DEMO_EMAIL = "demo@example.com"
DEMO_USERNAME = "demo"
DEMO_PASSWORD_FILE = "demo-password.txt"  # in the instance folder


def _demo_password() -> str:
    """A random password the policy accepts: 4 groups of 5 letters and digits joined by dashes."""
    alphabet = string.ascii_letters + string.digits
    while True:
        password = "-".join("".join(secrets.choice(alphabet) for _ in range(5)) for _ in range(4))
        if not password_problems(password, email=DEMO_EMAIL, username=DEMO_USERNAME):
            return password


def _write_private(path: Path, text: str) -> None:
    """Write `text` to `path` readable by its owner only (0600, also when the file already existed)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)


def _differs(client: OAuthClient, spec: ClientSpec) -> bool:
    return (
        list(client.redirect_uris) != list(spec.redirect_uris)
        or list(client.post_logout_redirect_uris) != list(spec.post_logout_redirect_uris)
        or list(client.grant_types) != list(spec.grant_types)
        or list(client.scopes) != list(spec.scopes)
        or client.is_public != spec.public
        or client.first_party != spec.first_party
    )


@demo.command("seed")
@_domain_errors
def demo_seed() -> None:
    """Register the `demo` client (public, PKCE, http://localhost:5000/callback) and the user
    demo@example.com with a generated password, kept in instance/demo-password.txt. Idempotent."""
    settings = components().settings
    if not settings.is_development:
        raise click.ClickException(
            f"demo seed is for development only and IDP_ENV is {settings.environment}: it would register a public "
            "client for http://localhost:5000 and a user whose password is written to disk. Register real clients "
            "with `flask --app wsgi clients create`."
        )
    registry = client_registry()
    try:
        client = registry.get(DEMO_CLIENT_ID)
    except NotFound:
        registry.create(DEMO_CLIENT, client_id=DEMO_CLIENT_ID)
        click.echo(f"created client {DEMO_CLIENT_ID} (public, PKCE) for {DEMO_CLIENT.redirect_uris[0]}")
    else:
        click.echo(f"client {DEMO_CLIENT_ID} present")
        if _differs(client, DEMO_CLIENT):
            click.echo(
                f"  note: it is registered differently from the demo's settings; to start over, run "
                f"`flask --app wsgi clients delete {DEMO_CLIENT_ID}` and seed again"
            )

    password_file = Path(current_app.instance_path) / DEMO_PASSWORD_FILE
    accounts = account_service()
    if accounts.find(DEMO_EMAIL) is not None:
        if password_file.exists():
            click.echo(f"user {DEMO_EMAIL} present; its password is in {password_file}")
        else:
            click.echo(
                f"user {DEMO_EMAIL} present, but {password_file} (written when it was created) is gone: delete the "
                "instance folder to start over, or reset the password with POST /api/auth/password-reset/request and "
                "/confirm (the email lands in the dev outbox)"
            )
        return
    password = _demo_password()
    accounts.register(email=DEMO_EMAIL, username=DEMO_USERNAME, password=password, client=ClientInfo(user_agent="flask demo seed"))
    click.echo(f"created user {DEMO_EMAIL} (username {DEMO_USERNAME}) with password: {password}")
    _write_private(password_file, password + "\n")
    click.echo(f"the password is kept in {password_file}")


users = AppGroup("users", help="User accounts: create (administrators too), disable, enable, reset 2FA, end sessions.")
CLI_CLIENT = ClientInfo(user_agent="flask users")


@users.command("create")
@click.option("--email", required=True)
@click.option("--username", required=True)
@click.password_option(help="Prompted (twice) when not given; IDP_NEW_PASSWORD is read too.", envvar="IDP_NEW_PASSWORD")
@click.option("--admin", is_flag=True, help="Make the user an administrator (admin API, admin-scoped API keys).")
@click.option("--email-verified", is_flag=True, help="Mark the email address as verified (you vouch for it).")
@click.option("--json", "as_json", is_flag=True)
@_domain_errors
def users_create(email: str, username: str, password: str, admin: bool, email_verified: bool, as_json: bool) -> None:
    """Create an account (the API's checks apply: address, username, password policy)."""
    try:
        RegisterRequest.model_validate({"email": email, "username": username, "password": password})
    except ValidationError as exc:
        raise click.ClickException("; ".join(describe(error) for error in exc.errors())) from None
    user = account_service().register(email=email, username=username, password=password, client=CLI_CLIENT)
    if email_verified:
        user.email_verified = True
    if admin:
        user = user_administration().set_admin(user.id, True, by=None, client=CLI_CLIENT)  # commits
    db.session.commit()
    _emit(user_as_admin_sees(user), as_json)


def _user_command(name: str, help_text: str) -> Callable[[Callable[[User], User | int]], Callable[..., None]]:
    """A `flask users <name> EMAIL_OR_USERNAME` command around one administration step."""

    def decorate(step: Callable[[User], User | int]) -> Callable[..., None]:
        @users.command(name, help=help_text)
        @click.argument("who")
        @click.option("--json", "as_json", is_flag=True)
        @_domain_errors
        def command(who: str, as_json: bool) -> None:
            result = step(user_administration().find(who))
            _emit(user_as_admin_sees(result) if isinstance(result, User) else {"revoked": result}, as_json)

        return command

    return decorate


@_user_command("disable", "Stop the user signing in; their sessions, tokens and API keys stop working at once.")
def users_disable(user: User) -> User:
    return user_administration().disable(user.id, by=None, client=CLI_CLIENT)


@_user_command("enable", "Let a disabled user sign in again.")
def users_enable(user: User) -> User:
    return user_administration().enable(user.id, by=None, client=CLI_CLIENT)


@_user_command("reset-2fa", "Remove every second factor, backup code and trusted device, and end the user's sessions.")
def users_reset_two_factor(user: User) -> User:
    return user_administration().reset_two_factor(user.id, by=None, client=CLI_CLIENT)


@_user_command("revoke-sessions", "End every session of the user.")
def users_revoke_sessions(user: User) -> int:
    return user_administration().revoke_sessions(user.id, by=None, client=CLI_CLIENT)


@_user_command("grant-admin", "Make the user an administrator.")
def users_grant_admin(user: User) -> User:
    return user_administration().set_admin(user.id, True, by=None, client=CLI_CLIENT)


@_user_command("revoke-admin", "Take administrator rights away.")
def users_revoke_admin(user: User) -> User:
    return user_administration().set_admin(user.id, False, by=None, client=CLI_CLIENT)


def register(app: Flask) -> None:
    app.cli.add_command(users)
    app.cli.add_command(keys)
    app.cli.add_command(secrets_group)
    app.cli.add_command(worker)
    app.cli.add_command(prune)
    app.cli.add_command(clients)
    app.cli.add_command(demo)
