"""Browser tests: Debian's Chromium through Playwright against the app on a live server.

The fixtures live in tests/support/fixtures.py (registered by tests/conftest.py):
`make_live_server` / `live_server`, `browser`, `page` (desktop) and `phone_page`. Helpers:
`tests.support.axe.assert_accessible` and `tests.support.screenshots.shot`.
"""
