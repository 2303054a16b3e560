"""Debian's Chromium (apt package `chromium`, installed by .ci/run) driven by Playwright.

Playwright's own browser downloads are not used: the machines reach package registries only.
"""

from __future__ import annotations

import os
from typing import Any

import pytest
from playwright.sync_api import Browser, Playwright

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",  # the tests run as root, where Chromium's sandbox refuses to start
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
DESKTOP: dict[str, Any] = {"viewport": {"width": 1280, "height": 800}}
PHONE: dict[str, Any] = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True}
TIMEOUT_MS = 10_000  # per action and navigation: a local server answers in milliseconds, fail fast


def launch_chromium(playwright: Playwright) -> Browser:
    """Headless Debian Chromium; a missing one fails the test (never a skip: CI must notice)."""
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(
            f"Chromium is required for the browser tests and {CHROMIUM} is missing: "
            "`apt-get install chromium fonts-dejavu-core` (.ci/run does it)",
            pytrace=False,
        )
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
