"""Helpers shared by the test packages: a live HTTP server, Chromium through Playwright, axe-core and screenshots.

`tests.support.fixtures` is registered as a plugin by tests/conftest.py, so its fixtures are
available everywhere under tests/.
"""
