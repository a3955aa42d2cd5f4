"""The FastAPI application: health, API callers, and notices.

Every route except health and the OpenAPI document needs `Authorization: Bearer <api key>`. One
dependency (`get_caller`) resolves the caller; routes state the roles they admit with `require`.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Literal

from fastapi import Depends, FastAPI, HTTPException, Query, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field

from sharehub.consumers import AuthError, Caller, add_consumer, authenticate, list_consumers, revoke
from sharehub.hub import Hub
from sharehub.notices import list_notices


def get_hub() -> Hub:
    """The hub configured by the environment."""
    return Hub.from_env()


HubDep = Annotated[Hub, Depends(get_hub)]
_bearer = HTTPBearer(auto_error=False, description="An API key from `sharehub consumers add` or POST /consumers.")


def get_caller(hub: HubDep, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]) -> Caller:
    """The caller behind the bearer key, or 401."""
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "an API key is required", {"WWW-Authenticate": "Bearer"})
    try:
        return authenticate(hub, credentials.credentials)
    except AuthError as exc:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, str(exc), {"WWW-Authenticate": "Bearer"}) from None


CallerDep = Annotated[Caller, Depends(get_caller)]


def require(*roles: str) -> Callable[[Caller], Caller]:
    """A dependency that admits only callers of these roles (403 otherwise, saying which roles may)."""

    def check(caller: CallerDep) -> Caller:
        if caller.role not in roles:
            raise HTTPException(status.HTTP_403_FORBIDDEN, f"this route is for the {' or '.join(roles)} role")
        return caller

    return check


class ConsumerIn(BaseModel):
    """A new API caller."""

    name: str = Field(min_length=1, max_length=200)
    department: str = Field(min_length=1, max_length=50)
    role: Literal["platform", "provider", "consumer"] = "consumer"


class ConsumerOut(BaseModel):
    """A registered caller; its key is never shown again."""

    id: int
    name: str
    department: str
    role: str
    key_prefix: str
    created_at: datetime
    revoked_at: datetime | None


class ConsumerCreated(ConsumerOut):
    """A caller just made, with its key (shown this once)."""

    api_key: str


class NoticeOut(BaseModel):
    """A notice to a department, as the department and the platform office see it."""

    id: int
    kind: str
    department: str
    resource_id: str
    run_id: str | None
    status: str
    created_at: datetime
    deadline: datetime
    subject: str
    body: str
    pending_rows: int
    resolved_at: datetime | None


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

    platform_only = Depends(require("platform"))

    @app.get("/consumers", response_model=list[ConsumerOut], tags=["consumers"], dependencies=[platform_only])
    def consumers(hub: HubDep, department: str | None = None) -> list[ConsumerOut]:
        """Registered callers (platform office only)."""
        return [ConsumerOut.model_validate(c, from_attributes=True) for c in list_consumers(hub, department)]

    @app.post(
        "/consumers",
        response_model=ConsumerCreated,
        status_code=201,
        tags=["consumers"],
        dependencies=[platform_only],
        responses={422: {"description": "Unknown department or role"}},
    )
    def consumer_add(hub: HubDep, body: ConsumerIn) -> ConsumerCreated:
        """Register a caller and return its API key, this once (platform office only)."""
        try:
            made, key = add_consumer(hub, body.name, body.department, body.role)
        except ValueError as exc:
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from None
        return ConsumerCreated(**ConsumerOut.model_validate(made, from_attributes=True).model_dump(), api_key=key)

    @app.post(
        "/consumers/{consumer_id}/revoke",
        response_model=ConsumerOut,
        tags=["consumers"],
        dependencies=[platform_only],
        responses={404: {"description": "No such consumer"}},
    )
    def consumer_revoke(hub: HubDep, consumer_id: int) -> ConsumerOut:
        """Revoke a caller's key at once (platform office only)."""
        try:
            return ConsumerOut.model_validate(revoke(hub, consumer_id), from_attributes=True)
        except LookupError as exc:
            raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None

    @app.get("/notices", response_model=list[NoticeOut], tags=["notices"])
    def notices(
        hub: HubDep,
        caller: Annotated[Caller, Depends(require("platform", "provider"))],
        department: Annotated[str | None, Query(max_length=50)] = None,
        notice_status: Annotated[str | None, Query(alias="status", max_length=20)] = None,
    ) -> list[NoticeOut]:
        """Notices, newest first. A provider department sees only its own; the platform office sees all."""
        if caller.role == "provider":
            if department not in (None, caller.department):
                raise HTTPException(status.HTTP_403_FORBIDDEN, "a department sees only its own notices")
            department = caller.department
        return [
            NoticeOut(
                id=n.id,
                kind=n.kind,
                department=n.department,
                resource_id=n.resource_id,
                run_id=n.run_id,
                status=n.status,
                created_at=n.created_at,
                deadline=n.deadline,
                subject=n.subject,
                body=n.body,
                pending_rows=len(n.pending_keys),
                resolved_at=n.resolved_at,
            )
            for n in list_notices(hub, department, notice_status)
        ]

    return app
