"""Security events in plain sentences for the activity page ("Signed in with your password").

`describe_event` turns one audit event (its name, details and success flag) into a `Line`: the
sentence and whether it deserves a second look (a failure, a sign of a copied token). Every event
of `idp.audit.service.EVENTS` has its own wording; any other event, or details of an unexpected
shape, still give a sentence: this never raises. The sentences are in the page's language
(Flask-Babel, English outside a request); the audit log itself keeps no words."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_babel import ngettext

from idp.accounts.sessions import API_CLIENT_ID, BROWSER_CLIENT_ID

log = logging.getLogger(__name__)

# the second step of a sign-in, as in "Signed in with your password and …"
# (lazy: translated when a sentence is made, in that request's language)
SECOND_STEP = {
    "totp": _l("your authenticator app"),
    "sms": _l("a code sent by text message"),
    "email": _l("a code sent by email"),
    "backup_code": _l("a backup code"),
}
# a way of two-step verification, as in "Turned on … for two-step verification"
FACTOR = {"totp": _l("your authenticator app"), "sms": _l("text messages"), "email": _l("codes by email")}
FAILED_SIGN_IN = {
    "wrong_password": _l("Someone tried to sign in with a wrong password"),
    "throttled": _l("A sign-in was refused after too many wrong passwords"),
    "disabled": _l("Someone tried to sign in while the account was disabled"),
    "unknown_user": _l("Someone tried to sign in with an unknown email address or username"),
}
# why one session ended
SESSION_ENDED = {
    "revoked_by_user": _l("Signed out one of your sessions"),
    "logout": _l("Signed out"),
    "refresh_token_reuse": _l("A session was ended because an old sign-in token was used again (it may have been copied)"),
    "authorization_code_reuse": _l("A session was ended because a sign-in code was used twice"),
    "password_changed": _l("A session was ended because your password changed"),
    "password_reset": _l("A session was ended because your password was reset"),
    "consent_revoked": _l("A session was ended because you removed an app's access"),
    "revoked_by_client": _l("An app signed out"),
    "replaced": _l("A session was replaced by a new sign-in"),
}
SUSPICIOUS_REASONS = {"refresh_token_reuse", "authorization_code_reuse"}
OTHERS_REVOKED = "signed_out_elsewhere"  # the reason of "Sign out everywhere else"
ADMIN_REASONS = {"revoked_by_admin", "user_disabled", "2fa_reset"}


@dataclass(frozen=True)
class Line:
    sentence: str
    attention: bool = False  # a failure or a warning sign: the page marks it


AppName = Callable[[str | None], str]


def referenced_clients(details: Iterable[Mapping[str, Any] | None]) -> set[str]:
    """The client ids the events name (to look their names up in one query)."""
    found = set()
    for entry in details:
        value = entry.get("clientId") if isinstance(entry, Mapping) else None
        if isinstance(value, str) and value:
            found.add(value)
    return found


def app_namer(names: Mapping[str, str]) -> AppName:
    """A function naming a client id: its registered name, or plain words when it is gone."""

    def name(client_id: str | None) -> str:
        if not client_id:
            return _("an app")
        if client_id in names:
            return names[client_id]
        if client_id == API_CLIENT_ID:
            return _("the JSON API")
        if client_id == BROWSER_CLIENT_ID:
            return _("this website")
        return _("an app that is no longer registered")

    return name


def describe_event(event: str, details: Mapping[str, Any] | None = None, *, success: bool = True, app_name: AppName | None = None) -> Line:
    details = details if isinstance(details, Mapping) else {}
    namer = app_name or app_namer({})
    describe = WORDING.get(event)
    if describe is not None:
        try:
            line = describe(_Details(details), success, namer)
        except Exception:  # details of an unexpected shape: still a sentence, never an error page
            log.warning("audit event %r with unexpected details %r", event, details, exc_info=True)
        else:
            return line if success or line.attention else Line(line.sentence, attention=True)
    return fallback(event, success)


def fallback(event: str, success: bool = True) -> Line:
    words = str(event).replace("_", " ").strip() or _("unnamed")
    return Line(_("Something happened on your account (%(event)s)", event=words), attention=not success)


# -- the wording of each event ----------------------------------------------------------------


class _Details:
    """Typed reads of an event's details: a value of the wrong type reads as missing."""

    def __init__(self, data: Mapping[str, Any]) -> None:
        self._data = data

    def text(self, key: str) -> str | None:
        value = self._data.get(key)
        return value if isinstance(value, str) and value else None

    def number(self, key: str) -> int | None:
        value = self._data.get(key)
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    def listed(self, key: str) -> list[Any]:
        value = self._data.get(key)
        return value if isinstance(value, list) else []

    def flag(self, key: str) -> bool | None:
        value = self._data.get(key)
        return value if isinstance(value, bool) else None

    def has(self, key: str) -> bool:
        return key in self._data


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


Wording = Callable[[_Details, bool, AppName], Line]


def _register(d: _Details, success: bool, app: AppName) -> Line:
    return Line(_("Created your account"))


def _login_success(d: _Details, success: bool, app: AppName) -> Line:
    method = d.text("method")
    if method == "pwd":
        return Line(_("Signed in with your password"))
    if method == "pwd+trusted_device":
        return Line(_("Signed in with your password on a trusted device, without the second step"))
    if method in SECOND_STEP:
        return Line(_("Signed in with your password and %(second_step)s", second_step=SECOND_STEP[method]))
    return Line(_("Signed in"))


def _login_failed(d: _Details, success: bool, app: AppName) -> Line:
    return Line(str(FAILED_SIGN_IN.get(d.text("reason") or "", _("A sign-in did not succeed"))), attention=True)


def _logout(d: _Details, success: bool, app: AppName) -> Line:
    return Line(_("Signed out"))


def _session_revoked(d: _Details, success: bool, app: AppName) -> Line:
    reason = d.text("reason") or ""
    count = d.number("count")
    if count is not None:  # several at once
        if reason == OTHERS_REVOKED:
            return Line(ngettext("Signed out everywhere else (%(num)d session)", "Signed out everywhere else (%(num)d sessions)", count))
        if reason == "revoked_by_user":
            return Line(ngettext("Signed out everywhere (%(num)d session)", "Signed out everywhere (%(num)d sessions)", count))
        if reason == "password_changed":
            return Line(
                ngettext(
                    "Signed out everywhere because your password changed (%(num)d session)",
                    "Signed out everywhere because your password changed (%(num)d sessions)",
                    count,
                )
            )
        if reason == "password_reset":
            return Line(
                ngettext(
                    "Signed out everywhere because your password was reset (%(num)d session)",
                    "Signed out everywhere because your password was reset (%(num)d sessions)",
                    count,
                )
            )
        if reason in ADMIN_REASONS:
            return Line(ngettext("An administrator ended %(num)d session", "An administrator ended %(num)d sessions", count), attention=True)
        return Line(ngettext("Ended %(num)d session", "Ended %(num)d sessions", count))
    return Line(str(SESSION_ENDED.get(reason, _("A session was ended"))), attention=reason in SUSPICIOUS_REASONS)


def _factor(d: _Details) -> str:
    return str(FACTOR.get(d.text("method") or "", _("a way of signing in")))


def _2fa_enabled(d: _Details, success: bool, app: AppName) -> Line:
    replaced, new_codes, factor = bool(d.listed("replacedMethodIds")), d.flag("backupCodesReplaced") is True, _factor(d)
    if replaced and new_codes:
        return Line(_("Replaced %(factor)s used for two-step verification; your old backup codes no longer work", factor=factor), attention=True)
    if replaced:
        return Line(_("Replaced %(factor)s used for two-step verification", factor=factor), attention=True)
    if new_codes:
        return Line(_("Turned on %(factor)s for two-step verification; your old backup codes no longer work", factor=factor), attention=True)
    return Line(_("Turned on %(factor)s for two-step verification", factor=factor))


def _2fa_disabled(d: _Details, success: bool, app: AppName) -> Line:
    if d.text("reason") == "admin_reset":
        return Line(_("An administrator reset your two-step verification; it is now off"), attention=True)
    if d.flag("twoFactorEnabled") is False:
        return Line(_("Removed %(factor)s from two-step verification; two-step verification is now off", factor=_factor(d)), attention=True)
    return Line(_("Removed %(factor)s from two-step verification", factor=_factor(d)))


def _2fa_verified(d: _Details, success: bool, app: AppName) -> Line:
    return Line(_("Passed the second step with %(second_step)s", second_step=SECOND_STEP.get(d.text("method") or "", _("a code"))))


def _2fa_failed(d: _Details, success: bool, app: AppName) -> Line:
    if d.text("reason") == "replay":
        return Line(_("Someone entered a code from your authenticator app that had already been used"), attention=True)
    if d.text("method") == "backup_code":
        return Line(_("Someone entered a wrong backup code"), attention=True)
    return Line(_("Someone entered a wrong code at the second step of signing in"), attention=True)


def _backup_code_used(d: _Details, success: bool, app: AppName) -> Line:
    remaining = d.number("remaining")
    if remaining is None:
        return Line(_("Used a backup code"))
    return Line(ngettext("Used a backup code (%(num)d code left)", "Used a backup code (%(num)d codes left)", remaining))


def _backup_codes_generated(d: _Details, success: bool, app: AppName) -> Line:
    return Line(_("Made new backup codes; the old ones stopped working"))


def _trusted_device_added(d: _Details, success: bool, app: AppName) -> Line:
    name = d.text("deviceName")
    device = name if name else _("a device")
    return Line(_("Trusted %(device)s to skip the second step for 30 days", device=device))


def _trusted_device_removed(d: _Details, success: bool, app: AppName) -> Line:
    if d.text("deviceId"):
        return Line(_("Removed a trusted device"))
    count = d.number("count")
    return Line(_("Removed all trusted devices (%(count)s)", count=count) if count else _("Removed all trusted devices"))


def _email_verification_sent(d: _Details, success: bool, app: AppName) -> Line:
    return Line(_("Asked for a link to confirm your email address"))


def _email_verified(d: _Details, success: bool, app: AppName) -> Line:
    return Line(_("Confirmed your email address"))


def _password_changed(d: _Details, success: bool, app: AppName) -> Line:
    if not success:
        return Line(_("Someone tried to change your password but gave a wrong current password"), attention=True)
    return Line(_("Changed your password"))


def _password_reset_requested(d: _Details, success: bool, app: AppName) -> Line:
    return Line(_("Asked for a link to reset your password"))


def _password_reset_completed(d: _Details, success: bool, app: AppName) -> Line:
    return Line(_("Set a new password with a reset link"))


def _authorize(d: _Details, success: bool, app: AppName) -> Line:
    return Line(_("Signed in to %(app)s", app=app(d.text("clientId"))))


def _consent_granted(d: _Details, success: bool, app: AppName) -> Line:
    return Line(_("Allowed %(app)s to access your account", app=app(d.text("clientId"))))


def _token_issued(d: _Details, success: bool, app: AppName) -> Line:
    name = _cap(app(d.text("clientId")))
    if d.text("grantType") == "refresh_token":
        return Line(_("%(app)s renewed its access to your account", app=name))
    return Line(_("%(app)s received access to your account", app=name))


def _token_revoked(d: _Details, success: bool, app: AppName) -> Line:
    name = app(d.text("clientId"))
    reason = d.text("reason")
    if reason == "consent_revoked":
        return Line(_("Removed access for %(app)s", app=name))
    if d.has("tokenType") or reason == "revoked_by_client":
        return Line(_("%(app)s signed out", app=_cap(name)))
    return Line(_("Access for %(app)s was withdrawn", app=name))


def _api_key(action: str) -> Wording:
    def line(d: _Details, success: bool, app: AppName) -> Line:
        name = d.text("name")
        if action == "created":
            return Line(_("Created the API key %(name)s", name=name) if name else _("Created an API key"), attention=True)
        if action == "rotated":
            return Line(_("Replaced the secret of an API key"))
        if action == "updated":
            return Line(_("Changed the API key %(name)s", name=name) if name else _("Changed an API key"), attention=True)
        if action == "deleted":
            return Line(_("Deleted the API key %(name)s", name=name) if name else _("Deleted an API key"))
        if d.text("reason") == "password_reset":
            return Line(_("An API key was revoked because your password was reset"))
        if d.text("reason") == "user_disabled":
            return Line(_("An API key was revoked when an administrator disabled your account"))
        return Line(_("Revoked an API key"))

    return line


def _says(sentence: Any, *, attention: bool = False) -> Wording:
    """An event told in one fixed sentence."""

    def line(d: _Details, success: bool, app: AppName) -> Line:
        return Line(str(sentence), attention=attention)

    return line


def _webhook_disabled(d: _Details, success: bool, app: AppName) -> Line:
    if d.text("reason") == "password_reset":  # paused by the reset (WebhookService.pause_all), not by failures
        return Line(_("A webhook was turned off because your password was reset; turn it back on if it is yours"), attention=True)
    if d.text("reason") == "user_disabled":  # paused by an administrator's disable
        return Line(
            _("A webhook was turned off when an administrator disabled your account; turn it back on if it is yours"), attention=True
        )
    return Line(_("A webhook was turned off after its deliveries failed again and again"), attention=True)


def _role_changed(d: _Details, success: bool, app: AppName) -> Line:
    if d.flag("isAdmin"):
        return Line(_("Your account became an administrator"), attention=True)
    return Line(_("Your account is no longer an administrator"))


WORDING: dict[str, Wording] = {
    "register": _register,
    "login_success": _login_success,
    "login_failed": _login_failed,
    "logout": _logout,
    "session_revoked": _session_revoked,
    "2fa_enabled": _2fa_enabled,
    "2fa_disabled": _2fa_disabled,
    "2fa_verified": _2fa_verified,
    "2fa_failed": _2fa_failed,
    "backup_code_used": _backup_code_used,
    "backup_codes_generated": _backup_codes_generated,
    "trusted_device_added": _trusted_device_added,
    "trusted_device_removed": _trusted_device_removed,
    "email_verification_sent": _email_verification_sent,
    "email_verified": _email_verified,
    "password_changed": _password_changed,
    "password_reset_requested": _password_reset_requested,
    "password_reset_completed": _password_reset_completed,
    "authorize": _authorize,
    "consent_granted": _consent_granted,
    "token_issued": _token_issued,
    "token_revoked": _token_revoked,
    "api_key_created": _api_key("created"),
    "api_key_rotated": _api_key("rotated"),
    "api_key_revoked": _api_key("revoked"),
    "api_key_updated": _api_key("updated"),
    "api_key_deleted": _api_key("deleted"),
    "webhook_created": _says(_l("Added a webhook"), attention=True),
    "webhook_updated": _says(_l("Changed a webhook"), attention=True),
    "webhook_deleted": _says(_l("Deleted a webhook")),
    "webhook_disabled": _webhook_disabled,
    "user_disabled": _says(_l("An administrator disabled your account"), attention=True),
    "user_enabled": _says(_l("An administrator enabled your account again"), attention=True),
    "role_changed": _role_changed,
    "client_created": _says(_l("Registered an app (as an administrator)")),
    "client_updated": _says(_l("Changed an app's registration (as an administrator)")),
    "client_deleted": _says(_l("Deleted an app's registration (as an administrator)")),
    "client_secret_rotated": _says(_l("Replaced an app's secret (as an administrator)")),
}
