"""The OpenAPI 3.1 document of the JSON API, built from the app itself: its routes under
API_BASE_PATH, each view's `@documented` declaration (the same pydantic models the view parses
with), its `require_bearer` guard and the rate limits the app's limiter applies to it.

A route whose view declares nothing is left out; tests/api/test_openapi.py names it."""

from __future__ import annotations

import inspect
import re
import sys
import types
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, Union, get_args, get_origin

from flask import Flask
from pydantic import BaseModel, ConfigDict
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaMode, models_json_schema
from werkzeug.routing import Rule

import idp
from idp.api.documented import Declaration, declaration_of, marked
from idp.api.guard import BEARER_MARK, BearerRequirement
from idp.api.responses import Done, Failure, Success, SuccessMaybeData

OPENAPI_VERSION = "3.1.0"
CACHE_KEY = "idp.openapi"
REF_TEMPLATE = "#/components/schemas/{model}"
PARAMETER = re.compile(r"<(?:(?P<converter>\w+)(?:\([^)]*\))?:)?(?P<name>\w+)>")
CONVERTER_SCHEMAS = {"int": {"type": "integer"}, "float": {"type": "number"}, "uuid": {"type": "string", "format": "uuid"}}
IGNORED_METHODS = {"HEAD", "OPTIONS"}

SECURITY_SCHEMES = {
    "bearerAuth": {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": "An access token (15 minutes) from register, login, the second factor or refresh. "
        "Where an endpoint also lists `apiKey`, an API key works here too, as `Bearer pk_live_...`.",
    },
    "apiKey": {
        "type": "apiKey",
        "in": "header",
        "name": "X-API-Key",
        "description": "An API key (`pk_live_...`) acting for its owner, only on endpoints that list one of "
        "its scopes (`*` covers all but `admin`, which a key names itself: the admin endpoints take only an "
        "administrator's key with `admin`), under the key's own hourly limit.",
    },
}
RATE_LIMIT_HEADERS = {
    "Retry-After": {"description": "Seconds to wait", "schema": {"type": "integer"}},
    "RateLimit-Limit": {"description": "Requests allowed in the window", "schema": {"type": "integer"}},
    "RateLimit-Remaining": {"description": "Requests left in the window", "schema": {"type": "integer"}},
    "RateLimit-Reset": {"description": "Seconds until the window resets", "schema": {"type": "integer"}},
}
DESCRIPTION = """\
Every answer is an envelope: `{"success": true, "message"?: string, "data"?: {...}}`, or
`{"success": false, "message": string, "code": string, "errors"?: [string]}` for a failure
(`code` is a stable machine-readable word). The health checks answer without an envelope.
A validation failure is a 400 with `errors: ["<field>: <reason>", ...]`; an unknown route a 404.
Text never holds the NUL character (U+0000): in a body it is a validation failure, in a path a 404.
"""


class OpenApiDocument(BaseModel):
    """This document (OpenAPI 3.1)."""

    model_config = ConfigDict(extra="allow")

    openapi: str
    info: dict[str, Any]
    paths: dict[str, Any]


class _Schemas(GenerateJsonSchema):
    """Pydantic's JSON Schema (draft 2020-12, OpenAPI 3.1's dialect) without a title on every field,
    and with readable names for the envelopes: `Success[Union[A, B]]` is `SuccessAOrB`."""

    def field_title_should_be_set(self, schema: Any) -> bool:
        return False

    def normalize_name(self, name: str) -> str:
        return re.sub(r"[^A-Za-z0-9]", "", name.replace("Union[", "").replace(", ", "Or"))

    def default_schema(self, schema: Any) -> dict[str, Any]:
        """No `default: null` where null is not allowed: such a field is one to leave out."""
        json_schema = super().default_schema(schema)
        if "default" in json_schema and json_schema["default"] is None and not _admits_null(json_schema):
            del json_schema["default"]
        return json_schema


def _admits_null(schema: dict[str, Any]) -> bool:
    return schema.get("type") == "null" or any(option.get("type") == "null" for option in schema.get("anyOf", []))


@dataclass(frozen=True)
class Operation:
    """One method of one API route, with what its view declares."""

    path: str
    method: str
    endpoint: str
    rule: Rule
    view: Callable[..., Any]
    declaration: Declaration

    @property
    def bearer(self) -> BearerRequirement | None:
        return marked(self.view, BEARER_MARK)

    @property
    def tag(self) -> str:
        return self.endpoint.split(".")[-2]


def openapi_document(app: Flask) -> dict[str, Any]:
    """The app's document, built on first use (every blueprint is registered by then) and kept."""
    document = app.extensions.get(CACHE_KEY)
    if document is None:
        document = app.extensions[CACHE_KEY] = build_document(app)
    return document


def api_rules(app: Flask) -> Iterator[tuple[Rule, str]]:
    """Every (rule, method) the app serves under API_BASE_PATH."""
    prefix = app.extensions["idp"].settings.api_base_path
    for rule in app.url_map.iter_rules():
        if rule.rule == prefix or rule.rule.startswith(prefix + "/"):
            for method in sorted((rule.methods or set()) - IGNORED_METHODS):
                yield rule, method


def openapi_path(rule: Rule) -> str:
    return PARAMETER.sub(lambda m: "{" + m["name"] + "}", rule.rule)


def documented_operations(app: Flask) -> list[Operation]:
    operations = []
    for rule, method in api_rules(app):
        view = app.view_functions[rule.endpoint]
        declaration = declaration_of(view)
        if declaration is not None:
            operations.append(Operation(openapi_path(rule), method.lower(), rule.endpoint, rule, view, declaration))
    return operations


def build_document(app: Flask) -> dict[str, Any]:
    operations = documented_operations(app)
    wanted: list[tuple[type[BaseModel], JsonSchemaMode]] = [(Failure, "serialization")]
    for op in operations:
        wanted += [(model, "validation") for model in (op.declaration.request, op.declaration.query) if model]
        wanted += [(model, "serialization") for model in _answer_models(op.declaration)]
    refs, definitions = models_json_schema(list(dict.fromkeys(wanted)), ref_template=REF_TEMPLATE, schema_generator=_Schemas)
    schemas: dict[str, Any] = definitions.get("$defs", {})
    describe = _Describer(app, refs, schemas)
    paths: dict[str, dict[str, Any]] = {}
    for op in operations:
        paths.setdefault(op.path, {})[op.method] = describe.operation(op)
    settings = app.extensions["idp"].settings
    return {
        "openapi": OPENAPI_VERSION,
        "info": {"title": f"{settings.service_name} JSON API", "version": idp.__version__, "description": DESCRIPTION},
        "tags": describe.tags(operations),
        "paths": paths,
        "components": {"schemas": schemas, "securitySchemes": SECURITY_SCHEMES},
    }


def _answer_models(declaration: Declaration) -> Iterator[type[BaseModel]]:
    for data_type in declaration.responses.values():
        model = _body_model(data_type, declaration.enveloped)
        if model is not None:
            yield model


def _body_model(data_type: Any, enveloped: bool) -> type[BaseModel] | None:
    """The model of a whole answer body: `data_type` in its envelope, or as it is."""
    if not enveloped:
        return data_type
    if data_type is None:
        return Done
    members = get_args(data_type) if get_origin(data_type) in (Union, types.UnionType) else ()
    if type(None) in members:
        rest = [m for m in members if m is not type(None)]
        return SuccessMaybeData[Union[tuple(rest)]]  # type: ignore[misc,return-value]  # noqa: UP007
    return Success[data_type]


class _Describer:
    """Turns operations into OpenAPI operation objects, given the generated schemas."""

    def __init__(self, app: Flask, refs: dict[Any, Any], schemas: dict[str, Any]) -> None:
        self.app = app
        self.refs = refs
        self.schemas = schemas

    def ref(self, model: type[BaseModel], mode: JsonSchemaMode) -> dict[str, Any]:
        return self.refs[(model, mode)]

    def operation(self, op: Operation) -> dict[str, Any]:
        declaration = op.declaration
        summary, description = _summary_and_description(op)
        body: dict[str, Any] = {"operationId": op.endpoint.removeprefix("api."), "summary": summary, "tags": [op.tag]}
        if description:
            body["description"] = description
        body["security"] = self.security(op)
        if parameters := self.parameters(op):
            body["parameters"] = parameters
        if declaration.request is not None:
            body["requestBody"] = {
                "required": bool(self.resolved(declaration.request).get("required")),
                "content": {"application/json": {"schema": self.ref(declaration.request, "validation")}},
            }
        body["responses"] = self.responses(op)
        return body

    def resolved(self, model: type[BaseModel]) -> dict[str, Any]:
        name = self.ref(model, "validation")["$ref"].rsplit("/", 1)[-1]
        return self.schemas[name]

    def security(self, op: Operation) -> list[dict[str, list[str]]]:
        bearer = op.bearer
        if bearer is not None:
            return [{"bearerAuth": []}, {"apiKey": [bearer.scope]}] if bearer.scope else [{"bearerAuth": []}]
        return [{}, {"bearerAuth": []}] if op.declaration.optional_bearer else []

    def parameters(self, op: Operation) -> list[dict[str, Any]]:
        found = [
            {"name": m["name"], "in": "path", "required": True, "schema": CONVERTER_SCHEMAS.get(m["converter"] or "", {"type": "string"})}
            for m in PARAMETER.finditer(op.rule.rule)
        ]
        if op.declaration.query is not None:
            schema = self.resolved(op.declaration.query)
            required = set(schema.get("required", []))
            for name, prop in schema.get("properties", {}).items():
                parameter = {"name": name, "in": "query", "required": name in required, "schema": prop}
                if "description" in prop:
                    parameter["description"] = prop["description"]
                found.append(parameter)
        for name, text in op.declaration.cookies.items():
            found.append({"name": name, "in": "cookie", "required": False, "description": text, "schema": {"type": "string"}})
        return found

    def responses(self, op: Operation) -> dict[str, Any]:
        declaration = op.declaration
        answers: dict[str, Any] = {}
        for status, data_type in sorted(declaration.responses.items()):
            model = _body_model(data_type, declaration.enveloped)
            schema = self.ref(model, "serialization") if model is not None else {"type": "string"}
            answers[str(status)] = {"description": HTTPStatus(status).phrase, "content": {declaration.media_type: {"schema": schema}}}
        failure = {"application/json": {"schema": self.ref(Failure, "serialization")}}
        for status, text in sorted(self.failures(op).items()):
            answers[str(status)] = {"description": text, "content": failure}
            if status == 429:
                answers[str(status)]["headers"] = RATE_LIMIT_HEADERS
        return answers

    def failures(self, op: Operation) -> dict[int, str]:
        """The failures the guard, the parsing and the limits imply, with the declared ones."""
        declaration, bearer = op.declaration, op.bearer
        found: dict[int, str] = {}
        if declaration.request is not None or declaration.query is not None:
            found[400] = "Validation failed (`errors` names each field), or malformed JSON"
        if bearer is not None:
            found[401] = "No valid access token or API key"
            found[403] = "An API key without the scope" if bearer.scope else "An API key (this needs an access token)"
        if PARAMETER.search(op.rule.rule):
            found[404] = "Not found"
        if declaration.request is not None:
            found[413] = "Request body too large"
        if self.limited(op):
            found[429] = "Rate limited"
        for status, text in declaration.errors.items():
            found[status] = f"{found[status]}; {text[:1].lower()}{text[1:]}" if status in found else text
        return found

    def limited(self, op: Operation) -> bool:
        """Whether any limit applies: the limiter's own, or an API key's hourly one."""
        limiter = self.app.extensions["idp"].limiter
        route_limits, view_limits = limiter.limit_manager.resolve_limits(self.app, op.endpoint, op.endpoint.rpartition(".")[0])
        return bool(route_limits or view_limits) or bool(op.bearer and op.bearer.scope)

    def tags(self, operations: list[Operation]) -> list[dict[str, str]]:
        """One tag per feature blueprint, described by its module's docstring."""
        tags: dict[str, str] = {}
        for op in operations:
            blueprint = self.app.blueprints.get(op.endpoint.rpartition(".")[0])
            module = sys.modules.get(blueprint.import_name) if blueprint is not None else None
            tags.setdefault(op.tag, inspect.cleandoc(module.__doc__ or "") if module is not None else "")
        return [{"name": name, "description": text} for name, text in tags.items()]


def _summary_and_description(op: Operation) -> tuple[str, str]:
    doc = inspect.cleandoc(op.view.__doc__ or "")
    first = doc.split("\n\n", 1)[0].replace("\n", " ")
    summary = op.declaration.summary or first or op.view.__name__.replace("_", " ").capitalize()
    return summary, doc if doc and doc != summary else ""
