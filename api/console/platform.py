"""The platform office's pages: conflicts to decide, scores, and the monthly bulletin with its charts and
its PDF."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, Response

from api.console.bulletin import MONTHS_CHARTED, line_chart, month_of, months_back, pdf, series, the_bulletin
from api.console.render import PAGE, back, page
from api.console.signin import PostedDep, SignedInDep, roles
from sharehub import audit
from sharehub.consistency.check import decide as decide_conflict
from sharehub.consistency.check import list_conflicts
from sharehub.errors import SharehubError
from sharehub.reporting.bulletin import PART_NAMES
from sharehub.reporting.scores import PARTS, department_scores
from sharehub.reporting.stats import department_stats
from sharehub.workdays import CHINA

router = APIRouter(prefix="/console", include_in_schema=False)


# -- conflicts (the platform office decides) -------------------------------------------------------
@router.get("/conflicts", response_class=HTMLResponse, dependencies=[roles("platform", "provider")])
def conflicts(
    who: SignedInDep,
    request: Request,
    status: Annotated[str | None, Query(max_length=20)] = "open",
    before: Annotated[int | None, Query(ge=1)] = None,
) -> HTMLResponse:
    department = None if who.caller.role == "platform" else who.caller.department
    found = list_conflicts(who.hub, department, status or None, PAGE, as_authority=True, before=before)
    return page(
        request,
        "conflicts.html",
        who,
        found=found,
        status=status or "",
    )


@router.post("/conflicts/{conflict_id}/decision", dependencies=[roles("platform")])
def conflict_decision(
    who: PostedDep,
    conflict_id: int,
    right: Annotated[str, Form(pattern="^(authority|provider)$")],
    reason: Annotated[str, Form(max_length=2000)],
) -> Response:
    try:
        decide_conflict(who.hub, conflict_id, actor=who.caller, right=right, by=who.caller.name, reason=reason)
    except SharehubError as exc:
        return back("/console/conflicts", error=f"冲突 #{conflict_id}：{exc}")
    return back("/console/conflicts", f"冲突 #{conflict_id} 已裁定")


# -- scores and statistics (the platform office) ----------------------------------------------------
@router.get("/scores", response_class=HTMLResponse, dependencies=[roles("platform")])
def scores(who: SignedInDep, request: Request) -> HTMLResponse:
    found = department_scores(who.hub)
    stats = {row["department"]: row for row in department_stats(who.hub)}
    names = {d: dept.name for d, dept in who.hub.catalogue.departments.items()}
    return page(request, "scores.html", who, scores=found, parts=PARTS, stats=stats, names=names)


# -- the monthly bulletin --------------------------------------------------------------------------
@router.get("/bulletin", response_class=HTMLResponse, dependencies=[roles("platform")])
def bulletin_page(
    who: SignedInDep, request: Request, month: Annotated[str | None, Query(max_length=7)] = None
) -> HTMLResponse:
    """The month's bulletin (this month by default), with charts per department over the last months."""
    try:
        first = month_of(month, datetime.now(CHINA).date())
    except ValueError as exc:
        return page(request, "missing.html", who, 404, what=str(exc))
    months = months_back(first, MONTHS_CHARTED)
    made = [the_bulletin(who.hub, m) for m in months]
    names = {d: dept.name for d, dept in who.hub.catalogue.departments.items()}
    labels = [f"{m:%Y-%m}" for m in months]
    figures = series(who.hub, made)
    charts = [
        (title, line_chart(title, labels, {names.get(d, d): v for d, v in figures[key].items()}, unit), key)
        for key, title, unit in (
            ("on_time", "按时报送率（%）", "%"),
            ("quarantined", "质量检查隔离率（%）", "%"),
            ("calls_verification", "比对验证调用（次）", ""),
            ("calls_query", "查询引用调用（次）", ""),
            ("calls_extract", "批量复制调用（次）", ""),
        )
    ]
    return page(
        request,
        "bulletin.html",
        who,
        made=made[-1],
        charts=charts,
        figures=figures,
        labels=labels,
        names=names,
        parts=PART_NAMES,
        cite=who.hub.profile.cite("bulletin"),
    )


@router.get("/bulletin.pdf", dependencies=[roles("platform")])
def bulletin_pdf(who: SignedInDep, month: Annotated[str | None, Query(max_length=7)] = None) -> Response:
    """The month's bulletin as a PDF 通报 (its download is audited)."""
    try:
        first = month_of(month, datetime.now(CHINA).date())
    except ValueError as exc:
        return Response(str(exc), status_code=404)
    made = the_bulletin(who.hub, first)
    audit.record(who.hub, "bulletin_download", who.caller, None, result="downloaded", detail=made["month"])
    headers = {"Content-Disposition": f'attachment; filename="bulletin-{made["month"]}.pdf"'}
    return Response(pdf(who.hub, made), media_type="application/pdf", headers=headers)
