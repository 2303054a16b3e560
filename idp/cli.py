"""`flask` commands for operators: signing keys and encryption-key rotation."""

from __future__ import annotations

import json

import click
from flask import Flask
from flask.cli import AppGroup
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


def register(app: Flask) -> None:
    app.cli.add_command(keys)
    app.cli.add_command(secrets_group)
