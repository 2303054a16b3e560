"""Domain errors raised by services, mapped to HTTP once: a JSON envelope under the API, a page elsewhere."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from flask import Flask, Response, g, jsonify, render_template, request
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf.csrf import CSRFError
from sqlalchemy.exc import DBAPIError, OperationalError
from werkzeug.exceptions import HTTPException

log = logging.getLogger(__name__)


class DomainError(Exception):
    """An expected failure with a stable machine-readable code."""

    status = 400
    code = "bad_request"
    message = "Bad request"

    def __init__(self, message: str | None = None, *, errors: Sequence[str] | None = None) -> None:
        super().__init__(message or self.message)
        self.message = message or self.message
        self.errors = list(errors) if errors else None


class ValidationFailed(DomainError):
    code = "validation_failed"
    message = "Validation failed"


class MalformedJson(DomainError):
    code = "invalid_json"
    message = "Malformed JSON in request body"


class InvalidCredentials(DomainError):
    status = 401
    code = "invalid_credentials"
    message = "Invalid credentials"


class WrongCurrentPassword(DomainError):
    code = "invalid_credentials"
    message = "Current password is incorrect"


class AccountDisabled(DomainError):
    status = 401
    code = "account_disabled"
    message = "Account is disabled"


class Unauthorized(DomainError):
    status = 401
    code = "unauthorized"
    message = "Invalid or expired token"


class InvalidRefreshToken(Unauthorized):
    code = "invalid_refresh_token"
    message = "Invalid or expired refresh token"


class Forbidden(DomainError):
    status = 403
    code = "forbidden"
    message = "Forbidden"


class NotFound(DomainError):
    status = 404
    code = "not_found"
    message = "Not found"


class Conflict(DomainError):
    status = 409
    code = "conflict"
    message = "Conflict"


class InvalidCode(DomainError):
    code = "invalid_code"
    message = "Invalid verification code"


class SetupReplaced(InvalidCode):
    """The key confirmed is not the pending one: the setup was started again elsewhere."""

    message = "This secret does not match the one from setup"


class InvalidTempToken(DomainError):
    status = 401
    code = "invalid_temp_token"
    message = "Invalid or expired temporary token"


class InvalidToken(DomainError):
    code = "invalid_token"
    message = "Invalid or expired token"


class EmailNotVerified(DomainError):
    status = 403
    code = "email_not_verified"
    message = "Verify your email address before setting up two-factor authentication"


class ReauthenticationRequired(DomainError):
    status = 403
    code = "reauthentication_required"
    message = "Sign in again to confirm this change"


class DatabaseUnavailable(DomainError):
    status = 503
    code = "database_unavailable"
    message = "The database is unavailable, please try again"


class DeliveryUnavailable(DomainError):
    status = 503
    code = "delivery_unavailable"
    message = "Message delivery is not configured on this server"


class RateLimited(DomainError):
    status = 429
    code = "rate_limited"
    message = "Too many requests, please try again later"

    def __init__(self, message: str | None = None, *, retry_after: int = 60, limit: int | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.limit = limit  # how many the refused limit allows in its window, when one is known


HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
    429: "rate_limited",
}
HTTP_MESSAGES = {
    404: "Route not found",
    405: "Method not allowed",
    413: "Request body too large",
    429: "Too many requests, please try again later",
}
# the same words on the hosted pages, in the page's language (the JSON API keeps them in English)
PAGE_MESSAGES = {  # a page's words (the API's are HTTP_MESSAGES)
    404: _l("We can't find this page"),
    405: _l("This page can't be opened this way"),
    413: _l("What you sent is too large"),
    429: _l("Too many requests. Wait a few minutes and try again."),
    503: _l("This service is unavailable for a moment. Try again in a few seconds."),
}
# a service's failure that reaches a page unhandled, in the page's words (its message is the API's)
PAGE_MESSAGES_BY_CODE = {"not_found": PAGE_MESSAGES[404], "rate_limited": PAGE_MESSAGES[429], "database_unavailable": PAGE_MESSAGES[503]}


def answer_refused(exc: RateLimited) -> None:
    """This request is answered with `exc`'s refusal, whoever renders it (the error handler, a page
    showing it in its form): idp.http gives the answer that limit's Retry-After and RateLimit
    headers, not those of another limit the request passed (the general one)."""
    g.retry_after, g.refused_limit = exc.retry_after, exc


def failure(status: int, code: str, message: str, errors: Sequence[str] | None = None) -> Response:
    body: dict[str, object] = {"success": False, "message": message, "code": code}
    if errors:
        body["errors"] = list(errors)
    response = jsonify(body)
    response.status_code = status
    return response


# The OAuth endpoints a relying party's program calls, which reads a JSON error (RFC 6749 §5.2,
# RFC 7662 §2.3, RFC 7009 §2.2.1, RFC 6750 §3); the others (authorization, logout) answer with a page
OAUTH_JSON_ENDPOINTS = frozenset({"/oauth/token", "/oauth/introspect", "/oauth/revoke", "/oauth/userinfo"})
# RFC 6749 §4.1.2.1's codes for the server's own failures; anything else is the request's fault
OAUTH_SERVER_ERRORS = {500: "server_error", 503: "temporarily_unavailable"}


def oauth_failure(status: int, description: str) -> Response:
    response = jsonify(error=OAUTH_SERVER_ERRORS.get(status, "invalid_request"), error_description=description)
    response.status_code = status
    return response


def register_error_handlers(app: Flask, api_prefix: str) -> None:
    def wants_json() -> bool:
        return request.path == api_prefix or request.path.startswith(api_prefix + "/")

    @app.errorhandler(DomainError)
    def domain_error(exc: DomainError):
        if wants_json():
            response = failure(exc.status, exc.code, exc.message, exc.errors)
        elif request.path in OAUTH_JSON_ENDPOINTS:
            response = oauth_failure(exc.status, exc.message)
        else:
            message = str(PAGE_MESSAGES_BY_CODE.get(exc.code, exc.message))
            response = app.make_response((render_template("error.html", status=exc.status, message=message), exc.status))
        if isinstance(exc, RateLimited):
            answer_refused(exc)
            response.headers["Retry-After"] = str(exc.retry_after)
        return response

    @app.errorhandler(CSRFError)
    def csrf_error(exc: CSRFError):
        message = _("This form has expired. Go back, reload the page and try again.")
        return render_template("error.html", status=400, message=message), 400

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        status = exc.code or 500
        message = HTTP_MESSAGES.get(status, exc.name)
        if wants_json():
            response = failure(status, HTTP_CODES.get(status, "error"), message)
        elif request.path in OAUTH_JSON_ENDPOINTS:
            response = oauth_failure(status, message)
        else:
            page = render_template("error.html", status=status, message=str(PAGE_MESSAGES.get(status, exc.name)))
            response = app.make_response((page, status))
        # keep headers such as Allow (405, RFC 9110 15.5.6) and Retry-After (429)
        for name, value in exc.get_headers():
            if name.lower() != "content-type":
                response.headers[name] = value
        return response

    @app.errorhandler(DBAPIError)
    def database_error(exc: DBAPIError):
        """A lost connection (a database restart, a failover) or a database that cannot be
        reached: 503, and the pool is renewed for the next request. Any other error is a bug."""
        if not (exc.connection_invalidated or isinstance(exc, OperationalError)):
            return unexpected(exc)
        log.warning("database unavailable on %s %s: %s", request.method, request.path, exc.orig)
        g.retry_after = 1
        return domain_error(DatabaseUnavailable())

    @app.errorhandler(Exception)
    def unexpected(exc: Exception):
        log.exception("unhandled error on %s %s", request.method, request.path)
        if wants_json():
            return failure(500, "internal_error", "Internal server error")
        if request.path in OAUTH_JSON_ENDPOINTS:
            return oauth_failure(500, "Internal server error")
        return render_template("error.html", status=500, message=_("Something went wrong on our side.")), 500
