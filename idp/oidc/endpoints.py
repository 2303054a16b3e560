"""OAuth 2.0 / OpenID Connect endpoints: thin Flask views over the app's authorization server."""

from __future__ import annotations

import functools
import json
import secrets
import time
from typing import Any
from urllib.parse import urlencode

from authlib.common.security import is_secure_transport
from authlib.common.urls import add_params_to_uri
from authlib.oauth2 import OAuth2Error
from authlib.oauth2.rfc6749 import AccessDeniedError, InvalidRequestError
from authlib.oauth2.rfc7009 import RevocationEndpoint
from authlib.oauth2.rfc7662 import IntrospectionEndpoint
from authlib.oidc.core.errors import (
    ConsentRequiredError,
    InteractionRequiredError,
    LoginRequiredError,
    RequestNotSupportedError,
    RequestURINotSupportedError,
)
from flask import Blueprint, Response, current_app, jsonify, redirect, render_template, request, url_for
from flask import session as flask_session
from flask_babel import gettext as _
from flask_wtf.csrf import CSRFError, validate_csrf
from wtforms import ValidationError

from idp.api.guard import bearer_token, client_info
from idp.errors import Unauthorized
from idp.extensions import db
from idp.oidc.claims import acr_for, asks_for_mfa, user_claims
from idp.oidc.consent import SCOPE_WORDS
from idp.oidc.grants import Approval
from idp.oidc.models import AuthorizationCode
from idp.oidc.server import IdentityAuthorizationServer
from idp.security.digests import digest
from idp.web.sso import AUTHORIZE_PATH, allow_form_target, clear_sso_cookie, current_browser_session, reset_browser_state
from idp.wiring import components, consents, session_service

bp = Blueprint("oauth", __name__, url_prefix="/oauth")

# Flask session: id of an authorization request waiting for a sign-in -> [when it arrived, its fingerprint]
PENDING = "authz"
MAX_PENDING = 5
MAX_NONCE: int = AuthorizationCode.__table__.c.nonce.type.length  # what an authorization code keeps of it
INTERNAL_PARAMS = {"authz", "csrf_token", "decision", "confirm"}


def _server() -> IdentityAuthorizationServer:
    return current_app.extensions["idp.oauth"]


def _csrf_ok() -> bool:
    try:
        validate_csrf(request.form.get("csrf_token"))
    except (ValidationError, CSRFError):
        return False
    return True


def _params() -> dict[str, str]:
    """The authorization request as single values (query string or form body)."""
    return {k: v for k, v in request.values.items() if k not in ("csrf_token", "decision", "confirm")}


def _error_page(error: OAuth2Error, status: int = 400) -> tuple[str, int]:
    """An error that must not be redirected (unknown client, unregistered redirect URI)."""
    return (
        render_template(
            "oauth_error.html",
            title=_("This sign-in link does not work"),
            description=error.description or error.error,
            error_code=error.error,
        ),
        status,
    )


def _fingerprint(params: dict[str, str]) -> str:
    """What the request asks, apart from our own parameters: an id is good only for its request."""
    return digest(json.dumps(sorted((k, v) for k, v in params.items() if k not in INTERNAL_PARAMS)))[:32]


def _pending() -> dict[str, list[Any]]:
    return {k: v for k, v in flask_session.get(PENDING, {}).items() if isinstance(v, list) and len(v) == 2}


def _arrived(params: dict[str, str]) -> float | None:
    """When this very request first arrived, if it is waiting here for a sign-in. An id of another
    request (an abandoned one, added to a new `prompt=login` request) is not this one's: a sign-in
    made after that one arrived would otherwise pass for the new one's re-authentication."""
    entry = _pending().get(params.get("authz", ""))
    return float(entry[0]) if entry is not None and entry[1] == _fingerprint(params) else None


def _remember_pending(params: dict[str, str]) -> str:
    """Where to come back after a sign-in: the same request, marked with when it first arrived
    (so `prompt=login` and `max_age` are satisfied by that sign-in, not asked again)."""
    pending = _pending()
    fingerprint = _fingerprint(params)
    pending_id = params["authz"] if _arrived(params) is not None else secrets.token_urlsafe(8)
    pending.setdefault(pending_id, [time.time(), fingerprint])
    flask_session[PENDING] = dict(sorted(pending.items(), key=lambda item: item[1][0])[-MAX_PENDING:])
    query = {k: v for k, v in params.items() if k not in INTERNAL_PARAMS}
    return f"{AUTHORIZE_PATH}?{urlencode({**query, 'authz': pending_id})}"


def _forget_pending(params: dict[str, str]) -> None:
    pending = _pending()
    if pending.pop(params.get("authz", ""), None) is not None:
        flask_session[PENDING] = pending


def _max_age(params: dict[str, str], redirect_uri: str) -> int | None:
    raw = params.get("max_age")
    if raw in (None, ""):
        return None
    if not (raw.isascii() and raw.isdigit()):  # isdigit alone admits "²", which int() refuses
        raise InvalidRequestError("max_age must be a number of seconds", redirect_uri=redirect_uri)
    significant = raw.lstrip("0") or "0"
    # beyond 12 digits (30,000 years) every sign-in is recent enough; int() refuses 4,300 digits
    return int(significant) if len(significant) <= 12 else 10**12


@bp.route("/authorize", methods=["GET", "POST"])
def authorize() -> Any:
    server = _server()
    try:
        grant = server.get_consent_grant(end_user=None)
    except OAuth2Error as error:
        if error.redirect_uri:
            return _naming_issuer(server.handle_error_response(None, error), error.redirect_uri)
        return _error_page(error)
    params = _params()
    redirect_uri = grant.request.payload.redirect_uri
    try:
        return _naming_issuer(_decide(grant, params, redirect_uri), redirect_uri)
    except OAuth2Error as error:
        error.redirect_uri = error.redirect_uri or redirect_uri
        error.state = params.get("state")
        return _naming_issuer(server.handle_error_response(None, error), error.redirect_uri)


def _naming_issuer(response: Any, redirect_uri: str) -> Any:
    """Every answer sent back to the client's redirect URI names the issuer (RFC 9207), so a
    client talking to several providers can tell whose response it got (mix-up attacks)."""
    location = getattr(response, "headers", {}).get("Location", "")
    if getattr(response, "status_code", 0) in (302, 303) and location.startswith(redirect_uri):
        response.headers["Location"] = add_params_to_uri(location, [("iss", components().settings.issuer)])
    return response


def _decide(grant: Any, params: dict[str, str], redirect_uri: str) -> Any:
    """Sign-in, step-up, consent, then the code: what this request still needs from the user."""
    if "request" in params:
        raise RequestNotSupportedError()
    if "request_uri" in params:
        raise RequestURINotSupportedError()
    if (params.get("response_mode") or "query") != "query":  # discovery's; empty is as if left out (RFC 6749 3.1)
        # answered in the query all the same, a code the client wanted kept out of URLs and logs
        raise InvalidRequestError("response_mode: only query is supported")
    prompt = set(params.get("prompt", "").split())
    if "none" in prompt and len(prompt) > 1:
        raise InvalidRequestError("prompt=none cannot be combined with other values")
    max_age = _max_age(params, redirect_uri)
    if len(params.get("nonce", "")) > MAX_NONCE:
        raise InvalidRequestError(f"nonce must be at most {MAX_NONCE} characters")
    client = grant.request.client.row
    sso = current_browser_session()

    # 1. a sign-in recent enough, by the user the relying party expects
    arrived = _arrived(params)
    fresh = sso is not None and arrived is not None and sso.auth_time.timestamp() >= arrived
    hint = components().id_tokens.read_hint(params["id_token_hint"]) if params.get("id_token_hint") else None
    needs_login = (
        sso is None
        or (hint is not None and hint.get("sub") != sso.user.id)
        # select_account: the sign-in page is where an account is chosen (a browser keeps one)
        or (not fresh and (prompt & {"login", "select_account"} or (max_age is not None and time.time() - sso.auth_time.timestamp() > max_age)))
    )
    if needs_login:
        if "none" in prompt:
            raise LoginRequiredError()
        if fresh and hint is not None:  # signed in for this request, as someone else than the hint names
            raise LoginRequiredError("The account signed in is not the one this request is for")
        return redirect(url_for("login.login", next=_remember_pending(params), login_hint=params.get("login_hint") or None))
    assert sso is not None

    # 2. a second factor, when the client's policy or acr_values ask for one
    if (client.require_mfa or asks_for_mfa(params.get("acr_values"))) and not sso.multi_factor:
        if "none" in prompt:
            raise InteractionRequiredError("A second factor is required")
        target = "login.step_up" if sso.user.two_factor_enabled else "enrol.enrol"
        return redirect(url_for(target, next=_remember_pending(params)))

    # 3. consent, unless first-party or already given for these scopes
    scopes = grant.request.scope.split()
    decision = request.form.get("decision") if request.method == "POST" and _csrf_ok() else None
    if decision == "deny":
        _forget_pending(params)
        raise AccessDeniedError()
    if decision == "allow":
        consents().grant(sso.user.id, client.client_id, scopes, client=client_info())
    elif not client.first_party and ("consent" in prompt or not consents().covers(sso.user.id, client.client_id, scopes)):
        if "none" in prompt:
            raise ConsentRequiredError()
        allow_form_target(redirect_uri)
        return _consent_page(client, sso.user, scopes, params)

    # 4. the code
    _forget_pending(params)
    grant.request.approval = Approval(sso, acr_for(sso.amr, params.get("acr_values")), "offline_access" in scopes)
    return _server().create_authorization_response(grant=grant, grant_user=sso.user)


def _consent_page(client: Any, user: Any, scopes: list[str], params: dict[str, str]) -> str:
    return render_template(
        "consent.html",
        title=_("Allow %(name)s to use your account?", name=client.name),
        client_name=client.name,
        user=user,
        scopes=[str(SCOPE_WORDS[s]) for s in scopes if s in SCOPE_WORDS],
        hidden={k: v for k, v in params.items() if k != "csrf_token"},
    )


@bp.errorhandler(OAuth2Error)
def oauth_error(error: OAuth2Error) -> Response:
    """An OAuth error Authlib raises before its endpoint catches its own: a request over plain HTTP
    to a host other than a loopback one (InsecureTransportError, RFC 6749 §3.2) was a 500 on the
    token, introspection and revocation endpoints. Its JSON (RFC 6749 §5.2), as any other error."""
    return _server().handle_error_response(None, error)


@bp.post("/token")
def token() -> Response:
    return _server().create_token_response()


@bp.post("/introspect")
def introspect() -> Response:
    return _server().create_endpoint_response(IntrospectionEndpoint.ENDPOINT_NAME)


@bp.post("/revoke")
def revoke() -> Response:
    return _server().create_endpoint_response(RevocationEndpoint.ENDPOINT_NAME)


def _bearer_error(status: int, error: str | None, description: str) -> Response:
    challenge = 'Bearer realm="userinfo"' + (f', error="{error}", error_description="{description}"' if error else "")
    body: dict[str, str] = {"error": error or "invalid_request", "error_description": description}
    response = jsonify(body)
    response.status_code = status
    response.headers["WWW-Authenticate"] = challenge
    return response


@functools.lru_cache(maxsize=64)
def _plain_http_allowed(host: str) -> bool:
    """Whether OAuth may run over plain HTTP to this host: a loopback one (RFC 8252 §7.3), as
    Authlib decides for the token, introspection and revocation endpoints."""
    return is_secure_transport(f"http://{host}/")


@bp.route("/userinfo", methods=["GET", "POST"])
def userinfo() -> Response:
    """Claims of the token's user for its scopes; the bearer token in the header, or for POST in
    the form body (RFC 6750 §2.2). Over TLS, or plain HTTP to a loopback host, as the token
    endpoint: a relying party calling by another name over HTTP learns it at once."""
    if not (request.is_secure or _plain_http_allowed(request.host)):
        return _bearer_error(400, "invalid_request", "OAuth 2 MUST utilize https.")
    token = bearer_token() or (request.form.get("access_token") if request.method == "POST" else None)
    if not token:
        return _bearer_error(401, None, "An access token is required")
    try:
        identity = session_service().bearer_claims(token)  # one read: live session, active user, claim columns
    except Unauthorized:
        return _bearer_error(401, "invalid_token", "The access token is invalid, expired or revoked")
    scopes = identity.claims.scope.split()
    if "openid" not in scopes:
        return _bearer_error(403, "insufficient_scope", "The token was not issued with the openid scope")
    body = json.dumps(user_claims(db.session, identity.user, scopes), separators=(",", ":"))
    return Response(body, mimetype="application/json", headers={"Cache-Control": "no-store"})


@bp.route("/logout", methods=["GET", "POST"])
def logout() -> Any:
    """RP-initiated logout: with a valid `id_token_hint` at once, otherwise after the user confirms.
    Back to `post_logout_redirect_uri` (with `state`) only when it is registered for the client."""
    server = _server()
    try:
        end_request = server.validate_endpoint_request("end_session")
    except OAuth2Error as error:
        return _error_page(error)
    sso = current_browser_session()
    hint = end_request.id_token_claims
    confirmed = request.method == "POST" and request.form.get("confirm") == "yes" and _csrf_ok()
    if not confirmed and (hint is None or (sso is not None and hint.get("sub") != sso.user.id)):
        client = end_request.client
        allow_form_target(end_request.redirect_uri)
        return render_template(
            "logout_confirm.html",
            title=_("Sign out?"),
            client_name=client.row.name if client is not None else None,
            user=sso.user if sso else None,
            hidden={k: v for k, v in request.values.items() if k not in ("csrf_token", "confirm")},
        )
    # The hint's `sid` is the sign-in it was issued from: ended with its relying-party sessions
    # even when this request has no cookie (a POST from the relying party's site carries no
    # SameSite=Lax cookie; the browser's sign-in may have lapsed while the app's session lives on).
    ending = {sso.id} if sso is not None else set()
    if hint is not None and isinstance(hint.get("sid"), str):
        ending.add(hint["sid"])
    for session_id in ending:
        session_service().end_browser_session(session_id, client=client_info())
    response = server.create_endpoint_response("end_session", end_request)
    if response is None:
        response = current_app.make_response(render_template("logged_out.html", title=_("You are signed out")))
    reset_browser_state()
    clear_sso_cookie(response)
    return response
