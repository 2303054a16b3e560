"""The error summary in Chromium, on a 360 px phone: each of its links to a field is a 44 px target
(PAGES.md)."""

from __future__ import annotations

from playwright.sync_api import Browser

from tests.browser.test_account_journey import SMALL_TARGETS
from tests.support.live_server import LiveServer

PHONE_360 = {"viewport": {"width": 360, "height": 740}, "is_mobile": True, "has_touch": True}


def test_the_summary_has_targets_a_thumb_can_hit(browser: Browser, live_server: LiveServer) -> None:
    context = browser.new_context(**PHONE_360)
    context.set_default_timeout(10_000)
    try:
        page = context.new_page()
        page.goto(live_server.url + "/login")
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_load_state("load")
        assert page.locator("[data-error-summary]").get_by_role("link").count() == 2
        assert page.evaluate(SMALL_TARGETS) == []
    finally:
        context.close()
