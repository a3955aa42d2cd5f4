"""Routes: catalogue."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, status

from api.deps import (
    CallerDep,
    HubDep,
)
from api.schemas import (
    ResourceOut,
    SealOut,
)
from api.views import (
    resource_out,
)
from sharehub.seal import ALGORITHM as SEAL_ALGORITHM
from sharehub.seal import key_id as seal_key_id
from sharehub.seal import public_pem as seal_public_pem

router = APIRouter()


@router.get("/catalogue", response_model=list[ResourceOut], tags=["catalogue"])
def catalogue(hub: HubDep, caller: CallerDep) -> list[ResourceOut]:
    """Every catalogue resource: fields, classification, share type and serving modes."""
    return [resource_out(r) for r in sorted(hub.catalogue.resources.values(), key=lambda r: r.id)]


@router.get(
    "/catalogue/{resource_id}",
    response_model=ResourceOut,
    tags=["catalogue"],
    responses={404: {"description": "No such resource"}},
)
def catalogue_entry(hub: HubDep, caller: CallerDep, resource_id: str) -> ResourceOut:
    """One catalogue resource."""
    res = hub.catalogue.resources.get(resource_id)
    if res is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no resource {resource_id!r}")
    return resource_out(res)


@router.get("/seal", response_model=SealOut, tags=["catalogue"])
def seal_key(hub: HubDep, caller: CallerDep) -> SealOut:
    """The platform's seal (Zhejiang 23): the key that checks the `seal` of an extract's manifest, an
    open dataset's manifest or a bulletin (`sharehub seal verify`)."""
    public = seal_public_pem(hub)
    return SealOut(algorithm=SEAL_ALGORITHM, key_id=seal_key_id(public), public_key=public)
