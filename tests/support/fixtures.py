"""Fixtures for tests that need a real HTTP server and a browser (a plugin: see tests/conftest.py)."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from tests.conftest import ROOMY_LIMITS, _clean
from tests.support.browser import DESKTOP, PHONE, TIMEOUT_MS, launch_chromium
from tests.support.live_server import LiveServer, live_server
from tests.support.relying_party import rp_pages  # noqa: F401  (a relying party's pages on loopback, registered here)
from tests.support.smtp import smtp_server, start_smtp  # noqa: F401  (the SMTP stand-in fixtures, registered here)
from tests.support.twilio import twilio_server  # noqa: F401  (the Twilio stand-in fixture, registered here)


@pytest.fixture
def make_live_server(
    backend_config: Callable[[str], dict[str, str]], instance_dir: Path, tmp_path: Path
) -> Iterator[Callable[..., LiveServer]]:
    """Start the app on a real server on 127.0.0.1 (PostgreSQL + Redis); keyword arguments override
    settings. As with `make_app`: roomy rate limits, and this test's own rate-limit keys, delivery
    queue and console outbox (shared by the servers of one test); the tables are emptied afterwards.

    Delivery is inline (see tests/support/live_server.py); `make_live_server(inline_delivery=False)`
    keeps the RQ queue, whose jobs `server.outbox.messages()` runs with a burst worker."""
    isolation = {
        "RATE_LIMIT_KEY_PREFIX": f"test-{uuid.uuid4().hex}",
        "DELIVERY_QUEUE": f"test-{uuid.uuid4().hex}",
        "DELIVERY_RETRY_INTERVALS": "0,0,0,0,0",
        "OUTBOX_PATH": str(tmp_path / "outbox.jsonl"),
    }
    env = backend_config("postgres")
    servers = contextlib.ExitStack()

    def make(*, inline_delivery: bool = True, **overrides: str) -> LiveServer:
        settings = {**env, **ROOMY_LIMITS, **isolation, **overrides}
        return servers.enter_context(live_server(settings, instance_path=str(instance_dir), inline_delivery=inline_delivery))

    try:
        yield make
    finally:
        servers.close()
        _clean(env["DATABASE_URL"])


@pytest.fixture(name="live_server")
def live_server_fixture(make_live_server: Callable[..., LiveServer]) -> LiveServer:
    """One live server with the default settings."""
    return make_live_server()


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    """Headless Debian Chromium for the whole run (fails, never skips, when /usr/bin/chromium is missing)."""
    with sync_playwright() as playwright:
        chromium = launch_chromium(playwright)
        try:
            yield chromium
        finally:
            chromium.close()


def _page(browser: Browser, options: dict[str, Any]) -> Iterator[Page]:
    context = browser.new_context(**options)
    context.set_default_timeout(TIMEOUT_MS)
    try:
        yield context.new_page()
    finally:
        context.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A page in a fresh browser context (no cookies or storage): a desktop window of 1280×800."""
    yield from _page(browser, DESKTOP)


@pytest.fixture
def phone_page(browser: Browser) -> Iterator[Page]:
    """A page in a fresh context as a phone: 390×844, mobile viewport, touch."""
    yield from _page(browser, PHONE)
