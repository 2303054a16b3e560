"""The harness itself: the live server answers Chromium and plain HTTP clients, and the home page passes axe-core."""

from __future__ import annotations

import requests
from playwright.sync_api import Page

from tests.support.axe import assert_accessible
from tests.support.live_server import LiveServer
from tests.support.screenshots import shot


def test_home_page_in_chromium_and_jwks_over_http(live_server: LiveServer, page: Page) -> None:
    response = page.goto(live_server.url + "/")
    assert response is not None and response.status == 200
    assert "Identity provider" in page.title()
    assert page.get_by_role("heading", level=1).inner_text() == "Identity provider"
    assert_accessible(page)
    shot(page, "home")

    jwks = requests.get(live_server.url + "/.well-known/jwks.json", timeout=10)
    assert jwks.status_code == 200
    assert jwks.headers["Content-Type"] == "application/jwk-set+json"
    assert {key["alg"] for key in jwks.json()["keys"]} >= {"ES256", "RS256"}
    assert live_server.app.extensions["idp"].settings.issuer == live_server.url
