"""A department objects to an upper-level record it uses; the platform office raises it upstairs."""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import select

from sharehub import audit
from sharehub.access.consumers import Caller
from sharehub.errors import Forbidden
from sharehub.errors import Refused as GrantError
from sharehub.hub import Hub
from sharehub.levels.client import (
    Upstream,
)
from sharehub.levels.relay import record_key
from sharehub.levels.requests import (
    _requests_of,
)
from sharehub.metadata.models import UpstreamObjection, utcnow
from sharehub.paging import Page, newest_first

log = logging.getLogger(__name__)


def object_upstairs(
    hub: Hub, caller: Caller, resource_id: str, key: dict[str, str], fields: list[str], reason: str
) -> UpstreamObjection:
    """An objection (疑义) on an upper-level record the consumer uses under a granted request, raised
    upstairs by this platform office, naming the department; the upper level's provider answers it there
    within its own deadline, and sync brings the answer down to the department."""
    if caller.role != "consumer":
        raise Forbidden("objections are raised by the consumer that uses the data")
    _, live = _requests_of(hub, caller, resource_id)
    if not live:
        raise Forbidden(f"no upstream grant for {resource_id}: only data you use can be objected to")
    granted = {f for r in live for f in r.fields}
    outside = sorted(set(fields) - granted)
    if not fields or outside:
        raise GrantError(
            f"{resource_id}: name the granted fields you dispute" + (f"; not granted: {outside}" if outside else "")
        )
    if len(reason.strip()) < 4:
        raise GrantError("say what is wrong with the record")
    up = Upstream(hub)
    dept = hub.catalogue.departments[caller.department]
    body = {
        "resource_id": resource_id,
        "key": key,
        "fields": sorted(set(fields)),
        "reason": f"{dept.name}（{caller.name}）经本级平台提出：{reason.strip()}",
    }
    there = up.json("POST", "/objections", json=body)
    with hub.db() as s:
        objection = UpstreamObjection(
            request_id=live[-1].id,
            consumer_id=caller.id,
            department=caller.department,
            resource_id=resource_id,
            record_key=record_key(hub, resource_id, there.get("key") or key),
            fields=sorted(set(fields)),
            reason=reason.strip(),
            upstream_objection_id=int(there["id"]),
            status=str(there["status"]),
            deadline=datetime.fromisoformat(there["deadline"]),
            created_at=utcnow(),
        )
        s.add(objection)
    audit.record(
        hub,
        "upstream_objection",
        caller,
        resource_id,
        record_key=objection.record_key,
        result="open",
        detail=f"#{objection.id} as upstream objection {objection.upstream_objection_id}",
    )
    return objection


def list_objections(
    hub: Hub, caller: Caller, limit: int | None = None, before: int | None = None, *, only: int | None = None
) -> Page[UpstreamObjection]:
    """Objections raised upstairs, newest first: a consumer's own, or every one for the platform office."""
    if caller.role == "provider":
        raise Forbidden("objections on upper-level data are the platform office's and the requesting consumers'")
    q = select(UpstreamObjection)
    if caller.role == "consumer":
        q = q.where(UpstreamObjection.consumer_id == caller.id)
    with hub.db() as s:
        return newest_first(s, q, UpstreamObjection.id, limit, before, only)
