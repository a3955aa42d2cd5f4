"""Routes: conflicts."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from api.deps import (
    CallerDep,
    DepartmentDep,
    HubDep,
    PathId,
    ProviderDep,
    platform_only,
)
from api.errors import step
from api.paging import PAGED, ConflictPage, paged
from api.schemas import (
    ConflictOut,
    ConflictsVerifyIn,
    DecisionIn,
    DecisionsIn,
    ReplyIn,
)
from api.views import (
    department_of,
    one,
    own_department,
)
from sharehub.consistency.check import decide as decide_conflict
from sharehub.consistency.check import decide_many as decide_conflicts
from sharehub.consistency.check import list_conflicts
from sharehub.consistency.check import reply as reply_conflict
from sharehub.consistency.check import verify as verify_conflicts

router = APIRouter()


@router.get("/conflicts", response_model=list[ConflictOut], tags=["conflicts"], responses=PAGED)
def conflicts(
    hub: HubDep,
    caller: DepartmentDep,
    request: Request,
    response: Response,
    page: ConflictPage,
    department: Annotated[str | None, Query(max_length=50, description="The platform office's filter.")] = None,
    conflict_status: Annotated[str | None, Query(alias="status", max_length=20)] = None,
    notice: Annotated[int | None, Query(ge=1, le=2**62, description="Only the conflicts of this notice.")] = None,
    resource_id: Annotated[str | None, Query(max_length=100, description="Only this resource's copies.")] = None,
) -> list[ConflictOut]:
    """Conflicts, newest first: a provider department sees those of its copies and those on items it is
    the authoritative source of; the platform office sees all, or one department's as it sees them."""
    department = own_department(caller, department, "conflicts")
    found = list_conflicts(
        hub,
        department,
        conflict_status,
        page.limit,
        as_authority=True,
        notice_id=notice,
        resource_id=resource_id,
        before=page.before,
    )
    paged(request, response, found)
    return [ConflictOut.model_validate(c, from_attributes=True) for c in found]


@router.get(
    "/conflicts/{conflict_id}",
    response_model=ConflictOut,
    tags=["conflicts"],
    responses={404: {"description": "No such conflict that the caller may see"}},
)
def conflict(hub: HubDep, caller: DepartmentDep, conflict_id: PathId) -> ConflictOut:
    """One conflict, on the rule of `GET /conflicts`."""
    found = list_conflicts(hub, department_of(caller), as_authority=True, only=conflict_id)
    return ConflictOut.model_validate(one(found, "conflict", conflict_id), from_attributes=True)


@router.post(
    "/conflicts/{conflict_id}/reply",
    response_model=ConflictOut,
    tags=["conflicts"],
    responses={
        403: {"description": "Not a provider department"},
        404: {"description": "No such conflict between this department and another"},
        422: {"description": "Already decided or closed, or no reason"},
    },
)
def conflict_reply(hub: HubDep, caller: ProviderDep, conflict_id: PathId, body: ReplyIn) -> ConflictOut:
    """The department holds its value right, with reasons: the conflict goes under verification for the
    platform office to decide. (A department that corrects its copy needs no reply: the next check
    closes the conflict.)"""
    done = step(
        lambda: reply_conflict(hub, conflict_id, department=caller.department, actor=caller, **body.model_dump())
    )
    return ConflictOut.model_validate(done, from_attributes=True)


@router.post(
    "/conflicts/verify",
    response_model=list[ConflictOut],
    tags=["conflicts"],
    dependencies=[platform_only],
    responses={
        403: {"description": "Not the platform office"},
        404: {"description": "No such conflict"},
        422: {"description": "A conflict already decided or closed"},
    },
)
def conflicts_verify(hub: HubDep, caller: CallerDep, body: ConflictsVerifyIn) -> list[ConflictOut]:
    """Take conflicts up for verification (核实), all of them or none; optionally ask the authoritative
    department to check its value. The twin of `sharehub conflicts verify`."""
    rows = step(
        lambda: verify_conflicts(
            hub,
            list(dict.fromkeys(body.conflict_ids)),
            by=body.by,
            notify_authority=body.notify_authority,
            actor=caller,
        )
    )
    return [ConflictOut.model_validate(r, from_attributes=True) for r in rows]


@router.post(
    "/conflicts/decision",
    response_model=list[ConflictOut],
    tags=["conflicts"],
    dependencies=[platform_only],
    responses={
        403: {"description": "Not the platform office"},
        404: {"description": "No such conflict"},
        422: {"description": "A conflict already decided or closed"},
    },
)
def conflicts_decision(hub: HubDep, caller: CallerDep, body: DecisionsIn) -> list[ConflictOut]:
    """Decide many conflicts at once, all of them or none: each department hears it once per resource
    (one notice to correct, listing the entities), not once per conflict. The twin of `sharehub
    conflicts decide ID…`."""
    decided = body.model_dump(exclude={"conflict_ids"})
    rows = step(lambda: decide_conflicts(hub, body.conflict_ids, actor=caller, **decided))
    return [ConflictOut.model_validate(r, from_attributes=True) for r in rows]


@router.post(
    "/conflicts/{conflict_id}/decision",
    response_model=ConflictOut,
    tags=["conflicts"],
    dependencies=[platform_only],
    responses={
        403: {"description": "Not the platform office"},
        404: {"description": "No such conflict"},
        422: {"description": "Already decided or closed"},
    },
)
def conflict_decision(hub: HubDep, caller: CallerDep, conflict_id: PathId, body: DecisionIn) -> ConflictOut:
    """Record which value is right, who decided and why; the notices on it settle. The twin of
    `sharehub conflicts decide`."""
    done = step(lambda: decide_conflict(hub, conflict_id, actor=caller, **body.model_dump()))
    return ConflictOut.model_validate(done, from_attributes=True)
