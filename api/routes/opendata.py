"""Routes: opendata."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from api.deps import (
    CallerDep,
    HubDep,
    PathId,
)
from api.errors import step
from api.paging import PAGED, ListPage, paged
from api.schemas import (
    OpenRequestIn,
    OpenRequestOut,
    RevokeIn,
    StepIn,
)
from api.views import (
    one,
    open_request_out,
)
from sharehub.access.openrequests import OpenRequestState, file_request
from sharehub.access.openrequests import decide_request as decide_open_request
from sharehub.access.openrequests import list_requests as list_open_requests
from sharehub.access.openrequests import withdraw_request as withdraw_open_request

router = APIRouter()


@router.post(
    "/open/requests",
    response_model=OpenRequestOut,
    status_code=201,
    tags=["open data"],
    responses={
        403: {"description": "Not the platform office"},
        422: {"description": "Not open on application, a field not public, or no purpose"},
    },
)
def open_request_add(hub: HubDep, caller: CallerDep, body: OpenRequestIn) -> OpenRequestOut:
    """The open-data portal files a request for data opened on application; the providing department
    gets a notice with the profile's `open_application` deadline."""
    made = step(
        lambda: file_request(
            hub,
            caller,
            body.resource_id,
            body.applicant,
            body.fields,
            body.purpose,
            body.portal_ref,
            body.accepts_conditions,
        )
    )
    return open_request_out(made)


@router.get("/open/requests", response_model=list[OpenRequestOut], tags=["open data"], responses=PAGED)
def open_requests(
    hub: HubDep,
    caller: CallerDep,
    request: Request,
    response: Response,
    page: ListPage,
    request_status: Annotated[
        OpenRequestState | None, Query(alias="status", description="pending: the answers owed.")
    ] = None,
    resource_id: Annotated[str | None, Query(max_length=100)] = None,
) -> list[OpenRequestOut]:
    """Every request for the platform office; a provider department's on its own resources."""
    found = step(
        lambda: list_open_requests(hub, caller, page.limit, page.before, status=request_status, resource_id=resource_id)
    )
    paged(request, response, found)
    return [open_request_out(r) for r in found]


@router.get(
    "/open/requests/{request_id}",
    response_model=OpenRequestOut,
    tags=["open data"],
    responses={404: {"description": "No such request that the caller may see"}},
)
def open_request(hub: HubDep, caller: CallerDep, request_id: PathId) -> OpenRequestOut:
    """One request, on the rule of `GET /open/requests`."""
    found = one(step(lambda: list_open_requests(hub, caller, only=request_id)), "open-data request", request_id)
    return open_request_out(found)


@router.post(
    "/open/requests/{request_id}/decision",
    response_model=OpenRequestOut,
    tags=["open data"],
    responses={
        403: {"description": "Not a provider department"},
        404: {"description": "No such request on your resources"},
        409: {"description": "Already answered, or nothing delivered yet"},
    },
)
def open_request_decision(hub: HubDep, caller: CallerDep, request_id: PathId, body: StepIn) -> OpenRequestOut:
    """The providing department approves (its request's dataset is written, sealed) or refuses with
    reasons; the platform office is told, for the portal."""
    return open_request_out(step(lambda: decide_open_request(hub, caller, request_id, body.approve, body.reason)))


@router.post(
    "/open/requests/{request_id}/withdraw",
    response_model=OpenRequestOut,
    tags=["open data"],
    responses={
        403: {"description": "Not the platform office"},
        404: {"description": "No such request"},
        409: {"description": "Already answered"},
    },
)
def open_request_withdraw(hub: HubDep, caller: CallerDep, request_id: PathId, body: RevokeIn) -> OpenRequestOut:
    """The portal takes a pending request back for its applicant; the department's notice is resolved."""
    return open_request_out(step(lambda: withdraw_open_request(hub, caller, request_id, body.reason)))
