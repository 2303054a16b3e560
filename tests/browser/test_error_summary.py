"""The error summary in Chromium, on a 360 px phone: it has the focus when the page loads, with or
without pages.js, and each of its links to a field is a 44 px target (PAGES.md)."""

from __future__ import annotations

import pytest
from playwright.sync_api import Browser

from tests.browser.test_account_journey import SMALL_TARGETS
from tests.support.live_server import LiveServer

PHONE_360 = {"viewport": {"width": 360, "height": 740}, "is_mobile": True, "has_touch": True}


@pytest.mark.parametrize("script", ["with pages.js", "without JavaScript"])
def test_the_summary_has_the_focus_and_targets_a_thumb_can_hit(browser: Browser, live_server: LiveServer, script: str) -> None:
    context = browser.new_context(**PHONE_360)
    context.set_default_timeout(10_000)
    if script == "without JavaScript":  # pages.js is the pages' only script; evaluate() still runs
        context.route("**/pages.js", lambda route: route.abort())
    try:
        page = context.new_page()
        page.goto(live_server.url + "/login")
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_load_state("load")
        summary = page.locator("[data-error-summary]")
        assert summary.evaluate("el => el === document.activeElement")
        assert summary.get_by_role("link").count() == 2
        assert page.evaluate(SMALL_TARGETS) == []
    finally:
        context.close()


def test_a_right_to_left_language_mirrors_the_error_marks(browser: Browser, live_server: LiveServer) -> None:
    """The stylesheet places its bars, indents and alignments by the text's direction (logical
    properties): with `dir="rtl"` (Arabic, Hebrew, Persian pages) the error bars stood on the left,
    the side where such a line ends."""
    context = browser.new_context(**PHONE_360)
    context.set_default_timeout(10_000)
    try:
        page = context.new_page()
        page.goto(live_server.url + "/login")
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_load_state("load")
        sides = "el => { const s = getComputedStyle(el); return [s.borderLeftWidth, s.borderRightWidth]; }"
        summary, field = page.locator("[data-error-summary]"), page.locator(".form-group--error").first
        assert summary.evaluate(sides) == ["6px", "1px"] and field.evaluate(sides) == ["4px", "0px"]
        page.evaluate("document.documentElement.dir = 'rtl'")
        assert summary.evaluate(sides) == ["1px", "6px"] and field.evaluate(sides) == ["0px", "4px"]
    finally:
        context.close()
