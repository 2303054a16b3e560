"""Enrolment on the way in: a relying party that requires a second factor sends users without one
here to set up an authenticator app (after confirming their email, as every setup path needs)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, redirect, render_template, request, url_for
from flask_babel import gettext as _

from idp.api.guard import client_info
from idp.errors import Conflict, DeliveryUnavailable, EmailNotVerified, InvalidCode, RateLimited, SetupReplaced, answer_refused
from idp.mfa.challenge import AMR
from idp.web.formatting import too_many_emails
from idp.web.forms import code_error, email_unavailable, typed_code
from idp.web.sso import current_browser_session, safe_next
from idp.wiring import components, recovery, session_service, two_factor_service

bp = Blueprint("enrol", __name__, url_prefix="/login/enrol")


def key_groups(secret: str) -> list[str]:
    """The manual-entry key in groups of four, as the enrolment pages show it (here and in the account)."""
    return [secret[i : i + 4] for i in range(0, len(secret), 4)]


@bp.route("", methods=["GET", "POST"])
def enrol() -> Any:
    from idp.web.login import switch_browser_session

    next_url = safe_next(request.values.get("next"))
    sso = current_browser_session()
    if sso is None:
        return redirect(url_for("login.login", next=next_url))
    user = sso.user
    if user.two_factor_enabled:
        return redirect(next_url or url_for("account.home"))
    errors: dict[str, str] = {}
    status = 200
    notice = None
    kept_secret: str | None = None
    if request.method == "POST" and request.form.get("action") == "send-link":
        try:
            recovery().send_verification(user, client=client_info())
            notice = _("We sent a link to %(email)s. Open it, then come back here and continue.", email=user.email)
        except RateLimited as exc:
            answer_refused(exc)  # a 429 with this limit's Retry-After, as every other page's refusal
            errors["__all__"] = too_many_emails(exc.retry_after)
            status = 429
        except DeliveryUnavailable:
            errors["__all__"] = email_unavailable()
            status = 503
    elif request.method == "POST":
        code = typed_code()
        # the key on the page comes back, so a wrong code keeps the one just scanned (the page
        # shows the waiting key again, never the one sent back)
        shown = "".join(request.form.get("secret", "").split()).upper() or None
        if problem := code_error(code, empty=_("Enter the 6-digit code")):
            errors["code"] = problem
            kept_secret = shown
        else:
            try:
                backup_codes = two_factor_service().confirm_totp(user, code, secret=shown, client=client_info())
            except (SetupReplaced, Conflict):  # started again elsewhere: a new key below
                errors["code"] = _("This setup was started again in another window. Scan this new code instead")
            except InvalidCode:
                errors["code"] = _("The code is not right. Enter the 6-digit code your app shows now")
                kept_secret = shown
            else:
                # the code just checked is the second factor of this sign-in
                session, cookie = session_service().start_browser(
                    user, client=client_info(), amr=AMR["totp"], ttl=components().settings.browser_session_ttl
                )
                page = render_template(
                    "backup_codes.html", title=_("Save your backup codes"), codes=backup_codes, next_url=next_url or url_for("account.home")
                )
                return switch_browser_session(session, cookie, page)
    if not user.email_verified:
        return render_template(
            "enrol_verify_email.html", title=_("Confirm your email address first"), user=user, next_url=next_url, errors=errors,
            notice=notice,
        ), status
    issuer = components().settings.totp_issuer
    try:
        service = two_factor_service()
        setup = (service.pending_totp_setup(user) if kept_secret else None) or service.start_totp(user)
    except EmailNotVerified:  # pragma: no cover - checked just above
        return redirect(url_for("enrol.enrol", next=next_url))
    secret, qr_code = setup.secret, setup.qr_code
    return render_template(
        "enrol_totp.html",
        title=_("Set up an authenticator app"),
        user=user,
        issuer=issuer,
        qr_code=qr_code,
        secret=secret,
        key_groups=key_groups(secret),
        next_url=next_url,
        errors=errors,
    ), (400 if errors else 200)
