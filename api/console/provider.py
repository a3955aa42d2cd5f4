"""The providing departments' own pages: their resources (last runs, quarantine, freshness and each run's
quality report, and filing a 报备), the objections to their records (and the consumers' form that raises
one), and their replies to conflicts. Each calls the domain function its API twin calls, with the
session's caller."""

from __future__ import annotations

from datetime import date, datetime, time
from typing import Annotated

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import select

from api.console.render import PAGE, back, masked_key, page, working_days_left
from api.console.signin import PostedDep, SignedInDep, roles
from sharehub.access.grants import list_grants
from sharehub.access.objections import answer as answer_objection
from sharehub.access.objections import list_objections, raise_objection
from sharehub.consistency.check import reply as reply_conflict
from sharehub.errors import SharehubError
from sharehub.metadata.models import Run
from sharehub.notices import file_delivery
from sharehub.pipeline.report import report_path
from sharehub.reporting.freshness import freshness
from sharehub.workdays import CHINA, due_text

router = APIRouter(prefix="/console", include_in_schema=False)
RUNS_SHOWN = 5


@router.get("/resources", response_class=HTMLResponse, dependencies=[roles("provider", "platform")])
def resources(who: SignedInDep, request: Request) -> HTMLResponse:
    """A department's resources (the platform office: all), each with its freshness and its latest runs."""
    provider = who.caller.department if who.caller.role == "provider" else None
    fresh = {f.resource_id: f for f in freshness(who.hub, provider=provider)}
    owned = sorted(
        (r for r in who.hub.catalogue.resources.values() if provider in (None, r.provider)), key=lambda r: r.id
    )
    runs = {}
    with who.hub.db() as s:
        for r in owned:
            q = select(Run).where(Run.resource_id == r.id).order_by(Run.started_at.desc()).limit(RUNS_SHOWN)
            runs[r.id] = list(s.scalars(q))
    return page(
        request,
        "resources.html",
        who,
        owned=owned,
        fresh=fresh,
        runs=runs,
    )


@router.get("/runs/{run_id}/report", dependencies=[roles("provider", "platform")])
def run_report(who: SignedInDep, request: Request, run_id: str) -> Response:
    """A run's HTML quality report, to the department of its resource and the platform office."""
    with who.hub.db() as s:
        run = s.get(Run, run_id)
    res = None if run is None else who.hub.catalogue.resources.get(run.resource_id)
    mine = res is not None and (who.caller.role == "platform" or res.provider == who.caller.department)
    path = report_path(run.resource_id, run.id) if run is not None else ""
    if not mine or not who.hub.store.exists(path):
        return page(request, "missing.html", who, 404, what=f"运行 {run_id} 的质量报告")
    return HTMLResponse(who.hub.store.read_bytes(path).decode("utf-8"))


@router.get("/objections", response_class=HTMLResponse)
def objections(
    who: SignedInDep,
    request: Request,
    status: Annotated[str | None, Query(max_length=20)] = None,
    before: Annotated[int | None, Query(ge=1)] = None,
) -> HTMLResponse:
    """Objections: a department's on its resources (with the answer form), a consumer's own, or all."""
    found = list_objections(who.hub, who.caller, PAGE, before, status=status or None)
    rows = []
    for o in found:
        rows.append((o, masked_key(who.hub, o.resource_id, o.record_key), working_days_left(who, o.deadline)))
    return page(
        request,
        "objections.html",
        who,
        reviewer=who.hub.profile.workflow.objection_reviewer,
        rows=rows,
        found=found,
        status=status or "",
    )


@router.post("/objections/{objection_id}/answer", dependencies=[roles("provider", "platform")])
def objection_answer(
    who: PostedDep,
    objection_id: int,
    outcome: Annotated[str, Form(pattern="^(corrected|confirmed)$")],
    reason: Annotated[str, Form(max_length=2000)],
) -> Response:
    try:
        answer_objection(who.hub, who.caller, objection_id, outcome, reason)
    except (SharehubError, LookupError, PermissionError, ValueError) as exc:
        return back("/console/objections", error=f"疑义 #{objection_id}：{exc}")
    return back("/console/objections", f"疑义 #{objection_id} 已答复")


@router.post("/conflicts/{conflict_id}/reply", dependencies=[roles("provider")])
def conflict_reply(who: PostedDep, conflict_id: int, reason: Annotated[str, Form(max_length=2000)]) -> Response:
    """The department holds its value right (核实反馈), for the platform office to decide."""
    try:
        reply_conflict(
            who.hub, conflict_id, department=who.caller.department, by=who.caller.name, reason=reason, actor=who.caller
        )
    except (SharehubError, LookupError, PermissionError, ValueError) as exc:
        return back("/console/conflicts", error=f"冲突 #{conflict_id}：{exc}")
    return back("/console/conflicts", f"冲突 #{conflict_id} 已反馈，等待平台裁定")


@router.post("/resources/{resource_id}/filing", dependencies=[roles("provider")])
def delivery_filing(
    who: PostedDep,
    resource_id: str,
    due: Annotated[date, Form()],
    reason: Annotated[str, Form(max_length=2000)],
) -> Response:
    """Report ahead (报备) that the resource's next data will be late, until the end of `due` (Beijing)."""
    until = datetime.combine(due, time(23, 59), CHINA)
    try:
        filed = file_delivery(who.hub, who.caller, resource_id, until, reason)
    except SharehubError as exc:
        return back("/console/resources", error=f"{resource_id}：{exc}")
    return back("/console/resources", f"{resource_id} 已报备，报送期限推迟至 {due_text(filed.due_after)}")


@router.get("/objections/new", response_class=HTMLResponse, dependencies=[roles("consumer")])
def objection_form(
    who: SignedInDep, request: Request, resource_id: Annotated[str, Query(max_length=100)]
) -> HTMLResponse:
    """The form for an objection to a record of a resource the consumer is granted: its key, the fields."""
    res = who.hub.catalogue.resources.get(resource_id)
    granted = set()
    for g in list_grants(who.hub, who.caller, 1000, state="active", resource_id=resource_id):
        granted |= set(g.fields)
    if res is None or not granted:
        return page(request, "missing.html", who, 404, what=f"您对资源 {resource_id} 的有效授权")
    fields = [f for f in res.fields if f.name in granted]
    keys = [res.field(k) for k in res.source.key]
    return page(
        request,
        "objection_new.html",
        who,
        res=res,
        fields=fields,
        keys=keys,
    )


@router.post("/objections", dependencies=[roles("consumer")])
async def objection_new(who: PostedDep, request: Request) -> Response:
    """Raise an objection (疑义), as `POST /objections` does: the record's key, the fields, what is wrong."""
    form = await request.form()
    resource_id = str(form.get("resource_id", ""))[:100]
    res = who.hub.catalogue.resources.get(resource_id)
    if res is None:
        return back("/console/objections", error=f"没有资源 {resource_id}")
    key = {k: str(form.get(f"key_{k}", "")).strip()[:200] for k in res.source.key}
    fields = [str(f) for f in form.getlist("fields")][:50]
    try:
        made = raise_objection(who.hub, who.caller, resource_id, key, fields, str(form.get("reason", ""))[:2000])
    except (SharehubError, PermissionError, LookupError, ValueError) as exc:
        return back(f"/console/objections/new?resource_id={resource_id}", error=str(exc))
    return back("/console/objections", f"疑义 #{made.id} 已提交，答复期限 {due_text(made.deadline)}")
