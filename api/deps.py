"""The API's dependencies, each the one place its check lives: the hub, the caller (`get_caller`), the roles a route
admits (`require`), and the grant of a serving call (`granted`); with their `Annotated` aliases."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from typing import Annotated, Any, NamedTuple

from fastapi import Depends, HTTPException, Path, Request, status
from fastapi.dependencies.models import Dependant

from sharehub import audit
from sharehub.access.consumers import AuthError, Caller, authenticate
from sharehub.access.grants import Access, active_grant
from sharehub.access.ratelimit import SharedRateLimit
from sharehub.errors import Forbidden
from sharehub.hub import Hub
from sharehub.metadata import dbapi
from sharehub.settings import Settings, get_settings

_hubs: dict[int, tuple[Settings, Hub]] = {}


async def get_hub() -> Hub:
    """The hub configured by the environment, built once per settings (catalogue changes need a restart)."""
    settings = get_settings()
    found = _hubs.get(id(settings))
    if found is None:
        found = _hubs[id(settings)] = (settings, Hub(settings))
    return found[1]


HubDep = Annotated[Hub, Depends(get_hub)]


PathId = Annotated[int, Path(ge=1, le=2**62, description="A row id (positive, within a 64-bit integer).")]


BEARER = {
    "type": "http",
    "scheme": "bearer",
    "description": "An API key from `sharehub consumers add` or POST /consumers.",
}


async def get_caller(request: Request) -> Caller:
    """The caller behind the bearer key, or 401: the one dependency that resolves callers, on every route.

    It reads the header itself; FastAPI's security classes would put a layer of dependencies on every
    serving call. The OpenAPI document still says which routes take the key (`_document_bearer`)."""
    hub = await get_hub()
    with dbapi.raw(hub.settings.metadata_url).checked_once():
        return caller_of(hub, request.headers.get("authorization"))


def caller_of(hub: Hub, authorization: str | None) -> Caller:
    scheme, _, key = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "an API key is required", {"WWW-Authenticate": "Bearer"})
    try:
        return authenticate(hub, key.strip())
    except AuthError as exc:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, str(exc), {"WWW-Authenticate": "Bearer"}) from None


CallerDep = Annotated[Caller, Depends(get_caller)]


def require(*roles: str) -> Callable[..., Any]:
    """A dependency that admits only callers of these roles (403 otherwise, saying which roles may)."""

    async def check(caller: CallerDep) -> Caller:
        if caller.role not in roles:
            raise HTTPException(status.HTTP_403_FORBIDDEN, f"this route is for the {' or '.join(roles)} role")
        return caller

    return check


ProviderDep = Annotated[Caller, Depends(require("provider"))]


DepartmentDep = Annotated[Caller, Depends(require("platform", "provider"))]  # a department, or the platform office


class Served(NamedTuple):
    """What a serving call runs under: the hub, the caller, and its grant for the resource in the mode."""

    hub: Hub
    caller: Caller
    access: Access


# A lower-level platform names, on each call it relays, the grant it holds for the department that asked.
GRANT_HEADER = "x-sharehub-grant"


def granted(mode: str) -> Callable[..., Any]:
    """The dependency that resolves the grant of every serving call: the caller's (from `get_caller`, 401
    without a valid key) for this resource in this mode, or 403 saying why not. It reads the resource id
    from the path, not as a declared parameter: on the verification hot path FastAPI's cost per
    parameter is not small. A lower-level platform relaying a department's call names the grant it holds
    for that department (`X-Sharehub-Grant: <id>`), and then only that grant counts."""

    async def resolve(request: Request, caller: CallerDep) -> Served:
        resource_id = request.path_params["resource_id"]
        hub = await get_hub()
        named = request.headers.get(GRANT_HEADER)
        with dbapi.raw(hub.settings.metadata_url).checked_once():
            try:
                if named is not None and not (named.isascii() and named.isdigit() and len(named) <= 18):
                    raise Forbidden(f"{GRANT_HEADER} names a grant by its id, a number")
                grant_id = int(named) if named is not None else None
                return Served(hub, caller, active_grant(hub, caller, resource_id, mode, grant_id))
            except Forbidden as exc:
                refused = str(exc)
        await audit.arecord(hub, mode, caller, resource_id, result="denied", detail=refused)
        raise HTTPException(status.HTTP_403_FORBIDDEN, refused)

    return resolve


REFUSED_LINKS_PER_MINUTE = 30  # refused download links audited per address and minute; then 429


class RateLimit:
    """A token bucket per key (a consumer, an address): `per_minute` tokens a minute, refilled continuously."""

    def __init__(self) -> None:
        self._buckets: dict[tuple[Hashable, int], tuple[float, float]] = {}
        self._lock = threading.Lock()

    def _tokens(self, key: Hashable, per_minute: int, now: float) -> float:
        tokens, last = self._buckets.get((key, per_minute), (float(per_minute), now))
        return min(float(per_minute), tokens + (now - last) * per_minute / 60.0)

    def allow(self, key: Hashable, per_minute: int) -> bool:
        """Take one token if there is one."""
        now = time.monotonic()
        with self._lock:
            tokens = self._tokens(key, per_minute, now)
            if tokens < 1:
                self._buckets[(key, per_minute)] = (tokens, now)
                return False
            self._buckets[(key, per_minute)] = (tokens - 1, now)
            return True

    def spent(self, key: Hashable, per_minute: int) -> bool:
        """Whether the key has no token left, without taking one."""
        with self._lock:
            return self._tokens(key, per_minute, time.monotonic()) < 1


def resolves_caller(dependant: Dependant) -> bool:
    """Whether a route's dependencies resolve a caller (then it takes the bearer key)."""
    return any(d.call is get_caller or resolves_caller(d) for d in dependant.dependencies)


platform_only = Depends(require("platform"))
limiter = SharedRateLimit()  # the verification rate limit, across workers and replicas: kept in the metadata database
refused_links = RateLimit()  # refused download links audited per address
