"""`/api-keys`: the caller's own API keys. Managed with a user's access token only, never with a key."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from flask import Blueprint, Response
from pydantic import AfterValidator, Field

from idp.api.documented import documented
from idp.api.envelope import ok, parse
from idp.api.guard import client_info, require_bearer, token_identity
from idp.api.responses import Wire
from idp.api.schemas import WHOLE_FLOATS_AS_INTS, Body, Timestamp, left_out
from idp.apikeys.models import ApiKey
from idp.clock import iso
from idp.wiring import api_key_service

bp = Blueprint("api_keys", __name__, url_prefix="/api-keys")

Scope = Literal["*", "2fa:read", "2fa:write", "user:read", "webhooks:read", "webhooks:write", "admin"]
Name = Annotated[str, Field(min_length=1, max_length=100, pattern=r"\S")]
Scopes = Annotated[list[Scope], Field(min_length=1, max_length=7)]
HourlyLimit = Annotated[Annotated[int, Field(strict=True, ge=1, le=1_000_000), WHOLE_FLOATS_AS_INTS] | None, Field(alias="rateLimit")]
LAST_YEAR = 9998  # a stored expiry a year short of datetime's last: no zone's reading of it overflows


def _storable(value: datetime | None) -> datetime | None:
    if value is not None and value.year > LAST_YEAR:
        raise ValueError(f"must be before {LAST_YEAR + 1}-01-01T00:00:00Z")
    return value


Expiry = Annotated[
    Timestamp | None, AfterValidator(_storable), Field(alias="expiresAt", description="In the future; null: never expires")
]
ADMIN_SCOPE_REFUSED = {403: "The admin scope, asked for by a non-administrator"}


class CreateApiKeyRequest(Body):
    name: Name
    scopes: Scopes
    expires_at: Expiry = None
    rate_limit: HourlyLimit = None


class UpdateApiKeyRequest(Body):
    name: Name = left_out()
    scopes: Scopes = left_out()
    expires_at: Expiry = None  # null: never expires
    rate_limit: HourlyLimit = None  # null: the server's default
    is_active: Annotated[
        bool, Field(alias="isActive", strict=True, description="false revokes the key (as POST /api-keys/:id/revoke); a revoked key stays revoked")
    ] = left_out()


class ApiKeyView(Wire):
    id: str
    name: str
    prefix: str = Field(description="The first characters of the key, to recognise it by")
    scopes: list[Scope]
    rateLimit: int = Field(description="Requests per hour")
    expiresAt: datetime | None
    lastUsedAt: datetime | None
    revokedAt: datetime | None
    createdAt: datetime
    updatedAt: datetime


class ApiKeyWithSecret(ApiKeyView):
    key: str = Field(description="The key itself, shown only this once")


class ApiKeyShown(Wire):
    apiKey: ApiKeyWithSecret
    key: str


class OneApiKey(Wire):
    apiKey: ApiKeyView


class ApiKeyList(Wire):
    apiKeys: list[ApiKeyView]


def api_key_view(key: ApiKey) -> dict[str, Any]:
    """A key as listed: never the key itself, only its first characters."""
    return {
        "id": key.id,
        "name": key.name,
        "prefix": key.prefix,
        "scopes": list(key.scopes),
        "rateLimit": key.rate_limit,
        "expiresAt": iso(key.expires_at),
        "lastUsedAt": iso(key.last_used_at),
        "revokedAt": iso(key.revoked_at),
        "createdAt": iso(key.created_at),
        "updatedAt": iso(key.updated_at),
    }


def _shown_once(key: ApiKey, secret: str) -> dict[str, Any]:
    return {"apiKey": {**api_key_view(key), "key": secret}, "key": secret}


@bp.post("")
@documented(
    request=CreateApiKeyRequest,
    responses={201: ApiKeyShown},
    errors={**ADMIN_SCOPE_REFUSED, 409: "The user holds API_KEY_MAX_PER_USER keys that are not revoked"},
)
@require_bearer
def create() -> Response:
    data = parse(CreateApiKeyRequest)
    key, secret = api_key_service().create(
        token_identity().user.id,
        name=data.name.strip(),
        scopes=list(data.scopes),
        expires_at=data.expires_at,
        rate_limit=data.rate_limit,
        client=client_info(),
    )
    return ok(_shown_once(key, secret), status=201, message="API key created; it is shown only this once")


@bp.get("")
@documented(responses={200: ApiKeyList})
@require_bearer
def list_keys() -> Response:
    return ok({"apiKeys": [api_key_view(k) for k in api_key_service().list(token_identity().user.id)]})


@bp.get("/<key_id>")
@documented(responses={200: OneApiKey})
@require_bearer
def get(key_id: str) -> Response:
    return ok({"apiKey": api_key_view(api_key_service().get(token_identity().user.id, key_id))})


@bp.patch("/<key_id>")
@documented(request=UpdateApiKeyRequest, responses={200: OneApiKey}, errors=ADMIN_SCOPE_REFUSED)
@require_bearer
def update(key_id: str) -> Response:
    data = parse(UpdateApiKeyRequest)
    given = data.model_fields_set
    changes: dict[str, object] = {}
    if "name" in given and data.name is not None:
        changes["name"] = data.name.strip()
    if "scopes" in given and data.scopes is not None:
        changes["scopes"] = list(data.scopes)
    if "expires_at" in given:
        changes["expires_at"] = data.expires_at
    if "rate_limit" in given:
        changes["rate_limit"] = data.rate_limit
    if "is_active" in given:
        changes["is_active"] = data.is_active
    key = api_key_service().update(token_identity().user.id, key_id, changes=changes, client=client_info())
    return ok({"apiKey": api_key_view(key)}, message="API key updated")


@bp.delete("/<key_id>")
@documented(responses={200: None})
@require_bearer
def delete(key_id: str) -> Response:
    api_key_service().delete(token_identity().user.id, key_id, client=client_info())
    return ok(message="API key deleted")


@bp.post("/<key_id>/rotate")
@documented(responses={200: ApiKeyShown}, errors={409: "The key is revoked"})
@require_bearer
def rotate(key_id: str) -> Response:
    key, secret = api_key_service().rotate(token_identity().user.id, key_id, client=client_info())
    return ok(_shown_once(key, secret), message="API key rotated; the old key no longer works")


@bp.post("/<key_id>/revoke")
@documented(responses={200: OneApiKey})
@require_bearer
def revoke(key_id: str) -> Response:
    key = api_key_service().revoke(token_identity().user.id, key_id, client=client_info())
    return ok({"apiKey": api_key_view(key)}, message="API key revoked")
