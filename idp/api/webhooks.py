"""`/webhooks`: the caller's own webhooks, with a user's access token or a key's webhooks scopes."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from flask import Blueprint, Response
from pydantic import Field, field_validator

from idp.api.envelope import ok, parse
from idp.api.guard import client_info, identity, require_bearer
from idp.api.schemas import Body
from idp.clock import iso
from idp.webhooks.events import EVENTS
from idp.webhooks.models import Webhook
from idp.webhooks.service import DeliveryRecord
from idp.wiring import webhook_service

bp = Blueprint("webhooks", __name__, url_prefix="/webhooks")

Event = Literal["2fa.enabled", "2fa.disabled", "2fa.verified", "2fa.failed", "user.login", "user.logout"]
Url = Annotated[str, Field(min_length=1, max_length=2048)]
Events = Annotated[list[Event], Field(min_length=1, max_length=len(EVENTS))]


class CreateWebhookRequest(Body):
    url: Url
    events: Events


class UpdateWebhookRequest(Body):
    url: Url | None = None
    events: Events | None = None
    is_active: bool | None = Field(default=None, alias="isActive", strict=True)

    @field_validator("url", "events", "is_active", mode="before")
    @classmethod
    def not_null(cls, value: object) -> object:
        if value is None:
            raise ValueError("must not be null")
        return value


def webhook_view(webhook: Webhook) -> dict[str, Any]:
    """A webhook as listed: never its secret."""
    return {
        "id": webhook.id,
        "url": webhook.url,
        "events": list(webhook.events),
        "isActive": webhook.is_active,
        "consecutiveFailures": webhook.consecutive_failures,
        "disabledAt": iso(webhook.disabled_at),
        "lastDeliveryAt": iso(webhook.last_delivery_at),
        "createdAt": iso(webhook.created_at),
        "updatedAt": iso(webhook.updated_at),
    }


def delivery_view(record: DeliveryRecord) -> dict[str, Any]:
    delivery = record.delivery
    return {
        "id": delivery.id,
        "event": delivery.event,
        "status": delivery.status,
        "attempts": [
            {
                "attempt": a.attempt,
                "statusCode": a.status_code,
                "success": a.success,
                "error": a.error,
                "durationMs": a.duration_ms,
                "createdAt": iso(a.created_at),
            }
            for a in record.attempts
        ],
        "createdAt": iso(delivery.created_at),
        "completedAt": iso(delivery.completed_at),
    }


@bp.get("/events")
def events() -> Response:
    """Public: the events a webhook can subscribe to."""
    return ok({"events": [{"name": name, "description": text} for name, text in EVENTS.items()]})


@bp.post("")
@require_bearer(scope="webhooks:write")
def create() -> Response:
    data = parse(CreateWebhookRequest)
    webhook, secret = webhook_service().create(identity().user.id, url=data.url, events=list(data.events), client=client_info())
    return ok(
        {"webhook": {**webhook_view(webhook), "secret": secret}, "secret": secret},
        status=201,
        message="Webhook created; its secret is shown only this once",
    )


@bp.get("")
@require_bearer(scope="webhooks:read")
def list_webhooks() -> Response:
    return ok({"webhooks": [webhook_view(w) for w in webhook_service().list(identity().user.id)]})


@bp.get("/<webhook_id>")
@require_bearer(scope="webhooks:read")
def get(webhook_id: str) -> Response:
    return ok({"webhook": webhook_view(webhook_service().get(identity().user.id, webhook_id))})


@bp.patch("/<webhook_id>")
@require_bearer(scope="webhooks:write")
def update(webhook_id: str) -> Response:
    data = parse(UpdateWebhookRequest)
    changes = {name: getattr(data, name) for name in data.model_fields_set}
    webhook = webhook_service().update(identity().user.id, webhook_id, changes=changes)
    return ok({"webhook": webhook_view(webhook)}, message="Webhook updated")


@bp.delete("/<webhook_id>")
@require_bearer(scope="webhooks:write")
def delete(webhook_id: str) -> Response:
    webhook_service().delete(identity().user.id, webhook_id, client=client_info())
    return ok(message="Webhook deleted")


@bp.post("/<webhook_id>/test")
@require_bearer(scope="webhooks:write")
def test(webhook_id: str) -> Response:
    delivery = webhook_service().send_test(identity().user.id, webhook_id)
    return ok({"deliveryId": delivery.id, "event": delivery.event}, message="Test event queued")


@bp.get("/<webhook_id>/deliveries")
@require_bearer(scope="webhooks:read")
def deliveries(webhook_id: str) -> Response:
    """The latest deliveries with every attempt: status code, attempt number, error and timing."""
    records = webhook_service().deliveries(identity().user.id, webhook_id)
    return ok({"deliveries": [delivery_view(r) for r in records]})
