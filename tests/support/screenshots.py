"""Screenshots for the docs: `SCREENSHOTS=1 pytest tests/browser` writes docs/screenshots/<name>.png."""

from __future__ import annotations

import os
from pathlib import Path

from playwright.sync_api import Page

FOLDER = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


def shot(page: Page, name: str, *, full_page: bool = True) -> Path | None:
    """Save the page as docs/screenshots/<name>.png when SCREENSHOTS=1; otherwise do nothing (None)."""
    if os.environ.get("SCREENSHOTS") != "1":
        return None
    FOLDER.mkdir(parents=True, exist_ok=True)
    path = FOLDER / f"{name}.png"
    page.screenshot(path=str(path), full_page=full_page)
    return path
