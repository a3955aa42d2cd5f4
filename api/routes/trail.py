"""Routes: trail."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request, Response, status

from api.deps import (
    CallerDep,
    HubDep,
)
from api.paging import PAGED, ListPage, paged
from api.schemas import (
    AuditOut,
)
from sharehub import audit

router = APIRouter()


@router.get(
    "/audit",
    response_model=list[AuditOut],
    tags=["audit"],
    responses={**PAGED, 422: {"description": "A moment without its offset"}},
)
def audit_trail(
    hub: HubDep,
    caller: CallerDep,
    request: Request,
    response: Response,
    page: ListPage,
    action: Annotated[str | None, Query(max_length=40, description="e.g. verification, query, extract.")] = None,
    resource_id: Annotated[str | None, Query(max_length=100)] = None,
    consumer_id: Annotated[int | None, Query(ge=0, le=2**62)] = None,
    record_key: Annotated[
        str | None, Query(max_length=200, description="A record's key, key fields joined by |.")
    ] = None,
    result: Annotated[
        str | None, Query(max_length=40, description="An outcome, e.g. denied (refusals), not_found, match.")
    ] = None,
    since: Annotated[datetime | None, Query(description="From this moment (with its offset).")] = None,
    until: Annotated[datetime | None, Query(description="Before this moment (with its offset).")] = None,
) -> list[AuditOut]:
    """Trace calls and steps (MISSION 12: every access, transfer and download can be traced): the platform
    office every entry, a provider department the calls on its resources and its own steps, a consumer
    its own calls. Reading the trail is itself audited, with the key that was looked for."""
    if any(moment is not None and moment.tzinfo is None for moment in (since, until)):
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "since and until need a time zone, e.g. +08:00")
    found = audit.trail(
        hub,
        caller,
        action=action,
        resource_id=resource_id,
        consumer_id=consumer_id,
        record_key=record_key,
        result=result,
        since=since,
        until=until,
        limit=page.limit,
        before=page.before,
    )
    paged(request, response, found)
    whole = caller.role == "platform"
    out = []
    for e in found:
        entry = AuditOut.model_validate(e, from_attributes=True)
        entry.record_key = audit.shown_key(hub, e.resource_id, e.record_key, whole=whole)
        entry.result = audit.shown_result(e, caller)
        out.append(entry)
    return out
