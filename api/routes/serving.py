"""Routes: serving."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response, status
from fastapi.responses import StreamingResponse

from api.deps import (
    REFUSED_LINKS_PER_MINUTE,
    CallerDep,
    HubDep,
    Served,
    granted,
    limiter,
    refused_links,
)
from api.errors import step
from api.paging import PAGED, paged
from api.schemas import (
    BulkIn,
    ExtractListed,
    ExtractOut,
    QueryOut,
    VerifyIn,
    VerifyOut,
)
from api.views import (
    RESOURCE_IN_PATH,
    extract_out,
    json_body,
    parse,
    served_key,
)
from sharehub import audit
from sharehub.access.grants import (
    active_grant,
)
from sharehub.access.objections import under_objection
from sharehub.serving.answers import masked, verify
from sharehub.serving.bulk import create as bulk_create
from sharehub.serving.bulk import downloaded as bulk_downloaded
from sharehub.serving.bulk import get as bulk_get
from sharehub.serving.bulk import issue_url as bulk_issue
from sharehub.serving.bulk import list_extracts
from sharehub.serving.bulk import open_signed as bulk_open
from sharehub.serving.copies import key_of, lookup_as_of

router = APIRouter()


@router.post(
    "/verify/{resource_id}",
    response_model=VerifyOut,
    tags=["serving"],
    responses={
        401: {"description": "No valid API key"},
        403: {"description": "No grant, or a claimed field outside it"},
        422: {"description": "Key fields wrong"},
        429: {"description": "Rate limit"},
    },
    openapi_extra={**json_body(VerifyIn), **RESOURCE_IN_PATH},
)
async def verify_(request: Request, served: Annotated[Served, Depends(granted("verification"))]) -> Response:
    """Do these claimed values match the record? Per-field booleans only; a missing record answers like a
    mismatch, unless the caller also holds a query grant on the resource (then `found` says which)."""
    hub, caller, access = served
    body = parse(VerifyIn, await request.body())
    res = hub.catalogue.resource(request.path_params["resource_id"])
    if not limiter.allow(hub.settings.metadata_url, caller.id, hub.settings.verify_rate_per_minute):
        await audit.arecord(hub, "verification", caller, res.id, grant_id=access.grant_id, result="rate_limited")
        raise HTTPException(status.HTTP_429_TOO_MANY_REQUESTS, "too many verification calls", {"Retry-After": "1"})
    key = await served_key(hub, caller, res.id, access, "verification", body.key)
    outside = sorted(set(body.claims) - access.fields)
    if outside:
        unknown = sorted(set(outside) - {f.name for f in res.fields})
        if unknown:  # a misspelt field, not a refusal: the catalogue is everyone's to read
            detail, result, code = (
                f"{res.id}: {unknown[0]} is not a field of this resource (GET /catalogue/{res.id})",
                "bad_request",
                status.HTTP_422_UNPROCESSABLE_CONTENT,
            )
        else:
            detail, result, code = f"{res.id}: field {outside[0]} is not in your grant", "denied", 403
        await audit.arecord(hub, "verification", caller, res.id, grant_id=access.grant_id, result=result, detail=detail)
        raise HTTPException(code, detail)
    record = hub.serving.lookup(res, key)
    fields = verify(res, record, body.claims)
    told = "query" in access.modes  # the right to tell a missing record from a mismatch
    out = VerifyOut(match=all(fields.values()), fields=fields, found=(record is not None) if told else None)
    payload = out.model_dump_json(exclude_none=True)
    await audit.arecord(
        hub,
        "verification",
        caller,
        res.id,
        grant_id=access.grant_id,
        purpose=access.purpose,
        record_key=key_of(res, key),
        result="not_found" if record is None else "match" if out.match else "no_match",
        response_bytes=len(payload),
    )
    return Response(payload, media_type="application/json")


@router.get(
    "/query/{resource_id}",
    response_model=QueryOut,
    tags=["serving"],
    responses={
        403: {"description": "No grant"},
        404: {"description": "No such record"},
        422: {"description": "Key fields wrong"},
    },
)
async def query(
    request: Request,
    resource_id: str,
    served: Annotated[Served, Depends(granted("query"))],
    as_of: Annotated[datetime | None, Query(description="Read the record as the store held it then.")] = None,
) -> Response:
    """The granted fields of the record with these key fields (`?id_number=…`), masked by classification."""
    hub, caller, access = served
    res = hub.catalogue.resource(resource_id)
    params = request.query_params  # a key field given twice stays a list, which request_key refuses
    given = {k: vs if len(vs := params.getlist(k)) > 1 else vs[0] for k in params if k != "as_of"}
    key = await served_key(hub, caller, res.id, access, "query", given)
    if as_of is not None and as_of.tzinfo is None:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "as_of needs a time zone, e.g. +08:00")
    if as_of is None:
        row, version = hub.serving.lookup(res, key), hub.serving.version(res.id)
    else:
        try:
            version, row = lookup_as_of(hub, res, key, as_of)
        except LookupError as exc:
            raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None
    if row is None:
        await audit.arecord(
            hub, "query", caller, res.id, grant_id=access.grant_id, record_key=key_of(res, key), result="not_found"
        )
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"{res.id}: no record with that key")
    disputed = sorted(under_objection(hub, res.id, key_of(res, key)) & access.fields)
    record = masked(res, row, access.fields)
    out = QueryOut(resource_id=res.id, version=version, as_of=as_of, record=record, under_objection=disputed)
    payload = out.model_dump_json()
    await audit.arecord(
        hub,
        "query",
        caller,
        res.id,
        grant_id=access.grant_id,
        purpose=access.purpose,
        record_key=key_of(res, key),
        result="ok",
        response_bytes=len(payload),
    )
    return Response(payload, media_type="application/json")


@router.post(
    "/bulk/{resource_id}",
    response_model=ExtractOut,
    status_code=201,
    tags=["serving"],
    responses={403: {"description": "No bulk grant"}, 404: {"description": "No store yet"}},
)
def bulk(
    resource_id: str, served: Annotated[Served, Depends(granted("bulk"))], body: BulkIn | None = None
) -> ExtractOut:
    """Write a masked Parquet extract of the granted columns (and its manifest); return a short-lived URL."""
    hub, caller, access = served
    issued = step(lambda: bulk_create(hub, caller, access, resource_id, bool(body and body.incremental)))
    return extract_out(issued)


@router.get("/bulk/extracts", response_model=list[ExtractListed], tags=["serving"], responses=PAGED)
def bulk_extracts(
    hub: HubDep,
    caller: CallerDep,
    request: Request,
    response: Response,
    resource_id: str | None = None,
    consumer_id: Annotated[int | None, Query(ge=1, le=2**62)] = None,
    limit: Annotated[int, Query(ge=1, le=1000, description="At most this many, newest first.")] = 100,
    before: Annotated[
        str | None, Query(max_length=36, description="Only extracts made before this one: the next page.")
    ] = None,
) -> list[ExtractListed]:
    """Extracts, newest first: a consumer's own, a provider department's resources' (who copied its data),
    or, for the platform office, all. Removed ones stay listed with `removed_at`; no URL is issued here."""
    page = step(
        lambda: list_extracts(hub, caller, resource_id=resource_id, consumer_id=consumer_id, limit=limit, before=before)
    )
    paged(request, response, page)
    return [ExtractListed.model_validate(e, from_attributes=True) for e in page]


@router.get(
    "/bulk/extracts/{extract_id}",
    response_model=ExtractOut,
    tags=["serving"],
    responses={
        404: {"description": "No such extract of yours"},
        410: {"description": "Its files were removed (grant ended, or older than the hub keeps extracts)"},
    },
)
def bulk_extract(hub: HubDep, caller: CallerDep, extract_id: str) -> ExtractOut:
    """One of your extracts, with a fresh download URL (its issuance is audited)."""
    extract = step(lambda: bulk_get(hub, caller, extract_id))
    step(lambda: active_grant(hub, caller, extract.resource_id, "bulk"))
    return extract_out(bulk_issue(hub, caller, extract))


@router.head("/bulk/extracts/{extract_id}/download", include_in_schema=False)
@router.get(
    "/bulk/extracts/{extract_id}/download",
    tags=["serving"],
    response_class=Response,
    responses={
        200: {"content": {"application/vnd.apache.parquet": {}}},
        206: {"description": "The requested byte range"},
        403: {"description": "Bad or expired link"},
    },
)
def bulk_download(
    hub: HubDep,
    request: Request,
    extract_id: str,
    expires: Annotated[int, Query()],
    sig: Annotated[str, Query(pattern="^[0-9a-f]{64}$")],
) -> Response:
    """The extract's Parquet, for a signed, unexpired link (local object store; S3 links go to S3).

    Byte ranges are served, so Parquet readers (pyarrow, fsspec, the delta-sharing client) can seek.
    """
    # A refused link is audited (probing shows in the trail), but only a few a minute per address:
    # past them a refusal is 429 and writes nothing, so nobody floods the audit chain. Good links are
    # served whatever the address did before.
    address = ("download", request.client.host if request.client else "")
    quiet = refused_links.spent(address, REFUSED_LINKS_PER_MINUTE)
    try:
        opened = step(lambda: bulk_open(hub, extract_id, expires, sig, audit_refusal=not quiet))
    except HTTPException:
        if quiet:
            wait = {"Retry-After": "60"}
            raise HTTPException(status.HTTP_429_TOO_MANY_REQUESTS, "too many refused links; wait", wait) from None
        refused_links.allow(address, REFUSED_LINKS_PER_MINUTE)
        raise
    size = opened.size
    kind = "application/vnd.apache.parquet"
    whole = {"Accept-Ranges": "bytes", "Content-Length": str(size)}
    if request.method == "HEAD":  # the size only, as readers ask before their ranges: no data, no entry
        return Response(media_type=kind, headers=whole)
    wanted = request.headers.get("range", "")
    if wanted.startswith("bytes="):
        first, _, last = wanted[6:].split(",")[0].partition("-")
        try:
            start = int(first) if first else max(size - int(last), 0)
            end = min(int(last), size - 1) if first and last else size - 1
        except ValueError:
            start, end = 0, size - 1
        if start >= size or start > end:
            return Response(status_code=416, headers={"Content-Range": f"bytes */{size}"})
        span = {
            "Accept-Ranges": "bytes",
            "Content-Range": f"bytes {start}-{end}/{size}",
            "Content-Length": str(end + 1 - start),
        }
        bulk_downloaded(hub, opened, end + 1 - start, part=True)
        body = hub.store.read_span(opened.path, start, end)
        return StreamingResponse(body, status_code=206, media_type=kind, headers=span)
    bulk_downloaded(hub, opened, size)
    return StreamingResponse(hub.store.read_span(opened.path, 0, size - 1), media_type=kind, headers=whole)
