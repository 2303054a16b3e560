"""Per-app collaborators and the small factories that build services from them.

Services never read `current_app`; these factories do, and hand them what they need.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar, cast

import redis
from flask import current_app, g, has_request_context, request
from flask_limiter import Limiter
from jinja2 import Environment
from limits.strategies import MovingWindowRateLimiter, RateLimiter
from sqlalchemy import Engine, create_engine
from sqlalchemy.orm import Session as DbSession

from idp.accounts.admin import UserAdministration
from idp.accounts.login import LoginFlow
from idp.accounts.models import User
from idp.accounts.recovery import AccountTokens, Recovery
from idp.accounts.service import AccountService, AccountStatements
from idp.accounts.sessions import BrowserSession, IssuedTokens, SessionSecrets, SessionService, SessionStatements
from idp.accounts.throttle import AccountThrottle, LoginThrottle, LoginWindow, RefusedNetworks, memory_fallback
from idp.after_response import after_response
from idp.apikeys.service import ApiKeyService
from idp.audit.alerts import SecurityAlerts
from idp.audit.service import AuditLog, AuditObserver, ClientInfo
from idp.clock import utcnow
from idp.config import REDIS_CLIENT_TIMEOUTS, Settings
from idp.delivery import Delivery, DeliveryQueue, MessageRenderer, Senders
from idp.delivery.after_commit import send_after_commit
from idp.delivery.build import build_queue, build_senders
from idp.delivery.messages import WebhookJob
from idp.extensions import db
from idp.mfa.backup_codes import BackupCodes
from idp.mfa.challenge import LoginChallenges
from idp.mfa.codes import OneTimeCodes
from idp.mfa.devices import TrustedDevices
from idp.mfa.methods import TwoFactorService
from idp.observability.audit import AuditLogLines, OutcomeMetrics
from idp.observability.metrics import AppMetrics
from idp.oidc.clients import ClientCache, ClientRegistry
from idp.oidc.consent import ConsentService
from idp.oidc.id_tokens import IdTokens
from idp.ratelimits import LOGIN_WINDOW
from idp.security.digests import derived_key
from idp.security.keys import KeyRing
from idp.security.passwords import PasswordHashing
from idp.security.secretbox import SecretBox
from idp.security.tokens import AccessTokens
from idp.statements import SERVER_PREPARE, HotStatement
from idp.webhooks.courier import WebhookCourier
from idp.webhooks.models import WebhookDelivery
from idp.webhooks.service import (
    ACTIVE_WEBHOOKS_COLUMN,
    Dispatch,
    WebhookEvents,
    WebhookService,
    active_webhooks_lookup,
    active_webhooks_of,
)


@dataclass
class Components:
    """Long-lived, per-app objects (never module-level): built once in create_app."""

    settings: Settings
    hashing: PasswordHashing
    box: SecretBox
    keys: KeyRing
    tokens: AccessTokens
    id_tokens: IdTokens
    clients: ClientCache
    redis: redis.Redis | None
    limiter: Limiter
    # The per-account throttles' strategy on the configured storage (Redis, or memory when
    # embedded), not `limiter.limiter`: that becomes Flask-Limiter's own memory store once its
    # hooks find Redis down, and stays so until they run again; the throttles fall back to
    # `throttle_fallback` themselves, and try Redis again on their next call.
    throttle_strategy: RateLimiter
    throttle_fallback: RateLimiter
    refused_networks: RefusedNetworks  # client networks seen past their failed sign-ins (`LoginThrottle`)
    started_at: float
    renderer: MessageRenderer
    senders: Senders
    delivery_queue: DeliveryQueue
    # Single-statement writes on hot paths (refresh rotation): an engine whose connections are
    # always in autocommit mode, so one UPDATE is one round trip, without BEGIN and COMMIT and
    # without switching a pooled connection's isolation level back and forth (two more trips).
    autocommit: Engine
    session_statements: SessionStatements  # the hot paths' statements, compiled for `autocommit`
    session_secrets: SessionSecrets  # refresh tokens' and browser-session cookies' secrets, tagged
    account_statements: AccountStatements  # a sign-in's account lookup, on `autocommit` too
    webhook_lookup: HotStatement  # the active webhooks of an event's user (`WebhookEvents`), too
    # Told of every audit event as it is recorded (metrics, logs); per-request observers such as
    # the webhook dispatcher are added by `audit_log()`.
    audit_observers: tuple[AuditObserver, ...] = ()
    metrics: AppMetrics = dataclasses.field(default_factory=AppMetrics)


def build_components(settings: Settings, limiter: Limiter, started_at: float, *, templates: Environment) -> Components:
    from datetime import timedelta

    box = SecretBox(settings.encryption_keys)
    # Retired keys stay published for the longest lifetime of a token they may have signed.
    keys = KeyRing(lambda: db.session(), box, publish_for=timedelta(seconds=settings.access_token_ttl + 3600), clock=utcnow)
    tokens = AccessTokens(keys, issuer=settings.issuer, ttl=settings.access_token_ttl, alg=settings.access_token_alg, clock=utcnow)
    client = redis.Redis.from_url(settings.redis_url, **REDIS_CLIENT_TIMEOUTS) if settings.redis_url else None
    # the courier runs after a commit (inline) or in the worker: with a database session of its own
    courier = WebhookCourier(lambda: DbSession(db.engine, expire_on_commit=False), box, settings.webhooks, utcnow)
    senders = dataclasses.replace(build_senders(settings.delivery), webhooks=courier)
    metrics = AppMetrics()
    autocommit = create_engine(
        settings.database.url,
        isolation_level="AUTOCOMMIT",
        execution_options={SERVER_PREPARE: settings.database.prepared_statements},
        **settings.database.engine_options,
    )
    return Components(
        settings,
        PasswordHashing(settings.argon2),
        box,
        keys,
        tokens,
        IdTokens(keys, issuer=settings.issuer, ttl=settings.access_token_ttl, clock=utcnow),
        ClientCache(settings.client_cache_seconds),
        client,
        limiter,
        MovingWindowRateLimiter(limiter.storage),
        memory_fallback(),
        RefusedNetworks(),
        started_at,
        renderer=MessageRenderer(templates),
        senders=senders,
        delivery_queue=build_queue(settings.delivery, senders, client, webhook_retry_intervals=settings.webhooks.retry_intervals),
        autocommit=autocommit,
        session_statements=SessionStatements(autocommit, rotation_waits_for_flush=settings.refresh_synchronous_commit),
        session_secrets=SessionSecrets(settings.secret_key),
        # a sign-in reads the user's webhooks with its row: its login_success event needs no lookup
        account_statements=AccountStatements(autocommit, also=[active_webhooks_of(User.id)]),
        webhook_lookup=active_webhooks_lookup(autocommit),
        audit_observers=(OutcomeMetrics(metrics), AuditLogLines()),
        metrics=metrics,
    )


T = TypeVar("T")
_BUILT = "idp.services"  # in the request's WSGI environment: the services built for that request


def per_request(factory: Callable[[], T]) -> Callable[[], T]:
    """Build the service once per request: a login's collaborators then share one audit log (one
    webhook lookup) instead of each building their own. Outside a request (the CLI, the delivery
    worker, whose app context lives as long as it runs) every call builds a new one."""

    @functools.wraps(factory)
    def built() -> T:
        if not has_request_context():
            return factory()
        services = request.environ.setdefault(_BUILT, {})
        if factory not in services:
            services[factory] = factory()
        return cast(T, services[factory])

    return built


def components() -> Components:
    return current_app.extensions["idp"]


def metrics() -> AppMetrics:
    """This app's metrics, for the few outcomes that have no audit event (tokens of the API and of refresh grants)."""
    return components().metrics


@per_request
def delivery() -> Delivery:
    """Email and SMS for this request's session: rendered now, sent after its commit."""
    c = components()
    return Delivery(db.session(), c.renderer, c.senders, c.delivery_queue)


@per_request
def audit_log() -> AuditLog:
    """The audit log of this request's session; the events it records also fire webhooks.

    It and the session service take the scoped session itself, not `db.session()`: the request's
    ORM session is then made only when one is used, not on the hot paths that never use it
    (refresh, userinfo)."""
    session = cast(DbSession, db.session)  # a scoped_session: the same interface, resolved on use
    c = components()
    return AuditLog(session, utcnow, observers=(*c.audit_observers, webhook_events()))


@per_request
def webhook_events() -> WebhookEvents:
    session = cast(DbSession, db.session)
    return WebhookEvents(session, webhook_dispatch(), utcnow, components().webhook_lookup)


@per_request
def session_service() -> SessionService:
    c = components()
    return SessionService(
        cast(DbSession, db.session), c.tokens, audit_log(), refresh_ttl=c.settings.refresh_token_ttl, clock=utcnow, statements=c.session_statements,
        session_secrets=c.session_secrets,
    )


def account_throttle(limit_name: str, counter: str | None = None) -> AccountThrottle:
    """A per-account counter for one of the limits in `Settings.rate_limits` (its own, or another
    `counter` of the same amount and window)."""
    c = components()
    limit = getattr(c.settings.rate_limits, limit_name)
    namespace = f"{c.settings.rate_limit_key_prefix}:{counter or limit_name}"
    return AccountThrottle(c.throttle_strategy, limit, namespace, c.throttle_fallback)


def shown_once() -> AccountThrottle:
    """Marks of what may be shown only once (a page of new backup codes), kept 15 minutes in the
    rate-limit storage: the first `acquire` of a mark succeeds, any later one fails."""
    c = components()
    return AccountThrottle(c.throttle_strategy, "1 per 15 minutes", f"{c.settings.rate_limit_key_prefix}:shown_once", c.throttle_fallback)


def _tell_login_window(window: LoginWindow) -> None:
    setattr(g, LOGIN_WINDOW, window)


def login_throttle() -> LoginThrottle:
    """Failed sign-ins per client network and failed attempts per account (`Settings.rate_limits.login`,
    `login_account`), the network's window going to this request's RateLimit headers."""
    c = components()
    return LoginThrottle(account_throttle("login"), account_throttle("login_account"), c.refused_networks, on_window=_tell_login_window)


@per_request
def account_service() -> AccountService:
    c = components()
    return AccountService(
        db.session(), c.hashing, audit_log(), session_service(), login_throttle(), security_alerts(), utcnow,
        statements=c.account_statements,
        also_read=lambda user_id, row: webhook_events().know(user_id, getattr(row, ACTIVE_WEBHOOKS_COLUMN)),
    )


# -- second factor and recovery --------------------------------------------------------------


@per_request
def security_alerts() -> SecurityAlerts:
    return SecurityAlerts(audit_log(), delivery(), utcnow)


@per_request
def one_time_codes() -> OneTimeCodes:
    """SMS and email codes, keyed by a key derived from SECRET_KEY."""
    key = derived_key(components().settings.secret_key, "one-time-codes")
    return OneTimeCodes(db.session(), key, utcnow)


@per_request
def two_factor_service() -> TwoFactorService:
    c = components()
    session = db.session()
    return TwoFactorService(
        session,
        c.box,
        one_time_codes(),
        BackupCodes(session, c.hashing, utcnow),
        TrustedDevices(session, utcnow),
        security_alerts(),
        delivery(),
        account_throttle("code_send"),
        issuer_name=c.settings.totp_issuer,
        clock=utcnow,
    )


@per_request
def trusted_devices() -> TrustedDevices:
    return TrustedDevices(db.session(), utcnow)


@per_request
def backup_codes() -> BackupCodes:
    return BackupCodes(db.session(), components().hashing, utcnow)


@per_request
def login_challenges() -> LoginChallenges:
    c = components()
    session = db.session()
    return LoginChallenges(
        session,
        c.box,
        two_factor_service(),
        one_time_codes(),
        backup_codes(),
        audit_log(),
        account_throttle("two_factor"),
        account_throttle("login_code"),
        utcnow,
    )


@per_request
def login_flow() -> LoginFlow[IssuedTokens]:
    """The API's login: a signed-in user gets tokens of the API's built-in client."""
    sessions = session_service()

    def open_api_session(user: User, client: ClientInfo, amr: list[str], method: str) -> IssuedTokens:
        return sessions.start(user, client=client, amr=amr, signed_in_by=method)

    return LoginFlow(account_service(), login_challenges, trusted_devices, security_alerts, open_api_session)


@per_request
def browser_login_flow() -> LoginFlow[tuple[BrowserSession, str]]:
    """The hosted pages' login: a signed-in user gets a browser session (SSO) and its cookie."""
    sessions = session_service()
    ttl = components().settings.browser_session_ttl

    def open_browser_session(user: User, client: ClientInfo, amr: list[str], method: str) -> tuple[BrowserSession, str]:
        return sessions.start_browser(user, client=client, amr=amr, ttl=ttl, signed_in_by=method)

    return LoginFlow(account_service(), login_challenges, trusted_devices, security_alerts, open_browser_session)


@per_request
def recovery() -> Recovery:
    c = components()
    session = db.session()
    return Recovery(
        session,
        AccountTokens(session, utcnow),
        c.hashing,
        session_service(),
        trusted_devices(),
        api_key_service(),
        webhook_service(),
        audit_log(),
        security_alerts(),
        delivery(),
        account_throttle("code_send"),
        account_throttle("code_send", counter="password_reset"),
        frontend_url=c.settings.frontend_url,
        clock=utcnow,
    )


def request_password_reset(email: str, client: ClientInfo) -> None:
    """Ask for a reset link for `email`, for the page and the API alike. Whether an account uses
    the address (the lookup, the link, the email: a few milliseconds more for a known one) is
    settled after the answer has been sent, so the answer is the same in time as in content."""
    after_response(lambda: recovery().request_reset(email, client=client))


# -- OpenID Connect --------------------------------------------------------------------------


def consents() -> ConsentService:
    return ConsentService(db.session(), audit_log(), session_service(), utcnow)


# -- integrations ----------------------------------------------------------------------------


def api_key_service() -> ApiKeyService:
    c = components()
    namespace = f"{c.settings.rate_limit_key_prefix}:api_key"

    def hourly(requests: int) -> AccountThrottle:
        return AccountThrottle(c.throttle_strategy, f"{requests} per hour", namespace, c.throttle_fallback)

    return ApiKeyService(
        db.session(), audit_log(), hourly, utcnow,
        default_rate_limit=c.settings.api_key_rate_limit, max_per_user=c.settings.api_key_max_per_user,
    )


def webhook_dispatch() -> Dispatch:
    """Sends a new webhook delivery once this request's transaction commits."""
    queue = components().delivery_queue

    def dispatch(delivery: WebhookDelivery) -> None:
        send_after_commit(db.session(), queue, WebhookJob(delivery.id), f"webhook {delivery.event}")

    return dispatch


def webhook_service() -> WebhookService:
    c = components()
    return WebhookService(db.session(), c.box, audit_log(), webhook_dispatch(), c.settings.webhooks, utcnow)


# -- administration --------------------------------------------------------------------------


def user_administration() -> UserAdministration:
    return UserAdministration(
        db.session(), session_service(), two_factor_service(), trusted_devices(), api_key_service(), webhook_service(),
        audit_log(), utcnow,
    )


def client_registry() -> ClientRegistry:
    return ClientRegistry(db.session(), audit_log(), session_service(), utcnow, components().clients)
