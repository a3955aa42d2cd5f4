"""Routes: health."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import (
    HubDep,
)
from api.schemas import (
    Health,
)

router = APIRouter()


@router.get("/health", response_model=Health, tags=["health"])
def health(hub: HubDep) -> Health:
    """Catalogue loaded, metadata database migrated and object store reachable."""
    hub.store.exists("")  # raises if the object store cannot be reached; creates nothing
    return Health(
        status="ok",
        catalogue_version=hub.catalogue_version,
        resources=len(hub.catalogue.resources),
        metadata=hub.settings.metadata_url.split("://", 1)[0],
        object_store=hub.settings.storage_url.split("://", 1)[0],
    )


@router.get("/health/noop", tags=["health"])
async def noop() -> dict[str, bool]:
    """Does nothing: the baseline that bench/serving compares the serving routes with."""
    return {"ok": True}
