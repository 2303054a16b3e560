"""Text ready for translation: Flask-Babel with catalogues in `translations/` (TRANSLATIONS_DIR).

Templates mark their text with `_()` / `{% trans %}`, the views with `gettext` (`lazy_gettext` for
module-level constants); `make messages` extracts it into `translations/messages.pot`, from which
a translator starts a language (`pybabel init`, then `pybabel compile`). The page language follows
`ui_locales` of an authorization request, then the browser's Accept-Language, among the languages
that have a compiled catalogue; English otherwise. The email and SMS templates are not translated,
nor is anything under the JSON API's base path (its messages, and its /docs reference page)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from flask import Flask, has_request_context, request
from flask import session as flask_session
from flask_babel import Babel, get_locale

from idp.config import DEFAULT_TRANSLATIONS_DIR

DEFAULT_LANGUAGE = "en"


def available_languages(directory: Path = DEFAULT_TRANSLATIONS_DIR) -> list[str]:
    """English (the text in the code) and every language with a compiled catalogue in `directory`."""
    found = (
        sorted(p.name for p in directory.iterdir() if (p / "LC_MESSAGES" / "messages.mo").is_file()) if directory.is_dir() else []
    )
    return [DEFAULT_LANGUAGE, *[lang for lang in found if lang != DEFAULT_LANGUAGE]]


def pick_language(tags: str, languages: Sequence[str]) -> str | None:
    """The first of space-separated language tags (`fr-CA en`, as ui_locales) that has a catalogue,
    by the whole tag, its primary language, or a catalogue of that language for a region (`pt`
    or `pt-PT` takes `pt_BR`, as Accept-Language does)."""
    for tag in tags.split():
        code = tag.replace("-", "_").lower()
        primary = code.split("_")[0]
        found = next((lang for lang in languages if lang.lower() == code), None)
        found = found or next((lang for lang in languages if lang.lower() == primary), None)
        found = found or next((lang for lang in languages if lang.lower().split("_")[0] == primary), None)
        if found:
            return found
    return None


def requested_ui_locales() -> str:
    """`ui_locales` of the authorization request this page serves: on the request itself
    (/oauth/authorize, the consent page), in its `next` (the sign-in, registration and enrolment
    pages it redirects to), or in the `next` of the sign-in waiting for its second factor."""
    from idp.web.sso import next_params

    if request.values.get("ui_locales"):
        return request.values["ui_locales"]
    target = request.values.get("next")
    if not target and request.blueprint == "login":
        from idp.web.login import LOGIN_STATE

        state = flask_session.get(LOGIN_STATE)
        target = state.get("next") if isinstance(state, dict) else None
    return next_params(target if isinstance(target, str) else None).get("ui_locales", "")


def install_babel(app: Flask, translations: Path = DEFAULT_TRANSLATIONS_DIR, api_prefix: str = "/api") -> None:
    languages = available_languages(translations)

    def select_locale() -> str:
        if len(languages) == 1 or not has_request_context():  # an app context alone: a command, the worker
            return DEFAULT_LANGUAGE
        if request.path == api_prefix or request.path.startswith(api_prefix + "/"):  # the API is in English
            return DEFAULT_LANGUAGE
        return (
            pick_language(requested_ui_locales(), languages) or request.accept_languages.best_match(languages) or DEFAULT_LANGUAGE
        )

    Babel(app, locale_selector=select_locale, default_translation_directories=str(translations), default_timezone="UTC")
    # for <html lang>: a BCP 47 tag ("pt-BR"), where Babel names the locale "pt_BR"
    app.jinja_env.globals["page_language"] = lambda: str(get_locale() or DEFAULT_LANGUAGE).replace("_", "-")
    # for <html dir>: "rtl" for Arabic, Hebrew, Persian..., whose text reads from the right
    app.jinja_env.globals["page_direction"] = lambda: getattr(get_locale(), "text_direction", "ltr")
