"""Routes: notices."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Request, Response

from api.deps import (
    CallerDep,
    DepartmentDep,
    HubDep,
    PathId,
    ProviderDep,
    platform_only,
)
from api.errors import step
from api.paging import PAGED, ListPage, paged
from api.schemas import (
    DisputeDecisionIn,
    DisputeIn,
    DisputeOut,
    FilingIn,
    FilingOut,
    NoticeDetail,
    NoticeOut,
)
from api.views import (
    department_of,
    notice_out,
    one,
    own_department,
)
from sharehub.notices import (
    acknowledge,
    decide_dispute,
    dispute,
    expected,
    explained,
    file_delivery,
    get_notice,
    list_disputes,
    list_filings,
    list_notices,
    pending_reasons,
)

router = APIRouter()


@router.get("/notices", response_model=list[NoticeOut], tags=["notices"], responses=PAGED)
def notices(
    hub: HubDep,
    caller: DepartmentDep,
    request: Request,
    response: Response,
    page: ListPage,
    department: Annotated[str | None, Query(max_length=50)] = None,
    notice_status: Annotated[str | None, Query(alias="status", max_length=20)] = None,
    kind: Annotated[
        str | None,
        Query(
            max_length=30,
            description="quality, conflict, delivery, objection, objection_answer, application, "
            "application_contest, grant_expiring, open_request, conflict_decision, upstream_request, "
            "upstream_objection, bulletin or escalation.",
        ),
    ] = None,
) -> list[NoticeOut]:
    """Notices, newest first. A provider department sees only its own; the platform office sees all."""
    department = own_department(caller, department, "notices")
    found = list_notices(hub, department, notice_status, page.limit, page.before, kind)
    paged(request, response, found)
    return [notice_out(n) for n in found]


@router.get(
    "/notices/{notice_id}",
    response_model=NoticeDetail,
    tags=["notices"],
    responses={403: {"description": "A consumer"}, 404: {"description": "No such notice to this department"}},
)
def notice(hub: HubDep, caller: DepartmentDep, notice_id: PathId) -> NoticeDetail:
    """One notice with every key still pending on it: what the department has to correct."""
    found = step(lambda: get_notice(hub, notice_id, department_of(caller)))
    reasons = pending_reasons(hub, found)
    return NoticeDetail(
        **notice_out(found).model_dump(),
        pending_keys=list(found.pending_keys),
        reasons=reasons,
        expected=expected(hub, found.resource_id, (r for rs in reasons.values() for r in rs)),
        explained=explained(hub, found.resource_id, (r for rs in reasons.values() for r in rs)),
    )


@router.post(
    "/notices/{notice_id}/ack",
    response_model=NoticeOut,
    tags=["notices"],
    responses={403: {"description": "A consumer"}, 404: {"description": "No such notice to this department"}},
)
def notice_ack(hub: HubDep, caller: ProviderDep, notice_id: PathId) -> NoticeOut:
    """The department has seen its notice and is working on it."""
    return notice_out(step(lambda: acknowledge(hub, notice_id, caller.department, actor=caller)))


@router.post(
    "/notices/{notice_id}/disputes",
    response_model=NoticeOut,
    status_code=201,
    tags=["notices"],
    responses={
        403: {"description": "A consumer"},
        404: {"description": "No such notice, or no such pending row on it"},
        422: {"description": "Not a quality notice, or no reason"},
    },
)
def notice_dispute(hub: HubDep, caller: ProviderDep, notice_id: PathId, body: DisputeIn) -> NoticeOut:
    """Hold a quarantined row correct and the rule wrong: it leaves the notice until the platform office
    decides (accepted: the rule is waived for that row; rejected: it is back on the notice)."""
    made = step(lambda: dispute(hub, notice_id, body.key, body.reason, caller.department, actor=caller))
    return notice_out(made)


@router.get(
    "/disputes",
    response_model=list[DisputeOut],
    tags=["notices"],
    responses={**PAGED, 403: {"description": "A consumer, or another department's"}},
)
def disputes(
    hub: HubDep,
    caller: DepartmentDep,
    request: Request,
    response: Response,
    page: ListPage,
    review: Literal["pending", "accepted", "rejected"] | None = None,
    department: Annotated[str | None, Query(max_length=50, description="The platform office's filter.")] = None,
) -> list[DisputeOut]:
    """Disputed rows, newest first, with their review: a department its own, the platform office every
    department's (or, with `department`, one's). `review=pending` is the office's queue."""
    department = own_department(caller, department, "disputes")
    found = list_disputes(hub, review, department=department, limit=page.limit, before=page.before)
    paged(request, response, found)
    return [DisputeOut.model_validate(d, from_attributes=True) for d in found]


@router.get(
    "/disputes/{dispute_id}",
    response_model=DisputeOut,
    tags=["notices"],
    responses={403: {"description": "A consumer"}, 404: {"description": "No such dispute of yours"}},
)
def dispute_(hub: HubDep, caller: DepartmentDep, dispute_id: PathId) -> DisputeOut:
    """One disputed row and its review, on the rule of the list."""
    found = list_disputes(hub, None, department=department_of(caller), only=dispute_id)
    return DisputeOut.model_validate(one(found, "dispute", dispute_id), from_attributes=True)


@router.post(
    "/disputes/{dispute_id}/decision",
    response_model=DisputeOut,
    tags=["notices"],
    dependencies=[platform_only],
    responses={
        403: {"description": "Not the platform office"},
        404: {"description": "No such dispute"},
        422: {"description": "Already decided, or no reason"},
    },
)
def dispute_decision(hub: HubDep, caller: CallerDep, dispute_id: PathId, body: DisputeDecisionIn) -> DisputeOut:
    """The platform office's review of a disputed row: accepted, the rules it failed are waived for that
    row from the next run; rejected, the row is back on its notice (reopened if it had closed). The twin
    of `sharehub notices decide`."""
    decided = step(lambda: decide_dispute(hub, dispute_id, actor=caller, **body.model_dump()))
    return DisputeOut.model_validate(decided, from_attributes=True)


@router.post(
    "/resources/{resource_id}/delivery-filings",
    response_model=FilingOut,
    status_code=201,
    tags=["notices"],
    responses={
        403: {"description": "Not a providing department"},
        404: {"description": "No such resource of this department"},
        409: {"description": "The data is late already, or the period has a filing"},
        422: {"description": "No reason, or a due date out of range"},
    },
)
def delivery_filing(
    hub: HubDep, caller: ProviderDep, resource_id: Annotated[str, Path(max_length=100)], body: FilingIn
) -> FilingOut:
    """Report ahead (报备, Zhongshan 16; Hengyang 9) that the resource's next data will be late: its due date
    moves to `due`, no delivery notice is raised before then, and the scores count the period due then.
    The platform office is told. The twin of `sharehub notices file`."""
    filed = step(lambda: file_delivery(hub, caller, resource_id, body.due, body.reason))
    return FilingOut.model_validate(filed, from_attributes=True)


@router.get(
    "/delivery-filings",
    response_model=list[FilingOut],
    tags=["notices"],
    responses={403: {"description": "A consumer"}},
)
def delivery_filings(
    hub: HubDep, caller: DepartmentDep, resource_id: Annotated[str | None, Query(max_length=100)] = None
) -> list[FilingOut]:
    """Delivery filings, newest first: a department its own, the platform office every department's."""
    return [FilingOut.model_validate(f, from_attributes=True) for f in list_filings(hub, caller, resource_id)]
