"""The OpenAPI document at /api/openapi.json describes every API route from the endpoints' own
models, and /api/docs renders it as a plain page."""

from __future__ import annotations

import re

import jsonschema_rs
import pytest
from flask import Flask
from schemathesis.specs.openapi.definitions import OPENAPI_31

from idp.api.openapi import api_rules, openapi_document, openapi_path
from idp.api.schemas import RegisterRequest
from idp.http import PAGE_CSP

ANNOTATE = """\
These API routes are not in the OpenAPI document. Declare what each reads and answers next to its view
(idp/api/documented.py explains it):

    @bp.post("/things")
    @documented(request=CreateThingRequest, responses={201: ThingCreated}, errors={409: "The name is taken"})
    @require_bearer(scope="things:write")
    def create_thing() -> Response: ...

"""


@pytest.fixture
def backend() -> str:
    return "embedded"  # the document reads no data: one backend is enough


@pytest.fixture
def document(app: Flask) -> dict:
    return app.test_client().get("/api/openapi.json").json


def test_every_api_route_is_in_the_document(app, document):
    """A route under API_BASE_PATH without a `@documented` declaration fails here, by name."""
    missing = [
        f"{method} {rule.rule}  ({rule.endpoint})"
        for rule, method in api_rules(app)
        if method.lower() not in document["paths"].get(openapi_path(rule), {})
    ]
    assert not missing, ANNOTATE + "\n".join(missing)


def test_the_document_lists_nothing_the_app_does_not_serve(app, document):
    served = {(openapi_path(rule), method.lower()) for rule, method in api_rules(app)}
    listed = {(path, method) for path, methods in document["paths"].items() for method in methods}
    assert listed <= served


def test_the_document_is_valid_openapi_3_1(document):
    assert document["openapi"] == "3.1.0"
    errors = [f"{'/'.join(map(str, e.instance_path))}: {e.message}" for e in jsonschema_rs.validator_for(OPENAPI_31).iter_errors(document)]
    assert not errors, errors[:5]


def test_request_bodies_are_the_models_the_endpoints_parse(document):
    register = document["paths"]["/api/auth/register"]["post"]
    assert register["requestBody"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/RegisterRequest"}
    schema = document["components"]["schemas"]["RegisterRequest"]
    assert set(schema["properties"]) == {field.alias or name for name, field in RegisterRequest.model_fields.items()}
    assert schema["additionalProperties"] is False
    assert schema["properties"]["password"]["minLength"] == 8 and schema["properties"]["password"]["maxLength"] == 128


def test_answers_are_enveloped_and_failures_share_one_schema(document):
    me = document["paths"]["/api/auth/me"]["get"]["responses"]
    envelope = document["components"]["schemas"][me["200"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]]
    assert envelope["required"] == ["success", "data"] and envelope["properties"]["success"] == {"const": True, "type": "boolean"}
    failure = {"$ref": "#/components/schemas/Failure"}
    assert {me[status]["content"]["application/json"]["schema"]["$ref"] for status in ("401", "403", "429")} == {failure["$ref"]}
    assert set(document["components"]["schemas"]["Failure"]["required"]) == {"success", "message", "code"}


def test_health_answers_without_an_envelope(document):
    health = document["paths"]["/api/health"]["get"]
    assert health["security"] == []
    assert set(health["responses"]) == {"200", "503"}  # exempt from every limit: no 429
    assert health["responses"]["200"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/HealthReport"}


def test_security_schemes_are_the_access_token_and_the_api_key(document):
    schemes = document["components"]["securitySchemes"]
    assert schemes["bearerAuth"] == {**schemes["bearerAuth"], "type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
    assert schemes["apiKey"] == {**schemes["apiKey"], "type": "apiKey", "in": "header", "name": "X-API-Key"}
    paths = document["paths"]
    assert paths["/api/auth/me"]["get"]["security"] == [{"bearerAuth": []}, {"apiKey": ["user:read"]}]
    assert paths["/api/api-keys"]["post"]["security"] == [{"bearerAuth": []}]  # keys never manage keys
    assert paths["/api/admin/users"]["get"]["security"] == [{"bearerAuth": []}, {"apiKey": ["admin"]}]
    assert "`*` covers all but `admin`" in schemes["apiKey"]["description"]  # a "*" key is refused there (403)
    assert paths["/api/auth/logout"]["post"]["security"] == [{}, {"bearerAuth": []}]
    assert paths["/api/auth/login"]["post"]["security"] == []
    if "/api/webhooks/events" in paths:  # public: what a webhook can subscribe to
        assert paths["/api/webhooks/events"]["get"]["security"] == []


def test_guarded_operations_document_401_and_403(document):
    for path, methods in document["paths"].items():
        for method, operation in methods.items():
            if operation["security"] and {} not in operation["security"]:
                assert {"401", "403"} <= set(operation["responses"]), f"{method} {path}"


def test_every_path_parameter_is_declared(document):
    for path, methods in document["paths"].items():
        names = set(re.findall(r"{(\w+)}", path))
        for method, operation in methods.items():
            declared = {p["name"] for p in operation.get("parameters", []) if p["in"] == "path"}
            assert declared == names, f"{method} {path}"
            if names:
                assert "404" in operation["responses"], f"{method} {path}"


def test_query_parameters_come_from_the_query_model(document):
    parameters = document["paths"]["/api/audit-logs"]["get"]["parameters"]
    assert {p["name"]: p["schema"]["maximum"] for p in parameters if p["in"] == "query"} == {"page": 100000, "limit": 100}


def test_the_document_is_built_once_per_app(app):
    with app.app_context():
        assert openapi_document(app) is openapi_document(app)


def test_the_reference_page_shows_every_operation_without_outside_resources(app, document):
    response = app.test_client().get("/api/docs")
    assert response.status_code == 200 and response.mimetype == "text/html"
    assert response.headers["Content-Security-Policy"] == PAGE_CSP
    page = response.get_data(as_text=True)
    for path, methods in document["paths"].items():
        for method in methods:
            assert f'id="op-{methods[method]["operationId"].replace(".", "-")}"' in page, f"{method} {path}"
    assert not re.search(r"""(src|href)=["']https?://""", page)
