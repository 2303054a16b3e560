"""/dev/outbox: the console outbox as a page, registered only when IDP_ENV=development."""

from __future__ import annotations

from flask import Blueprint, Flask, render_template

from idp.config import Settings
from idp.delivery.outbox import ConsoleOutbox


def register_outbox_page(app: Flask, settings: Settings) -> None:
    """Add /dev/outbox in development; test and production never have the route."""
    if settings.environment != "development":
        return
    outbox = ConsoleOutbox(settings.delivery.outbox_path)
    bp = Blueprint("dev_outbox", __name__)

    @bp.get("/dev/outbox")
    def outbox_page() -> str:
        return render_template("dev/outbox.html", messages=outbox.messages(limit=100), path=str(outbox.path))

    app.register_blueprint(bp)
