"""Text ready for translation: the committed catalogue template is complete, and a language with a
catalogue is used for the pages (Accept-Language, or ui_locales of the authorization request).

The French catalogue is built here, in a temporary folder (TRANSLATIONS_DIR), from a few messages:
enough to see the pages take it, without committing a translation."""

from __future__ import annotations

import html
import json
import re
import shlex
from pathlib import Path

import pytest
from babel.messages import Catalog
from babel.messages.frontend import CommandLineInterface
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from flask import Flask
from jinja2 import StrictUndefined

from idp.config import DEFAULT_TRANSLATIONS_DIR, Settings
from idp.i18n import available_languages, pick_language
from idp.web.activity import describe_event
from idp.web.registration import USERNAME_RULE, username_hint
from tests.conftest import Api
from tests.oidc.conftest import REDIRECT_URI, Browser, RelyingParty
from tests.oidc.test_clients import create

ROOT = Path(__file__).resolve().parents[2]
POT = ROOT / "translations" / "messages.pot"

FRENCH = {
    "Sign in": "Se connecter",
    "Password": "Mot de passe",
    "Skip to main content": "Aller au contenu principal",
    "to continue to <strong>%(name)s</strong>": "pour continuer vers <strong>%(name)s</strong>",
    "Enter your password": "Saisissez votre mot de passe",
    "There is a problem": "Il y a un problème",
    # the password policy's reasons, put together by the page
    "%(noun)s %(reasons)s": "%(noun)s %(reasons)s",
    "%(reasons)s; it %(reason)s": "%(reasons)s ; il %(reason)s",
    "Your password": "Votre mot de passe",
    "must contain %(classes)s": "doit contenir %(classes)s",
    "an upper-case letter": "une majuscule",
    "a digit": "un chiffre",
    "a symbol": "un symbole",
    "must not contain your username or email": "ne doit contenir ni votre nom d'utilisateur ni votre adresse",
    "This verification link is invalid or has expired": "Ce lien de vérification n'est pas valable ou a expiré",
    "Copied to the clipboard": "Copié dans le presse-papiers",
    ": not yet": " : pas encore",
    "This service is unavailable for a moment. Try again in a few seconds.": "Le service est indisponible un instant. Réessayez dans quelques secondes.",
}


def msgids(path: Path) -> set[str | tuple[str, ...]]:
    with path.open("rb") as handle:
        return {message.id for message in read_po(handle) if message.id}


def test_the_committed_messages_pot_is_up_to_date(tmp_path, monkeypatch):
    """`make messages` run again finds nothing the committed template lacks."""
    line = next(line for line in (ROOT / "Makefile").read_text().splitlines() if "pybabel extract" in line)
    args = shlex.split(line.strip())
    args[0] = "pybabel"
    args[args.index("-o") + 1] = str(tmp_path / "messages.pot")
    monkeypatch.chdir(ROOT)
    CommandLineInterface().run([args[0], "--quiet", *args[1:]])

    fresh = msgids(tmp_path / "messages.pot")
    assert "Sign in" in fresh and "Signed in with your password" in fresh  # templates and views were both read
    missing = fresh - msgids(POT)
    assert not missing, f"translations/messages.pot is stale, run `make messages`: {sorted(map(str, missing))[:10]}"


def test_the_template_holds_the_pages_text():
    found = msgids(POT)
    for words in ("Sign in", "There is a problem", "to continue to <strong>%(name)s</strong>", "Signed in with your password",
                  ("%(count)s active session", "%(count)s active sessions")):
        assert words in found


def test_the_pages_username_rule_is_the_schemas():
    """The registration page says the API's username rule in its own, translatable, words."""
    assert username_hint() == USERNAME_RULE


@pytest.fixture
def french(tmp_path: Path) -> Path:
    """A translations folder with a compiled French catalogue of FRENCH."""
    catalog = Catalog(locale="fr")
    for english, french in FRENCH.items():
        catalog.add(english, french)
    folder = tmp_path / "translations"
    (folder / "fr" / "LC_MESSAGES").mkdir(parents=True)
    with (folder / "fr" / "LC_MESSAGES" / "messages.mo").open("wb") as handle:
        write_mo(handle, catalog)
    return folder


@pytest.fixture
def app(make_app, french: Path) -> Flask:
    app = make_app(TRANSLATIONS_DIR=str(french))
    app.jinja_env.undefined = StrictUndefined
    return app


def lang(html: str) -> str:
    match = re.search(r'<html lang="([^"]*)"', html)
    assert match, html[:200]
    return match.group(1)


def title(html: str) -> str:
    match = re.search(r"<title>(.*?)</title>", html, re.S)
    assert match
    return match.group(1)


def test_the_translations_folder_is_a_setting(tmp_path):
    assert Settings.load({}, tmp_path).translations_dir == DEFAULT_TRANSLATIONS_DIR == ROOT / "translations"
    assert Settings.load({"TRANSLATIONS_DIR": "i18n/catalogues"}, tmp_path).translations_dir == ROOT / "i18n" / "catalogues"
    assert Settings.load({"TRANSLATIONS_DIR": str(tmp_path)}, tmp_path).translations_dir == tmp_path


def test_languages_are_those_with_a_compiled_catalogue(french, tmp_path):
    assert available_languages(french) == ["en", "fr"]
    assert available_languages(tmp_path / "nothing-here") == ["en"]
    assert pick_language("de fr-CA en", ["en", "fr"]) == "fr" and pick_language("de", ["en", "fr"]) is None
    # a language asked for without its region takes a regional catalogue, as Accept-Language does
    assert pick_language("pt", ["en", "pt_BR"]) == "pt_BR" and pick_language("pt-PT", ["en", "pt_BR"]) == "pt_BR"
    assert pick_language("pt-br", ["en", "pt", "pt_BR"]) == "pt_BR" and pick_language("pt-PT", ["en", "pt", "pt_BR"]) == "pt"
    assert pick_language("zh-Hant-TW", ["en", "zh_Hant_TW"]) == "zh_Hant_TW"


def test_the_browsers_language_is_used_when_a_catalogue_has_it(client):
    french = client.get("/login", headers={"Accept-Language": "fr-FR,fr;q=0.9,en;q=0.5"}).get_data(as_text=True)
    assert lang(french) == "fr"
    assert title(french).startswith("Se connecter ·")
    assert "Mot de passe" in french and "Aller au contenu principal" in french
    assert "Email address or username" in french  # not in the catalogue: the English text

    english = client.get("/login").get_data(as_text=True)
    assert lang(english) == "en" and title(english).startswith("Sign in ·") and "Mot de passe" not in english

    german = client.get("/login", headers={"Accept-Language": "de"}).get_data(as_text=True)
    assert lang(german) == "en" and title(german).startswith("Sign in ·")


def test_messages_from_the_views_are_translated_too(app):
    browser = Browser(app)
    browser.client.environ_base["HTTP_ACCEPT_LANGUAGE"] = "fr"
    browser.open("/login")
    browser.submit("/login", identifier="alice", password="")
    assert "Il y a un problème" in browser.html and "Saisissez votre mot de passe" in browser.html


def test_the_password_policys_reasons_and_the_scripts_words_are_translated(app):
    """The reasons are the JSON API's, in English; a page gives them in its language (they stayed
    English), as it does the service's other words and what pages.js says or announces."""
    browser = Browser(app)
    browser.client.environ_base["HTTP_ACCEPT_LANGUAGE"] = "fr"
    browser.open("/register")
    browser.submit("/register", email="alice@example.com", username="alice", password="alicepassword")
    said = browser.html.replace("&#39;", "'")
    assert "Votre mot de passe doit contenir une majuscule, un chiffre, un symbole ; il ne doit contenir ni votre nom" in said
    words = json.loads(html.unescape(re.search(r'<body data-page-words="([^"]*)"', browser.html).group(1)))
    assert words["copiedToClipboard"] == "Copié dans le presse-papiers" and words["notYet"] == " : pas encore"
    assert words["downloaded"] == "Downloaded {name}"  # no French given: English, its placeholder kept for pages.js
    browser.open("/verify-email?token=not-a-token")
    browser.submit("/verify-email", token="not-a-token")
    assert "Ce lien de vérification n'est pas valable ou a expiré" in browser.html.replace("&#39;", "'")


def test_ui_locales_of_the_authorization_request_picks_the_language(app, api: Api):
    """/oauth/authorize sends the browser to /login with the request in `next`: its ui_locales
    wins over the browser's Accept-Language; the client's name stays escaped in the French text."""
    api.register("alice")
    rp = RelyingParty(app, create(app, "--name", "Notes & <Co>", "--redirect-uri", REDIRECT_URI, "--scope", "openid"))
    browser = Browser(app)
    browser.client.environ_base["HTTP_ACCEPT_LANGUAGE"] = "en"

    browser.open(rp.authorization_url(ui_locales="de fr"))
    assert browser.page.request.path == "/login" and "ui_locales" in browser.page.request.args["next"]
    assert lang(browser.html) == "fr" and title(browser.html).startswith("Se connecter ·")
    assert "pour continuer vers <strong>Notes &amp; &lt;Co&gt;</strong>" in browser.html

    browser.open(rp.authorization_url())
    assert lang(browser.html) == "en" and "to continue to <strong>Notes &amp; &lt;Co&gt;</strong>" in browser.html


def test_the_second_factor_page_keeps_the_language_of_the_authorization_request(app, api: Api):
    """The sign-in continues without `next` in the URL: the pending sign-in remembers it."""
    api.enable_totp(api.verified_token("alice"))
    rp = RelyingParty(app, create(app, "--name", "Notes", "--redirect-uri", REDIRECT_URI, "--scope", "openid"))
    browser = Browser(app)
    browser.open(rp.authorization_url(ui_locales="fr"))
    browser.submit("/login", identifier="alice", password=Api.PASSWORD)  # the French page has no "Sign in" for sign_in()
    assert browser.page.request.path == "/login/two-factor"
    assert lang(browser.html) == "fr" and "Aller au contenu principal" in browser.html

    english = Browser(app)
    english.open(rp.authorization_url())
    english.sign_in()
    assert english.page.request.path == "/login/two-factor" and lang(english.html) == "en"


def test_text_outside_a_request_is_english(app):
    with app.app_context():
        assert describe_event("login_success", {"method": "pwd"}).sentence == "Signed in with your password"


def test_no_template_changes_the_case_of_translated_text():
    """`capitalize` lowered everything after the first letter ("Die authenticator-app" for "die
    Authenticator-App"), `lower` a translated label ("sms-nachrichten" read out for
    "SMS-Nachrichten"): a sentence is written so the translator decides its capitals."""
    import re

    changing = re.compile(r"\|\s*(capitalize|title)\b|(label|method|name)\s*\|\s*lower\b")
    found = [
        f"{path.relative_to(ROOT)}: {match.group(0)}"
        for path in (ROOT / "templates").rglob("*.html")
        for match in changing.finditer(path.read_text())
    ]
    assert found == []


def test_the_api_reference_page_stays_english_whatever_the_browser_asks(client):
    """/api/docs is the JSON API's reference, written in English only: it said <html lang="fr"> (and
    gave its skip link in French) over English text, so a screen reader read it with a French voice."""
    page = client.get("/api/docs", headers={"Accept-Language": "fr"}).get_data(as_text=True)
    assert lang(page) == "en" and "Skip to main content" in page and "Aller au contenu principal" not in page
    assert lang(client.get("/login", headers={"Accept-Language": "fr"}).get_data(as_text=True)) == "fr"


def test_a_wait_is_said_in_whole_minutes_rounded_up_with_its_plural(app):
    """"Try again in 1 minutes." (no plural form, so no language could say it right), and 100
    seconds said as 1 minute, after which the next try was refused again."""
    from idp.errors import RateLimited
    from idp.web.formatting import too_many_emails
    from idp.web.login import too_many_attempts

    with app.test_request_context("/login"):
        assert too_many_attempts(RateLimited(retry_after=30)) == "Too many attempts. Try again in 1 minute."
        assert too_many_attempts(RateLimited(retry_after=100)) == "Too many attempts. Try again in 2 minutes."
        assert too_many_emails(59) == "Too many emails sent. Try again in 1 minute."
        assert too_many_emails(3600) == "Too many emails sent. Try again in 60 minutes."


def test_the_sign_in_page_says_a_one_minute_wait_in_the_singular(make_app):
    app = make_app(RATE_LIMIT_LOGIN="1 per minute")
    browser = Browser(app)
    browser.open("/login")
    browser.submit("/login", identifier="ghost", password="Not-It-1!")
    browser.submit("/login", identifier="ghost", password="Not-It-1!")
    assert browser.page.status_code == 429
    assert "Too many attempts. Try again in 1 minute." in browser.html, browser.html


def test_a_right_to_left_language_sets_the_pages_direction(make_app, french: Path):
    """<html lang="ar"> alone left an Arabic page laid out and punctuated from the left."""
    catalog = Catalog(locale="ar")
    catalog.add("Sign in", "تسجيل الدخول")
    (french / "ar" / "LC_MESSAGES").mkdir(parents=True)
    with (french / "ar" / "LC_MESSAGES" / "messages.mo").open("wb") as handle:
        write_mo(handle, catalog)
    client = make_app(TRANSLATIONS_DIR=str(french)).test_client()

    arabic = client.get("/login", headers={"Accept-Language": "ar-EG"}).get_data(as_text=True)
    assert '<html lang="ar" dir="rtl">' in arabic and "تسجيل الدخول" in arabic
    for language in ("fr", "en"):
        assert f'<html lang="{language}" dir="ltr">' in client.get("/login", headers={"Accept-Language": language}).get_data(as_text=True)


@pytest.mark.parametrize("backend", ["postgres"])  # SQLite has no server to drop the connections of
def test_a_page_that_meets_a_lost_database_connection_says_so_in_its_language(app, api: Api):
    """The 503 page gave the API's message ("The database is unavailable, please try again"), in
    English on a French page."""
    from tests.oidc.test_database_restart import drop_connections

    api.register("alice")
    browser = Browser(app)
    browser.client.environ_base["HTTP_ACCEPT_LANGUAGE"] = "fr"
    browser.open("/login")
    browser.submit("/login", identifier="alice", password=Api.PASSWORD)
    assert browser.page.request.path == "/account"
    drop_connections(app.config["SQLALCHEMY_DATABASE_URI"])
    page = browser.client.get("/account/sessions")
    assert page.status_code == 503 and page.headers["Retry-After"] == "1"
    said = page.get_data(as_text=True)
    assert lang(said) == "fr" and "Le service est indisponible un instant" in said and "database" not in said
