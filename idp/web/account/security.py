"""Account pages: trusted devices, where you're signed in, security activity and connected apps.

Thin views over the services the JSON API uses (TwoFactorService, SessionService, AuditLog,
ConsentService). Removing and signing out only take access away, so they need a sign-in, not a
recent one. Another user's device, session or app is treated like one removed already: nothing
happens, and the list says so."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from flask import current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import ngettext
from sqlalchemy import select

from idp.accounts.models import Session
from idp.accounts.sessions import API_CLIENT_ID, BROWSER_CLIENT_ID
from idp.api.cookies import clear_device_cookie, presented_device_token
from idp.api.guard import client_info
from idp.audit.service import MAX_PAGE
from idp.clock import iso
from idp.errors import NotFound
from idp.extensions import db
from idp.mfa.models import TrustedDevice
from idp.oidc.consent import SCOPE_WORDS
from idp.oidc.models import OAuthClient
from idp.security.digests import digest
from idp.web.account import bp, requires_sign_in, signed_in
from idp.web.activity import OTHERS_REVOKED, Line, app_namer, describe_event, referenced_clients
from idp.web.agents import describe, describe_in_english, recognise
from idp.web.sso import clear_sso_cookie, reset_browser_state
from idp.wiring import audit_log, consents, session_service, trusted_devices, two_factor_service

ACTIVITY_PER_PAGE = 20


def _app_names(client_ids: Iterable[str]) -> dict[str, str]:
    ids = sorted(set(client_ids) - {API_CLIENT_ID, BROWSER_CLIENT_ID})
    if not ids:
        return {}
    rows = db.session.execute(select(OAuthClient.client_id, OAuthClient.name).where(OAuthClient.client_id.in_(ids)))
    return {row.client_id: row.name for row in rows}


def _known_device(user_agent: str | None) -> str | None:
    """"Firefox on Linux", or None when the user agent says nothing people would recognise."""
    return describe(user_agent) if any(recognise(user_agent)) else None


# -- trusted devices ----------------------------------------------------------------------------


def _this_device_hash() -> str | None:
    """The digest of this browser's trusted-device cookie: devices keep only the digest of their token."""
    token = presented_device_token()
    return digest(token) if token else None


def _device_name(device: TrustedDevice) -> str:
    """The device's name; the one the sign-in gave it (its user agent in English words) is said in
    the page's language."""
    if not device.device_name or device.device_name == describe_in_english(device.user_agent):
        return describe(device.user_agent)
    return device.device_name


@bp.get("/devices")
@requires_sign_in
def devices() -> str:
    user = signed_in().user
    return render_template(
        "account/devices.html",
        title=_("Trusted devices"),
        devices=trusted_devices().list(user.id),
        this_device=_this_device_hash(),
        device_name=_device_name,
        describe=describe,
        iso=iso,
        two_factor_on=user.two_factor_enabled,
        two_factor_url=url_for("account.two_factor"),
        section="devices",
    )


@bp.post("/devices/<device_id>/remove")
@requires_sign_in
def remove_device(device_id: str) -> Any:
    user = signed_in().user
    device = next((d for d in trusted_devices().list(user.id) if d.id == device_id), None)
    name = _device_name(device) if device is not None else _("The device")
    was_this_one = device is not None and device.token_hash == _this_device_hash()
    response = current_app.make_response(redirect(url_for("account.devices")))
    try:
        two_factor_service().forget_devices(user, client=client_info(), device_id=device_id)
    except NotFound:  # removed already, or not this user's: nothing happens
        flash(_("That device was not on your list any more."))
        return response
    flash(_("%(name)s is no longer trusted: it will be asked for a code at the next sign-in.", name=name))
    if was_this_one:
        clear_device_cookie(response)
    return response


@bp.post("/devices/remove-all")
@requires_sign_in
def remove_all_devices() -> Any:
    count = two_factor_service().forget_devices(signed_in().user, client=client_info())
    if count:
        flash(_("No device is trusted any more: each one will be asked for a code at the next sign-in."))
    else:
        flash(_("There were no trusted devices to remove."))
    response = current_app.make_response(redirect(url_for("account.devices")))
    clear_device_cookie(response)
    return response


# -- sessions -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class SessionEntry:
    """One live session in words: what it is, and whether it is this browser (or one of its apps)."""

    session: Session
    kind: str  # "browser" | "api" | "app"
    title: str
    current: bool = False
    from_this_browser: bool = False

    @property
    def id(self) -> str:
        return self.session.id


def _session_entries() -> list[SessionEntry]:
    here = signed_in()
    sessions = session_service().active(here.user.id)
    names = _app_names(s.client_id for s in sessions)
    entries = []
    for session in sessions:
        if session.client_id == BROWSER_CLIENT_ID:
            entries.append(SessionEntry(session, "browser", describe(session.user_agent), current=session.id == here.id))
        elif session.client_id == API_CLIENT_ID:
            agent = _known_device(session.user_agent)
            title = _("JSON API client (%(device)s)", device=agent) if agent else _("JSON API client")
            entries.append(SessionEntry(session, "api", title))
        else:
            name = names.get(session.client_id) or _("An app that is no longer registered")
            entries.append(
                SessionEntry(
                    session, "app", _("%(name)s (connected app)", name=name), from_this_browser=session.browser_session_id == here.id
                )
            )
    # this browser first, then its apps, then the rest as the service orders them (last used first)
    return sorted(entries, key=lambda e: (not e.current, not e.from_this_browser))


@bp.get("/sessions")
@requires_sign_in
def sessions() -> str:
    entries = _session_entries()
    return render_template(
        "account/sessions.html",
        title=_("Where you're signed in"),
        entries=entries,
        others=sum(1 for e in entries if not e.current and not e.from_this_browser),
        iso=iso,
        section="sessions",
    )


@bp.post("/sessions/<session_id>/revoke")
@requires_sign_in
def revoke_session(session_id: str) -> Any:
    here = signed_in()
    if session_id == here.id:
        # signing out this browser: as the Sign out button does, its apps' sessions end with it
        session_service().end_browser_session(here.id, client=client_info())
        reset_browser_state()
        response = current_app.make_response(redirect(url_for("web.home")))
        clear_sso_cookie(response)
        return response
    entry = next((e for e in _session_entries() if e.id == session_id), None)
    if entry is None:  # ended already, or not this user's: nothing happens
        flash(_("That session had already ended."))
    else:
        session_service().revoke_one(here.user.id, session_id, client=client_info())
        flash(_("Signed out: %(session)s.", session=entry.title))
    return redirect(url_for("account.sessions"))


@bp.post("/sessions/revoke-others")
@requires_sign_in
def revoke_other_sessions() -> Any:
    here = signed_in()
    count = session_service().revoke_all_except(here.user.id, here.id, reason=OTHERS_REVOKED, client=client_info())
    if count:
        flash(
            ngettext(
                "Signed out everywhere else (%(num)d session). This browser stays signed in.",
                "Signed out everywhere else (%(num)d sessions). This browser stays signed in.",
                count,
            )
        )
    else:
        flash(_("You were not signed in anywhere else."))
    return redirect(url_for("account.sessions"))


# -- security activity --------------------------------------------------------------------------


@dataclass(frozen=True)
class ActivityEntry:
    line: Line
    created_at: Any
    ip_address: str | None
    device: str | None


@bp.get("/activity")
@requires_sign_in
def activity() -> str:
    user = signed_in().user
    # past the end is the last page anyway; beyond MAX_PAGE, the offset overflowed the database's integers (a 500)
    number = min(max(request.args.get("page", 1, type=int) or 1, 1), MAX_PAGE)
    log = audit_log()
    page = log.for_user(user.id, page=number, limit=ACTIVITY_PER_PAGE)
    if page.pages and number > page.pages:  # past the end: show the last page
        page = log.for_user(user.id, page=page.pages, limit=ACTIVITY_PER_PAGE)
    name = app_namer(_app_names(referenced_clients(e.details for e in page.items)))
    entries = [
        ActivityEntry(
            describe_event(e.event, e.details, success=e.success, app_name=name),
            e.created_at,
            None if e.by_administrator else e.ip_address,
            None if e.by_administrator else _known_device(e.user_agent),
        )
        for e in page.items
    ]
    return render_template(
        "account/activity.html",
        title=_("Security activity"),
        entries=entries,
        page=page,
        iso=iso,
        password_url=url_for("account.password"),
        section="activity",
    )


# -- connected apps -----------------------------------------------------------------------------


@dataclass(frozen=True)
class AppEntry:
    client_id: str
    name: str
    can_see: list[str]
    since: Any
    updated: Any
    signed_in: int  # live sessions of the app


def _scope_words(scopes: Iterable[str]) -> list[str]:
    order = list(SCOPE_WORDS)
    known = sorted((s for s in scopes if s in SCOPE_WORDS), key=order.index)
    return [str(SCOPE_WORDS[s]) for s in known] + [_("“%(scope)s”", scope=s) for s in sorted(set(scopes) - set(SCOPE_WORDS))]


def _app_entries() -> list[AppEntry]:
    user = signed_in().user
    given = consents().given(user.id)
    names = _app_names(c.client_id for c in given)
    live: dict[str, int] = {}
    for session in session_service().active(user.id):
        live[session.client_id] = live.get(session.client_id, 0) + 1
    return [
        AppEntry(
            c.client_id,
            names.get(c.client_id) or _("An app that is no longer registered"),
            _scope_words(c.scopes),
            c.created_at,
            c.updated_at,
            live.get(c.client_id, 0),
        )
        for c in given
    ]


@bp.get("/apps")
@requires_sign_in
def apps() -> str:
    return render_template("account/apps.html", title=_("Connected apps"), apps=_app_entries(), iso=iso, section="apps")


@bp.post("/apps/<client_id>/revoke")
@requires_sign_in
def revoke_app(client_id: str) -> Any:
    entry = next((a for a in _app_entries() if a.client_id == client_id), None)
    if entry is None or not consents().revoke(signed_in().user.id, client_id, client=client_info()):
        flash(_("That app had no access to your account any more."))  # or not this user's: nothing happens
    else:
        flash(_("%(name)s can no longer access your account, and it was signed out. It will ask before it can again.", name=entry.name))
    return redirect(url_for("account.apps"))
