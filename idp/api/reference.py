"""The API's own description: the OpenAPI document, and a reference page rendered from it."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, render_template
from markupsafe import Markup, escape

from idp.api.documented import documented
from idp.api.openapi import OpenApiDocument, openapi_document
from idp.http import PAGE_CSP_KEY

bp = Blueprint("reference", __name__)

CODE_SPAN = re.compile(r"`([^`]+)`")
CONSTRAINTS = (
    ("minLength", "at least {} characters"),
    ("maxLength", "at most {} characters"),
    ("minimum", "at least {}"),
    ("maximum", "at most {}"),
    ("minItems", "at least {} items"),
    ("maxItems", "at most {} items"),
)


@dataclass(frozen=True)
class PageOperation:
    id: str
    method: str
    path: str
    body: dict[str, Any]


@dataclass(frozen=True)
class PageGroup:
    name: str
    description: str
    operations: list[PageOperation]


@bp.get("/openapi.json")
@documented(responses={200: OpenApiDocument}, enveloped=False)
def openapi() -> Response:
    """This document: OpenAPI 3.1, built from the endpoints' own request and response models."""
    return jsonify(openapi_document(current_app))


@bp.get("/docs")
@documented(responses={200: None}, enveloped=False, media_type="text/html")
def docs() -> Response:
    """The reference page: this document as plain HTML."""
    document = openapi_document(current_app)
    page = render_template("api/reference.html", document=document, groups=groups(document), code=code, notes=notes)
    response = current_app.make_response(page)
    # a page, not an API answer: the hosted pages' policy (own stylesheet), not the API's default-src 'none'
    response.headers["Content-Security-Policy"] = current_app.extensions[PAGE_CSP_KEY]
    return response


def groups(document: dict[str, Any]) -> list[PageGroup]:
    """The operations by tag, in the document's order."""
    found = {tag["name"]: PageGroup(tag["name"], tag.get("description", ""), []) for tag in document.get("tags", [])}
    for path, methods in document["paths"].items():
        for method, body in methods.items():
            for tag in body.get("tags", []):
                group = found.setdefault(tag, PageGroup(tag, "", []))
                group.operations.append(PageOperation(body["operationId"].replace(".", "-"), method, path, body))
    return list(found.values())


def code(text: str) -> Markup:
    """Plain text with its `backtick` spans as <code>."""
    return Markup(CODE_SPAN.sub(lambda m: f"<code>{m[1]}</code>", str(escape(text))))


def notes(schema: dict[str, Any]) -> Markup:
    """A schema's constraints, default and description, for a table cell."""
    parts = [escape(_constraint(key, label, schema[key])) for key, label in CONSTRAINTS if key in schema]
    if "pattern" in schema:
        parts.append(Markup("matches <code>{}</code>").format(schema["pattern"]))
    if "default" in schema:
        parts.append(Markup("default <code>{}</code>").format(json.dumps(schema["default"])))
    if "description" in schema:
        parts.append(code(schema["description"]))
    return Markup("; ").join(parts)


def _constraint(key: str, label: str, value: Any) -> str:
    return "not empty" if (key, value) == ("minLength", 1) else label.format(value)
