"""Pages for people without a session: registration, forgotten password, new password.

Thin views over the same services as the JSON API (`AccountService.register`, `Recovery`), validated
with the API's own request schemas; they differ only in reading forms and rendering pages."""

from __future__ import annotations

import time
from typing import Any

from flask import Blueprint, Response, current_app, flash, redirect, render_template, request, url_for
from flask import session as flask_session
from flask_babel import gettext as _
from flask_babel import ngettext
from werkzeug.exceptions import TooManyRequests

from idp.api.guard import client_info
from idp.api.schemas import PasswordResetConfirm, PasswordResetRequest, RegisterRequest
from idp.errors import Conflict, DeliveryUnavailable, InvalidToken, RateLimited, ValidationFailed
from idp.ratelimits import rate_limited
from idp.security import password_policy as policy
from idp.security.password_policy import MAX_LENGTH, MIN_LENGTH, password_problems
from idp.web.formatting import minutes_to_wait
from idp.web.forms import after_redirect, domain_errors, read_form
from idp.web.login import _allow_return_to, _client_for, switch_browser_session
from idp.web.sso import ACCOUNT_PATH, clear_sso_cookie, current_browser_session, reset_browser_state, safe_next
from idp.wiring import account_service, components, recovery, request_password_reset, session_service

bp = Blueprint("registration", __name__)


def password_policy_words() -> dict[str, Any]:
    """The policy of idp/security/password_policy.py in plain words, and the checks the live
    checklist (static/pages.js) runs as the user types. Only a guide: the service decides."""
    return {
        "hint": _(
            "At least %(min_length)s characters, with upper- and lower-case letters, a digit and a symbol. "
            "Not a common password, and not your username or email.",
            min_length=MIN_LENGTH,
        ),
        "min_length": MIN_LENGTH,
        "rules": [
            ("length", _("At least %(min_length)s characters", min_length=MIN_LENGTH)),
            ("upper", _("An upper-case letter")),
            ("lower", _("A lower-case letter")),
            ("digit", _("A digit")),
            ("symbol", _("A symbol, such as ! ? # or -")),
        ],
    }


# The rule of RegisterRequest's username in English, as the API documents it; the pages say it in
# their own (translated) words, which tests/web/test_i18n.py keeps in line with this.
USERNAME_RULE = str(RegisterRequest.model_fields["username"].description or "")


def username_hint() -> str:
    return _("3 to 30 letters, digits, underscores or hyphens")


@bp.app_context_processor
def password_policy() -> dict[str, Any]:
    return {"password_policy": password_policy_words()}


def reword(errors: dict[str, str], words: dict[str, tuple[str, str | None]]) -> dict[str, str]:
    """The schema's errors in the page's words: {field: (when empty, when invalid)}; a field
    without its own words keeps the schema's message."""
    for name, (empty, invalid) in words.items():
        if name in errors:
            errors[name] = empty if not request.form.get(name, "").strip() else (invalid or errors[name])
    return errors


def password_errors(exc: ValidationFailed, field: str, noun: str | None = None) -> dict[str, str]:
    """The password policy's reasons (`field: must ...`, the JSON API's words, in English) as one
    sentence next to the field, in the page's language."""
    errors = domain_errors(exc)
    reasons = [translated_reason(m.partition(": ")[2]) for m in exc.errors or [] if m.startswith(field + ": ")]
    if reasons:
        sentence = reasons[0]
        for reason in reasons[1:]:
            sentence = _("%(reasons)s; it %(reason)s", reasons=sentence, reason=reason)
        errors[field] = _("%(noun)s %(reasons)s", noun=noun or _("Your password"), reasons=sentence)
    return errors


def translated_reason(reason: str) -> str:
    """One of `password_policy`'s reasons in the page's language (a reason it does not know, as it is)."""
    if reason.startswith(policy.MUST_CONTAIN):
        classes = {policy.LOWER: _("a lower-case letter"), policy.UPPER: _("an upper-case letter"),
                   policy.DIGIT: _("a digit"), policy.SYMBOL: _("a symbol")}
        missing = [classes.get(name, name) for name in reason.removeprefix(policy.MUST_CONTAIN).split(", ")]
        return _("must contain %(classes)s", classes=", ".join(missing))
    words = {
        policy.TOO_SHORT: _("must be at least %(num)d characters", num=MIN_LENGTH),
        policy.TOO_LONG: _("must be at most %(num)d characters", num=MAX_LENGTH),
        policy.TOO_COMMON: _("is too common (it appears in lists of breached passwords)"),
        policy.CONTAINS_IDENTITY: _("must not contain your username or email"),
        policy.SAME_AS_CURRENT: _("must differ from the current password"),
    }
    return words.get(reason, reason)


def new_password_too_long() -> str:
    return _("Your new password must be at most %(max_length)s characters", max_length=MAX_LENGTH)


def too_many(seconds: int) -> str:
    return ngettext("Try again in %(num)d minute.", "Try again in %(num)d minutes.", minutes_to_wait(seconds))


# -- registration -----------------------------------------------------------------------------

REGISTER_FIELDS = ("email", "username", "password")


def register_words() -> dict[str, tuple[str, str | None]]:
    return {
        "email": (_("Enter your email address"), _("Enter an email address in the correct format, like name@example.com")),
        "username": (_("Choose a username"), _("Choose a username of 3 to 30 letters, digits, underscores or hyphens")),
        "password": (_("Create a password"), _("Your password must be at most %(max_length)s characters", max_length=MAX_LENGTH)),
    }


def _register_page(next_url: str | None, errors: dict[str, str], status: int = 200) -> Any:
    client = _client_for(next_url)
    _allow_return_to(next_url)
    signed_in = current_browser_session()
    # one message per field, in the order of the form
    ordered = {name: errors[name] for name in ("__all__", *REGISTER_FIELDS) if name in errors}
    page = render_template(
        "register.html",
        title=_("Create an account"),
        client_name=client.name if client else None,
        signed_in_as=signed_in.user.email if signed_in else None,
        email=request.form.get("email", "").strip(),
        username=request.form.get("username", "").strip(),
        username_hint=username_hint(),
        next_url=next_url,
        errors={**ordered, **errors},
    )
    return page, status


def _taken(email: str, username: str) -> dict[str, str]:
    """Which of the two is taken (the API's 409 says as much)."""
    accounts = account_service()
    errors = {}
    if accounts.find(email) is not None:
        errors["email"] = _("An account already uses this email address. Sign in, or reset your password if you forgot it")
    if accounts.find(username) is not None:
        errors["username"] = _("This username is taken. Choose another one")
    return errors


@bp.route("/register", methods=["GET", "POST"])
@rate_limited("register", methods=["POST"])
def register() -> Any:
    next_url = safe_next(request.values.get("next"))
    if request.method == "GET":
        return _register_page(next_url, {})
    data, errors = read_form(RegisterRequest, *REGISTER_FIELDS)
    if data is None:
        reword(errors, register_words())
        typed = request.form.get("password", "")
        if typed and "password" not in errors:
            # the password is typed again anyway: say now what the service would say about it
            problems = password_problems(typed, email=request.form.get("email", ""), username=request.form.get("username", ""))
            if problems:
                errors.update(password_errors(ValidationFailed(errors=[f"password: {p}" for p in problems]), "password"))
        return _register_page(next_url, errors, 400)
    client = client_info()
    try:
        user = account_service().register(email=data.email, username=data.username, password=data.password, client=client)
    except ValidationFailed as exc:
        return _register_page(next_url, password_errors(exc, "password"), 400)
    except Conflict as exc:
        return _register_page(next_url, _taken(data.email, data.username) or {"__all__": exc.message}, 409)
    session, cookie = session_service().start_browser(
        user, client=client, amr=["pwd"], ttl=components().settings.browser_session_ttl
    )
    try:
        recovery().send_verification(user, client=client)
        sent = True
    except (RateLimited, DeliveryUnavailable):
        sent = False
    destination = next_url or url_for("account.home")
    response = switch_browser_session(session, cookie, redirect(destination))
    if destination.split("?")[0].startswith(ACCOUNT_PATH):  # flashed messages show on the account pages
        flash(
            _(
                "Welcome, %(username)s. We sent a link to %(email)s to confirm the address; it works for one hour.",
                username=user.username,
                email=user.email,
            )
            if sent
            else _("Welcome, %(username)s. Your account is ready.", username=user.username)
        )
    return response


@bp.errorhandler(TooManyRequests)
def rate_limit_reached(exc: TooManyRequests) -> Any:
    """The register limit (per network address): say so on the form, with what was typed."""
    if request.endpoint != "registration.register":
        return render_template("error.html", status=429, message=_("Too many requests, please try again later")), 429
    limit = components().limiter.current_limit
    wait = too_many(limit.reset_at - int(time.time())) if limit else _("Try again later.")
    page, _status = _register_page(
        safe_next(request.values.get("next")), {"__all__": _("Too many accounts were created from your network. %(wait)s", wait=wait)}
    )
    return page, 429


# -- forgotten password -----------------------------------------------------------------------


RESET_SENT_TO = "reset_sent_to"  # Flask session: the address this browser last asked a reset link for
RESET_DONE_FOR = "reset_done_for"  # Flask session: the account whose password this browser just reset


@bp.route("/forgot-password", methods=["GET", "POST"])
@rate_limited("general", methods=["POST"])  # the API's window for its reset requests: each may send an email
def forgot_password() -> Any:
    """Ask for a reset link. The answer is the same whether or not an account uses the address."""
    next_url = safe_next(request.values.get("next"))
    errors: dict[str, str] = {}
    if request.method == "POST":
        data, errors = read_form(PasswordResetRequest, "email")
        if data is not None and data.email.strip():
            request_password_reset(data.email, client_info())
            # Post/Redirect/Get: reloading "Check your email" must not ask again, which would mail
            # another link and retire the one just sent
            flask_session[RESET_SENT_TO] = data.email.strip()
            return redirect(url_for("registration.forgot_password", sent=1, next=next_url))
        errors = {"email": _("Enter the email address of your account, like name@example.com")}
    sent_to = after_redirect(RESET_SENT_TO, "sent")
    if sent_to is not None:
        return render_template(
            "forgot_password.html", title=_("Check your email"), sent=True, email=sent_to, next_url=next_url, errors={}
        )
    page = render_template(
        "forgot_password.html",
        title=_("Reset your password"),
        sent=False,
        email=(request.form.get("email") if request.method == "POST" else request.args.get("email")) or "",
        next_url=next_url,
        errors=errors,
    )
    return page, 400 if errors else 200


def _no_store(page: Any, status: int = 200) -> Response:
    """The reset pages carry a live token: never cached (no Referer leaves the page, see idp/http.py)."""
    response = current_app.make_response((page, status))
    response.headers["Cache-Control"] = "no-store"
    return response


def _link_does_not_work(reason: str) -> Response:
    page = render_template(
        "reset_password.html", title=_("This link does not work"), state="invalid", reason=reason, token="", errors={}
    )
    return _no_store(page, 400)


def _used_or_expired() -> Response:
    return _link_does_not_work(_("This reset link is invalid or has expired. Links work once, for one hour. Ask for a new one."))


@bp.route("/reset-password", methods=["GET", "POST"])
def reset_password() -> Any:
    """The link of the reset email (FRONTEND_URL/reset-password?token=...): choose a new password."""
    done_for = after_redirect(RESET_DONE_FOR, "done")
    if done_for is not None:
        return _no_store(
            render_template("reset_password.html", title=_("Your password is changed"), state="done", email=done_for, token="", errors={})
        )
    token = request.values.get("token", "").strip()
    if not token:
        return _link_does_not_work(_("This link is incomplete. Open the link from the email again, or ask for a new one."))
    errors: dict[str, str] = {}
    if request.method == "POST":
        data, errors = read_form(PasswordResetConfirm, "token", "newPassword")
        if "token" in errors:
            return _link_does_not_work(_("This reset link is not valid. Ask for a new one."))
        reword(errors, {"newPassword": (_("Enter a new password"), new_password_too_long())})
        if data is not None:
            try:
                user = recovery().reset_password(data.token, data.new_password, client=client_info())
            except InvalidToken:
                return _used_or_expired()
            except ValidationFailed as exc:
                errors = password_errors(exc, "newPassword", _("Your new password"))
            else:
                # every session is revoked, this browser's included: forget its cookie too
                reset_browser_state()
                # Post/Redirect/Get: reloading "Your password is changed" must not send the spent
                # link again, which would answer that the link does not work
                flask_session[RESET_DONE_FOR] = user.email
                response = _no_store(redirect(url_for("registration.reset_password", done=1)), 302)
                clear_sso_cookie(response)
                return response
    holder = recovery().reset_link_holder(token)
    if holder is None:  # used, expired or never sent: say so before a new password is chosen
        return _used_or_expired()
    page = render_template(
        "reset_password.html", title=_("Choose a new password"), state="form", token=token, email=holder.email, errors=errors
    )
    return _no_store(page, 400 if errors else 200)
