"""The upper level pushing shared data down (Zhejiang 14): this platform office holds a standing bulk grant
upstairs for a resource, and a catalogue entry here whose source is `upstream: <resource id>` lands it
through this hub's own gate on its schedule (`connectors.hub`). `subscribe` applies for that grant."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sharehub import audit
from sharehub.access.callers import Caller
from sharehub.errors import Refused
from sharehub.hub import Hub
from sharehub.levels.client import Upstream


def subscribe(
    hub: Hub, caller: Caller, resource_id: str, fields: list[str], purpose: str, valid_until: datetime
) -> dict[str, Any]:
    """Apply upstairs, as this platform, for a bulk grant on `resource_id`'s fields: the standing grant the
    push-down runs under. The upper level's answer (its application, granted at once for unconditional
    data, else waiting for its review and its provider); audited here."""
    landing = [r.id for r in hub.catalogue.resources.values() if r.source.upstream == resource_id]
    if not landing:
        raise Refused(f"no resource in this catalogue lands {resource_id} (source: {{upstream: {resource_id}}})")
    body = {
        "resource_id": resource_id,
        "fields": fields,
        "modes": ["bulk"],
        "purpose": purpose,
        "valid_until": valid_until.isoformat(),
    }
    up = Upstream(hub)
    made = up.json("POST", "/applications", json=body)
    audit.record(
        hub, "upstream_subscribe", caller, landing[0], result=str(made.get("status")), detail=f"{up.name} {resource_id}"
    )
    return dict(made)
