"""Requests for data opened on application (依申请开放; Fushun 20–22; Hengyang 22).

A resource the catalogue marks `open: on_application` is opened to a member of the public, a company
or a research body that asks for it through the city's open-data portal, if its department agrees.
The portal is the platform office's own system, so it files requests with a platform key (or the
office with `sharehub open request`). Each request names the applicant as the portal knows them, the
purpose and the fields, which must be the resource's L1 (public) fields: personal and restricted data
never leave this way, whoever asks.

The providing department answers within the profile's `open_application` working days (a notice
with the deadline; past it, the notice runs overdue and the platform office is told, like any notice).
It approves, and sharehub writes the request's own dataset, `open/requests/<id>/<attempt>/data.parquet`
with a sealed `manifest.json` (the store version, rows, sha256, fields, the request and its purpose), for the
portal to hand over; or it refuses, with reasons. Either way the platform office is told, to answer the
applicant through the portal. The portal may withdraw a request still pending, for its applicant.
Every step is audited; the applicant's name and the purpose stay in the request and its notices (the
purpose also in the sealed manifest), never in the audit chain or the logs.
"""

from __future__ import annotations

import logging
import secrets
from datetime import datetime
from typing import Literal, get_args

from sqlalchemy.orm import Session

from sharehub import audit
from sharehub.access.consumers import PLATFORM, Caller
from sharehub.access.workflow import Workflow
from sharehub.errors import Forbidden, NotFound, WrongState
from sharehub.errors import Refused as GrantError
from sharehub.hub import Hub
from sharehub.metadata.models import OpenRequest, utcnow
from sharehub.notices import ask, resolve_id, tell
from sharehub.opendata import PREFIX, open_fields, write_dataset
from sharehub.paging import Page
from sharehub.workdays import due_text
from warehouse.delta import open_table

log = logging.getLogger(__name__)
OpenRequestState = Literal["pending", "approved", "refused", "withdrawn"]
OPEN_REQUEST_STATES: tuple[str, ...] = get_args(OpenRequestState)
OPEN_REQUESTS = Workflow("open request", OpenRequest, OPEN_REQUEST_STATES, provider=OpenRequest.provider)
RULE = "open_application"


def file_request(
    hub: Hub,
    caller: Caller,
    resource_id: str,
    applicant: str,
    fields: list[str],
    purpose: str,
    portal_ref: str | None = None,
    accepts_conditions: bool = False,
) -> OpenRequest:
    """File a request from the portal; the providing department gets a notice with its deadline."""
    if caller.role != "platform":
        raise Forbidden("only the platform office, for its open-data portal, files open-data requests")
    res = hub.catalogue.resources.get(resource_id)
    if res is None:
        raise GrantError(f"no resource {resource_id!r} in the catalogue")
    if res.open == "conditional" and not accepts_conditions:
        raise GrantError(f"{res.id} is opened on conditions (有条件开放) the requester accepts: {res.open_conditions}")
    if res.open not in ("on_application", "conditional"):
        raise GrantError(
            f"{res.id} is open unconditionally: its dataset is published as is (sharehub open catalogue)"
            if res.open == "unconditional"
            else f"{res.id} is not open to the public (open: {res.open} in the catalogue)"
        )
    opened = open_fields(res)
    for name in fields:
        if name not in {f.name for f in res.fields}:
            raise GrantError(f"{res.id}: {name} is not a field of this resource")
        if name not in opened:
            level = res.field(name).classification
            raise GrantError(f"{res.id}: {name} is {level}, not public (L1): only L1 fields are opened")
    if not fields:
        raise GrantError(f"{res.id}: name the fields requested (open fields: {', '.join(opened)})")
    if not applicant.strip():
        raise GrantError("name the applicant, as the portal knows them")
    if len(purpose.strip()) < 4:
        raise GrantError("state the purpose of the request")
    now = utcnow()
    rule = hub.profile.deadlines[RULE]
    deadline = hub.calendar.deadline(now, rule.working_days)
    dept = hub.catalogue.departments[res.provider]
    chosen = [f.name for f in res.fields if f.name in set(fields)]  # catalogue order, once each
    with hub.db() as s:
        request = OpenRequest(
            resource_id=res.id,
            provider=res.provider,
            applicant=applicant.strip(),
            purpose=purpose.strip(),
            fields=chosen,
            portal_ref=portal_ref.strip() if portal_ref else None,
            status="pending",
            deadline=deadline,
            created_at=now,
            filed_by=caller.name,
        )
        s.add(request)
        s.flush()
        due = due_text(deadline)
        kind_name = "有条件开放" if res.open == "conditional" else "依申请开放"
        notice = ask(
            s,
            kind="open_request",
            department=res.provider,
            resource_id=res.id,
            deadline=deadline,
            subject=f"[sharehub] {kind_name} #{request.id}：{res.id}，请于 {due} 前答复",
            body=(
                f"{dept.name}：\n\n{request.applicant} 通过开放平台申请开放 {res.id} 的字段 "
                f"{', '.join(chosen)}，用途：{request.purpose}。\n"
                + (f"申请人已承诺遵守开放条件：{res.open_conditions}\n" if res.open == "conditional" else "")
                + f"请在 {due}（北京时间）前，即 {rule.working_days} 个工作日内答复（依据：{rule.basis}）；"
                "不同意的须说明理由。\n"
                f"  POST /open/requests/{request.id}/decision\n"
                f"  sharehub open decide {request.id} --department {res.provider} --approve|--refuse"
                " --by 经办人 --reason 说明"
            ),
            keys=[OPEN_REQUESTS.asked(request.id)],
            recipient=dept.contact_email,
        )
        request.notice_id = notice.id
    # The purpose stays out of the audit chain too: the public writes it, and may write a person's name in it.
    audit.record(hub, "open_request", caller, res.id, result="pending", detail=f"#{request.id}")
    log.info("open-data request %d on %s filed, due %s", request.id, res.id, deadline.isoformat())
    return request


def decide_request(hub: Hub, caller: Caller, request_id: int, approve: bool, reason: str) -> OpenRequest:
    """The providing department's answer. Approved: the request's dataset is written and sealed first,
    then the request records it (a failure on the way removes the files and leaves the request
    pending). Refused: the reasons are kept. The platform office is told, for the portal."""
    if caller.role != "provider":  # before the lookup: a refusal must not tell which ids exist
        raise Forbidden("only the providing department answers open-data requests")
    with hub.db() as s:
        request = s.get(OpenRequest, request_id)
        if request is None or request.provider != caller.department:
            raise NotFound(f"no open-data request {request_id} on your resources")
        if request.status != "pending":
            raise WrongState(f"open-data request {request_id} is already {request.status}")
        resource_id, fields, purpose = request.resource_id, list(request.fields), request.purpose
    if not approve and len(reason.strip()) < 4:
        raise GrantError("a refusal states its reasons")
    # Each approval writes its own folder: two answered at once cannot clear each other's files.
    folder = f"{PREFIX}/requests/{request_id}/{secrets.token_hex(4)}"
    manifest = None
    if approve:
        res = hub.catalogue.resource(resource_id)
        store = open_table(hub.store.uri(res.store_path), hub.store.delta_options())
        if store is None:
            raise WrongState(f"{resource_id} has no store yet: nothing to open until its first delivery")
        extra = {"open_request": request_id, "purpose": purpose, "open": res.open}
        if res.open_conditions:
            extra["conditions"] = res.open_conditions
        try:
            manifest = write_dataset(hub, res, store, fields, f"{folder}/data.parquet", extra)
        except BaseException:
            hub.store.delete_dir(folder)
            raise
    now = utcnow()
    try:
        with hub.db() as s:
            request = s.get(OpenRequest, request_id)
            if request is None or request.status != "pending":  # answered meanwhile by another call
                raise WrongState(f"open-data request {request_id} is already answered")
            request.status = "approved" if manifest else "refused"
            request.decided_by, request.decided_at = caller.name, now
            request.reason = reason.strip() or ("同意" if manifest else None)
            if manifest is not None:
                request.dataset, request.store_version = f"{folder}/data.parquet", int(manifest["store_version"])
                request.rows, request.sha256 = int(manifest["rows"]), str(manifest["sha256"])
            resolve_id(s, request.notice_id, now)
            _tell_platform(hub, s, request)
    except BaseException:
        if manifest is not None:
            hub.store.delete_dir(folder)
        raise
    audit.record(
        hub,
        "open_decision",
        caller,
        resource_id,
        result=request.status,
        response_bytes=int(manifest["bytes"]) if manifest else 0,
        detail=f"#{request_id}" + (f"; {request.rows} rows; store v{request.store_version}" if manifest else ""),
    )
    return request


def withdraw_request(hub: Hub, caller: Caller, request_id: int, reason: str) -> OpenRequest:
    """The applicant takes the request back through the portal before it is answered: the department's
    notice is resolved, and its clock stops."""
    if caller.role != "platform":
        raise Forbidden("only the platform office, for its open-data portal, withdraws open-data requests")
    if len(reason.strip()) < 4:
        raise GrantError("a withdrawal states its reason")
    now = utcnow()
    with hub.db() as s:
        request = s.get(OpenRequest, request_id)
        if request is None:
            raise NotFound(f"no open-data request {request_id}")
        if request.status != "pending":
            raise WrongState(f"open-data request {request_id} is already {request.status}")
        request.status, request.decided_by, request.decided_at = "withdrawn", caller.name, now
        request.reason = f"申请人撤回：{reason.strip()}"
        resolve_id(s, request.notice_id, now)
    audit.record(hub, "open_withdraw", caller, request.resource_id, result="withdrawn", detail=f"#{request_id}")
    return request


def _tell_platform(hub: Hub, s: Session, request: OpenRequest) -> None:
    """The platform office learns the answer, to give it to the applicant through the portal."""
    outcome = (
        f"同意，数据集 {request.dataset}（{request.rows:,} 行，store v{request.store_version}）"
        if request.status == "approved"
        else f"不同意，理由：{request.reason}"
    )
    tell(
        s,
        kind="open_request",
        department=PLATFORM,
        resource_id=request.resource_id,
        subject=f"[sharehub] 依申请开放 #{request.id}（{request.resource_id}）：{outcome[:40]}",
        body=(
            f"平台管理部门：\n\n{request.provider} 对依申请开放请求 #{request.id}"
            + (f"（开放平台编号 {request.portal_ref}）" if request.portal_ref else "")
            + f"的答复：{outcome}。请经开放平台告知申请人。"
        ),
        recipient=hub.settings.platform_email,
    )


def late(request: OpenRequest, now: datetime | None = None) -> bool:
    """Whether the answer came, or is still awaited, after the deadline (a withdrawn request owes none)."""
    return request.status != "withdrawn" and (request.decided_at or now or utcnow()) > request.deadline


def list_requests(
    hub: Hub,
    caller: Caller,
    limit: int | None = None,
    before: int | None = None,
    *,
    status: str | None = None,
    resource_id: str | None = None,
    only: int | None = None,
) -> Page[OpenRequest]:
    """Requests newest first: every one for the platform office, a department's on its own resources;
    a consumer sees none (the portal's applicants are not departments)."""
    chosen = [] if resource_id is None else [OpenRequest.resource_id == resource_id]
    return OPEN_REQUESTS.listed(hub, caller, limit, before, only=only, status=status, where=chosen)
