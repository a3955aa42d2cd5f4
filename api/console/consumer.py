"""The consumers' pages: the catalogue and applying, grants, bulk extracts and the Delta Sharing profile."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from api.console.render import PAGE, back, page
from api.console.signin import PostedDep, SignedInDep, roles
from sharehub import audit
from sharehub.access import grants as access
from sharehub.errors import SharehubError
from sharehub.serving.bulk import create as bulk_create
from sharehub.serving.bulk import get as bulk_get
from sharehub.serving.bulk import issue_url, list_extracts
from sharehub.serving.masking import mask_field
from sharehub.workdays import CHINA

router = APIRouter(prefix="/console", include_in_schema=False)


# -- the catalogue, grants and extracts (consumers) -------------------------------------------------
@router.get("/catalogue", response_class=HTMLResponse)
def catalogue(
    who: SignedInDep,
    request: Request,
    q: Annotated[str, Query(max_length=100)] = "",
    provider: Annotated[str, Query(max_length=50)] = "",
    share: Annotated[str, Query(max_length=20)] = "",
    mode: Annotated[str, Query(max_length=20)] = "",
) -> HTMLResponse:
    cat = who.hub.catalogue
    found = [
        r
        for r in sorted(cat.resources.values(), key=lambda r: r.id)
        if (not q or q.lower() in f"{r.id} {r.title} {r.description}".lower())
        and (not provider or r.provider == provider)
        and (not share or r.share.type == share)
        and (not mode or mode in r.serving_modes)
    ]
    return page(
        request,
        "catalogue.html",
        who,
        found=found,
        departments=cat.departments,
        q=q,
        provider=provider,
        share=share,
        mode=mode,
    )


@router.get("/catalogue/{resource_id}", response_class=HTMLResponse)
def resource(who: SignedInDep, request: Request, resource_id: str) -> HTMLResponse:
    res = who.hub.catalogue.resources.get(resource_id)
    if res is None:
        return page(request, "missing.html", who, 404, what=f"资源 {resource_id}")
    sample = [{f.name: mask_field(row.get(f.name), f) for f in res.fields} for row in res.sample[:3]]
    return page(
        request,
        "resource.html",
        who,
        res=res,
        department=who.hub.catalogue.departments.get(res.provider),
        sample=sample,
    )


@router.get("/grants", response_class=HTMLResponse, dependencies=[roles("consumer", "provider", "platform")])
def grants(who: SignedInDep, request: Request, before: Annotated[int | None, Query(ge=1)] = None) -> HTMLResponse:
    found = access.list_grants(who.hub, who.caller, PAGE, before)
    return page(request, "grants.html", who, found=found, now=datetime.now(CHINA))


@router.get("/extracts", response_class=HTMLResponse, dependencies=[roles("consumer")])
def extracts(
    who: SignedInDep, request: Request, before: Annotated[str | None, Query(max_length=36)] = None
) -> HTMLResponse:
    found = list_extracts(who.hub, who.caller, limit=PAGE, before=before)
    bulk = sorted(
        {g.resource_id for g in access.list_grants(who.hub, who.caller, 1000, state="active") if "bulk" in g.modes}
    )
    return page(
        request,
        "extracts.html",
        who,
        found=found,
        bulk=bulk,
    )


@router.post("/extracts", dependencies=[roles("consumer")])
def extract_new(who: PostedDep, resource_id: Annotated[str, Form(max_length=100)]) -> Response:
    """Write an extract under the consumer's bulk grant, as `POST /bulk/{id}` does; a refusal is audited
    as the API's is (`bulk`, denied)."""
    try:
        grant = access.active_grant(who.hub, who.caller, resource_id, "bulk")
    except PermissionError as exc:
        audit.record(who.hub, "bulk", who.caller, resource_id, result="denied", detail=str(exc))
        return back("/console/extracts", error=str(exc))
    try:
        issued = bulk_create(who.hub, who.caller, grant, resource_id, False)
    except SharehubError as exc:
        return back("/console/extracts", error=str(exc))
    return back("/console/extracts", f"已生成批量副本 {issued.extract.id}（{issued.extract.rows:,} 行）")


@router.get("/extracts/{extract_id}/download", dependencies=[roles("consumer")])
def extract_download(who: SignedInDep, extract_id: str) -> Response:
    """A fresh short-lived link to the extract, as GET /bulk/extracts/{id} issues (audited), followed."""
    try:
        extract = bulk_get(who.hub, who.caller, extract_id)
        access.active_grant(who.hub, who.caller, extract.resource_id, "bulk")
    except (SharehubError, PermissionError, LookupError):
        return back("/console/extracts", error=f"批量副本 {extract_id} 不可下载（已删除、已过期或授权已终止）")
    return RedirectResponse(issue_url(who.hub, who.caller, extract).url, status_code=303)


@router.get("/sharing-profile", dependencies=[roles("consumer")])
def sharing_profile(who: SignedInDep, request: Request) -> Response:
    """The Delta Sharing profile file for this consumer's bulk grants: the endpoint, and where its API key
    goes (the hub keeps only the key's digest, so the clerk pastes the key in; nothing here can recover it)."""
    base = who.hub.settings.public_url or str(request.base_url).rstrip("/")
    profile = {
        "shareCredentialsVersion": 1,
        "endpoint": f"{base}/delta-sharing",
        "bearerToken": "<在此填入本应用的 API 密钥 shk_…>",
    }
    body = json.dumps(profile, ensure_ascii=False, indent=2)
    headers = {"Content-Disposition": 'attachment; filename="sharehub.share"'}
    return Response(body, media_type="application/json", headers=headers)
