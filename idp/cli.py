"""`flask` commands for operators: signing keys, encryption-key rotation and the delivery worker.

`flask --app wsgi worker` runs an RQ worker on the configured Redis (REDIS_URL or REDIS_HOST)
for the app's delivery queue (DELIVERY_QUEUE, default idp-delivery): it sends the email and SMS
jobs the web processes enqueue after their commits, retries failed ones after
DELIVERY_RETRY_INTERVALS, and leaves jobs that fail every attempt in RQ's failed job registry
(`rq info --url $REDIS_URL`, `rq requeue --all --queue idp-delivery`). Run one or more next to
the web processes, with the same configuration. Without Redis there is nothing to run: messages
are sent inside the web process after each commit.
"""

from __future__ import annotations

import json

import click
import redis
from flask import Flask
from flask.cli import AppGroup, with_appcontext
from sqlalchemy import select

from idp.clock import iso
from idp.extensions import db
from idp.security.keys import SUPPORTED_ALGS
from idp.security.models import SigningKey
from idp.wiring import components

keys = AppGroup("keys", help="Signing keys published in the JWKS.")
secrets_group = AppGroup("secrets", help="Secrets encrypted at rest.")


@keys.command("ensure")
def keys_ensure() -> None:
    """Create a signing key for every supported algorithm that has none (idempotent)."""
    created = components().keys.ensure(db.session())
    click.echo(f"created {', '.join(created)}" if created else "signing keys present")


@keys.command("rotate")
@click.option("--alg", type=click.Choice(SUPPORTED_ALGS), multiple=True, help="Only these algorithms (default: all).")
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
def secrets_reencrypt() -> None:
    """Re-encrypt every secret under the first ENCRYPTION_KEYS entry (then drop the old key)."""
    count = components().keys.reencrypt(db.session())
    click.echo(f"re-encrypted {count} signing keys")


@click.command("worker")
@click.option("--burst", is_flag=True, help="Stop when the queue is empty instead of waiting for jobs.")
@with_appcontext
def worker(burst: bool) -> None:
    """Send queued email and SMS (an RQ worker on the delivery queue; needs Redis)."""
    from rq import Queue, Worker

    settings = components().settings
    if not settings.redis_url:
        raise click.ClickException(
            "the worker needs Redis: set REDIS_URL (or REDIS_HOST). Without Redis no worker is needed, "
            "messages are sent by the web process itself after each commit."
        )
    # Its own connection, without the web client's 2-second socket timeout: workers block on Redis while idle.
    connection = redis.Redis.from_url(settings.redis_url)
    queue = Queue(settings.delivery.queue_name, connection=connection)
    click.echo(f"delivery worker on queue {queue.name} ({settings.delivery.email_backend or 'no'} email, "
               f"{settings.delivery.sms_backend or 'no'} sms)")
    # with_scheduler: retries after a delay are scheduled jobs, moved back to the queue by the scheduler
    Worker([queue], connection=connection).work(burst=burst, with_scheduler=True)


def register(app: Flask) -> None:
    app.cli.add_command(keys)
    app.cli.add_command(secrets_group)
    app.cli.add_command(worker)
