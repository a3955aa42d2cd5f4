"""Routes: applications."""

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
    ApplicationIn,
    ApplicationOut,
    ContestIn,
    ContestOutcomeIn,
    GrantOut,
    RevokeIn,
    StepIn,
)
from api.views import (
    one,
)
from sharehub.access.contests import contest, settle
from sharehub.access.grants import (
    ApplicationState,
    GrantState,
    apply,
    decide,
    list_applications,
    list_grants,
    review,
    revoke_grant,
    withdraw,
)

router = APIRouter()


@router.post(
    "/applications",
    response_model=ApplicationOut,
    status_code=201,
    tags=["applications"],
    responses={403: {"description": "Not a consumer"}, 422: {"description": "Invalid application"}},
)
def application_add(hub: HubDep, caller: CallerDep, body: ApplicationIn) -> ApplicationOut:
    """Apply for fields of a resource. Unconditional resources are granted at once; not-shared ones refused."""
    made = step(
        lambda: apply(
            hub,
            caller,
            body.resource_id,
            body.fields,
            list(body.modes),
            body.purpose,
            body.valid_until,
            body.expected_calls_per_day,
        )
    )
    return ApplicationOut.model_validate(made, from_attributes=True)


@router.get("/applications", response_model=list[ApplicationOut], tags=["applications"], responses=PAGED)
def applications(
    hub: HubDep,
    caller: CallerDep,
    request: Request,
    response: Response,
    page: ListPage,
    application_status: Annotated[
        ApplicationState | None,
        Query(alias="status", description="review: the platform office's queue; provider: decisions owed."),
    ] = None,
) -> list[ApplicationOut]:
    """A consumer's own applications; a provider's, for its resources; all, for the platform office."""
    found = list_applications(hub, caller, page.limit, page.before, status=application_status)
    paged(request, response, found)
    return [ApplicationOut.model_validate(a, from_attributes=True) for a in found]


@router.get(
    "/applications/{application_id}",
    response_model=ApplicationOut,
    tags=["applications"],
    responses={404: {"description": "No such application that the caller may see"}},
)
def application(hub: HubDep, caller: CallerDep, application_id: PathId) -> ApplicationOut:
    """One application, where it stands and its step's deadline, on the rule of `GET /applications`."""
    found = one(list_applications(hub, caller, only=application_id), "application", application_id)
    return ApplicationOut.model_validate(found, from_attributes=True)


@router.post(
    "/applications/{application_id}/review",
    response_model=ApplicationOut,
    tags=["applications"],
    responses={
        403: {"description": "Not the platform office"},
        404: {"description": "No such application"},
        409: {"description": "Not waiting for review"},
    },
)
def application_review(hub: HubDep, caller: CallerDep, application_id: PathId, body: StepIn) -> ApplicationOut:
    """The platform office's review of a conditional application."""
    made = step(lambda: review(hub, caller, application_id, body.approve, body.reason))
    return ApplicationOut.model_validate(made, from_attributes=True)


@router.post(
    "/applications/{application_id}/decision",
    response_model=ApplicationOut,
    tags=["applications"],
    responses={
        403: {"description": "Not the provider"},
        404: {"description": "No such application"},
        409: {"description": "Not waiting for a decision"},
    },
)
def application_decision(hub: HubDep, caller: CallerDep, application_id: PathId, body: StepIn) -> ApplicationOut:
    """The providing department's decision; a refusal gives its reasons. The applicant is told."""
    made = step(lambda: decide(hub, caller, application_id, body.approve, body.reason))
    return ApplicationOut.model_validate(made, from_attributes=True)


@router.post(
    "/applications/{application_id}/withdraw",
    response_model=ApplicationOut,
    tags=["applications"],
    responses={
        404: {"description": "No such application of yours"},
        409: {"description": "Already decided"},
        422: {"description": "No reason"},
    },
)
def application_withdraw(hub: HubDep, caller: CallerDep, application_id: PathId, body: RevokeIn) -> ApplicationOut:
    """The applicant takes back an application still under way: its clock stops, and the provider's
    notice asking for a decision is resolved."""
    made = step(lambda: withdraw(hub, caller, application_id, body.reason))
    return ApplicationOut.model_validate(made, from_attributes=True)


@router.post(
    "/applications/{application_id}/contest",
    response_model=ApplicationOut,
    tags=["applications"],
    responses={
        404: {"description": "No such application of yours"},
        409: {"description": "Not refused, or contested already"},
    },
)
def application_contest(hub: HubDep, caller: CallerDep, application_id: PathId, body: ContestIn) -> ApplicationOut:
    """The applicant contests the refusal of its application (Lichuan 25): the platform office is asked to
    coordinate with the provider within the profile's `application_contest` working days."""
    made = step(lambda: contest(hub, caller, application_id, body.reason))
    return ApplicationOut.model_validate(made, from_attributes=True)


@router.post(
    "/applications/{application_id}/contest/outcome",
    response_model=ApplicationOut,
    tags=["applications"],
    responses={
        403: {"description": "granted: not the provider; upheld or referred: not the platform office"},
        404: {"description": "No such application"},
        409: {"description": "No open contest"},
        422: {"description": "Fields or modes beyond the application, or no department to refer to"},
    },
)
def application_contest_outcome(
    hub: HubDep, caller: CallerDep, application_id: PathId, body: ContestOutcomeIn
) -> ApplicationOut:
    """Settle a contest: the provider grants on what was agreed, or the platform office upholds the refusal
    or refers the contest to the government department that coordinates. Both sides are told."""
    made = step(
        lambda: settle(
            hub,
            caller,
            application_id,
            body.outcome,
            body.reason,
            fields=body.fields,
            modes=list(body.modes) if body.modes else None,
            referred_to=body.referred_to,
        )
    )
    return ApplicationOut.model_validate(made, from_attributes=True)


@router.get("/grants", response_model=list[GrantOut], tags=["applications"], responses=PAGED)
def grants(
    hub: HubDep,
    caller: CallerDep,
    request: Request,
    response: Response,
    page: ListPage,
    state: Annotated[
        GrantState | None,
        Query(description="active: neither revoked nor past valid_until; expired: run out unrevoked."),
    ] = None,
    resource_id: Annotated[str | None, Query(max_length=100)] = None,
) -> list[GrantOut]:
    """Grants the caller may see, on the same rule as applications."""
    found = list_grants(hub, caller, page.limit, page.before, state=state, resource_id=resource_id)
    paged(request, response, found)
    return [GrantOut.model_validate(g, from_attributes=True) for g in found]


@router.get(
    "/grants/{grant_id}",
    response_model=GrantOut,
    tags=["applications"],
    responses={404: {"description": "No such grant that the caller may see"}},
)
def grant(hub: HubDep, caller: CallerDep, grant_id: PathId) -> GrantOut:
    """One grant, on the rule of `GET /grants`."""
    found = one(list_grants(hub, caller, only=grant_id), "grant", grant_id)
    return GrantOut.model_validate(found, from_attributes=True)


@router.post(
    "/grants/{grant_id}/revoke",
    response_model=GrantOut,
    tags=["applications"],
    responses={
        403: {"description": "Another department's resource"},
        404: {"description": "No such grant (of yours, for a consumer)"},
    },
)
def grant_revoke(hub: HubDep, caller: CallerDep, grant_id: PathId, body: RevokeIn) -> GrantOut:
    """End a grant at once: the platform office, the providing department, or the consumer that holds it
    (its purpose served)."""
    return GrantOut.model_validate(step(lambda: revoke_grant(hub, caller, grant_id, body.reason)), from_attributes=True)
