"""Hosted pages."""

from __future__ import annotations

from flask import Blueprint, Flask, render_template

bp = Blueprint("web", __name__)


@bp.get("/")
def home() -> str:
    return render_template("home.html")


def register(app: Flask) -> None:
    from idp.oidc import endpoints

    app.register_blueprint(bp)
    app.register_blueprint(endpoints.bp)
