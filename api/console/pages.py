"""The console's sign-in, home, notices and applications: each page reads and acts through the same domain
functions as its API twin, with the caller the session resolves to, so a page shows no more than the API
would and every action is audited as the API's is. Lists page like the API (`before`)."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from api.console.render import PAGE, STATUS_NAMES, back, masked_key, page, working_days_left
from api.console.signin import COOKIE, LOGIN_CSRF, PostedDep, SignedIn, SignedInDep, roles
from api.deps import HubDep
from sharehub import audit
from sharehub.access import grants as access
from sharehub.access.consumers import AuthError
from sharehub.access.contests import NOT_SHARED_OUTCOMES, contest, settle
from sharehub.access.ratelimit import SharedRateLimit
from sharehub.access.sessions import LIFETIME, csrf_matches, sign_in, sign_out
from sharehub.errors import SharehubError
from sharehub.metadata.models import Application
from sharehub.notices import acknowledge, dispute, explained, get_notice, list_notices, pending_reasons
from sharehub.workdays import CHINA

router = APIRouter(prefix="/console", include_in_schema=False)
# Sign-in attempts, shared by every worker (`rate_buckets`): per client address, and per username, a
# minute's worth; with argon2's cost, a password cannot be guessed at speed.
_ATTEMPTS = SharedRateLimit("console_sign_in")
PER_HOST, PER_USER = 30, 10


# -- sign-in ---------------------------------------------------------------------------------------
@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, error: str = "") -> HTMLResponse:
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
    client = request.client.host if request.client else "unknown"
    url = hub.settings.metadata_url
    if not (_ATTEMPTS.allow(url, f"host {client}", PER_HOST) and _ATTEMPTS.allow(url, f"user {username}", PER_USER)):
        audit.record(
            hub, "console_sign_in", None, None, result="rate_limited", detail="password" if username else "key"
        )
        return back("/console/login", error="登录尝试过于频繁，请一分钟后再试")
    try:
        _caller, token, _csrf = sign_in(hub, key=key or None, username=username or None, password=password or None)
    except AuthError:
        audit.record(hub, "console_sign_in", None, None, result="refused", detail="password" if username else "key")
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
            masked_key(who.hub, found.resource_id, key),
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
    overdue: bool = False,
) -> HTMLResponse:
    late = [Application.overdue_at.is_not(None)] if overdue else []
    found = access.APPLICATIONS.listed(who.hub, who.caller, PAGE, before, status=status or None, where=late)
    rows = [(a, working_days_left(who, a.step_deadline)) for a in found]
    return page(
        request,
        "applications.html",
        who,
        overdue=overdue,
        outcomes=_outcomes(who),
        rows=rows,
        found=found,
        status=status or "",
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


OUTCOME_NAMES = {
    "upheld": "维持不予授权",
    "referred": "协商未能一致，提请协调",
    "reclassified": "论证审核：可以共享（变更共享属性）",
    "publicized": "论证审核：不能共享（公示告知）",
}


def _outcomes(who: SignedIn) -> Callable[[Application], dict[str, str]]:
    """The outcomes the platform office may settle a contest with, as the profile's workflow allows."""

    def of(app: Application) -> dict[str, str]:
        review = who.hub.profile.workflow.not_shared_review is not None and app.share_type == "not_shared"
        keep = NOT_SHARED_OUTCOMES if review else ("upheld", "referred")
        return {o: OUTCOME_NAMES[o] for o in keep}

    return of


@router.post("/applications/{application_id}/settle", dependencies=[roles("platform")])
def application_settle(
    who: PostedDep,
    application_id: int,
    outcome: Annotated[str, Form(max_length=20)],
    reason: Annotated[str, Form(max_length=2000)],
    referred_to: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    """The platform office settles a contest, as `POST /applications/{id}/contest/outcome` does."""
    try:
        settle(who.hub, who.caller, application_id, outcome, reason, referred_to=referred_to or None)
    except SharehubError as exc:
        return back("/console/applications?status=contested", error=f"申请 #{application_id}：{exc}")
    return back("/console/applications?status=contested", f"申请 #{application_id} 的异议已办结")


@router.post("/applications/{application_id}/contest", dependencies=[roles("consumer")])
def application_contest(who: PostedDep, application_id: int, reason: Annotated[str, Form(max_length=2000)]) -> Response:
    """The applicant contests a refusal (意见分歧), as `POST /applications/{id}/contest` does."""
    try:
        contest(who.hub, who.caller, application_id, reason)
    except SharehubError as exc:
        return back("/console/applications", error=f"申请 #{application_id}：{exc}")
    return back("/console/applications", f"已对申请 #{application_id} 提出异议，平台将组织协商")


@router.post("/applications", dependencies=[roles("consumer")])
def application_new(
    who: PostedDep,
    resource_id: Annotated[str, Form(max_length=100)],
    purpose: Annotated[str, Form(max_length=2000)],
    valid_days: Annotated[int, Form(ge=1, le=1096)],
    fields: Annotated[list[str], Form()],
    modes: Annotated[list[str], Form()],
    calls_per_day: Annotated[str, Form(max_length=9)] = "",
) -> Response:
    until = datetime.now(CHINA).replace(hour=23, minute=59, second=0, microsecond=0) + timedelta(days=valid_days)
    volume = int(calls_per_day) if calls_per_day.strip().isdigit() else None
    try:
        app = access.apply(who.hub, who.caller, resource_id, fields, modes, purpose, until, volume)
    except SharehubError as exc:
        return back(f"/console/catalogue/{resource_id}", error=str(exc))
    return back("/console/applications", f"申请 #{app.id} 已提交：{STATUS_NAMES.get(app.status, app.status)}")
