"""Account pages: two-step verification. The methods that are on (with Remove), backup codes (with
new ones on request, shown once), and adding an authenticator app, text messages or email codes.

The same services as the JSON API (`/2fa`), with its rules: every setup needs a confirmed email
address; adding the first factor needs only the sign-in, while adding or replacing one once 2FA
is on needs a recent sign-in (the API's `require_recent_auth_once_protected`), as do removing a
method and getting new backup codes (`require_recent_auth`)."""

from __future__ import annotations

import functools
import json
import re
import secrets
from typing import Any

from babel.lists import format_list
from flask import Response, flash, make_response, redirect, render_template, request, url_for
from flask import session as flask_session
from flask_babel import get_locale, ngettext
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from pydantic import BaseModel, ValidationError
from werkzeug.wrappers import Response as Redirect

from idp.api.envelope import describe
from idp.api.guard import client_info
from idp.api.schemas import EmailSetupRequest, SmsSetupRequest
from idp.errors import (
    Conflict,
    DeliveryUnavailable,
    EmailNotVerified,
    InvalidCode,
    NotFound,
    RateLimited,
    SetupReplaced,
    answer_refused,
)
from idp.mfa.backup_codes import COUNT as BACKUP_CODE_COUNT
from idp.mfa.codes import CODE_TTL
from idp.mfa.masking import mask_email, mask_phone
from idp.mfa.models import TwoFactorMethod
from idp.ratelimits import rate_limited
from idp.security.secretbox import SecretBoxError
from idp.web.account import F, bp, requires_recent_sign_in, requires_sign_in, signed_in
from idp.web.enrol import key_groups
from idp.web.formatting import day, minutes_to_wait
from idp.web.forms import code_error, field_errors, typed_code
from idp.wiring import backup_codes, components, delivery, shown_once, two_factor_service

NEW_CODES = "two_factor_new_codes"  # Flask session: backup codes to show once (encrypted)
SHOWN_ONCE_SECONDS = 15 * 60  # as long as `shown_once` keeps its marks
SETUP = "two_factor_setup"  # Flask session: where the setup code of a pending SMS / email method went
SECTION = "two_factor"
NO_STORE = {"Cache-Control": "no-store"}  # pages that carry a TOTP key or backup codes

# kind -> how the pages name it
ADD = {
    "totp": (_l("Authenticator app"), _l("Codes from an app on your phone, such as Google Authenticator, Microsoft Authenticator "
                                         "or 1Password. Works without signal.")),
    "sms": (_l("Text messages"), _l("A code by text message to your mobile phone each time you sign in.")),
    "email": (_l("Email codes"), _l("A code by email each time you sign in, to an address you choose.")),
}
CODE_KINDS = ("sms", "email")


# -- words -------------------------------------------------------------------------------


def method_label(method: TwoFactorMethod) -> str:
    """'Authenticator app', 'Text messages to ***4567', 'Email codes to ali***@example.com'."""
    if method.type == "sms":
        return _("Text messages to %(number)s", number=mask_phone(method.phone_number))
    if method.type == "email":
        return _("Email codes to %(address)s", address=mask_email(method.email))
    return _("Authenticator app")


def _the(method: TwoFactorMethod) -> str:
    """The method inside a sentence: 'the authenticator app', 'text messages to ***4567'."""
    if method.type == "sms":
        return _("text messages to %(number)s", number=mask_phone(method.phone_number))
    if method.type == "email":
        return _("email codes to %(address)s", address=mask_email(method.email))
    return _("the authenticator app")


def _and(words: list[str]) -> str:
    """'a and b', in the page's language."""
    return format_list(words, locale=str(get_locale() or "en")) if words else ""


def _wait(seconds: int) -> str:
    if seconds < 60:
        return ngettext("%(num)d second", "%(num)d seconds", max(1, seconds))
    return ngettext("%(num)d minute", "%(num)d minutes", minutes_to_wait(seconds))


def _too_many_codes(exc: RateLimited) -> str:
    return _("You have asked for too many codes. Try again in %(wait)s.", wait=_wait(exc.retry_after))


# -- guards and helpers -------------------------------------------------------------------


def requires_recent_sign_in_once_protected(view: F) -> F:
    """`requires_recent_sign_in` only once 2FA is on (after `requires_sign_in`): adding the first
    factor needs the sign-in alone, adding or replacing one later needs a recent one."""
    guarded = requires_recent_sign_in(view)

    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if signed_in().user.two_factor_enabled:
            return guarded(*args, **kwargs)
        return view(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def _confirm_email_first() -> tuple[str, int]:
    return render_template(
        "account/two_factor_verify_email.html", title=_("Confirm your email address first"), user=signed_in().user, section=SECTION
    ), 403


def _page(template: str, status: int = 200, headers: dict[str, str] | None = None, **context: Any) -> Response:
    response = make_response(render_template(template, section=SECTION, **context), status)
    response.headers.update(headers or {})
    return response


def _validated(model: type[BaseModel], data: dict[str, str]) -> tuple[BaseModel | None, dict[str, str]]:
    """`forms.read_form` for values the page has tidied first (a phone number without spaces)."""
    try:
        return model.model_validate(data), {}
    except ValidationError as exc:
        return None, field_errors([describe(err) for err in exc.errors()])


def _show_backup_codes(codes: list[str], *, replaced: bool) -> Redirect:
    """Post/redirect/get to the shown-once page: the codes wait in the (signed) Flask session,
    encrypted, and the page that shows them takes them out. The session cookie sent before that
    page still held them: each sealing carries a mark that the page spends (`shown_once`), and
    lives 15 minutes at most."""
    mark = secrets.token_urlsafe(16)
    sealed = components().box.encrypt(json.dumps({"codes": codes, "replaced": replaced, "mark": mark}))
    flask_session[NEW_CODES] = sealed
    return redirect(url_for("account.two_factor_new_backup_codes"))


# -- overview ------------------------------------------------------------------------------


@bp.get("/two-factor")
@requires_sign_in
def two_factor() -> Any:
    user = signed_in().user
    methods = two_factor_service().methods(user.id)
    on = {m.type for m in methods}
    rows = [
        {
            "id": m.id,
            "type": m.type,
            "label": method_label(m),
            "added": day(m.verified_at or m.created_at),
            "change": {"totp": "account.two_factor_totp", "sms": "account.two_factor_sms", "email": "account.two_factor_email"}[m.type],
            "change_label": {"totp": _("Move to a new phone"), "sms": _("Change number"), "email": _("Change address")}[m.type],
        }
        for m in methods
    ]
    sms_available = delivery().sms_available()
    addable = [
        {"type": kind, "label": str(label), "hint": str(hint), "endpoint": f"account.two_factor_{kind}",
         "available": kind != "sms" or sms_available}
        for kind, (label, hint) in ADD.items()
        if kind not in on
    ]
    return render_template(
        "account/two_factor.html",
        title=_("Two-step verification"),
        user=user,
        enabled=user.two_factor_enabled,
        methods=rows,
        addable=addable,
        backup_codes_left=backup_codes().count(user.id) if user.two_factor_enabled else 0,
        backup_codes_total=BACKUP_CODE_COUNT,
        section=SECTION,
    )


# -- authenticator app ---------------------------------------------------------------------


@bp.route("/two-factor/totp", methods=["GET", "POST"])
@rate_limited("two_factor", methods=["POST"])
@requires_sign_in
@requires_recent_sign_in_once_protected
def two_factor_totp() -> Any:
    """GET starts a setup (a new key each time); POST confirms it with a first code. A wrong code
    keeps the key the user has just scanned: it comes back in the form, and the service checks
    that it is the pending one."""
    user = signed_in().user
    if not user.email_verified:
        return _confirm_email_first()
    service = two_factor_service()
    errors: dict[str, str] = {}
    secret: str | None = None
    if request.method == "POST":
        secret = re.sub(r"\s", "", request.form.get("secret", "")).upper() or None
        code = typed_code()
        if problem := code_error(code, empty=_("Enter the 6-digit code from the app")):
            errors["code"] = problem
        else:
            was_on = user.two_factor_enabled
            try:
                codes = service.confirm_totp(user, code, secret=secret, client=client_info())
            except SetupReplaced:  # started again elsewhere (another tab): show the new one
                errors["__all__"] = _("You started this setup again in another window. Scan this new code instead.")
                secret = None
            except InvalidCode:
                errors["code"] = _("The code is not right. Enter the code the app shows now")
            except Conflict:  # nothing pending: finished or replaced elsewhere
                errors["__all__"] = _("This setup is no longer waiting. Scan this new code instead.")
                secret = None
            else:
                flash(_("Your authenticator app is set up.") + ("" if was_on else " " + _("Two-step verification is on.")))
                return _show_backup_codes(codes, replaced=was_on)
    issuer = components().settings.totp_issuer
    setup = service.pending_totp_setup(user) if secret else None
    if setup is None:
        try:
            setup = service.start_totp(user)
        except EmailNotVerified:  # pragma: no cover - checked above
            return _confirm_email_first()
    elif setup.secret != secret:  # the page showed another key (or the client sent one): the waiting one is shown
        errors["__all__"] = _("You started this setup again in another window. Scan this new code instead.")
    secret, qr_code = setup.secret, setup.qr_code
    replacing = any(m.type == "totp" for m in service.methods(user.id))
    return _page(
        "account/two_factor_totp.html",
        400 if errors else 200,
        NO_STORE,
        title=_("Set up a new authenticator app") if replacing else _("Set up an authenticator app"),
        user=user,
        replacing=replacing,
        enabled=user.two_factor_enabled,
        issuer=issuer,
        qr_code=qr_code,
        secret=secret,
        key_groups=key_groups(secret),
        errors=errors,
    )


# -- text messages and email codes ------------------------------------------------------------


def _setup_state(kind: str) -> dict[str, str] | None:
    state = flask_session.get(SETUP)
    found = state.get(kind) if isinstance(state, dict) else None
    return found if isinstance(found, dict) and found.get("to") else None


def _remember_setup(kind: str, destination: str) -> None:
    masked = mask_phone(destination) if kind == "sms" else mask_email(destination)
    state = dict(flask_session.get(SETUP) or {})
    state[kind] = {"to": components().box.encrypt(destination), "masked": masked or ""}
    flask_session[SETUP] = state


def _forget_setup(kind: str) -> None:
    state = dict(flask_session.get(SETUP) or {})
    state.pop(kind, None)
    flask_session[SETUP] = state


def _send_setup_code(kind: str, destination: str) -> None:
    user = signed_in().user
    if kind == "sms":
        two_factor_service().start_sms(user, destination, client=client_info())
    else:
        two_factor_service().start_email(user, destination, client=client_info())


def _sms_unavailable(status: int) -> Response:
    on = {m.type for m in two_factor_service().methods(signed_in().user.id)}
    return _page("account/two_factor_unavailable.html", status, title=_("Text messages are not available"), on=on)


def _tidy_phone(raw: str) -> str:
    """'+44 (0)7700 900-123' style typing to E.164: no spaces, dots, dashes or brackets; 00 → +."""
    number = re.sub(r"[\s().\-]", "", raw.replace("(0)", ""))
    return "+" + number[2:] if number.startswith("00") else number


def _address_page(kind: str) -> Any:
    """Where the codes should go (a phone number or an address); sends the first code."""
    user = signed_in().user
    if not user.email_verified:
        return _confirm_email_first()
    if kind == "sms" and not delivery().sms_available():
        return _sms_unavailable(200)
    field = "phoneNumber" if kind == "sms" else "email"
    value = request.form.get(field, "").strip() if request.method == "POST" else ""
    errors: dict[str, str] = {}
    status = 200
    if request.method == "POST":
        if not value:
            errors[field] = _("Enter your mobile phone number") if kind == "sms" else _("Enter an email address")
        else:
            if kind == "sms":
                parsed, problems = _validated(SmsSetupRequest, {field: _tidy_phone(value)})
            else:
                parsed, problems = _validated(EmailSetupRequest, {field: value})
            if problems:
                errors[field] = (
                    _("Enter the number with + and the country code, for example +44 7700 900123")
                    if kind == "sms"
                    else _("Enter an email address in the right format, like name@example.com")
                )
            else:
                destination = parsed.phone_number if isinstance(parsed, SmsSetupRequest) else str(parsed.email).lower()  # type: ignore[union-attr]
                try:
                    _send_setup_code(kind, destination)
                except RateLimited as exc:
                    answer_refused(exc)
                    errors["__all__"] = _too_many_codes(exc)
                    status = 429
                except DeliveryUnavailable:
                    return _sms_unavailable(503)
                except EmailNotVerified:  # pragma: no cover - checked above
                    return _confirm_email_first()
                else:
                    _remember_setup(kind, destination)
                    return redirect(url_for(f"account.two_factor_{kind}_code"))
        if errors and status == 200:
            status = 400
    current = next((m for m in two_factor_service().methods(user.id) if m.type == kind), None)
    if kind == "sms":
        title = _("Change the number for text messages") if current else _("Get codes by text message")
    else:
        title = _("Change the address for email codes") if current else _("Get codes by email")
    return render_template(
        "account/two_factor_address.html",
        title=title,
        kind=kind,
        value=value,
        current=(mask_phone(current.phone_number) if kind == "sms" else mask_email(current.email)) if current else None,
        errors=errors,
        section=SECTION,
    ), status


def _code_page(kind: str) -> Any:
    """'We sent a 6-digit code to ***4567': confirm it, or send a new one."""
    user = signed_in().user
    state = _setup_state(kind)
    if state is None:
        return redirect(url_for(f"account.two_factor_{kind}"))
    errors: dict[str, str] = {}
    notice = None
    status = 200
    if request.method == "POST" and request.form.get("action") == "resend":
        try:
            _send_setup_code(kind, components().box.decrypt(state["to"]))
        except (SecretBoxError, KeyError):
            _forget_setup(kind)
            return redirect(url_for(f"account.two_factor_{kind}"))
        except RateLimited as exc:
            answer_refused(exc)
            errors["__all__"] = _too_many_codes(exc)
            status = 429
        except DeliveryUnavailable:
            return _sms_unavailable(503)
        except EmailNotVerified:
            return _confirm_email_first()
        else:
            notice = _("We sent a new code to %(to)s.", to=state["masked"])
    elif request.method == "POST":
        code = typed_code()
        if problem := code_error(code, empty=_("Enter the 6-digit code")):
            errors["code"] = problem
        else:
            was_on = user.two_factor_enabled
            try:
                codes = two_factor_service().confirm_code_method(user, kind, code, client=client_info())
            except InvalidCode:
                errors["code"] = _("The code is not right or has expired. Check it, or send a new code")
            except Conflict:  # nothing pending any more (finished in another window)
                _forget_setup(kind)
                return redirect(url_for("account.two_factor"))
            else:
                _forget_setup(kind)
                if kind == "sms":
                    done = _("Text messages to %(to)s are set up.", to=state["masked"])
                else:
                    done = _("Email codes to %(to)s are set up.", to=state["masked"])
                flash(done + ("" if was_on else " " + _("Two-step verification is on.")))
                if codes:
                    return _show_backup_codes(codes, replaced=False)
                return redirect(url_for("account.two_factor"))
        if errors and status == 200:
            status = 400
    return render_template(
        "account/two_factor_code.html",
        title=_("Enter the code we sent to your phone") if kind == "sms" else _("Enter the code we sent to your email"),
        kind=kind,
        destination=state["masked"],
        minutes=int(CODE_TTL.total_seconds() // 60),
        notice=notice,
        errors=errors,
        section=SECTION,
    ), status


@bp.route("/two-factor/sms", methods=["GET", "POST"])
@requires_sign_in
@requires_recent_sign_in_once_protected
def two_factor_sms() -> Any:
    return _address_page("sms")


@bp.route("/two-factor/sms/code", methods=["GET", "POST"])
@rate_limited("two_factor", methods=["POST"])
@requires_sign_in
@requires_recent_sign_in_once_protected
def two_factor_sms_code() -> Any:
    return _code_page("sms")


@bp.route("/two-factor/email", methods=["GET", "POST"])
@requires_sign_in
@requires_recent_sign_in_once_protected
def two_factor_email() -> Any:
    return _address_page("email")


@bp.route("/two-factor/email/code", methods=["GET", "POST"])
@rate_limited("two_factor", methods=["POST"])
@requires_sign_in
@requires_recent_sign_in_once_protected
def two_factor_email_code() -> Any:
    return _code_page("email")


# -- removing --------------------------------------------------------------------------------


@bp.route("/two-factor/methods/<method_id>/remove", methods=["GET", "POST"])
@requires_sign_in
@requires_recent_sign_in
def two_factor_remove(method_id: str) -> Any:
    """GET asks (saying when this turns 2FA off); POST removes."""
    user = signed_in().user
    methods = two_factor_service().methods(user.id)
    method = next((m for m in methods if m.id == method_id), None)
    if method is None:
        flash(_("That way of getting codes was already removed."))
        return redirect(url_for("account.two_factor"))
    last = len(methods) == 1
    if request.method == "POST":
        the_method = _the(method)
        try:
            still_on = two_factor_service().remove(user, method_id, client=client_info())
        except NotFound:  # removed meanwhile
            flash(_("That way of getting codes was already removed."))
            return redirect(url_for("account.two_factor"))
        flash(_("You removed %(method)s.", method=the_method) + ("" if still_on else " " + _("Two-step verification is off.")))
        return redirect(url_for("account.two_factor"))
    return render_template(
        "account/two_factor_remove.html",
        title=_("Turn off two-step verification?") if last else _("Remove %(method)s?", method=_the(method)),
        method=method_label(method),
        the_method=_the(method),
        method_id=method.id,
        last=last,
        others=_and([_the(m) for m in methods if m.id != method.id]),
        section=SECTION,
    )


# -- backup codes ----------------------------------------------------------------------------


@bp.route("/two-factor/backup-codes", methods=["GET", "POST"])
@requires_sign_in
@requires_recent_sign_in
def two_factor_backup_codes() -> Any:
    """GET explains (it is where a POST lands after the password is asked again); POST replaces
    every backup code with a new set, shown once."""
    user = signed_in().user
    if not user.two_factor_enabled:
        flash(_("Backup codes come with two-step verification: you get them when you turn it on."))
        return redirect(url_for("account.two_factor"))
    if request.method == "POST":
        codes = two_factor_service().regenerate_backup_codes(user, client=client_info())
        return _show_backup_codes(codes, replaced=True)
    return render_template(
        "account/two_factor_regenerate.html",
        title=_("Get new backup codes"),
        backup_codes_left=backup_codes().count(user.id),
        backup_codes_total=BACKUP_CODE_COUNT,
        section=SECTION,
    )


@bp.get("/two-factor/backup-codes/new")
@requires_sign_in
def two_factor_new_backup_codes() -> Any:
    """The shown-once page: the codes leave the session as they are shown."""
    sealed = flask_session.pop(NEW_CODES, None)
    try:
        saved = json.loads(components().box.decrypt(sealed, ttl=SHOWN_ONCE_SECONDS)) if isinstance(sealed, str) else None
    except (SecretBoxError, ValueError):
        saved = None
    if not isinstance(saved, dict) or not saved.get("codes") or not shown_once().acquire(str(saved.get("mark"))):
        flash(_("Backup codes are shown only once. If you did not save them, get new ones: the old ones then stop working."))
        return redirect(url_for("account.two_factor", _anchor="backup-codes"))
    return _page(
        "account/two_factor_backup_codes.html",
        200,
        NO_STORE,
        title=_("Save your backup codes"),
        codes=saved["codes"],
        replaced=bool(saved.get("replaced")),
        issuer=components().settings.totp_issuer,
    )
