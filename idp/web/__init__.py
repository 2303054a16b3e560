"""Hosted pages: the provider's home, the sign-in journey and the email-verification landing."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Flask, redirect, render_template, request, url_for
from flask import session as flask_session
from flask_babel import gettext as _

from idp.api.guard import client_info
from idp.errors import InvalidToken
from idp.web.forms import after_redirect
from idp.web.sso import current_browser_session
from idp.wiring import recovery

bp = Blueprint("web", __name__)
EMAIL_CONFIRMED = "email_confirmed"  # Flask session: the address this browser just confirmed


@bp.get("/")
def home() -> str:
    return render_template("home.html", title=_("Identity provider"), browser_session=current_browser_session())


@bp.route("/verify-email", methods=["GET", "POST"])
def verify_email() -> Any:
    """The link in the verification email. GET only asks (mail scanners open links); POST confirms."""
    token = request.values.get("token", "")
    if request.method == "POST":
        try:
            user = recovery().verify_email(token, client=client_info())
        except InvalidToken:  # the page's own words, in the page's language (the service's are the API's, in English)
            error = _("This verification link is invalid or has expired")
            return render_template("verify_email.html", title=_("This link does not work"), token=None, error=error), 400
        # Post/Redirect/Get: reloading the confirmation must not send the spent link again
        flask_session[EMAIL_CONFIRMED] = user.email
        return redirect(url_for("web.verify_email", done=1))
    confirmed = after_redirect(EMAIL_CONFIRMED, "done")
    if confirmed is not None:
        return render_template("verify_email.html", title=_("Your email address is confirmed"), token=None, email=confirmed, error=None)
    return render_template("verify_email.html", title=_("Confirm your email address"), token=token, error=None)


def register(app: Flask) -> None:
    from idp.extensions import csrf
    from idp.oidc import endpoints
    from idp.web import account, enrol, login, registration
    from idp.web.formatting import register_filters

    register_filters(app)
    app.register_blueprint(bp)
    app.register_blueprint(account.bp)
    app.register_blueprint(registration.bp)
    app.register_blueprint(login.bp)
    app.register_blueprint(enrol.bp)
    app.register_blueprint(endpoints.bp)
    # Cross-site by design: relying parties POST authorization and logout requests, clients call
    # the token endpoints with their own credentials. The decisions on those pages (consent,
    # logout confirmation) check the CSRF token themselves.
    for view in (endpoints.authorize, endpoints.token, endpoints.introspect, endpoints.revoke, endpoints.userinfo, endpoints.logout):
        csrf.exempt(view)
