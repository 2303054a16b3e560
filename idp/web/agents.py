"""A user agent string in words people recognise ("Firefox on Linux")."""

from __future__ import annotations

from flask_babel import gettext as _

BROWSERS = [("Edg/", "Edge"), ("OPR/", "Opera"), ("Firefox/", "Firefox"), ("Chromium/", "Chromium"), ("Chrome/", "Chrome"),
            ("Safari/", "Safari")]
SYSTEMS = [("Android", "Android"), ("iPhone", "iPhone"), ("iPad", "iPad"), ("Windows", "Windows"), ("Mac OS X", "macOS"),
           ("CrOS", "ChromeOS"), ("Linux", "Linux")]


def recognise(user_agent: str | None) -> tuple[str | None, str | None]:
    """The browser and the system a user agent names (proper names, not translated), or None."""
    if not user_agent:
        return None, None
    browser = next((name for marker, name in BROWSERS if marker in user_agent), None)
    system = next((name for marker, name in SYSTEMS if marker in user_agent), None)
    return browser, system


def describe(user_agent: str | None) -> str:
    """In the page's language: "Firefox on Linux", "Firefox", "Linux" or "Unknown device"."""
    browser, system = recognise(user_agent)
    if browser and system:
        return _("%(browser)s on %(system)s", browser=browser, system=system)
    return browser or system or _("Unknown device")


def describe_in_english(user_agent: str | None) -> str:
    """The same words in English, as stored (a trusted device's name, the audit log's details)."""
    browser, system = recognise(user_agent)
    if browser and system:
        return f"{browser} on {system}"
    return browser or system or "Unknown device"
