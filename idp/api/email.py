"""`/email`: verifying the account's email address."""

from __future__ import annotations

from flask import Blueprint, Response

from idp.api.documented import documented
from idp.api.envelope import ok, parse
from idp.api.guard import client_info, identity, require_bearer
from idp.api.responses import EmailStatus
from idp.api.schemas import EmailVerifyRequest
from idp.wiring import recovery

bp = Blueprint("email", __name__, url_prefix="/email")


@bp.post("/send-verification")
@documented(responses={200: EmailStatus | None}, errors={503: "Email delivery is not configured on this server"})
@require_bearer
def send_verification() -> Response:
    user = identity().user
    if user.email_verified:
        return ok({"emailVerified": True}, message="Email address already verified")
    recovery().send_verification(user, client=client_info())
    return ok(message="Verification email sent")


@bp.get("/status")
@documented(responses={200: EmailStatus})
@require_bearer(scope="user:read")
def status() -> Response:
    return ok({"emailVerified": identity().user.email_verified})


@bp.post("/verify")
@documented(request=EmailVerifyRequest, responses={200: EmailStatus}, errors={400: "An invalid, used or expired token"})
def verify() -> Response:
    data = parse(EmailVerifyRequest)
    recovery().verify_email(data.token, client=client_info())
    return ok({"emailVerified": True}, message="Email address verified")
