"""Health checks (no envelope): liveness, readiness, and a detailed report."""

from __future__ import annotations

import resource
import time
from datetime import datetime
from typing import Any, Literal

from flask import Blueprint, Response, jsonify
from pydantic import Field
from sqlalchemy import text

import idp
from idp.api.documented import documented
from idp.api.responses import Wire, omitted
from idp.clock import iso, utcnow
from idp.extensions import db
from idp.wiring import components

bp = Blueprint("health", __name__, url_prefix="/health")


class Check(Wire):
    status: Literal["up", "down"]
    responseTime: float = omitted("Milliseconds")
    error: str = omitted("The kind of failure, when down")
    mode: Literal["embedded"] = omitted("No Redis configured: in-memory rate limits, inline delivery")
    note: str = omitted()


class MemoryCheck(Wire):
    status: Literal["up"]
    maxRssMiB: float = Field(description="Peak resident memory of this process")


class Checks(Wire):
    database: Check
    redis: Check
    signingKeys: Check = Field(description="The signing keys decrypt with ENCRYPTION_KEYS")
    memory: MemoryCheck


class HealthReport(Wire):
    """Unhealthy (503) when the database is down or the signing keys unreadable; degraded (200) when Redis is down."""

    status: Literal["healthy", "degraded", "unhealthy"]
    timestamp: datetime
    service: str
    version: str
    uptime: float = Field(description="Seconds since the process started")
    checks: Checks


class Alive(Wire):
    status: Literal["alive"]
    timestamp: datetime


class Ready(Wire):
    status: Literal["ready"]
    timestamp: datetime


class NotReady(Wire):
    status: Literal["not_ready"]
    error: str
    timestamp: datetime


def _timed(check: Any) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        check()
    except Exception as exc:  # any failure of the dependency means "down"
        return {"status": "down", "error": type(exc).__name__}
    return {"status": "up", "responseTime": round((time.perf_counter() - started) * 1000, 2)}


def _database() -> dict[str, Any]:
    def ping() -> None:
        db.session.execute(text("SELECT 1"))

    try:
        return _timed(ping)
    finally:
        db.session.rollback()


def _redis() -> dict[str, Any]:
    client = components().redis
    if client is None:
        return {"status": "up", "mode": "embedded", "note": "no Redis configured: in-memory rate limits, inline delivery"}
    return _timed(client.ping)


def _signing_keys() -> dict[str, Any]:
    """The keys decrypt with ENCRYPTION_KEYS (a key dropped too soon, a typo): without them every
    sign-in and token is a 500. Read from memory; from the database at most once a minute."""
    return _timed(components().keys.snapshot)


def _memory() -> dict[str, Any]:
    rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"status": "up", "maxRssMiB": round(rss_mib, 1)}


@bp.get("")
@documented(responses={200: HealthReport, 503: HealthReport}, enveloped=False)
def health() -> tuple[Response, int]:
    checks = {"database": _database(), "redis": _redis(), "signingKeys": _signing_keys(), "memory": _memory()}
    if "down" in (checks["database"]["status"], checks["signingKeys"]["status"]):
        status, code = "unhealthy", 503
    elif checks["redis"]["status"] == "down":
        status, code = "degraded", 200
    else:
        status, code = "healthy", 200
    c = components()
    return jsonify(
        status=status,
        timestamp=iso(utcnow()),
        service=c.settings.service_name,
        version=idp.__version__,
        uptime=round(time.time() - c.started_at, 1),
        checks=checks,
    ), code


@bp.get("/live")
@documented(responses={200: Alive}, enveloped=False)
def live() -> Response:
    return jsonify(status="alive", timestamp=iso(utcnow()))


@bp.get("/ready")
@documented(responses={200: Ready, 503: NotReady}, enveloped=False)
def ready() -> tuple[Response, int]:
    """What this instance cannot answer without: the database and its signing keys. Not Redis:
    without it the API keeps answering (limits in memory, "degraded"), and a blip must not take
    every instance out of the load balancer at once."""
    failures = [name for name, check in (("database", _database), ("signing keys", _signing_keys)) if check()["status"] == "down"]
    if failures:
        return jsonify(status="not_ready", error=f"{', '.join(failures)} unavailable", timestamp=iso(utcnow())), 503
    return jsonify(status="ready", timestamp=iso(utcnow())), 200
