"""A database restart drops every pooled connection: the request that meets a dropped connection
gets a 503 it can retry (never a 500), and the next one works, on the ORM's pool and on the hot
paths' own statements (refresh rotation, introspection, userinfo; `idp.statements`)."""

from __future__ import annotations

import base64

import psycopg2
import pytest
from sqlalchemy.engine import make_url

pytestmark = pytest.mark.parametrize("backend", ["postgres"])  # SQLite has no server to restart


def drop_connections(database_url: str) -> int:
    """What a restart does to the app's pools: every other backend on its database is terminated."""
    url = make_url(database_url)
    conn = psycopg2.connect(
        dbname=url.database, host=url.host, port=url.port or 5432, user=url.username, password=url.password
    )
    conn.autocommit = True
    with conn.cursor() as cursor:
        cursor.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        (count,) = cursor.fetchone()
    conn.close()
    return int(count)


def until_answered(request) -> list[int]:
    """The statuses of up to three tries, stopping at the first that is not a 503."""
    statuses: list[int] = []
    for _ in range(3):
        statuses.append(request().status_code)
        if statuses[-1] != 503:
            break
    return statuses


def test_refresh_and_me_recover_after_the_database_drops_its_connections(app, api):
    api.register("alice")
    assert api.client.post("/api/auth/refresh").status_code == 200  # both pools hold a connection now
    access = api.client.post("/api/auth/refresh").json["data"]["accessToken"]
    assert drop_connections(app.config["SQLALCHEMY_DATABASE_URI"]) >= 1

    statuses = until_answered(lambda: api.client.post("/api/auth/refresh"))
    assert statuses in ([200], [503, 200]), statuses
    statuses = until_answered(lambda: api.client.get("/api/auth/me", headers=api.bearer(access)))
    assert statuses in ([200], [503, 200]), statuses


def test_a_dropped_connection_is_a_503_with_retry_after(app, api):
    api.register("alice")
    assert api.client.post("/api/auth/refresh").status_code == 200
    drop_connections(app.config["SQLALCHEMY_DATABASE_URI"])
    response = api.client.post("/api/auth/refresh")
    assert response.status_code == 503
    assert response.json["code"] == "database_unavailable"
    assert response.headers["Retry-After"] == "1"
    assert api.client.post("/api/auth/refresh").status_code == 200  # the same token: nothing was rotated


def test_userinfo_and_introspection_recover_after_the_database_drops_its_connections(app, rp, browser, alice):
    tokens = rp.log_in(browser)
    client = app.test_client()
    basic = {"Authorization": "Basic " + base64.b64encode(f"{rp.client_id}:{rp.registered['clientSecret']}".encode()).decode()}
    bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
    assert client.get("/oauth/userinfo", headers=bearer).status_code == 200
    introspect = lambda: client.post("/oauth/introspect", data={"token": tokens["access_token"]}, headers=basic)  # noqa: E731
    assert introspect().json["active"] is True
    drop_connections(app.config["SQLALCHEMY_DATABASE_URI"])

    assert until_answered(lambda: client.get("/oauth/userinfo", headers=bearer))[-1] == 200
    statuses = until_answered(introspect)
    assert statuses[-1] == 200 and introspect().json["active"] is True
