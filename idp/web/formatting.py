"""Dates as people read them on the pages: clearly in UTC, with a relative hint, in the page's language."""

from __future__ import annotations

from datetime import datetime

from babel.dates import format_datetime
from flask import Flask
from flask_babel import get_locale, ngettext
from flask_babel import gettext as _

from idp.clock import as_utc, utcnow


def _locale() -> str:
    return str(get_locale() or "en")


def day(value: datetime) -> str:
    """'1 Dec 2026' (month names in the page's language)."""
    return format_datetime(as_utc(value), "d MMM y", locale=_locale())


def when(value: datetime | None) -> str:
    """'1 Dec 2026, 08:31 UTC'."""
    if value is None:
        return _("never")
    return _("%(moment)s UTC", moment=format_datetime(as_utc(value), "d MMM y, HH:mm", locale=_locale()))


def ago(value: datetime | None, now: datetime | None = None) -> str:
    """'just now', '5 minutes ago', '2 hours ago', 'yesterday', '3 days ago', or the date."""
    if value is None:
        return _("never")
    seconds = int(((now or utcnow()) - as_utc(value)).total_seconds())
    if seconds < 60:
        return _("just now")
    if seconds < 3600:
        return ngettext("%(num)d minute ago", "%(num)d minutes ago", seconds // 60)
    if seconds < 86400:
        return ngettext("%(num)d hour ago", "%(num)d hours ago", seconds // 3600)
    days = seconds // 86400
    if days == 1:
        return _("yesterday")
    if days < 30:
        return ngettext("%(num)d day ago", "%(num)d days ago", days)
    return when(value)


def minutes_to_wait(seconds: int) -> int:
    """A wait in whole minutes, rounded up and at least 1: 100 seconds is 2 minutes (not 1, after
    which the next try is refused again), 20 seconds is 1 (not 0)."""
    return max(1, -(-seconds // 60))


def too_many_emails(seconds: int) -> str:
    return ngettext(
        "Too many emails sent. Try again in %(num)d minute.", "Too many emails sent. Try again in %(num)d minutes.", minutes_to_wait(seconds)
    )


def register_filters(app: Flask) -> None:
    app.jinja_env.filters["when"] = when
    app.jinja_env.filters["ago"] = ago
