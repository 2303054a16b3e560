"""How a JSON API view declares what it reads and answers, for the OpenAPI document.

    @bp.post("/things")
    @documented(request=CreateThingRequest, responses={201: ThingCreated}, errors={409: "The name is taken"})
    @require_bearer(scope="things:write")
    def create_thing() -> Response: ...

The document (idp/api/openapi.py) reads the rest from the view itself: its route and path
parameters, its docstring (summary and description), `require_bearer` (security, 401 and 403),
the rate limits that apply (429), and 400 / 413 wherever a body or query is parsed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from pydantic import BaseModel

F = TypeVar("F", bound=Callable[..., Any])
DECLARATION_MARK = "_idp_documented"


@dataclass(frozen=True)
class Declaration:
    """What an endpoint reads and answers.

    `responses` maps a status to the type of the envelope's `data`: a model, a union of models,
    `Model | None` when `data` may be left out, or `None` for a success that carries only a message.
    Without `enveloped`, the type is the whole body (health checks, the document itself)."""

    responses: Mapping[int, Any]
    request: type[BaseModel] | None = None  # the JSON body, as passed to `parse()`
    query: type[BaseModel] | None = None  # the query string, as passed to `parse(Model, request.args)`
    errors: Mapping[int, str] = field(default_factory=dict)  # failures beyond those the guard, parse and limits imply
    cookies: Mapping[str, str] = field(default_factory=dict)  # cookie name -> what it carries
    optional_bearer: bool = False  # a public endpoint that also reads an access token if given
    summary: str | None = None  # default: the first line of the view's docstring
    enveloped: bool = True
    media_type: str = "application/json"


def documented(
    *,
    responses: Mapping[int, Any],
    request: type[BaseModel] | None = None,
    query: type[BaseModel] | None = None,
    errors: Mapping[int, str] | None = None,
    cookies: Mapping[str, str] | None = None,
    optional_bearer: bool = False,
    summary: str | None = None,
    enveloped: bool = True,
    media_type: str = "application/json",
) -> Callable[[F], F]:
    """Attach a `Declaration` to the view (see the module docstring); it changes nothing at run time."""
    declaration = Declaration(
        responses=dict(responses),
        request=request,
        query=query,
        errors=dict(errors or {}),
        cookies=dict(cookies or {}),
        optional_bearer=optional_bearer,
        summary=summary,
        enveloped=enveloped,
        media_type=media_type,
    )

    def mark(view: F) -> F:
        setattr(view, DECLARATION_MARK, declaration)
        return view

    return mark


def marked(view: Callable[..., Any], name: str) -> Any:
    """A mark set on the view or on any function it wraps (decorators that use functools.wraps)."""
    current: Any = view
    while current is not None:
        if (found := getattr(current, name, None)) is not None:
            return found
        current = getattr(current, "__wrapped__", None)
    return None


def declaration_of(view: Callable[..., Any]) -> Declaration | None:
    return marked(view, DECLARATION_MARK)
