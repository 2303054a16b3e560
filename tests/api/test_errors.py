"""Bad input gets a clear 4xx in the envelope, never a 500 (API.md envelope, SECURITY.md 25 for these routes)."""

from __future__ import annotations

import json

import pytest

ROUTES = ["/api/auth/register", "/api/auth/login", "/api/auth/refresh", "/api/auth/change-password"]


@pytest.mark.parametrize("path", ROUTES)
@pytest.mark.parametrize(
    ("body", "content_type", "status"),
    [
        ("{not json", "application/json", 400),
        ("[1, 2, 3]", "application/json", 400),
        ('"a string"', "application/json", 400),
        ("null", "application/json", 400),
        ('{"email": {"$gt": ""}}', "application/json", 400),
        ("\xff\xfe", "application/json", 400),
    ],
    ids=["malformed", "array", "string", "null", "object-injection", "bad-encoding"],
)
def test_malformed_bodies_are_4xx_in_the_envelope(api, path, body, content_type, status):
    token = api.token("alice") if path.endswith("change-password") else None
    headers = api.bearer(token) if token else {}
    response = api.client.post(path, data=body.encode("latin-1"), content_type=content_type, headers=headers)
    assert response.status_code == status, response.json
    assert response.json["success"] is False and response.json["code"] in {"invalid_json", "validation_failed", "invalid_refresh_token"}


def test_malformed_json_has_a_clear_message(api):
    response = api.client.post("/api/auth/login", data="{bad", content_type="application/json")
    assert response.json == {"success": False, "message": "Malformed JSON in request body", "code": "invalid_json"}


def test_oversized_body_is_413(api):
    response = api.client.post("/api/auth/login", json={"emailOrUsername": "a", "password": "x" * 200_000})
    assert response.status_code == 413
    assert response.json["code"] == "payload_too_large"


def test_unknown_route_is_404_route_not_found(api):
    response = api.client.get("/api/does/not/exist")
    assert response.status_code == 404
    assert response.json == {"success": False, "message": "Route not found", "code": "not_found"}


def test_wrong_method_is_405_with_allow_header(api):
    response = api.client.get("/api/auth/login")
    assert response.status_code == 405
    assert response.json["code"] == "method_not_allowed"
    assert "POST" in response.headers["Allow"]


def test_json_sent_as_form_content_type_is_still_read(api):
    """Clients of the old service sometimes omit the content type; the body is JSON all the same."""
    api.register("alice")
    response = api.client.post("/api/auth/login", data=json.dumps({"emailOrUsername": "alice", "password": api.PASSWORD}), content_type="text/plain")
    assert response.status_code == 200


def test_unexpected_errors_say_only_internal_server_error(app):
    @app.get("/api/boom")
    def boom():
        raise RuntimeError("database password is hunter2")

    response = app.test_client().get("/api/boom")
    assert response.status_code == 500
    assert response.json == {"success": False, "message": "Internal server error", "code": "internal_error"}


def test_pages_get_an_html_error_page(client):
    response = client.get("/no-such-page")
    assert response.status_code == 404
    assert response.mimetype == "text/html"
    html = response.get_data(as_text=True)
    assert "<title>We can&#39;t find this page" in html and "<h1>We can&#39;t find this page</h1>" in html  # not API words
    assert '<a class="action-link" href="/account">Go to your account</a>' in html  # a way on (PAGES.md: no dead ends)


def test_a_trailing_slash_names_the_same_route_as_express_has_it(api):
    """Express routes /api/auth/login/ as /api/auth/login (its default, non-strict routing): a client
    of the old service that adds the slash keeps working, without a redirect a POST would not follow."""
    token = api.token("alice")
    assert api.client.post("/api/auth/login/", json={"emailOrUsername": "alice", "password": api.PASSWORD}).status_code == 200
    me = api.client.get("/api/auth/me/", headers=api.bearer(token))
    assert me.status_code == 200 and me.json["data"]["user"]["username"] == "alice"
    assert api.client.get("/api/no-such-route/").status_code == 404


def test_a_page_refusing_a_method_names_the_methods_it_takes(client):
    """RFC 9110 15.5.6: a 405 MUST carry Allow; the page dropped the header the API's answer keeps."""
    response = client.put("/login")
    assert response.status_code == 405 and response.mimetype == "text/html"
    assert set(response.headers["Allow"].split(", ")) >= {"GET", "POST"}
