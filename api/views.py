"""How the API shows domain rows, parses bodies and reads path ids: helpers its routes share."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, TypeVar

from fastapi import HTTPException, Query, status
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError

from api.schemas import (
    ConsumerCreated,
    ConsumerOut,
    ExtractOut,
    FieldOut,
    NoticeOut,
    ObjectionOut,
    OpenRequestOut,
    ResourceOut,
)
from sharehub import audit
from sharehub.access.consumers import Caller
from sharehub.access.grants import (
    Access,
)
from sharehub.access.objections import key_fields
from sharehub.access.openrequests import late as late_answer
from sharehub.catalogue.models import Resource
from sharehub.hub import Hub
from sharehub.metadata.models import Consumer, Notice, Objection, OpenRequest
from sharehub.paging import Page
from sharehub.serving.answers import BadRequest, request_key
from sharehub.serving.bulk import Issued

_Model = TypeVar("_Model", bound=BaseModel)


_Row = TypeVar("_Row")


# The verification route reads its resource id from the path itself (FastAPI's parameter handling
# was a tenth of the hot path); the document still names the parameter.
RESOURCE_IN_PATH: dict[str, Any] = {
    "parameters": [{"name": "resource_id", "in": "path", "required": True, "schema": {"type": "string"}}]
}


def resource_out(r: Resource) -> ResourceOut:
    return ResourceOut(
        id=r.id,
        title=r.title,
        description=r.description,
        provider=r.provider,
        share_type=r.share.type,
        conditions=r.share.conditions,
        legal_basis=r.share.legal_basis,
        serving_modes=list(r.serving_modes),
        update_frequency=r.update.frequency,
        key=list(r.source.key),
        fields=[
            FieldOut(name=f.name, title=f.title, type=f.type, classification=f.classification, masking=f.masking)
            for f in r.fields
        ],
    )


def extract_out(issued: Issued) -> ExtractOut:
    e = issued.extract
    return ExtractOut(
        id=e.id,
        resource_id=e.resource_id,
        grant_id=e.grant_id,
        rows=e.rows,
        sha256=e.sha256,
        store_version=e.store_version,
        since_version=e.since_version,
        columns=e.columns,
        url=issued.url,
        expires_at=issued.expires_at,
    )


def json_body(model: type[BaseModel]) -> dict[str, Any]:
    """The OpenAPI request body of a route that parses its JSON body itself."""
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": model.model_json_schema()}}}}


def parse(model: type[_Model], raw: bytes) -> _Model:
    """A JSON body parsed by pydantic's own parser (on the verification hot path FastAPI's generic body
    handling cost more than the lookup); a bad body gets the same 422 FastAPI would give."""
    try:
        return model.model_validate_json(raw)
    except ValidationError as exc:
        errors = [{**e, "loc": ("body", *e["loc"])} for e in exc.errors(include_url=False)]
        raise RequestValidationError(errors, body=raw) from None


def one(page: Page[_Row], what: str, row_id: int) -> _Row:
    """The one row a single-item route asks for, or 404: one the caller may not see is answered as if it
    did not exist, so ids cannot be probed for what others applied for."""
    if not page:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no {what} {row_id}")
    return page[0]


OverlapQuery = Annotated[
    int,
    Query(ge=0, le=7 * 24 * 60, description="Minutes the replaced key keeps working (0: it stops at once)."),
]


def rotated(step: Callable[[], tuple[Consumer, str]]) -> tuple[Consumer, str]:
    """A rotation, its refusals as 404 (no such caller) or 422 (an overlap it cannot have)."""
    try:
        return step()
    except LookupError as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None
    except ValueError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from None


def created(made: Consumer, key: str) -> ConsumerCreated:
    """A caller with its new key, as answered this once."""
    return ConsumerCreated(**ConsumerOut.model_validate(made, from_attributes=True).model_dump(), api_key=key)


def own_department(caller: Caller, department: str | None, what: str) -> str | None:
    """The department a list is filtered to: a provider department's own (asking for another's is 403),
    or for the platform office the one it asked for, if any."""
    if caller.role != "provider":
        return department
    if department not in (None, caller.department):
        raise HTTPException(status.HTTP_403_FORBIDDEN, f"a department sees only its own {what}")
    return caller.department


def department_of(caller: Caller) -> str | None:
    """Whose notices the caller may see: a provider department its own, the platform office every one."""
    return caller.department if caller.role == "provider" else None


def notice_out(n: Notice) -> NoticeOut:
    return NoticeOut(
        id=n.id,
        kind=n.kind,
        department=n.department,
        resource_id=n.resource_id,
        run_id=n.run_id,
        status=n.status,
        created_at=n.created_at,
        deadline=n.deadline,
        subject=n.subject,
        body=n.body,
        pending_rows=len(n.pending_keys),
        resolved_at=n.resolved_at,
    )


def open_request_out(made: OpenRequest) -> OpenRequestOut:
    fields = {name: getattr(made, name) for name in OpenRequestOut.model_fields if name != "late"}
    return OpenRequestOut(**fields, late=late_answer(made))


def objection_out(hub: Hub, made: Objection) -> ObjectionOut:
    """The objection as its consumer, its provider and the platform office see it: with the record's key."""
    fields = {name: getattr(made, name) for name in ObjectionOut.model_fields if name != "key"}
    return ObjectionOut(**fields, key=key_fields(hub, made))


async def served_key(
    hub: Hub, caller: Caller, resource_id: str, access: Access, mode: str, given: dict[str, Any]
) -> dict[str, str]:
    res = hub.catalogue.resource(resource_id)
    try:
        return request_key(res, given)
    except BadRequest as exc:
        await audit.arecord(
            hub, mode, caller, resource_id, grant_id=access.grant_id, result="bad_request", detail=str(exc)
        )
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from None
