"""Branding by configuration (PAGES.md): logo, home link, favicon, an operator's stylesheet and
the primary colour on every hosted page, with the pages' contrast kept."""

from __future__ import annotations

import pytest

from idp.config import BrandSettings, ConfigError, brand_settings
from idp.http import PAGE_CSP, page_csp
from idp.web.branding import brand_css, contrast

BRANDED = {
    "SERVICE_NAME": "Acme",
    "BRAND_LOGO_URL": "https://cdn.acme.example/logo.svg",
    "BRAND_HOME_URL": "https://acme.example/",
    "BRAND_FAVICON_URL": "/static/favicon.ico",
    "BRAND_STYLESHEET_URL": "https://cdn.acme.example/brand/pages.css",
    "BRAND_PRIMARY_COLOR": "#0B5",
    "BRAND_PRIMARY_COLOR_DARK": "#7fd4a8",
}


def test_every_page_carries_the_brand(make_app):
    app = make_app(**BRANDED)
    page = app.test_client().get("/login")
    html = page.get_data(as_text=True)
    assert '<img class="site-header__logo" src="https://cdn.acme.example/logo.svg" alt="">' in html
    assert '<a class="site-header__home" href="https://acme.example/">' in html and "Acme</span>" in html
    assert '<link rel="icon" href="/static/favicon.ico">' in html
    assert html.index('href="/static/site.css"') < html.index('href="/brand.css"') < html.index('href="https://cdn.acme.example/brand/pages.css"')
    # the policy lets in the brand's own origins, and only for what they serve
    csp = page.headers["Content-Security-Policy"]
    assert "img-src 'self' data: https://cdn.acme.example;" in csp and "style-src 'self' https://cdn.acme.example;" in csp
    assert "script-src 'self';" in csp and "default-src 'self';" in csp
    assert app.test_client().get("/api/docs").headers["Content-Security-Policy"] == csp


def test_the_colour_stylesheet_keeps_the_contrast_and_is_cached(make_app):
    app = make_app(**BRANDED)
    sheet = app.test_client().get("/brand.css")
    css = sheet.get_data(as_text=True)
    assert sheet.status_code == 200 and sheet.mimetype == "text/css" and sheet.headers["Cache-Control"] == "public, max-age=300"
    light, dark = css.split("@media (prefers-color-scheme: dark)")
    # #00bb55 is too light for white text (2.5:1) and for links on white: dark text, default links
    assert "--primary: #00bb55;" in light and "--primary-contrast: #111418;" in light and "--link" not in light
    assert "--primary: #7fd4a8;" in dark and "--primary-contrast: #111418;" in dark and "--link: #7fd4a8;" in dark
    again = app.test_client().get("/brand.css", headers={"If-None-Match": sheet.headers["ETag"]})
    assert again.status_code == 304 and not again.get_data()


def test_a_dark_primary_colour_takes_white_text_and_the_links(make_app):
    css = brand_css(BrandSettings(primary_color="#6b2c91"))
    assert css is not None and "--primary-contrast: #ffffff;" in css and "--link: #6b2c91;" in css and "@media" not in css
    assert contrast("#6b2c91", "#ffffff") >= 4.5 and contrast("#000000", "#ffffff") == pytest.approx(21)


def test_without_a_brand_nothing_is_added(app):
    html = app.test_client().get("/login").get_data(as_text=True)
    assert "brand.css" not in html and "site-header__logo" not in html and 'rel="icon"' not in html
    assert app.test_client().get("/brand.css").status_code == 404
    assert page_csp(BrandSettings()) == PAGE_CSP


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("BRAND_PRIMARY_COLOR", "blue"),
        ("BRAND_PRIMARY_COLOR", "#12345"),
        ("BRAND_PRIMARY_COLOR_DARK", "#1a55c9;}body{display:none"),
        ("BRAND_LOGO_URL", "http://cdn.acme.example/logo.svg"),
        ("BRAND_LOGO_URL", "javascript:alert(1)"),
        ("BRAND_HOME_URL", "//evil.example/"),
        ("BRAND_STYLESHEET_URL", "https://cdn.acme.example/a.css; script-src *"),
        ("BRAND_FAVICON_URL", 'https://cdn.acme.example/" onload="x'),
    ],
)
def test_a_setting_that_cannot_be_used_is_refused_by_name(name, value):
    with pytest.raises(ConfigError, match=name):
        brand_settings({name: value})
