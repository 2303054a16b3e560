"""Per-app collaborators and the small factories that build services from them.

Services never read `current_app`; these factories do, and hand them what they need.
"""

from __future__ import annotations

from dataclasses import dataclass

import redis
from flask import current_app
from flask_limiter import Limiter
from limits.strategies import RateLimiter

from idp.accounts.service import AccountService
from idp.accounts.sessions import SessionService
from idp.accounts.throttle import LoginThrottle, memory_fallback
from idp.audit.service import AuditLog
from idp.clock import utcnow
from idp.config import Settings
from idp.extensions import db
from idp.security.keys import KeyRing
from idp.security.passwords import PasswordHashing
from idp.security.secretbox import SecretBox
from idp.security.tokens import AccessTokens


@dataclass
class Components:
    """Long-lived, per-app objects (never module-level): built once in create_app."""

    settings: Settings
    hashing: PasswordHashing
    box: SecretBox
    keys: KeyRing
    tokens: AccessTokens
    redis: redis.Redis | None
    limiter: Limiter
    throttle_fallback: RateLimiter
    started_at: float


def build_components(settings: Settings, limiter: Limiter, started_at: float) -> Components:
    from datetime import timedelta

    box = SecretBox(settings.encryption_keys)
    # Retired keys stay published for the longest lifetime of a token they may have signed.
    keys = KeyRing(lambda: db.session(), box, publish_for=timedelta(seconds=settings.access_token_ttl + 3600), clock=utcnow)
    tokens = AccessTokens(keys, issuer=settings.issuer, ttl=settings.access_token_ttl, alg=settings.access_token_alg, clock=utcnow)
    client = redis.Redis.from_url(settings.redis_url, socket_timeout=2, socket_connect_timeout=2) if settings.redis_url else None
    return Components(settings, PasswordHashing(settings.argon2), box, keys, tokens, client, limiter, memory_fallback(), started_at)


def components() -> Components:
    return current_app.extensions["idp"]


def audit_log() -> AuditLog:
    return AuditLog(db.session(), utcnow)


def session_service() -> SessionService:
    c = components()
    return SessionService(db.session(), c.tokens, audit_log(), refresh_ttl=c.settings.refresh_token_ttl, clock=utcnow)


def account_service() -> AccountService:
    c = components()
    throttle = LoginThrottle(
        c.limiter.limiter, c.settings.rate_limits.login_account, c.settings.rate_limit_key_prefix, c.throttle_fallback
    )
    return AccountService(db.session(), c.hashing, audit_log(), session_service(), throttle, utcnow)
