"""A department's request for upper-level data: filed here, forwarded or declined by the platform office,
withdrawn or contested by the requester, and listed."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Literal, get_args

from sqlalchemy import select
from sqlalchemy.orm import Session

from sharehub import audit
from sharehub.access.consumers import PLATFORM, Caller
from sharehub.access.workflow import Workflow
from sharehub.errors import Forbidden, NotFound, WrongState
from sharehub.errors import Refused as GrantError
from sharehub.hub import Hub
from sharehub.levels.client import (
    RELAYED_MODES,
    Refused,
    Upstream,
    _resource,
)
from sharehub.levels.sync import _find, _follow, _grant_of, _marker, _tell_requester
from sharehub.metadata.models import Consumer, UpstreamRequest, as_utc, utcnow
from sharehub.notices import ask, resolve_id, tell
from sharehub.paging import Page
from sharehub.workdays import due_text

log = logging.getLogger(__name__)


UpstreamState = Literal[
    "collected", "declined", "forwarded", "granted", "refused", "contested", "referred", "withdrawn", "ended"
]


UPSTREAM_STATES: tuple[str, ...] = get_args(UpstreamState)


RULE = "application_review"
UPSTREAM_REQUESTS = Workflow("upstream request", UpstreamRequest, UPSTREAM_STATES, consumer=UpstreamRequest.consumer_id)


def file_request(
    hub: Hub,
    caller: Caller,
    resource_id: str,
    fields: list[str],
    modes: list[str],
    purpose: str,
    valid_until: datetime,
) -> UpstreamRequest:
    """A consumer's request for an upper-level resource, checked against that catalogue; the platform
    office here is asked to forward or decline it."""
    if caller.role != "consumer":
        raise Forbidden("requests for upper-level data are made by consumers; this platform office forwards them")
    res = _resource(hub, resource_id)
    if res["share_type"] == "not_shared":
        raise GrantError(f"{resource_id} is not shared at {Upstream(hub).name} (legal basis: {res['legal_basis']})")
    names = [f["name"] for f in res["fields"]]
    for name in fields:
        if name not in names:
            raise GrantError(f"{resource_id}: {name} is not a field of this upper-level resource")
    if not fields:
        raise GrantError(f"{resource_id}: name the fields requested")
    for mode in modes:
        if mode not in res["serving_modes"]:
            raise GrantError(f"{resource_id} is not served by {mode} at the upper level")
        if mode not in RELAYED_MODES:
            raise GrantError(f"{resource_id}: {mode} is not a serving mode (verification, query, bulk)")
    if not modes:
        raise GrantError(f"{resource_id}: name the serving modes (verification, query, bulk)")
    if len(purpose.strip()) < 4:
        raise GrantError("state the purpose of the request")
    now = utcnow()
    if as_utc(valid_until) <= now:
        raise GrantError("valid_until must be in the future")
    rule = hub.profile.deadlines[RULE]
    deadline = hub.calendar.deadline(now, rule.working_days)
    chosen = [n for n in names if n in set(fields)]
    with hub.db() as s:
        request = UpstreamRequest(
            consumer_id=caller.id,
            department=caller.department,
            resource_id=resource_id,
            provider=str(res["provider"]),
            fields=chosen,
            modes=[m for m in RELAYED_MODES if m in set(modes)],
            purpose=purpose.strip(),
            valid_until=as_utc(valid_until),
            status="collected",
            created_at=now,
            deadline=deadline,
        )
        s.add(request)
        s.flush()
        due = due_text(deadline)
        dept = hub.catalogue.departments[caller.department]
        notice = ask(
            s,
            kind="upstream_request",
            department=PLATFORM,
            resource_id=resource_id,
            deadline=deadline,
            subject=f"[sharehub] 跨层级共享申请 #{request.id}：{dept.name} 申请上级资源 {resource_id}，{due} 前处理",
            body=(
                f"平台管理部门：\n\n{dept.name}（{caller.name}）申请使用{Upstream(hub).name}的资源 {resource_id}"
                f"（提供部门 {request.provider}），字段 {', '.join(chosen)}，方式 {', '.join(request.modes)}，"
                f"用途：{request.purpose}，使用至 {due_text(request.valid_until)}。\n"
                f"请在 {due}（北京时间）前，即 {rule.working_days} 个工作日内，统一报上级平台申请或说明理由不予报送"
                f"（依据：{hub.profile.cite('cross_level')}）。\n"
                f"  POST /upstream/requests/{request.id}/forward | /decline\n"
                f"  sharehub upstream forward {request.id}  |  sharehub upstream decline {request.id} --reason 说明"
            ),
            keys=[UPSTREAM_REQUESTS.asked(request.id)],
            recipient=hub.settings.platform_email,
        )
        request.notice_id = notice.id
    audit.record(hub, "upstream_request", caller, resource_id, result="collected", detail=f"#{request.id}")
    log.info("upstream request %d on %s collected, due %s", request.id, resource_id, deadline.isoformat())
    return request


def _mine(s: Session, caller: Caller, request_id: int) -> UpstreamRequest:
    request = s.get(UpstreamRequest, request_id)
    if request is None or (caller.role == "consumer" and request.consumer_id != caller.id):
        raise NotFound(f"no upstream request {request_id}" + (" of yours" if caller.role == "consumer" else ""))
    if caller.role == "provider":
        raise NotFound(f"no upstream request {request_id}: they are the platform office's and the requester's")
    return request


def _settle(s: Session, request: UpstreamRequest, now: datetime) -> None:
    """Resolve the platform office's notice: the request is forwarded, declined or withdrawn."""
    resolve_id(s, request.notice_id, now)


def forward(hub: Hub, caller: Caller, request_id: int) -> UpstreamRequest:
    """The platform office applies upward for the request, as its own application; the requester is told
    where it went. A refusal by the upper level to take the application leaves the request collected."""
    if caller.role != "platform":
        raise Forbidden("only the platform office forwards requests to the upper level")
    with hub.db() as s:
        request = _mine(s, caller, request_id)
        if request.status != "collected":
            raise WrongState(f"upstream request {request_id} is already {request.status}")
        consumer = s.get(Consumer, request.consumer_id)
        dept = hub.catalogue.departments[request.department]
        body = {
            "resource_id": request.resource_id,
            "fields": list(request.fields),
            "modes": list(request.modes),
            "purpose": f"{dept.name}（{consumer.name if consumer else request.department}）：{request.purpose}"
            + _marker(request_id),
            "valid_until": as_utc(request.valid_until).isoformat(),
        }
    up = Upstream(hub)
    # A forward that reached the upper level but was not recorded here (this database failed in between)
    # is found again by its marker, not made twice.
    made = _find(up, "/applications", lambda a: str(a["purpose"]).endswith(_marker(request_id)))
    if made is None:
        made = up.json("POST", "/applications", json=body)
    now = utcnow()
    with hub.db() as s:
        request = _mine(s, caller, request_id)
        request.forwarded_by, request.forwarded_at = caller.name, now
        request.upstream_application_id = int(made["id"])
        _follow(hub, up, request, made, now)
        if request.status == "collected":  # the upper level is still deciding
            request.status = "forwarded"
        _settle(s, request, now)
        sent = f"已报送{up.name}（上级申请 #{request.upstream_application_id}，{request.upstream_status}）"
        _tell_requester(hub, s, request, sent)
    audit.record(
        hub,
        "upstream_forward",
        caller,
        request.resource_id,
        result=request.status,
        detail=f"#{request_id} as upstream application {request.upstream_application_id}",
    )
    return request


def decline(hub: Hub, caller: Caller, request_id: int, reason: str) -> UpstreamRequest:
    """The platform office does not forward the request, and says why; the requester is told."""
    if caller.role != "platform":
        raise Forbidden("only the platform office declines requests to the upper level")
    if len(reason.strip()) < 4:
        raise GrantError("a decision not to forward states its reasons")
    now = utcnow()
    with hub.db() as s:
        request = _mine(s, caller, request_id)
        if request.status != "collected":
            raise WrongState(f"upstream request {request_id} is already {request.status}")
        request.status, request.decided_at, request.reason = "declined", now, reason.strip()
        _settle(s, request, now)
        _tell_requester(hub, s, request, f"平台管理部门不予报送上级，理由：{request.reason}")
    audit.record(hub, "upstream_decline", caller, request.resource_id, result="declined", detail=f"#{request_id}")
    return request


def withdraw(hub: Hub, caller: Caller, request_id: int, reason: str) -> UpstreamRequest:
    """The requester takes its request back: at the upper level too, the application (or its contest) is
    withdrawn, or the grant given up (its purpose served)."""
    if caller.role != "consumer":
        raise Forbidden("only the consumer that made a request withdraws it")
    if len(reason.strip()) < 4:
        raise GrantError("a withdrawal states its reason")
    with hub.db() as s:
        request = _mine(s, caller, request_id)
        if request.status not in ("collected", "forwarded", "granted", "contested"):
            raise WrongState(f"upstream request {request_id} is already {request.status}")
        application_id = request.upstream_application_id
    if application_id is not None:  # where it stands upstairs now, whatever the last sync saw
        up = Upstream(hub)
        said = {"reason": f"下级部门撤回：{reason.strip()}"}
        application = up.json("GET", f"/applications/{application_id}")
        if application["status"] in ("review", "provider", "contested"):  # a contest: the refusal then stands
            up.json("POST", f"/applications/{application_id}/withdraw", json=said)
        elif application["status"] == "granted":
            grant_id = _grant_of(up, application_id)
            if grant_id is not None:
                try:
                    up.json("POST", f"/grants/{grant_id}/revoke", json=said)
                except Refused as exc:
                    if exc.status != 409:  # 409: revoked already, which is what the requester wants
                        raise
    now = utcnow()
    with hub.db() as s:
        request = _mine(s, caller, request_id)
        request.status, request.decided_at, request.reason = "withdrawn", now, f"撤回：{reason.strip()}"
        _settle(s, request, now)
    audit.record(hub, "upstream_withdraw", caller, request.resource_id, result="withdrawn", detail=f"#{request_id}")
    return request


def contest(hub: Hub, caller: Caller, request_id: int, reason: str) -> UpstreamRequest:
    """The requester disagrees with the upper level's refusal: the platform office's application upstairs
    is contested there, naming the department and its reasons, and the office is told. A contest that
    reached the upper level but was not recorded here is found there again (409), not made twice."""
    if caller.role != "consumer":
        raise Forbidden("only the consumer that made a request contests its refusal")
    if len(reason.strip()) < 4:
        raise GrantError("a contest states why the refusal is wrong")
    with hub.db() as s:
        request = _mine(s, caller, request_id)
        if request.status != "refused" or request.upstream_application_id is None:
            raise WrongState(
                f"upstream request {request_id} is {request.status}: only a refusal by the upper level is contested"
            )
        application_id = request.upstream_application_id
        said = {"reason": f"{hub.catalogue.departments[request.department].name}：{reason.strip()}"}
    up = Upstream(hub)
    try:
        application = up.json("POST", f"/applications/{application_id}/contest", json=said)
    except Refused as exc:
        application = up.json("GET", f"/applications/{application_id}") if exc.status == 409 else {}
        if not application.get("contest"):
            raise
    now = utcnow()
    with hub.db() as s:
        request = _mine(s, caller, request_id)
        request.status, request.upstream_status, request.synced_at = "contested", str(application["status"]), now
        tell(
            s,
            kind="upstream_request",
            department=PLATFORM,
            resource_id=request.resource_id,
            subject=(
                f"[sharehub] 跨层级共享申请 #{request.id}（{request.resource_id}）："
                f"{request.department} 对上级不予同意提出异议"
            ),
            body=(
                f"平台管理部门：\n\n{request.department} 对{up.name}就上级申请 #{application_id} 的不予同意有异议，"
                f"已以本平台名义向{up.name}提出，理由：{reason.strip()}。协商结果由同步带回。"
            ),
            recipient=hub.settings.platform_email,
        )
    audit.record(hub, "upstream_contest", caller, request.resource_id, result="contested", detail=f"#{request_id}")
    return request


def list_requests(
    hub: Hub,
    caller: Caller,
    limit: int | None = None,
    before: int | None = None,
    *,
    status: str | None = None,
    only: int | None = None,
) -> Page[UpstreamRequest]:
    """Newest first: a consumer's own, or every one for the platform office (departments as providers
    have none: these are requests for the upper level's data)."""
    return UPSTREAM_REQUESTS.listed(hub, caller, limit, before, only=only, status=status)


def _requests_of(hub: Hub, caller: Caller, resource_id: str) -> tuple[list[UpstreamRequest], list[UpstreamRequest]]:
    """A consumer's requests for an upper-level resource, and those of them granted and still valid."""
    Upstream(hub)  # NotConfigured when there is no upper level
    now = utcnow()
    with hub.db() as s:
        mine = select(UpstreamRequest).where(
            UpstreamRequest.consumer_id == caller.id, UpstreamRequest.resource_id == resource_id
        )
        rows = list(s.scalars(mine.order_by(UpstreamRequest.id)))
    return rows, [r for r in rows if r.status == "granted" and as_utc(r.valid_until) > now]
