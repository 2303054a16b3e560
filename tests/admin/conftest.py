"""An administrator made the way an operator bootstraps one: with `flask users`."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask

from tests.conftest import Api


def cli(app: Flask, *args: str, input: str | None = None) -> Any:
    return app.test_cli_runner().invoke(args=list(args), input=input)


class Admin:
    def __init__(self, api: Api, app: Flask) -> None:
        self.api = api
        self.app = app
        self.token = api.token("root")
        result = cli(app, "users", "grant-admin", "root")
        assert result.exit_code == 0, result.output
        self.headers = api.bearer(self.token)

    def get(self, path: str, **query: Any) -> Any:
        return self.api.client.get(f"/api/admin{path}", headers=self.headers, query_string=query)

    def post(self, path: str, body: dict[str, Any] | None = None) -> Any:
        return self.api.client.post(f"/api/admin{path}", headers=self.headers, json=body)

    def patch(self, path: str, body: dict[str, Any]) -> Any:
        return self.api.client.patch(f"/api/admin{path}", headers=self.headers, json=body)

    def delete(self, path: str) -> Any:
        return self.api.client.delete(f"/api/admin{path}", headers=self.headers)

    def user_id(self, username: str) -> str:
        found = self.get("/users", q=username).json["data"]["users"]
        return next(u["id"] for u in found if u["username"] == username)


@pytest.fixture
def admin(api: Api, app: Flask) -> Admin:
    return Admin(api, app)
