"""The hosted sign-in pages: password, then the second factor, ending in a browser session (SSO).

Thin views over the same login flow as the JSON API (`LoginFlow`, `LoginChallenges`); they differ
only in reading forms and rendering pages."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, current_app, redirect, render_template, request, url_for
from flask import session as flask_session
from flask_babel import gettext as _
from flask_babel import ngettext

from idp.accounts.sessions import BrowserSession
from idp.api.cookies import presented_device_token, set_device_cookie
from idp.api.guard import client_info
from idp.errors import (
    AccountDisabled,
    DeliveryUnavailable,
    InvalidCode,
    InvalidCredentials,
    InvalidTempToken,
    RateLimited,
    ValidationFailed,
    answer_refused,
)
from idp.extensions import db
from idp.mfa.challenge import ChallengeStarted
from idp.mfa.masking import mask_email, mask_phone
from idp.oidc.claims import asks_for_mfa
from idp.oidc.models import OAuthClient
from idp.ratelimits import rate_limited
from idp.web.agents import describe_in_english
from idp.web.formatting import minutes_to_wait
from idp.web.forms import code_error, typed_code
from idp.web.sso import allow_form_target, current_browser_session, next_params, reset_browser_state, safe_next, set_sso_cookie
from idp.wiring import browser_login_flow, login_challenges, session_service, two_factor_service

bp = Blueprint("login", __name__, url_prefix="/login")

LOGIN_STATE = "login"  # Flask session: the pending second factor of this browser's sign-in
PENDING = "authz"


def too_many_attempts(exc: RateLimited) -> str:
    return ngettext(
        "Too many attempts. Try again in %(num)d minute.", "Too many attempts. Try again in %(num)d minutes.", minutes_to_wait(exc.retry_after)
    )


def _client_for(next_url: str | None) -> OAuthClient | None:
    client_id = next_params(next_url).get("client_id")
    return db.session.get(OAuthClient, client_id) if client_id else None


def _allow_return_to(next_url: str | None) -> None:
    """The sign-in forms may end at the relying party (no page left to show): let them."""
    client = _client_for(next_url)
    if client is not None:
        uri = next_params(next_url).get("redirect_uri") or next(iter(client.redirect_uris), None)
        if uri in client.redirect_uris:
            allow_form_target(uri)


def _second_factor_required(next_url: str | None) -> bool:
    client = _client_for(next_url)
    return bool(client and client.require_mfa) or asks_for_mfa(next_params(next_url).get("acr_values"))


def switch_browser_session(session: BrowserSession, cookie: str, page: Any) -> Response:
    """Replace any earlier browser session with the new one; `page` is the answer to send."""
    previous = current_browser_session()
    if previous is not None and previous.id != session.id:
        session_service().replace_browser_session(previous.id, session, client=client_info())
    reset_browser_state(keep=(PENDING,))
    response = current_app.make_response(page)
    set_sso_cookie(response, cookie)
    return response


def _signed_in(session: BrowserSession, cookie: str, next_url: str | None, device_token: str | None = None) -> Response:
    response = switch_browser_session(session, cookie, redirect(next_url or url_for("account.home")))
    if device_token:
        set_device_cookie(response, device_token)
    return response


@bp.route("", methods=["GET", "POST"])
def login() -> Any:
    next_url = safe_next(request.values.get("next"))
    client = _client_for(next_url)
    identifier = (request.form.get("identifier") if request.method == "POST" else request.args.get("login_hint")) or ""
    errors: dict[str, str] = {}
    status = 200
    if request.method == "POST":
        password = request.form.get("password", "")
        if not identifier.strip():
            errors["identifier"] = _("Enter your email address or username")
        if not password:
            errors["password"] = _("Enter your password")
        if not errors:
            try:
                outcome = browser_login_flow().with_password(
                    identifier,
                    password,
                    device_token=presented_device_token(),
                    client=client_info(),
                    second_factor_required=_second_factor_required(next_url),
                )
            except (InvalidCredentials, AccountDisabled) as exc:
                errors["password"] = (
                    _("This account is disabled") if isinstance(exc, AccountDisabled) else _("The email, username or password is not right")
                )
                status = 401
            except RateLimited as exc:
                answer_refused(exc)
                errors["__all__"] = too_many_attempts(exc)
                status = 429
            else:
                if outcome.challenge is not None:
                    return _ask_second_factor(outcome.challenge, outcome.user.id, next_url)
                assert outcome.session is not None
                return _signed_in(*outcome.session, next_url)
    _allow_return_to(next_url)
    page = render_template(
        "login.html",
        title=_("Sign in"),
        client_name=client.name if client else None,
        identifier=identifier,
        next_url=next_url,
        errors=errors,
    )
    return page, status


def _state() -> dict[str, Any] | None:
    state = flask_session.get(LOGIN_STATE)
    return state if isinstance(state, dict) and state.get("token") else None


def _destinations(user_id: str) -> dict[str, str]:
    """Where SMS and email codes go, masked ("***1234")."""
    found: dict[str, str] = {}
    for method in two_factor_service().methods(user_id):
        if method.type == "sms":
            found["sms"] = mask_phone(method.phone_number) or ""
        elif method.type == "email":
            found["email"] = mask_email(method.email) or ""
    return found


def _expired() -> Any:
    """Back to the sign-in page, saying why; still on the way to where the sign-in was going (the
    application that sent the user, whose name the page shows)."""
    state = flask_session.pop(LOGIN_STATE, None)
    next_url = safe_next(state.get("next")) if isinstance(state, dict) else None
    return redirect(url_for("login.login", expired=1, next=next_url))


@bp.route("/two-factor", methods=["GET", "POST"])
@rate_limited("two_factor", methods=["POST"])
def second_factor() -> Any:
    state = _state()
    if state is None:
        return _expired()
    methods: list[str] = state["methods"]
    method = request.values.get("method") or ("totp" if "totp" in methods else state.get("sent") or methods[0])
    if method not in methods:
        method = methods[0]
    errors: dict[str, str] = {}
    notice = None
    status = 200
    if request.method == "POST":
        trust = request.form.get("trust_device") == "1"
        if method == "backup_code":  # the service reads its dash, case and spaces
            code = "".join(request.form.get("code", "").split())
            problem = None if code else _("Enter the code")
        else:  # a code of another form is told so, not checked: it costs none of the five tries
            code = typed_code()
            problem = code_error(code, empty=_("Enter the 6-digit code"))
        if problem:
            errors["code"] = problem
            status = 400
        else:
            challenges = login_challenges()
            try:
                if method == "backup_code":
                    passed = challenges.verify_backup_code(state["token"], code, client=client_info())
                else:
                    passed = challenges.verify(state["token"], code, client=client_info())
            except InvalidTempToken:
                return _expired()
            except InvalidCode:
                errors["code"] = (
                    _("That backup code is not right or was already used") if method == "backup_code"
                    else _("The code is not right. Check it and try again")
                )
                status = 400
            except RateLimited as exc:
                answer_refused(exc)
                errors["__all__"] = too_many_attempts(exc)
                status = 429
            else:
                outcome = browser_login_flow().with_second_factor(
                    passed, trust_device=trust, device_name=describe_in_english(request.headers.get("User-Agent")), client=client_info(),
                    presented_device=presented_device_token(),
                )
                assert outcome.session is not None
                return _signed_in(*outcome.session, state.get("next"), device_token=outcome.device_token)
    elif request.args.get("sent"):
        notice = _("We sent a new code.")
    return _two_factor_page(state, method, errors=errors, notice=notice), status


def _two_factor_page(state: dict[str, Any], method: str, *, errors: dict[str, str], notice: str | None, title: str | None = None) -> str:
    _allow_return_to(state.get("next"))
    code_sent = state.get("sent") == method  # a code of this channel went out for this sign-in
    titles = {
        "totp": _("Enter the code from your authenticator app"),
        "sms": _("Enter the code we sent to your phone") if code_sent else _("Get a code by text message"),
        "email": _("Enter the code we sent to your email") if code_sent else _("Get a code by email"),
        "backup_code": _("Enter one of your backup codes"),
    }
    return render_template(
        "two_factor.html",
        title=title or titles[method],
        method=method,
        methods=state["methods"],
        destinations=_destinations(state["user"]),
        code_sent=code_sent,
        errors=errors,
        notice=notice,
    )


@bp.post("/two-factor/send")
def send_code() -> Any:
    """Send (or send again) a code by SMS or email for this sign-in. Limited as a code sent (per
    user, a cooldown), not as a code tried: clicks here must not spend the tries of the code."""
    state = _state()
    if state is None:
        return _expired()
    method = request.form.get("method", "")
    if method not in ("sms", "email") or method not in state["methods"]:
        return redirect(url_for("login.second_factor"))
    try:
        login_challenges().resend(state["token"], method, client=client_info())
    except InvalidTempToken:
        return _expired()
    except ValidationFailed:  # the method was removed since the sign-in began: offer the others
        left = [m for m in state["methods"] if m != method]
        if not left or not two_factor_service().methods(state["user"]):
            # no second factor left (2FA is off, its backup codes gone with it): the password alone
            # signs in now, so the sign-in starts again rather than asking for a way that is gone
            return _expired()
        flask_session[LOGIN_STATE] = {**state, "methods": left}
        return redirect(url_for("login.second_factor"))
    except RateLimited as exc:
        answer_refused(exc)
        if exc.retry_after <= 90:  # the 30 seconds between two codes
            errors = {
                "__all__": ngettext(
                    "Please wait %(num)d second before asking for another code.",
                    "Please wait %(num)d seconds before asking for another code.",
                    exc.retry_after,
                )
            }
            title = _("Please wait before asking for another code")
        else:  # the hourly number of codes
            wait = ngettext(
                "Try again in %(num)d minute, or use another way to sign in.",
                "Try again in %(num)d minutes, or use another way to sign in.",
                minutes_to_wait(exc.retry_after),
            )
            errors = {"__all__": _("You have asked for several codes in the last hour.") + " " + wait}
            title = _("Too many codes asked for")
        return _two_factor_page(state, method, errors=errors, notice=None, title=title), 429
    except DeliveryUnavailable:  # the server's SMS or email setting is gone since the method was set up
        db.session.rollback()  # the code made for it is not kept
        errors = {"__all__": _("This service cannot send codes this way at the moment. Use another way to sign in.")}
        return _two_factor_page(state, method, errors=errors, notice=None), 503
    flask_session[LOGIN_STATE] = {**state, "sent": method}
    return redirect(url_for("login.second_factor", method=method, sent=1))


@bp.get("/step-up")
def step_up() -> Any:
    """A signed-in user whose relying party wants a second factor: ask for it, not the password."""
    next_url = safe_next(request.args.get("next"))
    sso = current_browser_session()
    if sso is None or not sso.user.two_factor_enabled:
        return redirect(url_for("login.login", next=next_url))
    state = _state()
    challenges = login_challenges()
    if state is not None and challenges.still_open(state["token"], sso.user.id):
        # the same browser again (a reload, or another visit while the first is pending): the code
        # sent for the open challenge still works, and no new one goes out
        flask_session[LOGIN_STATE] = {**state, "next": next_url}
        return redirect(url_for("login.second_factor", method=state.get("sent")))
    # No code goes out by itself here: any site can send a signed-in browser to this page with a
    # link, and each visit sent an SMS or email (a GET is to change nothing, RFC 9110 9.2.1). The
    # page offers to send one, a POST with the form's CSRF token.
    return _ask_second_factor(challenges.start(sso.user, client=client_info(), send_first_code=False), sso.user.id, next_url)


def _ask_second_factor(challenge: ChallengeStarted, user_id: str, next_url: str | None) -> Any:
    flask_session[LOGIN_STATE] = {
        "token": challenge.temp_token,
        "methods": challenge.methods,
        "user": user_id,
        "next": next_url,
        "sent": challenge.code_sent_by,
    }
    return redirect(url_for("login.second_factor"))
