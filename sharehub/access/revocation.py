"""Revoking a caller means at once: its key refused (the API and Delta Sharing, whose bearer token is the
same key), every grant it holds ended with the reason, and its extracts deleted from the object store so
that no download link it was given still serves, presigned or not."""

from __future__ import annotations

from sqlalchemy import select

from sharehub import audit
from sharehub.access import consumers
from sharehub.access.consumers import Caller
from sharehub.hub import Hub
from sharehub.metadata.models import Consumer, Grant, utcnow
from sharehub.serving import bulk

DEFAULT_REASON = "调用方已被平台撤销 / the caller was revoked"


def revoke_consumer(hub: Hub, consumer_id: int, *, actor: Caller | None = None, reason: str = "") -> Consumer:
    """Revoke a caller's key, end its grants and remove its extracts; LookupError if there is no such caller."""
    consumer = consumers.revoke(hub, consumer_id, actor=actor)
    why = reason.strip() or DEFAULT_REASON
    now = utcnow()
    with hub.db() as s:
        mine = Grant.consumer_id == consumer_id
        held = select(Grant).where(mine, Grant.revoked_at.is_(None), Grant.valid_until > now)
        live = list(s.scalars(held))
        for grant in live:
            grant.revoked_at, grant.revoked_by, grant.revoke_reason = now, actor.name if actor else "operator", why
        ended = [(g.id, g.resource_id) for g in live]
    for grant_id, resource_id in ended:
        audit.record(hub, "grant_revoke", actor, resource_id, grant_id=grant_id, result="revoked", detail=why)
    bulk.prune(hub, now)  # the ended grants' extracts leave the object store now, not at the next sweep
    return consumer
