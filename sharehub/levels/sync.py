"""Following forwarded requests and objections at the upper level to their outcome, and telling the
departments (`sharehub upstream sync`, the `sharehub.upstream_sync` DAG)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from sharehub import audit
from sharehub.access.consumers import Caller
from sharehub.errors import Forbidden
from sharehub.hub import Hub
from sharehub.levels.client import (
    Refused,
    Upstream,
)
from sharehub.metadata.models import Notice, UpstreamObjection, UpstreamRequest, utcnow
from sharehub.notices import tell

log = logging.getLogger(__name__)


def _follow(hub: Hub, up: Upstream, request: UpstreamRequest, application: dict[str, Any], now: datetime) -> None:
    """Take in where the upper-level application stands (and, once granted, its grant)."""
    request.upstream_status = str(application["status"])
    deadline = application.get("step_deadline")
    request.upstream_step_deadline = datetime.fromisoformat(deadline) if deadline else None
    request.synced_at = now
    if application["status"] == "granted":
        if request.upstream_grant_id is None:
            request.upstream_grant_id = _grant_of(up, int(application["id"]))
        if request.status in ("collected", "forwarded", "contested"):
            request.status, request.decided_at = "granted", now
    elif application["status"] in ("refused", "withdrawn") and request.status in ("collected", "forwarded"):
        request.status, request.decided_at = "refused", now
        request.reason = application.get("decision_reason") or application.get("review_reason") or "上级未予同意"
    elif request.status == "contested" and application["status"] in ("refused", "referred"):
        settled = application.get("contest") or {}
        request.status, request.decided_at = str(application["status"]), now
        request.reason = str(settled.get("outcome_reason") or "上级维持不予同意")
        if application["status"] == "referred":
            request.reason = f"已提请{settled.get('referred_to')}协调：{request.reason}"


def _marker(request_id: int) -> str:
    """What ends the purpose of the application made upstairs for a request: its number here."""
    return f"（下级平台申请 #{request_id}）"


def _find(up: Upstream, path: str, match: Callable[[dict[str, Any]], bool]) -> dict[str, Any] | None:
    """The newest entry of one of the upper level's lists (this platform office's own applications or
    grants) that matches, following its pages."""
    params: dict[str, Any] = {"limit": 200}
    for _ in range(50):
        response = up.checked(up.call("GET", path, params=params))
        found = next((entry for entry in response.json() if match(entry)), None)
        if found is not None:
            return dict(found)
        following = response.headers.get("link", "")
        if "before=" not in following:
            return None
        params["before"] = following.split("before=", 1)[1].split(">", 1)[0].split("&", 1)[0]
    return None


def _grant_of(up: Upstream, application_id: int) -> int | None:
    """The upper-level grant made for an application (newest first: a fresh one is on the first page)."""
    grant = _find(up, "/grants", lambda g: g["application_id"] == application_id)
    return None if grant is None else int(grant["id"])


@dataclass
class Synced:
    """What a sync found changed upstairs: requests decided or ended, and objections answered."""

    requests: list[UpstreamRequest]
    objections: list[UpstreamObjection]


def sync(hub: Hub, caller: Caller) -> Synced:
    """Follow every forwarded, granted or contested request, and every open objection, upstairs; what changed (each
    department told). One that the upper level refuses to show (a 4xx) stays as it was and is logged, by
    id; an upper level that does not answer stops the sync (Unreachable), to be run again."""
    if caller.role != "platform":
        raise Forbidden("only the platform office follows its applications at the upper level")
    up = Upstream(hub)
    with hub.db() as s:
        open_ids = list(
            s.scalars(
                select(UpstreamRequest.id).where(UpstreamRequest.status.in_(("forwarded", "granted", "contested")))
            )
        )
    changed = []
    for request_id in open_ids:
        with hub.db() as s:
            request = s.get(UpstreamRequest, request_id)
            if request is None or request.upstream_application_id is None:
                continue
            before = request.status
            try:
                application = up.json("GET", f"/applications/{request.upstream_application_id}")
                now = utcnow()
                _follow(hub, up, request, application, now)
                grant = up.json("GET", f"/grants/{request.upstream_grant_id}") if request.upstream_grant_id else {}
            except Refused as exc:
                log.warning("upstream request %d: the upper level refused to show it (HTTP %d)", request_id, exc.status)
                continue
            if request.status == "granted" and grant:
                # What the upper level granted is what is relayed: no more than it agreed (after a contest,
                # perhaps fewer fields or modes than were asked for).
                request.fields = [f for f in request.fields if f in grant["fields"]]
                request.modes = [m for m in request.modes if m in grant["modes"]]
                if grant.get("revoked_at") or datetime.fromisoformat(grant["valid_until"]) <= now:
                    request.status, request.decided_at = "ended", now
                    request.reason = "上级已撤销授权" if grant.get("revoked_at") else "上级授权已到期"
            if request.status != before:
                changed.append(request)
                outcome = {
                    "granted": f"{up.name}已同意，可经本平台调用（/upstream/verify、query、bulk）",
                    "refused": f"{up.name}不予同意，理由：{request.reason}",
                    "referred": f"{up.name}协商未能一致，{request.reason}",
                    "ended": f"{up.name}的授权已终止：{request.reason}",
                }[request.status]
                _tell_requester(hub, s, request, outcome)
        if request is not None and request.status != before:
            audit.record(
                hub, "upstream_sync", caller, request.resource_id, result=request.status, detail=f"#{request_id}"
            )
    return Synced(changed, _sync_objections(hub, up, caller))


def _sync_objections(hub: Hub, up: Upstream, caller: Caller) -> list[UpstreamObjection]:
    """Bring down the upper-level providers' answers to the objections raised through this platform."""
    with hub.db() as s:
        waiting = list(s.scalars(select(UpstreamObjection.id).where(UpstreamObjection.status == "open")))
    answered = []
    for objection_id in waiting:
        with hub.db() as s:
            objection = s.get(UpstreamObjection, objection_id)
            if objection is None:
                continue
            try:
                there = up.json("GET", f"/objections/{objection.upstream_objection_id}")
            except Refused as exc:
                log.warning(
                    "upstream objection %d: the upper level refused to show it (HTTP %d)", objection_id, exc.status
                )
                continue
            objection.synced_at = utcnow()
            if there["status"] == "open":
                continue
            objection.status, objection.answer = str(there["status"]), there.get("answer")
            answered_at = there.get("answered_at")
            objection.answered_at = datetime.fromisoformat(answered_at) if answered_at else objection.synced_at
            answered.append(objection)
            dept = hub.catalogue.departments[objection.department]
            outcome = "已更正" if objection.status == "corrected" else "经核实无误"
            tell(
                s,
                kind="upstream_objection",
                department=objection.department,
                resource_id=objection.resource_id,
                subject=f"[sharehub] 上级数据疑义 #{objection.id}（{objection.resource_id}）：{outcome}",
                body=(
                    f"{dept.name}：\n\n您经本平台向{up.name}提出的数据疑义 #{objection.id}"
                    f"（{objection.resource_id}，字段 {', '.join(objection.fields)}）已答复：{outcome}。"
                    f"\n说明：{objection.answer or '-'}"
                ),
                recipient=dept.contact_email,
            )
        audit.record(
            hub,
            "upstream_sync",
            caller,
            objection.resource_id,
            record_key=objection.record_key,
            result=objection.status,
            detail=f"objection #{objection_id}",
        )
    return answered


def _tell_requester(hub: Hub, s: Session, request: UpstreamRequest, outcome: str) -> Notice:
    dept = hub.catalogue.departments[request.department]
    return tell(
        s,
        kind="upstream_request",
        department=request.department,
        resource_id=request.resource_id,
        subject=f"[sharehub] 跨层级共享申请 #{request.id}（{request.resource_id}）：{outcome[:40]}",
        body=f"{dept.name}：\n\n您对上级资源 {request.resource_id} 的申请 #{request.id}：{outcome}。",
        recipient=dept.contact_email,
    )
