"""`/admin`: relying parties, users and the audit log across users, for administrators only
(an admin's access token, or an API key with the `admin` scope)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from flask import Blueprint, Response, request
from pydantic import Field, StrictBool

from idp.api.documented import documented
from idp.api.envelope import ok, parse
from idp.api.guard import client_info, identity, require_admin
from idp.api.responses import AuditEntry, Pagination, SessionsRevoked, UserProfile, Wire
from idp.api.schemas import Body, PageQuery, Timestamp, left_out
from idp.api.users import audit_view, pagination_view, user_as_admin_sees
from idp.audit.service import EVENTS, AuditSearch
from idp.oidc.clients import ClientSpec, describe_client
from idp.wiring import audit_log, client_registry, user_administration

bp = Blueprint("admin", __name__, url_prefix="/admin")

Uri = Annotated[str, Field(min_length=1, max_length=2048)]
Uris = Annotated[list[Uri], Field(max_length=20)]
Grant = Literal["authorization_code", "refresh_token", "client_credentials"]
Scope = Literal["openid", "profile", "email", "phone", "offline_access"]
IdTokenAlg = Literal["RS256", "ES256"]  # idp.oidc.id_tokens.ID_TOKEN_ALGS
ClientName = Annotated[str, Field(min_length=1, max_length=100, pattern=r"\S")]


class ClientFields(Body):
    """Each may be left out (the default, or for an update, unchanged), never null."""

    redirect_uris: Annotated[Uris, Field(alias="redirectUris")] = left_out()
    post_logout_redirect_uris: Annotated[Uris, Field(alias="postLogoutRedirectUris")] = left_out()
    grant_types: Annotated[list[Grant], Field(alias="grantTypes", min_length=1, max_length=3)] = left_out()
    scopes: Annotated[list[Scope], Field(min_length=1, max_length=5)] = left_out()
    first_party: Annotated[StrictBool, Field(alias="firstParty")] = left_out()
    require_mfa: Annotated[StrictBool, Field(alias="requireMfa")] = left_out()
    token_endpoint_auth_method: Annotated[
        Literal["client_secret_basic", "client_secret_post"], Field(alias="tokenEndpointAuthMethod")
    ] = left_out()
    id_token_signed_response_alg: Annotated[IdTokenAlg, Field(alias="idTokenSignedResponseAlg")] = left_out()

    def changes(self) -> dict[str, Any]:
        """The ClientSpec fields given in the request."""
        names = {"token_endpoint_auth_method": "auth_method", "id_token_signed_response_alg": "id_token_alg"}
        given = self.model_dump(include=set(ClientFields.model_fields), exclude_unset=True)
        return {names.get(name, name): value for name, value in given.items()}


class CreateClientRequest(ClientFields):
    name: ClientName
    public: Annotated[bool, Field(strict=True)] = False


class UpdateClientRequest(ClientFields):
    name: ClientName = left_out()


AuditAction = StrEnum("AuditAction", {name: name for name in sorted(EVENTS)})  # type: ignore[misc]


class UserQuery(PageQuery):
    q: Annotated[str | None, Field(max_length=254)] = None
    active: Literal["true", "false"] | None = None


class AuditQuery(PageQuery):
    user_id: Annotated[str | None, Field(alias="userId", max_length=36)] = None
    action: AuditAction | None = None
    success: Literal["true", "false"] | None = None
    ip_address: Annotated[str | None, Field(alias="ipAddress", max_length=45)] = None
    since: Timestamp | None = None
    until: Timestamp | None = None


class ClientView(Wire):
    clientId: str
    name: str
    public: bool
    tokenEndpointAuthMethod: Literal["client_secret_basic", "client_secret_post", "none"]
    redirectUris: list[str]
    postLogoutRedirectUris: list[str]
    grantTypes: list[Grant]
    scopes: list[Scope]
    firstParty: bool
    requireMfa: bool
    idTokenSignedResponseAlg: IdTokenAlg
    createdAt: datetime


class ClientWithSecret(ClientView):
    clientSecret: str | None = Field(description="Shown only this once; null for a public client")


class ClientCreated(Wire):
    client: ClientWithSecret


class OneClient(Wire):
    client: ClientView


class ClientList(Wire):
    clients: list[ClientView]


class RotatedSecret(Wire):
    clientId: str
    clientSecret: str = Field(description="Shown only this once; the old secret no longer works")


class AdminUser(UserProfile):
    isAdmin: bool


class OneUser(Wire):
    user: AdminUser


class UserPage(Wire):
    users: list[AdminUser]
    pagination: Pagination


class AdminAuditEntry(AuditEntry):
    userId: str | None


class AdminAuditPage(Wire):
    logs: list[AdminAuditEntry]
    pagination: Pagination


SELF_DISABLE = {409: "An administrator cannot disable their own account"}
SELF_RESET = {409: "An administrator resets their own second factors from their account's security settings"}
PUBLIC_CLIENT = {409: "A public client has no secret"}


def _flag(value: str | None) -> bool | None:
    return None if value is None else value == "true"


# -- relying parties ---------------------------------------------------------------------------


@bp.get("/clients")
@documented(responses={200: ClientList})
@require_admin
def list_clients() -> Response:
    return ok({"clients": [describe_client(c) for c in client_registry().all()]})


@bp.post("/clients")
@documented(request=CreateClientRequest, responses={201: ClientCreated})
@require_admin
def create_client() -> Response:
    data = parse(CreateClientRequest)
    spec = ClientSpec(name=data.name, public=data.public, **data.changes())
    client, secret = client_registry().create(spec, by=identity().user.id, client=client_info())
    return ok({"client": {**describe_client(client), "clientSecret": secret}}, status=201, message="Client created")


@bp.get("/clients/<client_id>")
@documented(responses={200: OneClient})
@require_admin
def get_client(client_id: str) -> Response:
    return ok({"client": describe_client(client_registry().get(client_id))})


@bp.patch("/clients/<client_id>")
@documented(request=UpdateClientRequest, responses={200: OneClient})
@require_admin
def update_client(client_id: str) -> Response:
    data = parse(UpdateClientRequest)
    changes = data.changes()
    if data.name is not None:
        changes["name"] = data.name
    client = client_registry().update(client_id, changes, by=identity().user.id, client=client_info())
    return ok({"client": describe_client(client)}, message="Client updated")


@bp.delete("/clients/<client_id>")
@documented(responses={200: None})
@require_admin
def delete_client(client_id: str) -> Response:
    client_registry().delete(client_id, by=identity().user.id, client=client_info())
    return ok(message="Client deleted")


@bp.post("/clients/<client_id>/rotate-secret")
@documented(responses={200: RotatedSecret}, errors=PUBLIC_CLIENT)
@require_admin
def rotate_client_secret(client_id: str) -> Response:
    secret = client_registry().rotate_secret(client_id, by=identity().user.id, client=client_info())
    return ok({"clientId": client_id, "clientSecret": secret}, message="Secret rotated; the old one no longer works")


# -- users -------------------------------------------------------------------------------------


@bp.get("/users")
@documented(query=UserQuery, responses={200: UserPage})
@require_admin
def search_users() -> Response:
    query = parse(UserQuery, dict(request.args))
    page = user_administration().search(query.q, active=_flag(query.active), page=query.page, limit=query.limit)
    return ok({"users": [user_as_admin_sees(u) for u in page.items], "pagination": pagination_view(page)})


@bp.get("/users/<user_id>")
@documented(responses={200: OneUser})
@require_admin
def get_user(user_id: str) -> Response:
    return ok({"user": user_as_admin_sees(user_administration().get(user_id))})


@bp.post("/users/<user_id>/disable")
@documented(responses={200: OneUser}, errors=SELF_DISABLE)
@require_admin
def disable_user(user_id: str) -> Response:
    user = user_administration().disable(user_id, by=identity().user.id, client=client_info())
    return ok({"user": user_as_admin_sees(user)}, message="User disabled; their sessions and keys no longer work")


@bp.post("/users/<user_id>/enable")
@documented(responses={200: OneUser})
@require_admin
def enable_user(user_id: str) -> Response:
    user = user_administration().enable(user_id, by=identity().user.id, client=client_info())
    return ok({"user": user_as_admin_sees(user)}, message="User enabled")


@bp.post("/users/<user_id>/reset-2fa")
@documented(responses={200: OneUser}, errors=SELF_RESET)
@require_admin
def reset_two_factor(user_id: str) -> Response:
    user = user_administration().reset_two_factor(user_id, by=identity().user.id, client=client_info())
    return ok({"user": user_as_admin_sees(user)}, message="Two-factor authentication reset; the user's sessions were ended")


@bp.post("/users/<user_id>/revoke-sessions")
@documented(responses={200: SessionsRevoked})
@require_admin
def revoke_user_sessions(user_id: str) -> Response:
    count = user_administration().revoke_sessions(user_id, by=identity().user.id, client=client_info())
    return ok({"revoked": count}, message="Sessions revoked")


# -- audit log -----------------------------------------------------------------------------------


@bp.get("/audit-logs")
@documented(query=AuditQuery, responses={200: AdminAuditPage})
@require_admin
def search_audit() -> Response:
    query = parse(AuditQuery, dict(request.args))
    criteria = AuditSearch(
        user_id=query.user_id,
        event=query.action.value if query.action else None,
        success=_flag(query.success),
        ip_address=query.ip_address,
        since=query.since,
        until=query.until,
    )
    page = audit_log().search(criteria, page=query.page, limit=query.limit)
    return ok({"logs": [{**audit_view(e), "userId": e.user_id} for e in page.items], "pagination": pagination_view(page)})
