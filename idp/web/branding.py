"""Branding by configuration (PAGES.md): the product's name, logo, home link, favicon and primary
colour on every hosted page, without editing templates (BRAND_* settings, .env.example).

The colour becomes a small stylesheet served by this service (`/brand.css`, under the pages'
`style-src 'self'`), loaded after site.css. It keeps the pages' contrast (WCAG 2.2 AA): the text
on a primary button is white or near-black, whichever reads better on the colour, and links and
the focus ring take the colour only where it reads at 4.5:1 on both the card and the page."""

from __future__ import annotations

import hashlib
from urllib.parse import urlsplit

from flask import Flask, Response, request

from idp.config import BrandSettings

BRAND_CSS_PATH = "/brand.css"
LIGHT_TEXT, DARK_TEXT = "#ffffff", "#111418"  # text on a primary button: the one that reads better
# (card, page) backgrounds of site.css's light and dark schemes, on which a link must read
LIGHT_BACKGROUNDS = ("#ffffff", "#f2f4f7")
DARK_BACKGROUNDS = ("#181b21", "#0e1014")
TEXT_CONTRAST = 4.5


def _luminance(colour: str) -> float:
    """WCAG 2.2 relative luminance of a #rrggbb colour."""
    channels = [int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    r, g, b = (c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(a: str, b: str) -> float:
    """WCAG contrast ratio of two #rrggbb colours (1 to 21)."""
    lighter, darker = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (lighter + 0.05) / (darker + 0.05)


def _scheme(primary: str, backgrounds: tuple[str, ...]) -> list[str]:
    text = max((LIGHT_TEXT, DARK_TEXT), key=lambda candidate: contrast(primary, candidate))
    rules = [f"--primary: {primary};", f"--primary-contrast: {text};"]
    if all(contrast(primary, background) >= TEXT_CONTRAST for background in backgrounds):
        rules += [f"--link: {primary};", f"--focus: {primary};", f"--notice-border: {primary};"]
    return rules


def brand_css(brand: BrandSettings) -> str | None:
    """The stylesheet of the brand's colours; None when none is set."""
    blocks = []
    if brand.primary_color:
        blocks.append(":root {\n  " + "\n  ".join(_scheme(brand.primary_color, LIGHT_BACKGROUNDS)) + "\n}\n")
    if brand.primary_color_dark:
        rules = "\n    ".join(_scheme(brand.primary_color_dark, DARK_BACKGROUNDS))
        blocks.append("@media (prefers-color-scheme: dark) {\n  :root {\n    " + rules + "\n  }\n}\n")
    return "\n".join(blocks) if blocks else None


def outside_origins(*urls: str | None) -> list[str]:
    """The origins of the https:// addresses among `urls` (a path is this service's own)."""
    origins = []
    for url in urls:
        if url and url.startswith("https://"):
            parts = urlsplit(url)
            origins.append(f"https://{parts.netloc}")
    return sorted(set(origins))


def install_branding(app: Flask, brand: BrandSettings) -> None:
    """Serve /brand.css (when a colour is set) and give every page the brand's variables."""
    css = brand_css(brand)
    sheets = [BRAND_CSS_PATH] if css is not None else []
    if brand.stylesheet_url:
        sheets.append(brand.stylesheet_url)
    variables = {"logo_url": brand.logo_url, "home_url": brand.home_url, "favicon_url": brand.favicon_url, "brand_stylesheets": sheets}
    app.context_processor(lambda: variables)
    if css is None:
        return
    body = css.encode()
    etag = hashlib.sha256(body).hexdigest()[:16]

    def stylesheet() -> Response:
        if request.if_none_match.contains(etag):
            return Response(status=304, headers={"ETag": f'"{etag}"'})
        response = Response(body, mimetype="text/css")
        response.set_etag(etag)
        response.cache_control.public, response.cache_control.max_age = True, 300
        return response

    app.add_url_rule(BRAND_CSS_PATH, "brand_stylesheet", stylesheet, methods=["GET"])
