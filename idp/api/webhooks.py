"""`/webhooks`: the caller's own webhooks, with a user's access token or a key's webhooks scopes."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from flask import Blueprint, Response
from pydantic import Field, StrictBool

from idp.api.documented import documented
from idp.api.envelope import ok, parse
from idp.api.guard import client_info, identity, require_bearer
from idp.api.responses import Wire
from idp.api.schemas import Body, left_out
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
    url: Url = left_out()
    events: Events = left_out()
    is_active: Annotated[StrictBool, Field(alias="isActive")] = left_out()


class WebhookView(Wire):
    id: str
    url: str
    events: list[Event]
    isActive: bool
    consecutiveFailures: int = Field(description="Failed deliveries in a row; at WEBHOOK_DISABLE_AFTER the webhook is turned off")
    disabledAt: datetime | None
    lastDeliveryAt: datetime | None
    createdAt: datetime
    updatedAt: datetime


class WebhookWithSecret(WebhookView):
    secret: str = Field(description="The signing secret (whsec_...), shown only this once")


class WebhookCreated(Wire):
    webhook: WebhookWithSecret
    secret: str


class OneWebhook(Wire):
    webhook: WebhookView


class WebhookList(Wire):
    webhooks: list[WebhookView]


class EventInfo(Wire):
    name: str
    description: str


class EventList(Wire):
    events: list[EventInfo]


class TestQueued(Wire):
    deliveryId: str = Field(description="Also the `id` of the payload and the Webhook-Id header")
    event: Literal["webhook.test"]


class AttemptView(Wire):
    attempt: int
    statusCode: int | None = Field(description="None: no HTTP answer (refused, timed out, target refused)")
    success: bool
    error: str | None
    durationMs: int
    createdAt: datetime


class DeliveryView(Wire):
    id: str
    event: str
    status: Literal["pending", "delivered", "failed", "cancelled"]
    attempts: list[AttemptView]
    createdAt: datetime
    completedAt: datetime | None


class DeliveryList(Wire):
    deliveries: list[DeliveryView]


DISABLED = {409: "The webhook is disabled"}
LIMIT_REACHED = {409: "The user has WEBHOOK_MAX_PER_USER webhooks already"}


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
@documented(responses={200: EventList})
def events() -> Response:
    """Public: the events a webhook can subscribe to."""
    return ok({"events": [{"name": name, "description": text} for name, text in EVENTS.items()]})


@bp.post("")
@documented(request=CreateWebhookRequest, responses={201: WebhookCreated}, errors=LIMIT_REACHED)
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
@documented(responses={200: WebhookList})
@require_bearer(scope="webhooks:read")
def list_webhooks() -> Response:
    return ok({"webhooks": [webhook_view(w) for w in webhook_service().list(identity().user.id)]})


@bp.get("/<uuid:webhook_id>")
@documented(responses={200: OneWebhook})
@require_bearer(scope="webhooks:read")
def get(webhook_id: UUID) -> Response:
    return ok({"webhook": webhook_view(webhook_service().get(identity().user.id, str(webhook_id)))})


@bp.patch("/<uuid:webhook_id>")
@documented(request=UpdateWebhookRequest, responses={200: OneWebhook})
@require_bearer(scope="webhooks:write")
def update(webhook_id: UUID) -> Response:
    data = parse(UpdateWebhookRequest)
    changes = {name: getattr(data, name) for name in data.model_fields_set}
    webhook = webhook_service().update(identity().user.id, str(webhook_id), changes=changes, client=client_info())
    return ok({"webhook": webhook_view(webhook)}, message="Webhook updated")


@bp.delete("/<uuid:webhook_id>")
@documented(responses={200: None})
@require_bearer(scope="webhooks:write")
def delete(webhook_id: UUID) -> Response:
    webhook_service().delete(identity().user.id, str(webhook_id), client=client_info())
    return ok(message="Webhook deleted")


@bp.post("/<uuid:webhook_id>/test")
@documented(responses={200: TestQueued}, errors=DISABLED)
@require_bearer(scope="webhooks:write")
def test(webhook_id: UUID) -> Response:
    delivery = webhook_service().send_test(identity().user.id, str(webhook_id))
    return ok({"deliveryId": delivery.id, "event": delivery.event}, message="Test event queued")


@bp.get("/<uuid:webhook_id>/deliveries")
@documented(responses={200: DeliveryList})
@require_bearer(scope="webhooks:read")
def deliveries(webhook_id: UUID) -> Response:
    """The latest deliveries with every attempt: status code, attempt number, error and timing."""
    records = webhook_service().deliveries(identity().user.id, str(webhook_id))
    return ok({"deliveries": [delivery_view(r) for r in records]})
