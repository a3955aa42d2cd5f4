"""The open Delta Sharing protocol over bulk grants, so the `delta-sharing` client, Spark or pandas can pull.

Each consumer's bearer token is its own API key. Each of its active grants with the `bulk` mode is a
share `grant-<id>`, holding one schema (the providing department) with one table (the resource's
name). A table is the grant's latest full extract (masked Parquet, as `POST /bulk` makes it); a query
makes a fresh one when the store moved since. File URLs are the same short-lived, audited links.

A query may ask for the table as it was: `version` (a store version) or `timestamp` (the version the
store held then), answered from a masked extract of that version. `startingVersion`/`endingVersion`
(the change data feed) and the `/changes` route are not offered: such a query is refused with the
protocol's error (`{"errorCode": "INVALID_PARAMETER_VALUE", ...}`), and `POST /bulk/{id}` with
`{"incremental": true}` gives the changes instead. `metaData.size` is the table's size in bytes.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any, NoReturn

import pyarrow as pa
import pyarrow.parquet as pq
from deltalake.exceptions import DeltaError
from fastapi import APIRouter, Body, HTTPException, Request, Response, status
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from api.deps import CallerDep, HubDep
from sharehub import audit
from sharehub.access.consumers import Caller
from sharehub.access.grants import Access, active_grant
from sharehub.errors import Forbidden, NotFound
from sharehub.hub import Hub
from sharehub.metadata.models import Extract, Grant, utcnow
from sharehub.serving.bulk import create, issue_url
from warehouse.delta import open_table, table_id

NDJSON = "application/x-ndjson; charset=utf-8"


class SharingQuery(BaseModel):
    """The body of a table query, as the Delta Sharing protocol defines it."""

    model_config = ConfigDict(extra="allow")
    predicateHints: list[str] | None = None
    jsonPredicateHints: str | None = None
    limitHint: int | None = Field(None, ge=0)
    version: int | None = Field(None, ge=0, description="The table as this store version held it.")
    timestamp: str | None = Field(None, description="The table as it was at this moment (ISO 8601 with zone).")
    startingVersion: int | None = Field(None, ge=0, description="Change data feed: not offered (400).")
    endingVersion: int | None = Field(None, ge=0, description="Change data feed: not offered (400).")


class ProtocolError(HTTPException):
    """An error in the Delta Sharing protocol's own shape: {"errorCode": ..., "message": ...}."""

    def __init__(self, code: int, error_code: str, message: str) -> None:
        super().__init__(code, message)
        self.error_code = error_code


async def protocol_error(request: Request, exc: Exception) -> JSONResponse:
    """The app's handler of ProtocolError: the body the Delta Sharing clients parse."""
    assert isinstance(exc, ProtocolError)
    return JSONResponse({"errorCode": exc.error_code, "message": exc.detail}, status_code=exc.status_code)


def _spark_type(t: pa.DataType) -> str:
    if pa.types.is_decimal(t):
        return f"decimal({t.precision},{t.scale})"
    if pa.types.is_timestamp(t):
        return "timestamp"
    simple = {
        pa.string(): "string",
        pa.large_string(): "string",
        pa.date32(): "date",
        pa.int64(): "long",
        pa.int32(): "integer",
        pa.float64(): "double",
        pa.bool_(): "boolean",
    }
    return simple.get(t, "string")


router = APIRouter(prefix="/delta-sharing", tags=["delta sharing"])


def shares_of(hub: Hub, caller: Caller) -> list[Grant]:
    if caller.role != "consumer":
        return []
    now = utcnow()
    with hub.db() as s:
        grants = s.scalars(select(Grant).where(Grant.consumer_id == caller.id).order_by(Grant.id))
        return [g for g in grants if g.revoked_at is None and g.valid_until > now and "bulk" in g.modes]


def resolve(hub: Hub, caller: Caller, share: str, schema: str | None = None, table: str | None = None) -> Grant:
    found = next((g for g in shares_of(hub, caller) if f"grant-{g.id}" == share), None)
    if found is None:
        refuse(hub, caller, f"share {share} not found")
    provider, _, name = found.resource_id.partition(".")
    if (schema is not None and schema != provider) or (table is not None and table != name):
        refuse(hub, caller, f"{share}: no such schema or table")
    return found


def refuse(hub: Hub, caller: Caller, reason: str) -> NoReturn:
    """A share the caller has no live grant for (another consumer's, revoked, expired): audited, and
    answered as not found, so share names reveal nothing."""
    audit.record(hub, "delta_sharing", caller, None, result="denied", detail=reason[:200])
    raise HTTPException(status.HTTP_404_NOT_FOUND, reason)


def table_items(g: Grant) -> list[dict[str, str]]:
    provider, _, name = g.resource_id.partition(".")
    return [{"name": name, "schema": provider, "share": f"grant-{g.id}", "shareId": str(g.id), "id": g.resource_id}]


@router.get("/shares")
def shares(hub: HubDep, caller: CallerDep) -> dict[str, Any]:
    """The caller's shares: one per active bulk grant."""
    return {"items": [{"name": f"grant-{g.id}", "id": str(g.id)} for g in shares_of(hub, caller)]}


@router.get("/shares/{share}")
def share(hub: HubDep, caller: CallerDep, share: str) -> dict[str, Any]:
    """One share."""
    g = resolve(hub, caller, share)
    return {"share": {"name": share, "id": str(g.id)}}


@router.get("/shares/{share}/schemas")
def schemas(hub: HubDep, caller: CallerDep, share: str) -> dict[str, Any]:
    """The share's one schema: the providing department."""
    g = resolve(hub, caller, share)
    return {"items": [{"name": g.resource_id.partition(".")[0], "share": share}]}


@router.get("/shares/{share}/schemas/{schema}/tables")
def tables(hub: HubDep, caller: CallerDep, share: str, schema: str) -> dict[str, Any]:
    """The schema's one table: the granted resource."""
    return {"items": table_items(resolve(hub, caller, share, schema))}


@router.get("/shares/{share}/all-tables")
def all_tables(hub: HubDep, caller: CallerDep, share: str) -> dict[str, Any]:
    """Every table of the share."""
    return {"items": table_items(resolve(hub, caller, share))}


def current_extract(hub: Hub, caller: Caller, g: Grant, version: int | None = None) -> Extract:
    """The grant's latest full extract at the store's current version (or at `version`), made if missing."""
    res = hub.catalogue.resource(g.resource_id)
    store = open_table(hub.store.uri(res.store_path), hub.store.delta_options())
    if store is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"{g.resource_id} has no data yet")
    wanted = store.version() if version is None else version
    with hub.db() as s:
        found = s.scalar(
            select(Extract)
            .where(
                Extract.grant_id == g.id,
                Extract.consumer_id == caller.id,
                Extract.since_version.is_(None),
                Extract.store_version == wanted,
                Extract.store_table_id == table_id(store),
                Extract.removed_at.is_(None),
            )
            .order_by(Extract.created_at.desc())
            .limit(1)
        )
    if found is not None:
        return found
    try:
        access = active_grant(hub, caller, g.resource_id, "bulk")
    except Forbidden as exc:
        raise HTTPException(status.HTTP_403_FORBIDDEN, str(exc)) from None
    granted = Access(g.id, frozenset(g.fields), access.purpose)
    try:
        return create(hub, caller, granted, g.resource_id, False, at_version=version).extract
    except NotFound as exc:
        raise ProtocolError(status.HTTP_400_BAD_REQUEST, "INVALID_PARAMETER_VALUE", str(exc)) from None


def version_at(hub: Hub, g: Grant, timestamp: str) -> int:
    """The store version the table held at `timestamp`; the protocol's error if it held none then."""
    try:
        moment = datetime.fromisoformat(timestamp.replace("Z", "+00:00"))
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise ProtocolError(400, "INVALID_PARAMETER_VALUE", f"timestamp {timestamp!r} is not ISO 8601 with a zone")
    res = hub.catalogue.resource(g.resource_id)
    store = open_table(hub.store.uri(res.store_path), hub.store.delta_options())
    if store is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"{g.resource_id} has no data yet")
    first = min(h["timestamp"] for h in store.history()) / 1000
    if moment.timestamp() < first:
        raise ProtocolError(400, "INVALID_PARAMETER_VALUE", f"{g.resource_id} held no version at {timestamp}")
    try:
        store.load_as_version(moment)
    except (DeltaError, ValueError) as exc:
        raise ProtocolError(400, "INVALID_PARAMETER_VALUE", f"no version at {timestamp}: {exc}") from None
    return store.version()


def head_lines(hub: Hub, e: Extract) -> list[dict[str, Any]]:
    with hub.store.fs.open_input_file(hub.store.path(e.path)) as f:
        schema, size = pq.read_schema(f), f.size()
    fields = [
        {"name": f.name, "type": _spark_type(f.type), "nullable": True, "metadata": {}}
        for f in schema
        if f.name != "_change_type"
    ]
    return [
        {"protocol": {"minReaderVersion": 1}},
        {
            "metaData": {
                "id": e.id,
                "format": {"provider": "parquet"},
                "schemaString": json.dumps({"type": "struct", "fields": fields}),
                "partitionColumns": [],
                "configuration": {},
                "numFiles": 1,
                "size": size,  # bytes, as the protocol says; the rows are in the file's stats
            }
        },
    ]


def ndjson(lines: list[dict[str, Any]], version: int) -> Response:
    body = "\n".join(json.dumps(line, ensure_ascii=False) for line in lines) + "\n"
    return Response(body, media_type=NDJSON, headers={"Delta-Table-Version": str(version)})


@router.get("/shares/{share}/schemas/{schema}/tables/{table}/version")
def version(hub: HubDep, caller: CallerDep, share: str, schema: str, table: str) -> Response:
    """The table's version (the store's Delta version) in the `Delta-Table-Version` header."""
    e = current_extract(hub, caller, resolve(hub, caller, share, schema, table))
    return Response(headers={"Delta-Table-Version": str(e.store_version)})


@router.get("/shares/{share}/schemas/{schema}/tables/{table}/metadata")
def metadata(hub: HubDep, caller: CallerDep, share: str, schema: str, table: str) -> Response:
    """Protocol and metadata of the table, as newline-delimited JSON."""
    e = current_extract(hub, caller, resolve(hub, caller, share, schema, table))
    return ndjson(head_lines(hub, e), e.store_version)


@router.post(
    "/shares/{share}/schemas/{schema}/tables/{table}/query",
    responses={400: {"description": "A version or moment the table did not have, or a change data feed query"}},
)
def query(
    hub: HubDep,
    caller: CallerDep,
    share: str,
    schema: str,
    table: str,
    body: Annotated[SharingQuery | None, Body()] = None,
) -> Response:
    """The table's file: the masked extract (of the current version, or of `version` or `timestamp`),
    behind a short-lived audited URL."""
    asked = body or SharingQuery.model_validate({})
    g = resolve(hub, caller, share, schema, table)
    if asked.startingVersion is not None or asked.endingVersion is not None:
        raise ProtocolError(
            400,
            "INVALID_PARAMETER_VALUE",
            "startingVersion/endingVersion (change data feed) are not offered; POST /bulk/"
            f'{g.resource_id} with {{"incremental": true}} gives the changes since your last extract',
        )
    if asked.version is not None and asked.timestamp is not None:
        raise ProtocolError(400, "INVALID_PARAMETER_VALUE", "give version or timestamp, not both")
    version = asked.version if asked.timestamp is None else version_at(hub, g, asked.timestamp)
    e = current_extract(hub, caller, g, version)
    issued = issue_url(hub, caller, e)
    with hub.store.fs.open_input_file(hub.store.path(e.path)) as f:
        size = f.size()
    file_line = {
        "file": {
            "url": issued.url,
            "id": e.id,
            "partitionValues": {},
            "size": size,
            "stats": json.dumps({"numRecords": e.rows}),
            "expirationTimestamp": int(issued.expires_at.timestamp() * 1000),
            "version": e.store_version,
        }
    }
    audit.record(
        hub,
        "delta_sharing_query",
        caller,
        g.resource_id,
        grant_id=g.id,
        result="ok",
        detail=f"extract {e.id}; store v{e.store_version}",
    )
    return ndjson([*head_lines(hub, e), file_line], e.store_version)
