"""Account pages: change the password (the current one, then a new one), on `AccountService` as the API."""

from __future__ import annotations

from typing import Any

from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext as _

from idp.api.guard import client_info
from idp.api.schemas import ChangePasswordRequest
from idp.errors import RateLimited, ValidationFailed, WrongCurrentPassword, answer_refused
from idp.security.password_policy import MAX_LENGTH
from idp.web.account import bp, mark_password_confirmed, requires_recent_sign_in, requires_sign_in, signed_in
from idp.web.forms import read_form
from idp.wiring import account_service, components, session_service


def words() -> dict[str, tuple[str, str | None]]:
    return {
        "currentPassword": (_("Enter your current password"), _("Your current password is not right")),
        "newPassword": (_("Enter a new password"), _("Your new password must be at most %(max_length)s characters", max_length=MAX_LENGTH)),
    }


@bp.route("/password", methods=["GET", "POST"])
@requires_sign_in
@requires_recent_sign_in
def password() -> Any:
    from idp.web.login import switch_browser_session, too_many_attempts
    from idp.web.registration import password_errors, reword

    session = signed_in()
    errors: dict[str, str] = {}
    status = 200
    if request.method == "POST":
        data, errors = read_form(ChangePasswordRequest, "currentPassword", "newPassword")
        reword(errors, words())
        status = 400
        if data is not None:
            client = client_info()
            try:
                account_service().change_password(
                    session.user, current_password=data.current_password, new_password=data.new_password, client=client
                )
            except WrongCurrentPassword:
                errors = {"currentPassword": _("Your current password is not right")}
                status = 401
            except RateLimited as exc:
                answer_refused(exc)
                errors = {"__all__": too_many_attempts(exc)}
                status = 429
            except ValidationFailed as exc:
                errors = password_errors(exc, "newPassword", _("Your new password"))
            else:
                # Every session was revoked, this browser's too: it goes on in a new one (as the
                # API's change-password goes on in a new API session), with the sign-in's own time
                # and factors, and the password just given counts as confirmed.
                renewed, cookie = session_service().start_browser(
                    session.user, client=client, amr=session.amr, auth_time=session.auth_time,
                    ttl=components().settings.browser_session_ttl,
                )
                response = switch_browser_session(renewed, cookie, redirect(url_for("account.home")))
                mark_password_confirmed(renewed)
                flash(_("Your password is changed. Every other session was signed out."))  # after the switch's fresh Flask session
                return response
    return render_template(
        "account/password.html", title=_("Change your password"), user=session.user, errors=errors, section="password"
    ), status
