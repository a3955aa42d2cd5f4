"""Routes: consumers."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, status

from api.deps import (
    CallerDep,
    HubDep,
    PathId,
    platform_only,
)
from api.schemas import (
    ConsumerCreated,
    ConsumerIn,
    ConsumerOut,
)
from api.views import (
    OverlapQuery,
    created,
    rotated,
)
from sharehub.access.consumers import add_consumer, list_consumers, rotate
from sharehub.access.revocation import revoke_consumer

router = APIRouter()


@router.get("/consumers", response_model=list[ConsumerOut], tags=["consumers"], dependencies=[platform_only])
def consumers(hub: HubDep, department: str | None = None) -> list[ConsumerOut]:
    """Registered callers (platform office only)."""
    return [ConsumerOut.model_validate(c, from_attributes=True) for c in list_consumers(hub, department)]


@router.post(
    "/consumers",
    response_model=ConsumerCreated,
    status_code=201,
    tags=["consumers"],
    dependencies=[platform_only],
    responses={422: {"description": "Unknown department or role"}},
)
def consumer_add(hub: HubDep, caller: CallerDep, body: ConsumerIn) -> ConsumerCreated:
    """Register a caller and return its API key, this once (platform office only)."""
    try:
        made, key = add_consumer(hub, body.name, body.department, body.role, actor=caller)
    except ValueError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from None
    return created(made, key)


@router.post(
    "/consumers/me/rotate",
    response_model=ConsumerCreated,
    tags=["consumers"],
    responses={401: {"description": "No valid API key"}, 422: {"description": "Overlap out of range"}},
)
def consumer_rotate_own(hub: HubDep, caller: CallerDep, overlap_minutes: OverlapQuery = 0) -> ConsumerCreated:
    """A new key for the caller itself, shown this once: the key this call used stops working at once,
    or after `overlap_minutes`, so that the new one can be deployed without a gap. Its applications and
    grants stay, since its id does."""
    made, key = rotated(lambda: rotate(hub, caller.id, actor=caller, overlap=timedelta(minutes=overlap_minutes)))
    return created(made, key)


@router.post(
    "/consumers/{consumer_id}/rotate",
    response_model=ConsumerCreated,
    tags=["consumers"],
    dependencies=[platform_only],
    responses={
        404: {"description": "No such consumer"},
        422: {"description": "Overlap out of range, or asked for a revoked key"},
    },
)
def consumer_rotate(
    hub: HubDep, caller: CallerDep, consumer_id: PathId, overlap_minutes: OverlapQuery = 0
) -> ConsumerCreated:
    """A new key for a caller, shown this once (platform office only): the old key stops working at once,
    or after `overlap_minutes`; its grants stay. A revoked caller is reinstated with the new key (and
    no overlap)."""
    made, key = rotated(lambda: rotate(hub, consumer_id, actor=caller, overlap=timedelta(minutes=overlap_minutes)))
    return created(made, key)


@router.post(
    "/consumers/{consumer_id}/revoke",
    response_model=ConsumerOut,
    tags=["consumers"],
    dependencies=[platform_only],
    responses={404: {"description": "No such consumer"}},
)
def consumer_revoke(
    hub: HubDep,
    caller: CallerDep,
    consumer_id: PathId,
    reason: Annotated[str, Query(max_length=500, description="Why, as the ended grants will say.")] = "",
) -> ConsumerOut:
    """Revoke a caller at once (platform office only): its key and Delta Sharing token are refused, every
    grant it holds ends with the reason, and its extracts leave the object store, so no link still serves."""
    try:
        revoked = revoke_consumer(hub, consumer_id, actor=caller, reason=reason)
        return ConsumerOut.model_validate(revoked, from_attributes=True)
    except LookupError as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None
