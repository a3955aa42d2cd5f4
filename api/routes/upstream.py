"""Requests that cross levels, through this platform (`sharehub.levels.upstream`): the upper level's catalogue,
requests for its data, and the relayed serving calls, each checked by one dependency (`reached`)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any, NamedTuple

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, Response, status
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

from api.deps import CallerDep, HubDep, limiter
from api.errors import step
from api.paging import PAGED, ListPage, paged
from api.schemas import BulkIn, Moment, ObjectionIn, VerifyIn
from sharehub import audit
from sharehub.access.consumers import Caller
from sharehub.hub import Hub
from sharehub.levels.upstream import (
    Reach,
    Refused,
    Unreachable,
    UpstreamState,
    catalogue,
    contest,
    decline,
    file_request,
    forward,
    list_objections,
    list_requests,
    object_upstairs,
    reach,
    record_key,
    relay_bulk,
    relay_query,
    relay_verify,
    sync,
    withdraw,
)
from sharehub.metadata.models import UpstreamRequest

ACTIONS = {"verification": "upstream_verification", "query": "upstream_query", "bulk": "upstream_extract"}
UPSTREAM_ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"description": "No upper-level platform configured, or no such request"},
    502: {"description": "The upper-level platform did not answer"},
}


class UpstreamRequestIn(BaseModel):
    """A request for data held at the upper-level platform."""

    resource_id: str = Field(max_length=100, description="The resource id in the upper level's catalogue.")
    fields: list[str] = Field(max_length=500)
    modes: list[str] = Field(max_length=3, description="verification, query and/or bulk.")
    purpose: str = Field(max_length=2000)
    valid_until: datetime


class UpstreamRequestOut(BaseModel):
    """A request for upper-level data and where it stands, here and upstairs."""

    id: int
    consumer_id: int
    department: str
    resource_id: str
    provider: str
    fields: list[str]
    modes: list[str]
    purpose: str
    valid_until: Moment
    status: str = Field(
        description="collected, declined, forwarded, granted, refused, contested, referred, withdrawn or ended."
    )
    deadline: Moment = Field(description="When this platform office must forward or decline it.")
    forwarded_at: Moment | None
    upstream_application_id: int | None
    upstream_status: str | None
    upstream_step_deadline: Moment | None
    upstream_grant_id: int | None
    reason: str | None
    synced_at: Moment | None


class UpstreamObjectionOut(BaseModel):
    """An objection raised upstairs through this platform, and the upper-level provider's answer once synced."""

    id: int
    department: str
    resource_id: str
    record_key: str = Field(description="The record's key fields, joined by |.")
    fields: list[str]
    reason: str
    status: str = Field(description="open, corrected or confirmed, as upstairs.")
    deadline: Moment = Field(description="When the upper level's provider must answer.")
    upstream_objection_id: int
    created_at: Moment
    answered_at: Moment | None
    answer: str | None


class UpstreamSyncOut(BaseModel):
    """What a sync found changed upstairs."""

    requests: list[UpstreamRequestOut]
    objections: list[UpstreamObjectionOut]


class ReasonIn(BaseModel):
    """Why."""

    reason: str = Field(max_length=2000)


class Relayed(NamedTuple):
    """A relayed serving call: the hub, the caller, and what its granted requests reach."""

    hub: Hub
    caller: Caller
    reach: Reach


def _out(r: UpstreamRequest) -> UpstreamRequestOut:
    return UpstreamRequestOut.model_validate(r, from_attributes=True)


def _upstream(action: Callable[[], Any]) -> Any:
    """Run a step (refusals as `step` gives them); the upper level's silence is 502, its own refusal its status."""
    try:
        return step(action)
    except Unreachable as exc:
        raise HTTPException(status.HTTP_502_BAD_GATEWAY, str(exc)) from None
    except Refused as exc:
        # The upper level's 4xx (a revoked grant, a wrong key field) is the caller's; its 5xx, or its refusal of
        # this platform's own key (401: the caller's key is fine), is a bad gateway here.
        if exc.status == status.HTTP_401_UNAUTHORIZED:
            raise HTTPException(status.HTTP_502_BAD_GATEWAY, f"this platform's key was refused: {exc.detail}") from None
        raise HTTPException(exc.status if exc.status < 500 else status.HTTP_502_BAD_GATEWAY, exc.detail) from None


async def _relay(hub: Hub, caller: Caller, action: str, resource_id: str, call: Callable[[], Any]) -> Any:
    """Make a relayed call off the event loop; a failure (the upper level's refusal, or its silence) is
    audited with its reason before it goes back to the caller."""
    try:
        return await run_in_threadpool(_upstream, call)
    except HTTPException as exc:
        await audit.arecord(hub, action, caller, resource_id, result="failed", detail=str(exc.detail)[:200])
        raise


router = APIRouter(prefix="/upstream", tags=["levels"])
RequestId = Annotated[int, Path(ge=1, le=2**62)]


def reached(mode: str) -> Callable[..., Any]:
    """The dependency that checks every relayed call: the caller's granted requests for the resource in
    this mode, or 403 saying why not (audited)."""

    async def resolve(hub: HubDep, caller: CallerDep, resource_id: str) -> Relayed:
        try:
            return Relayed(hub, caller, _upstream(lambda: reach(hub, caller, resource_id, mode)))
        except HTTPException as exc:
            if exc.status_code == status.HTTP_403_FORBIDDEN:
                refused = str(exc.detail)
                await audit.arecord(hub, ACTIONS[mode], caller, resource_id, result="denied", detail=refused)
            raise

    return resolve


@router.get("/catalogue", response_model=list[dict[str, Any]], responses=UPSTREAM_ERRORS)
def upstream_catalogue(hub: HubDep, caller: CallerDep) -> list[dict[str, Any]]:
    """The upper-level platform's catalogue, as it publishes it: what a department here may request."""
    return list(_upstream(lambda: catalogue(hub)).values())


@router.post(
    "/requests",
    response_model=UpstreamRequestOut,
    status_code=201,
    responses={**UPSTREAM_ERRORS, 403: {"description": "Not a consumer"}, 422: {"description": "Invalid"}},
)
def request_add(hub: HubDep, caller: CallerDep, body: UpstreamRequestIn) -> UpstreamRequestOut:
    """Request upper-level data; this platform office is asked to forward it (Zhongshan 20)."""
    return _out(
        _upstream(
            lambda: file_request(hub, caller, body.resource_id, body.fields, body.modes, body.purpose, body.valid_until)
        )
    )


@router.get(
    "/requests", response_model=list[UpstreamRequestOut], responses={**PAGED, 403: {"description": "A provider"}}
)
def requests(
    hub: HubDep,
    caller: CallerDep,
    request: Request,
    response: Response,
    page: ListPage,
    request_status: Annotated[UpstreamState | None, Query(alias="status")] = None,
) -> list[UpstreamRequestOut]:
    """A consumer's own requests for upper-level data; every one, for the platform office; newest first."""
    found = _upstream(lambda: list_requests(hub, caller, page.limit, page.before, status=request_status))
    paged(request, response, found)
    return [_out(r) for r in found]


@router.get("/requests/{request_id}", response_model=UpstreamRequestOut, responses=UPSTREAM_ERRORS)
def request_one(hub: HubDep, caller: CallerDep, request_id: RequestId) -> UpstreamRequestOut:
    """One request, on the rule of `GET /upstream/requests`."""
    found = list(_upstream(lambda: list_requests(hub, caller, only=request_id)))
    if not found:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no upstream request {request_id}")
    return _out(found[0])


@router.post(
    "/requests/{request_id}/forward",
    response_model=UpstreamRequestOut,
    responses={**UPSTREAM_ERRORS, 403: {"description": "Not the platform office"}, 409: {"description": "Done"}},
)
def request_forward(hub: HubDep, caller: CallerDep, request_id: RequestId) -> UpstreamRequestOut:
    """The platform office applies upward for the request, as its own application."""
    return _out(_upstream(lambda: forward(hub, caller, request_id)))


@router.post(
    "/requests/{request_id}/decline",
    response_model=UpstreamRequestOut,
    responses={**UPSTREAM_ERRORS, 403: {"description": "Not the platform office"}, 409: {"description": "Done"}},
)
def request_decline(hub: HubDep, caller: CallerDep, request_id: RequestId, body: ReasonIn) -> UpstreamRequestOut:
    """The platform office does not forward the request, with its reasons; the requester is told."""
    return _out(_upstream(lambda: decline(hub, caller, request_id, body.reason)))


@router.post(
    "/requests/{request_id}/withdraw",
    response_model=UpstreamRequestOut,
    responses={**UPSTREAM_ERRORS, 403: {"description": "Not a consumer"}, 409: {"description": "Done"}},
)
def request_withdraw(hub: HubDep, caller: CallerDep, request_id: RequestId, body: ReasonIn) -> UpstreamRequestOut:
    """The requester takes its request back; upstairs the application is withdrawn or the grant given up."""
    return _out(_upstream(lambda: withdraw(hub, caller, request_id, body.reason)))


@router.post(
    "/requests/{request_id}/contest",
    response_model=UpstreamRequestOut,
    responses={
        **UPSTREAM_ERRORS,
        403: {"description": "Not a consumer"},
        409: {"description": "Not refused by the upper level"},
    },
)
def request_contest(hub: HubDep, caller: CallerDep, request_id: RequestId, body: ReasonIn) -> UpstreamRequestOut:
    """The requester contests the upper level's refusal (Lichuan 25): the platform office's application
    upstairs is contested there; sync brings the outcome down."""
    return _out(_upstream(lambda: contest(hub, caller, request_id, body.reason)))


@router.post(
    "/sync",
    response_model=UpstreamSyncOut,
    responses={**UPSTREAM_ERRORS, 403: {"description": "Not the platform office"}},
)
def upstream_sync(hub: HubDep, caller: CallerDep) -> UpstreamSyncOut:
    """Follow every forwarded or granted request and every open objection upstairs; what changed."""
    done = _upstream(lambda: sync(hub, caller))
    return UpstreamSyncOut(
        requests=[_out(r) for r in done.requests],
        objections=[UpstreamObjectionOut.model_validate(o, from_attributes=True) for o in done.objections],
    )


@router.post(
    "/objections",
    response_model=UpstreamObjectionOut,
    status_code=201,
    responses={**UPSTREAM_ERRORS, 403: {"description": "No upstream grant"}, 422: {"description": "Invalid"}},
)
def objection_add(hub: HubDep, caller: CallerDep, body: ObjectionIn) -> UpstreamObjectionOut:
    """Report an upper-level record you use as wrong; this platform office raises it upstairs, where its
    provider must answer within the upper level's deadline (`deadline`)."""
    made = _upstream(lambda: object_upstairs(hub, caller, body.resource_id, body.key, body.fields, body.reason))
    return UpstreamObjectionOut.model_validate(made, from_attributes=True)


@router.get(
    "/objections",
    response_model=list[UpstreamObjectionOut],
    responses={**PAGED, 403: {"description": "A provider"}},
)
def objections(
    hub: HubDep, caller: CallerDep, request: Request, response: Response, page: ListPage
) -> list[UpstreamObjectionOut]:
    """A consumer's own objections on upper-level data; every one, for the platform office; newest first."""
    found = _upstream(lambda: list_objections(hub, caller, page.limit, page.before))
    paged(request, response, found)
    return [UpstreamObjectionOut.model_validate(o, from_attributes=True) for o in found]


@router.post(
    "/verify/{resource_id}",
    responses={
        **UPSTREAM_ERRORS,
        403: {"description": "No upstream grant, or a field outside it"},
        429: {"description": "Rate limit"},
    },
)
async def upstream_verify(
    resource_id: str, relayed: Annotated[Relayed, Depends(reached("verification"))], body: VerifyIn
) -> dict[str, Any]:
    """Verification of an upper-level record, relayed under the caller's granted request: per-field
    booleans, and `found` only for a caller granted query too."""
    hub, caller, got = relayed
    if not limiter.allow(hub.settings.metadata_url, caller.id, hub.settings.verify_rate_per_minute):
        await audit.arecord(hub, ACTIONS["verification"], caller, resource_id, result="rate_limited")
        raise HTTPException(status.HTTP_429_TOO_MANY_REQUESTS, "too many verification calls", {"Retry-After": "1"})
    asked = body.model_dump()
    answer, key = await _relay(
        hub,
        caller,
        ACTIONS["verification"],
        resource_id,
        lambda: (relay_verify(hub, got, resource_id, asked), record_key(hub, resource_id, body.key)),
    )
    await audit.arecord(
        hub,
        ACTIONS["verification"],
        caller,
        resource_id,
        purpose=got.purpose,
        record_key=key,
        result="match" if answer.get("match") else "no_match",
        detail=f"upstream request #{got.request_id}",
    )
    return dict(answer)


@router.get(
    "/query/{resource_id}",
    responses={**UPSTREAM_ERRORS, 403: {"description": "No upstream grant"}},
)
async def upstream_query(
    request: Request, resource_id: str, relayed: Annotated[Relayed, Depends(reached("query"))]
) -> dict[str, Any]:
    """The record of an upper-level resource (`?<key field>=…`, `as_of` as upstairs), relayed: only the
    fields the caller's granted requests cover, masked as the upper level masks them."""
    hub, caller, got = relayed
    params = list(request.query_params.multi_items())
    answer, key = await _relay(
        hub,
        caller,
        ACTIONS["query"],
        resource_id,
        lambda: (relay_query(hub, got, resource_id, params), record_key(hub, resource_id, dict(params))),
    )
    await audit.arecord(
        hub,
        ACTIONS["query"],
        caller,
        resource_id,
        purpose=got.purpose,
        record_key=key,
        result="ok",
        detail=f"upstream request #{got.request_id}",
    )
    return dict(answer)


@router.post(
    "/bulk/{resource_id}",
    status_code=201,
    responses={**UPSTREAM_ERRORS, 403: {"description": "No upstream grant for bulk"}},
)
async def upstream_bulk(
    resource_id: str, relayed: Annotated[Relayed, Depends(reached("bulk"))], body: BulkIn | None = None
) -> dict[str, Any]:
    """A masked Parquet extract of an upper-level resource, made upstairs under the caller's granted
    request (its columns only; `incremental`: the rows changed since its last one): the upper level's
    answer as it gives it, with a short-lived download link there."""
    hub, caller, got = relayed
    incremental = bool(body and body.incremental)
    answer = await _relay(
        hub, caller, ACTIONS["bulk"], resource_id, lambda: relay_bulk(hub, got, resource_id, incremental)
    )
    await audit.arecord(
        hub,
        ACTIONS["bulk"],
        caller,
        resource_id,
        purpose=got.purpose,
        result="incremental" if answer.get("since_version") is not None else "full",
        detail=f"upstream request #{got.request_id}; extract {answer.get('id')}; {answer.get('rows')} rows; "
        f"link expires {answer.get('expires_at')}",
    )
    return answer
