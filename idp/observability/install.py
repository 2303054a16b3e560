"""Putting metrics and request observation onto an app (called by create_app)."""

from __future__ import annotations

import logging
from collections.abc import Collection

import redis
from flask import Flask

from idp.config import Settings
from idp.observability.delivery_jobs import DeliveryJobCounts
from idp.observability.endpoint import register_metrics_endpoint
from idp.observability.metrics import AppMetrics, multiprocess_values, scrape_registry
from idp.observability.requests import ObservedRequests, remember_routes

log = logging.getLogger("idp.observability")


def install_observability(
    app: Flask, settings: Settings, metrics: AppMetrics, redis_client: redis.Redis | None, *, fixed_routes: Collection[str]
) -> None:
    """/metrics (unless METRICS_ENABLED=false) and the request layer. Call last: the layer has to be
    the outermost WSGI middleware, in front of the ones that answer before Flask (`fixed_routes`)."""
    observability = settings.observability
    remember_routes(app)
    if observability.metrics_enabled:
        # delivery counts live in Redis, where the workers write them; without Redis delivery is inline and uncounted
        extra = [DeliveryJobCounts(redis_client, settings.delivery.queue_name)] if redis_client is not None else []
        register_metrics_endpoint(app, scrape_registry(metrics, observability.multiprocess_dir, extra), token=observability.metrics_token)
        if observability.multiprocess_dir and not multiprocess_values():
            log.warning(
                "PROMETHEUS_MULTIPROC_DIR is set for the app but was not in this process's environment when it started: "
                "/metrics shows the other processes' counts, not this one's"
            )
    app.wsgi_app = ObservedRequests(  # type: ignore[method-assign]
        app.wsgi_app,
        metrics,
        trust_request_id=settings.trusted_proxies > 0,
        access_log=logging.getLogger("idp.access") if observability.access_log else None,
        fixed_routes=fixed_routes,
    )
