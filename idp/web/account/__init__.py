"""The account pages: what a signed-in user manages alone, on the same services as the JSON API.

Every page needs the browser session; sensitive changes also need a recent sign-in
(REAUTH_WINDOW_SECONDS), which `/account/confirm-password` renews without a new second factor."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

from flask import Blueprint, flash, g, redirect, render_template, request, url_for
from flask import session as flask_session
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from idp.accounts.sessions import BrowserSession
from idp.api.guard import client_info
from idp.clock import utcnow
from idp.errors import DeliveryUnavailable, InvalidCredentials, RateLimited, answer_refused
from idp.web.formatting import too_many_emails
from idp.web.forms import email_unavailable
from idp.web.sso import current_browser_session, safe_next
from idp.wiring import account_service, backup_codes, components, session_service, trusted_devices, two_factor_service

bp = Blueprint("account", __name__, url_prefix="/account")
F = TypeVar("F", bound=Callable[..., Any])
CONFIRMED = "password_confirmed"  # Flask session: {"session": browser sign-in id, "at": when the password was given again}


def signed_in() -> BrowserSession:
    """The browser session of a page guarded by `requires_sign_in`."""
    return g.browser_session


def requires_sign_in(view: F) -> F:
    """Send a visitor without a browser session to sign in, and back here afterwards."""

    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if current_browser_session() is None:
            return redirect(url_for("login.login", next=request.full_path.rstrip("?")))
        return view(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def recently_signed_in() -> bool:
    """Signed in, or the password confirmed (`mark_password_confirmed`), within the window."""
    session = signed_in()
    proven = session.auth_time.timestamp()
    mark = flask_session.get(CONFIRMED)
    if isinstance(mark, dict) and mark.get("session") == session.id and isinstance(mark.get("at"), int | float):
        proven = max(proven, float(mark["at"]))
    return utcnow().timestamp() - proven <= components().settings.reauth_window


def mark_password_confirmed(session: BrowserSession) -> None:
    """The password was just given again in this browser's sign-in: the account pages take it as a
    recent sign-in. Relying parties are not told: the sign-in's time and factors (`auth_time`,
    `amr`, what `max_age` and `acr_values` are checked against) stay those of the sign-in itself.
    Renewing the sign-in instead, with the new time and the earlier factors, told an app asking for
    a second factor in the last minutes that the password just typed was one."""
    flask_session[CONFIRMED] = {"session": session.id, "at": utcnow().timestamp()}


def requires_recent_sign_in(view: F) -> F:
    """A sensitive change: ask for the password again when the sign-in is older than the window.
    Use after `requires_sign_in`. A POST that arrives too late is not carried out."""

    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if not recently_signed_in():
            # a form posts to the page that shows it: come back to that page
            back = request.full_path.rstrip("?") if request.method == "GET" else request.path
            return redirect(url_for("account.confirm_password", next=back))
        return view(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


SECTIONS = [
    ("home", _l("Overview"), "account.home"),
    ("two_factor", _l("Two-step verification"), "account.two_factor"),
    ("devices", _l("Trusted devices"), "account.devices"),
    ("sessions", _l("Where you're signed in"), "account.sessions"),
    ("activity", _l("Security activity"), "account.activity"),
    ("password", _l("Password"), "account.password"),
    ("apps", _l("Connected apps"), "account.apps"),
]


@bp.app_context_processor
def menu() -> dict[str, Any]:
    def account_sections() -> list[tuple[str, str, str]]:
        # the labels in this request's language, as plain (escaped) text
        return [(key, str(label), endpoint) for key, label, endpoint in SECTIONS]

    return {"account_sections": account_sections}


@bp.get("")
@requires_sign_in
def home() -> str:
    session = signed_in()
    user = session.user
    methods = two_factor_service().methods(user.id)
    return render_template(
        "account/home.html",
        title=_("Your account"),
        user=user,
        methods=methods,
        backup_codes_left=backup_codes().count(user.id) if user.two_factor_enabled else 0,
        devices=len(trusted_devices().list(user.id)),
        sessions=len(session_service().active(user.id)),
        section="home",
    )


@bp.route("/confirm-password", methods=["GET", "POST"])
@requires_sign_in
def confirm_password() -> Any:
    """Prove it is still you: the password again counts as a recent sign-in on the account pages
    (`mark_password_confirmed`)."""
    from idp.web.login import too_many_attempts

    next_url = safe_next(request.values.get("next")) or url_for("account.home")
    errors: dict[str, str] = {}
    status = 200
    if request.method == "POST":
        session = signed_in()
        try:
            account_service().authenticate(session.user.email, request.form.get("password", ""), client=client_info())
        except InvalidCredentials:
            errors["password"] = _("The password is not right")
            status = 401
        except RateLimited as exc:
            answer_refused(exc)
            errors["__all__"] = too_many_attempts(exc)
            status = 429
        else:
            mark_password_confirmed(session)
            flash(_("Thank you. You can go on."))
            return redirect(next_url)
    return render_template(
        "account/confirm_password.html", title=_("Enter your password to continue"), next_url=next_url, errors=errors,
        section=None,
    ), status


@bp.post("/send-verification")
@requires_sign_in
def send_verification() -> Any:
    from idp.wiring import recovery

    user = signed_in().user
    if user.email_verified:  # confirmed meanwhile (another tab, the link): nothing to send
        flash(_("Your email address is confirmed"))
        return redirect(url_for("account.home"))
    try:
        recovery().send_verification(user, client=client_info())
        flash(_("We sent a confirmation link to %(email)s. It works for one hour.", email=user.email))
    except RateLimited as exc:
        flash(too_many_emails(exc.retry_after))
    except DeliveryUnavailable:
        flash(email_unavailable())
    return redirect(url_for("account.home"))


from idp.web.account import password, security, two_factor  # noqa: E402,F401  (their routes join `bp`)
