"""The FastAPI application. For now it answers health checks; the serving routes arrive with grants."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, FastAPI
from pydantic import BaseModel

from sharehub.hub import Hub


def get_hub() -> Hub:
    """The hub configured by the environment."""
    return Hub.from_env()


HubDep = Annotated[Hub, Depends(get_hub)]


class Health(BaseModel):
    """Whether the hub's own dependencies answer."""

    status: str
    catalogue_version: int
    resources: int
    metadata: str
    object_store: str


def create_app() -> FastAPI:
    """Build the application."""
    app = FastAPI(
        title="sharehub",
        version="0.1.0",
        description="Government data-sharing hub: verification, query and bulk copy under grants.",
    )

    @app.get("/health", response_model=Health, tags=["health"])
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

    return app
