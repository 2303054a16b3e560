"""Schemathesis runs the OpenAPI document against the app (WSGI, in process), with every check on:
no 5xx, every answer matches its documented status, headers and schema, input the document calls
invalid is refused, and input it calls valid is never refused as invalid.

One signed-in user with one of each kind of object (sessions, a TOTP method, a trusted device, an
API key, a webhook) whose real ids are mixed into the generated path parameters. Each request
carries a fresh access token of that user, so an operation that ends sessions does not blind the
ones after it. PostgreSQL only: it is production's backend, and there queued deliveries (email,
SMS, webhooks) wait in Redis for a worker the test never runs, so no fuzzed target is ever called."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pyotp
import pytest
import schemathesis
from flask import Flask
from hypothesis import HealthCheck, settings
from pydantic import BaseModel, ValidationError
from schemathesis import Case
from schemathesis.config import SchemathesisConfig

from idp.accounts.models import User
from idp.api.openapi import documented_operations
from idp.audit.service import ClientInfo
from idp.extensions import db
from idp.wiring import session_service
from tests.conftest import Api

MAX_EXAMPLES = 25
SEED = 20260601
# The contract answers 400 to well-formed input the server refuses on its merits: a wrong code, an
# expired link, the wrong current password, a password outside the policy, an expiry in the past.
# `assert_valid_for_its_model` keeps the other half: valid input always passes the view's model.
ACCEPTED_STATUSES = ["2xx", "400", "401", "403", "404", "409", "429"]
# Input the document calls invalid is refused with one of Schemathesis's defaults, or with 413 when
# the generator made a body over MAX_BODY_BYTES (refused before it is read, as any oversized body)
REJECTED_STATUSES = ["400", "401", "403", "404", "405", "406", "409", "413", "415", "422", "428", "429", "5xx"]


@pytest.fixture
def backend() -> str:
    return "postgres"


@pytest.fixture(autouse=True)
def _subtest_names_on_pytest_9(request: pytest.FixtureRequest) -> None:
    """schemathesis 4.32 names each operation's subtest through `node._nodeid`, gone in pytest 9."""
    if not hasattr(request.node, "_nodeid"):
        request.node._nodeid = request.node.nodeid


@dataclass(frozen=True)
class Seeded:
    user_id: str
    ids: dict[str, list[str]]  # path parameter name -> real ids


@dataclass(frozen=True)
class RealIds:
    """Where the real ids for a path parameter are listed, and how to make one first."""

    parameter: str
    listing: str
    key: str
    create: dict[str, Any] | None = None
    id_field: str = "id"


REAL_IDS = [
    RealIds("session_id", "/api/auth/sessions", "sessions"),
    RealIds("method_id", "/api/2fa/methods", "methods"),
    RealIds("device_id", "/api/2fa/devices", "devices"),
    RealIds("key_id", "/api/api-keys", "apiKeys", {"name": "fuzz", "scopes": ["*"]}),
    # a loopback target (allowed by the fuzz app's settings) that nothing ever calls: no worker runs
    RealIds("webhook_id", "/api/webhooks", "webhooks", {"url": "http://127.0.0.1:9/fuzz", "events": ["user.login"]}),
    # the fuzzer is an administrator: the admin endpoints are fuzzed past their guard, on real users and clients
    RealIds("user_id", "/api/admin/users", "users"),
    RealIds(
        "client_id",
        "/api/admin/clients",
        "clients",
        {"name": "fuzz", "redirectUris": ["https://rp.example.com/cb"], "scopes": ["openid"]},
        id_field="clientId",
    ),
]


def seed_account(app: Flask) -> Seeded:
    """An administrator with a verified email, TOTP, a trusted device, a second session, and one of
    each object the documented endpoints list (API keys, webhooks, clients), and another user."""
    api = Api(app.test_client())
    token = api.verified_token("fuzzer")
    auth = api.bearer(token)
    api.token("bystander")
    assert app.test_cli_runner().invoke(args=["users", "grant-admin", "fuzzer"]).exit_code == 0
    secret, _ = api.enable_totp(token)
    challenge = api.challenge("fuzzer")
    trusted = {"tempToken": challenge["tempToken"], "code": pyotp.TOTP(secret).now(), "trustDevice": True, "deviceName": "fuzz"}
    assert api.client.post("/api/2fa/verify", json=trusted).status_code == 200
    paths = api.client.get("/api/openapi.json").json["paths"]
    ids: dict[str, list[str]] = {}
    for real in REAL_IDS:
        if "get" not in paths.get(real.listing, {}):
            continue
        if real.create is not None:
            created = api.client.post(real.listing, headers=auth, json=real.create)
            assert created.status_code == 201, created.json
        listed = api.client.get(real.listing, headers=auth).json["data"][real.key]
        ids[real.parameter] = [item[real.id_field] for item in listed]
    user_id = api.client.get("/api/auth/me", headers=auth).json["data"]["user"]["id"]
    return Seeded(user_id, {name: found for name, found in ids.items() if found})


def fresh_token(app: Flask, user_id: str) -> str:
    """A new session's access token, straight from the session service (no login round trip)."""
    with app.app_context():
        user = db.session.get(User, user_id)
        assert user is not None
        return session_service().start(user, client=ClientInfo(ip_address="127.0.0.1", user_agent="schemathesis"), amr=["pwd"]).access_token


def fuzz_config(seeded: Seeded) -> SchemathesisConfig:
    return SchemathesisConfig.from_dict(
        {
            "seed": SEED,
            "dictionaries": {name: {"values": ids} for name, ids in seeded.ids.items()},
            "parameters": {name: {"dictionary": name, "probability": 0.5} for name in seeded.ids},
            "checks": {
                "positive_data_acceptance": {"expected-statuses": ACCEPTED_STATUSES},
                "negative_data_rejection": {"expected-statuses": REJECTED_STATUSES},
            },
        }
    )


@pytest.fixture
def fuzz_app(make_app: Any) -> Flask:
    # The suite's roomy limits: every limit stays on, only higher. A loopback webhook target for
    # the seeded webhook (never called: no worker runs).
    return make_app(WEBHOOK_ALLOW_PRIVATE_TARGETS="true")


@pytest.fixture
def fuzzed_api(fuzz_app: Flask) -> Any:
    seeded = seed_account(fuzz_app)
    schema = schemathesis.openapi.from_wsgi("/api/openapi.json", fuzz_app, config=fuzz_config(seeded))

    class FreshToken:
        def get(self, case: Case, ctx: Any) -> str:
            return fresh_token(fuzz_app, seeded.user_id)

        def set(self, case: Case, data: str, ctx: Any) -> None:
            case.headers = {**(case.headers or {}), "Authorization": f"Bearer {data}"}

    schema.auth(refresh_interval=None)(FreshToken)
    return schema


def assert_valid_for_its_model(app: Flask, case: Case) -> None:
    """Input the document calls valid passes the model the view parses it with: the document and
    the validation cannot drift apart (the server may still refuse the input on its merits).

    A `format` is an annotation in JSON Schema 2020-12, which a validator may read more strictly:
    email-validator refuses special-use domains, as the field's description says."""
    if case.meta is None or not case.meta.generation.mode.is_positive:
        return
    declaration = next(op.declaration for op in documented_operations(app) if (op.method, op.path) == (case.method.lower(), case.path))
    for model, given in ((declaration.request, case.body), (declaration.query, case.query)):
        if model is None or not isinstance(given, dict):
            continue
        try:
            model.model_validate(given)
        except ValidationError as exc:
            annotated = formatted_fields(model)
            refused = [error for error in exc.errors() if not {str(part) for part in error["loc"][:1]} & annotated]
            assert not refused, f"{case.method} {case.path}: valid input {given!r} refused by {model.__name__}: {refused}"


def formatted_fields(model: type[BaseModel]) -> set[str]:
    """Top-level fields whose schema has a `format` (date-time, email, ...)."""
    properties = model.model_json_schema()["properties"]
    return {name for name, schema in properties.items() if _has_format(schema)}


def _has_format(schema: dict[str, Any]) -> bool:
    return "format" in schema or any(_has_format(option) for option in schema.get("anyOf", []))


schema = schemathesis.pytest.from_fixture("fuzzed_api")


@schema.parametrize()
@settings(max_examples=MAX_EXAMPLES, derandomize=True, deadline=None, suppress_health_check=list(HealthCheck))
def test_the_api_keeps_to_its_document(case: Case, fuzz_app: Flask) -> None:
    case.call_and_validate()
    assert_valid_for_its_model(fuzz_app, case)
