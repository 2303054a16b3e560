"""The JSON API under API_BASE_PATH (default `/api`)."""

from __future__ import annotations

from flask import Blueprint, Flask

from idp.config import Settings
from idp.extensions import limiter


def register_api(app: Flask, settings: Settings) -> None:
    from idp.api import audit, auth, health, limits

    api = Blueprint("api", __name__, url_prefix=settings.api_base_path)
    api.register_blueprint(health.bp)
    api.register_blueprint(auth.bp)
    api.register_blueprint(audit.bp)
    limits.general(api)
    limiter.exempt(health.bp)  # load balancers probe often; health must never answer 429
    app.register_blueprint(api)
