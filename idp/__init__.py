"""The identity provider: an OpenID Connect provider, hosted pages and a JSON API in one Flask app."""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from pathlib import Path

from flask import Flask

__version__ = "0.1.0"

ROOT = Path(__file__).resolve().parent.parent


def create_app(config: Mapping[str, str] | None = None, *, instance_path: str | None = None, dotenv: bool = True) -> Flask:
    """Build an app from the environment (and `.env` unless `dotenv` is False); `config` overrides both."""
    import idp.accounts.models  # noqa: F401  (register the tables with the metadata)
    import idp.apikeys.models  # noqa: F401
    import idp.audit.models  # noqa: F401
    import idp.mfa.models  # noqa: F401
    import idp.oidc.models  # noqa: F401
    import idp.security.models  # noqa: F401
    import idp.webhooks.models  # noqa: F401
    from idp import cli, web
    from idp.after_response import install_after_response
    from idp.api import api_blueprints
    from idp.config import REDIS_CLIENT_TIMEOUTS, Settings, environment_with_dotenv
    from idp.delivery.views import register_outbox_page
    from idp.errors import register_error_handlers
    from idp.extensions import csrf, db, migrate
    from idp.http import behind_proxies, register_http_policies, transport_headers
    from idp.i18n import install_babel
    from idp.observability.install import install_observability
    from idp.observability.logs import configure_logging
    from idp.oidc import endpoints as oauth_endpoints
    from idp.oidc.discovery import DISCOVERY_PATH, JWKS_PATH, StaticDocument, provider_metadata
    from idp.oidc.jwks import WellKnownDocuments
    from idp.oidc.server import build_authorization_server
    from idp.ratelimits import install_limiter, storage_uri
    from idp.web.branding import install_branding
    from idp.wiring import build_components

    env = environment_with_dotenv(dotenv_path=str(ROOT / ".env")) if dotenv else dict(os.environ)
    env.update(config or {})
    app = Flask(
        __name__,
        instance_path=instance_path or env.get("INSTANCE_PATH") or str(ROOT / "instance"),
        template_folder=str(ROOT / "templates"),
        static_folder=str(ROOT / "static"),
    )
    settings = Settings.load(env, Path(app.instance_path))
    configure_logging(settings.observability, service=settings.service_name)

    app.config.update(
        SECRET_KEY=settings.secret_key,
        SQLALCHEMY_DATABASE_URI=settings.database.url,
        SQLALCHEMY_ENGINE_OPTIONS=settings.database.engine_options,
        MAX_CONTENT_LENGTH=settings.max_body_bytes,
        JSON_SORT_KEYS=False,
        # __Host-: Secure, Path=/ and no Domain, so no sibling host can set or read it (needs HTTPS)
        SESSION_COOKIE_NAME="__Host-idp_session" if settings.secure_cookies else "idp_session",
        SESSION_COOKIE_SECURE=settings.secure_cookies,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        WTF_CSRF_TIME_LIMIT=None,  # valid as long as the session: a form left open still works
        WTF_CSRF_SSL_STRICT=False,  # the Referer check breaks under Referrer-Policy: no-referrer
        RATELIMIT_STORAGE_URI=storage_uri(settings.redis_url),
        RATELIMIT_STORAGE_OPTIONS=dict(REDIS_CLIENT_TIMEOUTS) if settings.redis_url else {},
        RATELIMIT_KEY_PREFIX=settings.rate_limit_key_prefix,
        RATELIMIT_HEADERS_ENABLED=True,
        RATELIMIT_HEADER_LIMIT="RateLimit-Limit",
        RATELIMIT_HEADER_REMAINING="RateLimit-Remaining",
        RATELIMIT_HEADER_RESET="RateLimit-Reset",
        RATELIMIT_HEADER_RETRY_AFTER_VALUE="delta-seconds",
        RATELIMIT_STRATEGY="moving-window",
        # Redis down: keep serving (health says "degraded") and count in process memory meanwhile.
        RATELIMIT_SWALLOW_ERRORS=True,
        RATELIMIT_IN_MEMORY_FALLBACK_ENABLED=True,
    )
    if settings.trusted_proxies:
        app.wsgi_app = behind_proxies(app.wsgi_app, settings.trusted_proxies)  # type: ignore[method-assign]

    db.init_app(app)
    migrate.init_app(app, db, directory=str(ROOT / "migrations"))
    csrf.init_app(app)
    install_babel(app, settings.translations_dir, settings.api_base_path)

    register_error_handlers(app, settings.api_base_path)
    register_http_policies(app, settings)
    install_after_response(app)
    api, exempt = api_blueprints(settings)
    app.register_blueprint(api)
    for name, blueprint in app.blueprints.items():  # bearer tokens, not cookies, authenticate the JSON API
        if name == api.name or name.startswith(api.name + "."):
            csrf.exempt(blueprint)
    for rule in app.url_map.iter_rules():  # as Express routes by default: /api/x/ is /api/x, for the old service's clients
        if rule.endpoint.startswith(api.name + "."):
            rule.strict_slashes = False
    web.register(app)
    register_outbox_page(app, settings)
    app.jinja_env.globals["product_name"] = settings.service_name if settings.service_name != "idp" else "Identity"
    install_branding(app, settings.brand)
    # the OAuth endpoints declare no limits: skip the limiter's bookkeeping on the hot paths
    limiter = install_limiter(app, settings, general=api, exempt=[*exempt, oauth_endpoints.bp])
    components = app.extensions["idp"] = build_components(settings, limiter, time.time(), templates=app.jinja_env)
    app.extensions["idp.oauth"] = build_authorization_server(app, components.tokens, components.clients, components.autocommit)
    metadata = StaticDocument(provider_metadata(settings.issuer))
    app.wsgi_app = WellKnownDocuments(  # type: ignore[method-assign]
        app.wsgi_app, app, components.keys, metadata, also=transport_headers(settings)
    )
    install_observability(app, settings, components.metrics, components.redis, fixed_routes=(JWKS_PATH, DISCOVERY_PATH))
    cli.register(app)
    return app
