"""OAuth 2.0 endpoints: thin Flask views over the app's authorization server."""

from __future__ import annotations

from authlib.oauth2.rfc7009 import RevocationEndpoint
from authlib.oauth2.rfc7662 import IntrospectionEndpoint
from flask import Blueprint, Response, current_app

from idp.oidc.server import IdentityAuthorizationServer

bp = Blueprint("oauth", __name__, url_prefix="/oauth")


def _server() -> IdentityAuthorizationServer:
    return current_app.extensions["idp.oauth"]


@bp.post("/token")
def token() -> Response:
    return _server().create_token_response()


@bp.post("/introspect")
def introspect() -> Response:
    return _server().create_endpoint_response(IntrospectionEndpoint.ENDPOINT_NAME)


@bp.post("/revoke")
def revoke() -> Response:
    return _server().create_endpoint_response(RevocationEndpoint.ENDPOINT_NAME)
