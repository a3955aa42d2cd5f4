"""Routes: reporting."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, status

from api.deps import (
    CallerDep,
    DepartmentDep,
    HubDep,
)
from api.schemas import (
    FreshnessOut,
    ScoreOut,
    StatsOut,
)
from sharehub.reporting.bulletin import published as published_bulletins
from sharehub.reporting.bulletin import read as read_bulletin
from sharehub.reporting.freshness import freshness as resource_freshness
from sharehub.reporting.scores import as_dict as score_dict
from sharehub.reporting.scores import department_scores
from sharehub.reporting.stats import department_stats

router = APIRouter()


@router.get("/freshness", response_model=list[FreshnessOut], tags=["stats"])
def freshness_(
    hub: HubDep,
    caller: CallerDep,
    provider: Annotated[str | None, Query(max_length=50, description="Only this department's resources.")] = None,
) -> list[FreshnessOut]:
    """How current each resource's store is (data availability, Lichuan 26): its state for the latest
    update period, the deadline, the last delivery and the latest run. Every caller may see it: a
    consumer learns whether the data it uses is up to date."""
    return [FreshnessOut.model_validate(f, from_attributes=True) for f in resource_freshness(hub, provider=provider)]


@router.get("/stats", response_model=list[StatsOut], tags=["stats"])
def stats(hub: HubDep, caller: CallerDep) -> list[StatsOut]:
    """Figures per department; the platform office sees all departments, anyone else its own."""
    rows = department_stats(hub, None if caller.role == "platform" else caller.department)
    return [StatsOut(**row) for row in rows]


@router.get(
    "/scores",
    response_model=list[ScoreOut],
    tags=["stats"],
    responses={403: {"description": "A consumer's key"}, 422: {"description": "An empty period"}},
)
def department_scores_(
    hub: HubDep,
    caller: DepartmentDep,
    since: Annotated[date | None, Query(description="First day (China time); default 1 January.")] = None,
    until: Annotated[date | None, Query(description="Last day (China time); default today.")] = None,
) -> list[ScoreOut]:
    """Every provider department's score for the period, best first: published to the departments and
    the platform office alike (Zhejiang 35: 公布评估结果)."""
    try:
        rows = department_scores(hub, since, until)
    except ValueError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from None
    return [ScoreOut(**score_dict(row)) for row in rows]


@router.get("/bulletins", response_model=list[str], tags=["stats"], responses={403: {"description": "A consumer"}})
def bulletins_(hub: HubDep, caller: DepartmentDep) -> list[str]:
    """The months whose statistics bulletin was published (Lichuan 26), newest first."""
    return published_bulletins(hub)


@router.get(
    "/bulletins/{month}",
    response_model=dict[str, Any],
    tags=["stats"],
    responses={403: {"description": "A consumer"}, 404: {"description": "Not published"}},
)
def bulletin_(hub: HubDep, caller: DepartmentDep, month: str) -> dict[str, Any]:
    """A published monthly bulletin (YYYY-MM): authorizations, calls, availability per resource and
    each department's score, as frozen when the month ended."""
    try:
        return read_bulletin(hub, month)
    except LookupError as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None
