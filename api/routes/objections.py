"""Routes: objections."""

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
    AnswerIn,
    ObjectionIn,
    ObjectionOut,
)
from api.views import (
    objection_out,
    one,
)
from sharehub.access.objections import ObjectionState, list_objections, raise_objection
from sharehub.access.objections import answer as answer_objection

router = APIRouter()


@router.post(
    "/objections",
    response_model=ObjectionOut,
    status_code=201,
    tags=["objections"],
    responses={403: {"description": "No grant on the resource"}, 422: {"description": "Invalid objection"}},
)
def objection_add(hub: HubDep, caller: CallerDep, body: ObjectionIn) -> ObjectionOut:
    """Report a record you are granted as wrong; its provider must answer within the profile's deadline."""
    made = step(lambda: raise_objection(hub, caller, body.resource_id, body.key, body.fields, body.reason))
    return objection_out(hub, made)


@router.get("/objections", response_model=list[ObjectionOut], tags=["objections"], responses=PAGED)
def objections(
    hub: HubDep,
    caller: CallerDep,
    request: Request,
    response: Response,
    page: ListPage,
    objection_status: Annotated[
        ObjectionState | None,
        Query(alias="status", description="open: the answers a provider owes."),
    ] = None,
) -> list[ObjectionOut]:
    """A consumer's own objections, a provider's on its resources, all for the platform office."""
    found = list_objections(hub, caller, page.limit, page.before, status=objection_status)
    paged(request, response, found)
    return [objection_out(hub, o) for o in found]


@router.get(
    "/objections/{objection_id}",
    response_model=ObjectionOut,
    tags=["objections"],
    responses={404: {"description": "No such objection that the caller may see"}},
)
def objection(hub: HubDep, caller: CallerDep, objection_id: PathId) -> ObjectionOut:
    """One objection and, once given, the provider's answer, on the rule of `GET /objections`."""
    return objection_out(hub, one(list_objections(hub, caller, only=objection_id), "objection", objection_id))


@router.post(
    "/objections/{objection_id}/answer",
    response_model=ObjectionOut,
    tags=["objections"],
    responses={
        403: {"description": "Not the provider"},
        404: {"description": "No such objection"},
        409: {"description": "Already answered"},
    },
)
def objection_answer(hub: HubDep, caller: CallerDep, objection_id: PathId, body: AnswerIn) -> ObjectionOut:
    """The provider's answer, corrected or confirmed with reasons; it goes back to the consumer."""
    made = step(lambda: answer_objection(hub, caller, objection_id, body.outcome, body.reason))
    return objection_out(hub, made)
