"""The JSON API under API_BASE_PATH (default `/api`)."""

from __future__ import annotations

from flask import Blueprint

from idp.api.envelope import refuse_nul_in_path
from idp.config import Settings


def api_blueprints(settings: Settings) -> tuple[Blueprint, list[Blueprint]]:
    """The API blueprint (under the general rate limit) and the parts exempt from limits."""
    from idp.api import admin, api_keys, audit, auth, email, health, reference, two_factor, webhooks

    api = Blueprint("api", __name__, url_prefix=settings.api_base_path)
    api.url_value_preprocessor(refuse_nul_in_path)
    api.register_blueprint(health.bp)
    api.register_blueprint(auth.bp)
    api.register_blueprint(audit.bp)
    api.register_blueprint(two_factor.bp)
    api.register_blueprint(email.bp)
    api.register_blueprint(api_keys.bp)
    api.register_blueprint(webhooks.bp)
    api.register_blueprint(admin.bp)
    api.register_blueprint(reference.bp)  # /openapi.json and /docs
    # load balancers probe health often; it must never answer 429
    return api, [health.bp]
