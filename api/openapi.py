"""The OpenAPI document says every answer a route can give, in the shape it gives it.

FastAPI documents a route's 200 and its request validation's 422. The rest is added here from what the
route is made of, so that no route is left undocumented and no document drifts from its route:
- a route that resolves a caller takes the bearer key, and may answer 401;
- one whose dependencies admit only some roles, or resolve a grant, may answer 403;
- one with a path id may answer 404 (also for what the caller may not see);
- a POST is a step: it may be refused (403), find nothing (404), come out of turn (409) or be rejected
  with its reason (422);
- a request with a body may be too large (413, `api.limits`).
Every error body is `{"detail": ...}`: a sentence, or FastAPI's list of validation errors.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

PROBLEM = {
    "title": "Problem",
    "type": "object",
    "required": ["detail"],
    "properties": {
        "detail": {
            "title": "Detail",
            "description": "Why: a sentence, or the list of fields that failed validation.",
            "anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "object"}}, {"type": "object"}],
        }
    },
}
SAID = {
    400: "A parameter the protocol does not accept",
    401: "No valid API key",
    403: "The caller's role or grant does not cover this",
    404: "Nothing by that id that the caller may see",
    409: "A step out of turn: the target is in another state",
    410: "It was there and is no longer",
    413: "The request body is larger than this route takes",
    422: "The request is not valid, or the step is rejected: the reason is given",
    429: "Too many calls: try again after Retry-After seconds",
}


def _restricts(dependant: Dependant) -> bool:
    """Whether a dependency admits only some callers (`require`) or resolves a grant (`granted`)."""
    for d in dependant.dependencies:
        name = getattr(d.call, "__qualname__", "")
        if name.startswith(("require.", "granted.")) or _restricts(d):
            return True
    return False


def _answers(route: APIRoute, keyed: bool) -> set[int]:
    codes = {422} if route.dependant.path_params or route.dependant.query_params or route.body_field else set()
    if keyed:
        codes.add(401)
    if _restricts(route.dependant):
        codes.add(403)
    if route.dependant.path_params:
        codes.add(404)
    if route.body_field is not None or "POST" in route.methods:
        codes |= {413, 422}
    if "POST" in route.methods:
        codes |= {403, 404, 409}
    return codes


def document_answers(app: FastAPI, resolves_caller: Callable[[Dependant], bool], bearer: dict[str, Any]) -> None:
    """Wrap `app.openapi` so the document marks keyed routes and lists every answer each route can give."""
    answers = {}
    keyed = set()
    for r in app.routes:
        if not isinstance(r, APIRoute):
            continue
        for method in r.methods:
            if resolves_caller(r.dependant):
                keyed.add((r.path_format, method.lower()))
            answers[(r.path_format, method.lower())] = _answers(r, resolves_caller(r.dependant))
    plain = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = plain()
        components = schema.setdefault("components", {})
        components.setdefault("securitySchemes", {})["HTTPBearer"] = bearer
        components.setdefault("schemas", {})["Problem"] = PROBLEM
        problem = {"application/json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
        for path, operations in schema["paths"].items():
            for method, operation in operations.items():
                if (path, method) in keyed:
                    operation["security"] = [{"HTTPBearer": []}]
                responses = operation.setdefault("responses", {})
                for code in answers.get((path, method), set()) | {int(c) for c in responses if c.isdigit()}:
                    if code < 400:
                        continue
                    said = responses.setdefault(str(code), {"description": SAID.get(code, "Refused")})
                    said["content"] = problem  # one shape for every error, 422's sentences included
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
