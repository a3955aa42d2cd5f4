"""The console's pages: each reads and acts through the same domain functions as its API twin, with the
caller the session resolves to, so a page shows no more than the API would and every action is audited
as the API's is. Lists page like the API (`before`)."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from api.console.signin import COOKIE, LOGIN_CSRF, PostedDep, SignedIn, SignedInDep, roles
from api.deps import HubDep
from sharehub.access import grants as access
from sharehub.access.consumers import AuthError
from sharehub.access.sessions import LIFETIME, csrf_matches, sign_in, sign_out
from sharehub.consistency.check import decide as decide_conflict
from sharehub.consistency.check import list_conflicts
from sharehub.errors import SharehubError
from sharehub.notices import acknowledge, dispute, explained, get_notice, list_notices, pending_reasons
from sharehub.reporting.scores import PARTS, department_scores
from sharehub.reporting.stats import department_stats
from sharehub.serving.bulk import create as bulk_create
from sharehub.serving.bulk import get as bulk_get
from sharehub.serving.bulk import issue_url, list_extracts
from sharehub.serving.copies import SEP
from sharehub.serving.masking import mask_field
from sharehub.workdays import CHINA, china_time

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=HERE / "templates")
templates.env.filters["beijing"] = lambda moment, form="%Y-%m-%d %H:%M": (
    "" if moment is None else china_time(moment, form)
)
router = APIRouter(prefix="/console", include_in_schema=False)
PAGE = 20
ROLE_NAMES = {"platform": "平台管理部门", "provider": "数据提供部门", "consumer": "数据使用部门"}
STATUS_NAMES = {
    "open": "待处理",
    "acknowledged": "已签收",
    "overdue": "已逾期",
    "resolved": "已办结",
    "disputed": "有异议",
    "review": "平台审核中",
    "provider": "待提供部门授权",
    "granted": "已授权",
    "refused": "未同意",
    "contested": "协商中",
    "referred": "已提请协调",
    "withdrawn": "已撤回",
    "verifying": "核实中",
    "decided": "已裁定",
    "closed": "已关闭",
}
SHARE_NAMES = {"unconditional": "无条件共享", "conditional": "有条件共享", "not_shared": "不予共享"}
MODE_NAMES = {"verification": "比对验证", "query": "查询引用", "bulk": "批量复制"}
templates.env.globals.update(STATUS=STATUS_NAMES, SHARE=SHARE_NAMES, MODES=MODE_NAMES, ROLE_NAMES=ROLE_NAMES)


def page(request: Request, name: str, who: SignedIn | None, status_code: int = 200, **context: Any) -> HTMLResponse:
    """Render a page with who is signed in and the session's CSRF token for its forms."""
    context.update(request=request, who=who, caller=who.caller if who else None, csrf=who.csrf if who else "")
    return templates.TemplateResponse(request, name, context, status_code=status_code)


def back(url: str, message: str = "", error: str = "") -> RedirectResponse:
    """After a form: back to a page (303, so a reload does not post again), saying what happened."""
    query = urlencode({k: v for k, v in (("done", message), ("error", error)) if v})
    return RedirectResponse(f"{url}{'&' if '?' in url else '?'}{query}" if query else url, status_code=303)


def working_days_left(who: SignedIn, deadline: datetime | None) -> int | None:
    """Working days from today (Beijing) to a deadline: negative when it has passed."""
    if deadline is None:
        return None
    today = datetime.now(CHINA).date()
    end = deadline.astimezone(CHINA).date()
    if end >= today:
        return who.hub.calendar.working_days_between(today, end)
    return -who.hub.calendar.working_days_between(end, today)


# -- sign-in ---------------------------------------------------------------------------------------
@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, error: str = "") -> HTMLResponse:
    import secrets

    token = secrets.token_urlsafe(24)
    response = page(request, "login.html", None, login_csrf=token, error=error)
    response.set_cookie(LOGIN_CSRF, token, httponly=True, samesite="lax", path="/console", max_age=3600)
    return response


@router.post("/login")
def login(
    hub: HubDep,
    request: Request,
    login_csrf: Annotated[str, Form()],
    key: Annotated[str, Form(max_length=200)] = "",
    username: Annotated[str, Form(max_length=60)] = "",
    password: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    """Sign in with an API key, or a username and password; the session cookie is HttpOnly, SameSite=Lax,
    and Secure in production."""
    if not csrf_matches(request.cookies.get(LOGIN_CSRF, ""), login_csrf):
        return back("/console/login", error="登录表单已过期，请重新登录")
    try:
        _caller, token, _csrf = sign_in(hub, key=key or None, username=username or None, password=password or None)
    except AuthError:
        return back("/console/login", error="密钥或用户名、密码不正确")
    response = RedirectResponse("/console", status_code=303)
    response.set_cookie(
        COOKIE,
        token,
        httponly=True,
        samesite="lax",
        secure=hub.settings.mode == "production",
        path="/console",
        max_age=int(LIFETIME.total_seconds()),
    )
    response.delete_cookie(LOGIN_CSRF, path="/console")
    return response


@router.post("/logout")
def logout(who: PostedDep, request: Request) -> Response:
    sign_out(who.hub, request.cookies.get(COOKIE))
    response = RedirectResponse("/console/login", status_code=303)
    response.delete_cookie(COOKIE, path="/console")
    return response


@router.get("", response_class=HTMLResponse)
def home(who: SignedInDep, request: Request) -> HTMLResponse:
    hub, caller = who.hub, who.caller
    counts: dict[str, int] = {}
    if caller.role != "consumer":
        department = None if caller.role == "platform" else caller.department
        counts["notices"] = list_notices(hub, department, "open", 1).total
        counts["overdue"] = list_notices(hub, department, "overdue", 1).total
    waiting = {"platform": "review", "provider": "provider"}.get(caller.role)
    counts["applications"] = access.list_applications(hub, caller, 1, status=waiting).total
    return page(request, "home.html", who, counts=counts)


# -- notices (departments, the platform office) -----------------------------------------------------
@router.get("/notices", response_class=HTMLResponse, dependencies=[roles("platform", "provider")])
def notices(
    who: SignedInDep,
    request: Request,
    status: Annotated[str | None, Query(max_length=20)] = None,
    before: Annotated[int | None, Query(ge=1)] = None,
) -> HTMLResponse:
    department = None if who.caller.role == "platform" else who.caller.department
    found = list_notices(who.hub, department, status or None, PAGE, before)
    rows = [(n, working_days_left(who, n.deadline)) for n in found]
    return page(request, "notices.html", who, rows=rows, found=found, status=status or "")


def _masked_key(who: SignedIn, resource_id: str | None, key: str) -> str:
    """A row key as the platform sees it: each part masked by its field's classification."""
    res = who.hub.catalogue.resources.get(resource_id or "")
    if res is None:
        return "〈已不在目录中〉"
    parts = key.split(SEP)
    return " / ".join(mask_field(part, res.field(name)) for part, name in zip(parts, res.source.key, strict=False))


@router.get("/notices/{notice_id}", response_class=HTMLResponse, dependencies=[roles("platform", "provider")])
def notice(who: SignedInDep, request: Request, notice_id: int) -> HTMLResponse:
    department = None if who.caller.role == "platform" else who.caller.department
    try:
        found = get_notice(who.hub, notice_id, department)
    except LookupError:
        return page(request, "missing.html", who, 404, what=f"通知 #{notice_id}")
    reasons = pending_reasons(who.hub, found)
    sentences = explained(who.hub, found.resource_id, (r for rs in reasons.values() for r in rs))
    pending = [
        (
            i,
            _row_token(key),
            _masked_key(who, found.resource_id, key),
            [sentences.get(r, r) for r in reasons.get(key, [])],
        )
        for i, key in enumerate(found.pending_keys[:200])
    ]
    return page(
        request,
        "notice.html",
        who,
        notice=found,
        left=working_days_left(who, found.deadline),
        pending=pending,
        more=max(0, len(found.pending_keys) - 200),
        done=request.query_params.get("done", ""),
        error=request.query_params.get("error", ""),
    )


@router.post("/notices/{notice_id}/ack", dependencies=[roles("provider")])
def notice_ack(who: PostedDep, notice_id: int) -> Response:
    try:
        acknowledge(who.hub, notice_id, who.caller.department, actor=who.caller)
    except SharehubError as exc:
        return back(f"/console/notices/{notice_id}", error=str(exc))
    return back(f"/console/notices/{notice_id}", "已签收")


def _row_token(key: str) -> str:
    """What a form names a pending row by: a digest of its key, so that the key never goes through the
    browser and a row that left the notice meanwhile is not mistaken for another."""
    return hashlib.sha256(key.encode()).hexdigest()[:32]


@router.post("/notices/{notice_id}/dispute", dependencies=[roles("provider")])
def notice_dispute(
    who: PostedDep,
    notice_id: int,
    row: Annotated[str, Form(min_length=32, max_length=32)],
    reason: Annotated[str, Form(max_length=2000)],
) -> Response:
    """Dispute a pending row, named by its token (`_row_token`)."""
    try:
        found = get_notice(who.hub, notice_id, who.caller.department)
        keys = [key for key in found.pending_keys if _row_token(key) == row]
        if not keys:
            return back(f"/console/notices/{notice_id}", error="该行已不在通知上（已更正或已提出异议）")
        dispute(who.hub, notice_id, keys[0], reason, who.caller.department, actor=who.caller)
    except (SharehubError, LookupError, ValueError) as exc:
        return back(f"/console/notices/{notice_id}", error=str(exc))
    return back(f"/console/notices/{notice_id}", "已提出异议，等待平台复核")


# -- applications ------------------------------------------------------------------------------------
@router.get("/applications", response_class=HTMLResponse)
def applications(
    who: SignedInDep,
    request: Request,
    status: Annotated[str | None, Query(max_length=20)] = None,
    before: Annotated[int | None, Query(ge=1)] = None,
) -> HTMLResponse:
    found = access.list_applications(who.hub, who.caller, PAGE, before, status=status or None)
    rows = [(a, working_days_left(who, a.step_deadline)) for a in found]
    return page(
        request,
        "applications.html",
        who,
        rows=rows,
        found=found,
        status=status or "",
        done=request.query_params.get("done", ""),
        error=request.query_params.get("error", ""),
    )


@router.post("/applications/{application_id}/step", dependencies=[roles("platform", "provider")])
def application_step(
    who: PostedDep,
    application_id: int,
    approve: Annotated[str, Form(pattern="^(yes|no)$")],
    reason: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    """The platform office's review, or the provider's decision: the step the caller's role takes."""
    act = access.review if who.caller.role == "platform" else access.decide
    try:
        app = act(who.hub, who.caller, application_id, approve == "yes", reason)
    except SharehubError as exc:
        return back("/console/applications", error=f"申请 #{application_id}：{exc}")
    return back("/console/applications", f"申请 #{app.id}：{STATUS_NAMES.get(app.status, app.status)}")


@router.post("/applications", dependencies=[roles("consumer")])
def application_new(
    who: PostedDep,
    resource_id: Annotated[str, Form(max_length=100)],
    purpose: Annotated[str, Form(max_length=2000)],
    valid_days: Annotated[int, Form(ge=1, le=1096)],
    fields: Annotated[list[str], Form()],
    modes: Annotated[list[str], Form()],
) -> Response:
    until = datetime.now(CHINA).replace(hour=23, minute=59, second=0, microsecond=0) + timedelta(days=valid_days)
    try:
        app = access.apply(who.hub, who.caller, resource_id, fields, modes, purpose, until)
    except SharehubError as exc:
        return back(f"/console/catalogue/{resource_id}", error=str(exc))
    return back("/console/applications", f"申请 #{app.id} 已提交：{STATUS_NAMES.get(app.status, app.status)}")


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
        done=request.query_params.get("done", ""),
        error=request.query_params.get("error", ""),
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
        error=request.query_params.get("error", ""),
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
        done=request.query_params.get("done", ""),
        error=request.query_params.get("error", ""),
    )


@router.post("/extracts", dependencies=[roles("consumer")])
def extract_new(who: PostedDep, resource_id: Annotated[str, Form(max_length=100)]) -> Response:
    try:
        grant = access.active_grant(who.hub, who.caller, resource_id, "bulk")
        issued = bulk_create(who.hub, who.caller, grant, resource_id, False)
    except (SharehubError, PermissionError) as exc:
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
