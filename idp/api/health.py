"""Health checks (no envelope): liveness, readiness, and a detailed report."""

from __future__ import annotations

import resource
import time
from typing import Any

from flask import Blueprint, Response, jsonify
from sqlalchemy import text

import idp
from idp.clock import iso, utcnow
from idp.extensions import db
from idp.wiring import components

bp = Blueprint("health", __name__, url_prefix="/health")


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


def _memory() -> dict[str, Any]:
    rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"status": "up", "maxRssMiB": round(rss_mib, 1)}


@bp.get("")
def health() -> tuple[Response, int]:
    checks = {"database": _database(), "redis": _redis(), "memory": _memory()}
    if checks["database"]["status"] == "down":
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
def live() -> Response:
    return jsonify(status="alive", timestamp=iso(utcnow()))


@bp.get("/ready")
def ready() -> tuple[Response, int]:
    failures = [name for name, check in (("database", _database), ("redis", _redis)) if check()["status"] == "down"]
    if failures:
        return jsonify(status="not_ready", error=f"{', '.join(failures)} unavailable", timestamp=iso(utcnow())), 503
    return jsonify(status="ready", timestamp=iso(utcnow())), 200
