"""The FastAPI application: catalogue, applications and grants, verification and query, notices, callers.

Every route except health and the OpenAPI document needs `Authorization: Bearer <api key>`. One
dependency (`get_caller`) resolves the caller; routes state the roles they admit with `require`; one
dependency (`granted(mode)`, on top of `get_caller`) resolves the grant of every serving call. Every
serving call, allowed or not, is written to the audit chain."""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from urllib.parse import urlencode

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from api import console
from api.console import HERE as CONSOLE_HOME
from api.console.signin import NotSignedIn
from api.deps import (
    BEARER,
    get_hub,
    resolves_caller,
)
from api.limits import BodyLimit
from api.openapi import document_answers
from api.routes import (
    applications,
    catalogue,
    conflicts,
    consumers,
    health,
    notices,
    objections,
    opendata,
    reporting,
    serving,
    sharing,
    trail,
    upstream,
)
from api.routes.sharing import ProtocolError, protocol_error
from sharehub.metadata import dbapi

AREAS = [
    health,
    consumers,
    notices,
    catalogue,
    applications,
    serving,
    objections,
    opendata,
    conflicts,
    trail,
    reporting,
    sharing,
    upstream,
]


@asynccontextmanager
async def _lifespan(_app: FastAPI) -> AsyncIterator[None]:
    """Load the hub before the first call: the catalogue read and validated, the metadata database
    migrated and connected on the event loop's thread (otherwise the first calls after a start waited
    ~100 ms for them). Then take everything long-lived out of the cyclic garbage collector: its full
    passes over the catalogue, the hub and the libraries paused every request for 100–200 ms about
    once a second under load (bench/serving's p99)."""
    hub = await get_hub()
    _ = hub.catalogue
    dbapi.raw(hub.settings.metadata_url).connection()
    gc.collect()
    gc.freeze()
    yield
    gc.unfreeze()


class QueryStringHidden(logging.Filter):
    """uvicorn's access log, with each query string replaced by `?…`: a query's key is personal data (an
    ID number) and a download link carries its signature there; the path, method and status stay."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite the access line's path argument (uvicorn logs client, method, path, version, status)."""
        args = record.args
        if isinstance(args, tuple) and len(args) == 5 and isinstance(args[2], str) and "?" in args[2]:
            record.args = (*args[:2], args[2].split("?", 1)[0] + "?…", *args[3:])
        return True


def _hide_query_strings() -> None:
    access = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, QueryStringHidden) for f in access.filters):
        access.addFilter(QueryStringHidden())


async def _to_sign_in(request: Request, exc: Exception) -> Response:
    """A console page without a live session: to the sign-in page, saying why."""
    return RedirectResponse(f"/console/login?{urlencode({'error': '请先登录'})}", status_code=303)


def create_app() -> FastAPI:
    """Build the application: middleware, error shapes, every area's router, and the OpenAPI document."""
    _hide_query_strings()
    app = FastAPI(
        title="sharehub",
        version="0.1.0",
        description="Government data-sharing hub: verification, query and bulk copy under grants.",
        lifespan=_lifespan,
    )
    app.add_middleware(BodyLimit)
    app.add_exception_handler(ProtocolError, protocol_error)
    for area in AREAS:
        app.include_router(area.router)
    app.include_router(console.router)
    app.add_exception_handler(NotSignedIn, _to_sign_in)
    app.mount("/console/static", StaticFiles(directory=CONSOLE_HOME / "static"), name="console-static")
    # Starlette tries the routes in order: the two lookups, nearly all the traffic, go first.
    hot = [r for r in app.router.routes if getattr(r, "path", "") in ("/verify/{resource_id}", "/query/{resource_id}")]
    app.router.routes[:] = hot + [r for r in app.router.routes if r not in hot]
    document_answers(app, resolves_caller, BEARER)
    return app
