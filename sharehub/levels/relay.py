"""Serving calls relayed upstairs under a granted request: the request checked here, the call made with
the platform office's key naming the upper-level grant, and the answer cut back to the request's fields."""

from __future__ import annotations

import logging
from typing import Any

from sharehub.access.consumers import Caller
from sharehub.errors import Forbidden
from sharehub.hub import Hub
from sharehub.levels.client import (
    Reach,
    Refused,
    Upstream,
    _resource,
)
from sharehub.levels.requests import (
    _requests_of,
)

log = logging.getLogger(__name__)


def reach(hub: Hub, caller: Caller, resource_id: str, mode: str) -> Reach:
    """What this consumer's granted requests let it do with an upper-level resource in this mode, or
    Forbidden saying why not: the grant check of every relayed call."""
    if caller.role != "consumer":
        raise Forbidden("serving calls are made by consumers under a grant")
    rows, live = _requests_of(hub, caller, resource_id)
    usable = [(r, grant) for r in live if mode in r.modes and (grant := r.upstream_grant_id) is not None]
    if not usable:
        if any(mode in r.modes and r.status == "granted" for r in rows):
            raise Forbidden(f"your upstream grant for {resource_id} ({mode}) has expired")
        if any(mode in r.modes and r.status == "ended" for r in rows):
            raise Forbidden(f"your upstream grant for {resource_id} ({mode}) was ended at the upper level")
        raise Forbidden(f"no upstream grant for {resource_id} in mode {mode} (POST /upstream/requests)")
    chosen, grant_id = usable[-1]
    return Reach(
        chosen.id,
        grant_id,
        frozenset(chosen.fields),
        frozenset(m for r in live for m in r.modes),
        chosen.purpose,
    )


def relay_verify(hub: Hub, reach: Reach, resource_id: str, body: dict[str, Any]) -> dict[str, Any]:
    """A verification passed up; the answer as this consumer may see it (`found` only with query)."""
    outside = sorted(set(body.get("claims", {})) - reach.fields)
    if outside:
        raise Forbidden(f"{resource_id}: field {outside[0]} is not in your upstream grant")
    answer: dict[str, Any] = Upstream(hub).json("POST", f"/verify/{resource_id}", json=body, grant=reach.grant_id)
    if "query" not in reach.modes:
        answer.pop("found", None)
    return answer


def relay_query(hub: Hub, reach: Reach, resource_id: str, params: list[tuple[str, str]]) -> dict[str, Any]:
    """A query passed up; only the fields this consumer's requests cover come back."""
    answer: dict[str, Any] = Upstream(hub).json("GET", f"/query/{resource_id}", params=params, grant=reach.grant_id)
    answer["record"] = {k: v for k, v in answer.get("record", {}).items() if k in reach.fields}
    answer["under_objection"] = [f for f in answer.get("under_objection", []) if f in reach.fields]
    return answer


def relay_bulk(hub: Hub, reach: Reach, resource_id: str, incremental: bool) -> dict[str, Any]:
    """A bulk extract made upstairs under the request's own grant (its columns only, masked; incremental
    from that grant's last extract); its short-lived download link is the upper level's, issued to this
    consumer through this platform."""
    up = Upstream(hub)
    answer: dict[str, Any] = up.json(
        "POST", f"/bulk/{resource_id}", json={"incremental": incremental}, grant=reach.grant_id
    )
    if not set(answer.get("columns", [])) <= reach.fields:  # the grant upstairs is this request's: never wider
        raise Refused(502, f"{up.name}: the extract holds columns outside upstream request #{reach.request_id}")
    return answer


def record_key(hub: Hub, resource_id: str, key: dict[str, Any]) -> str:
    """The key asked for, as the audit chain records it: the resource's key fields joined by `|`."""
    names = _resource(hub, resource_id)["key"]
    return "|".join(str(key.get(n, "")) for n in names)
