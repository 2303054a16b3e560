"""`/.well-known/jwks.json`: the published verification keys, served from pre-serialised bytes."""

from __future__ import annotations

from flask import Blueprint, Response, request

from idp.wiring import components

bp = Blueprint("jwks", __name__)


@bp.get("/.well-known/jwks.json")
def jwks() -> Response:
    snapshot = components().keys.snapshot()
    if request.if_none_match.contains_weak(snapshot.etag.strip('"')):
        response = Response(status=304)
    else:
        response = Response(snapshot.jwks_body, mimetype="application/jwk-set+json")
    response.headers["ETag"] = snapshot.etag
    response.headers["Cache-Control"] = "public, max-age=300"
    response.headers["Access-Control-Allow-Origin"] = "*"
    return response
