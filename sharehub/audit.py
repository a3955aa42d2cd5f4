"""The audit chain: every serving call, application step, grant change and key change, append-only.

Each entry stores the sha256 of the previous entry and its own hash over its canonical JSON, so
an edited, deleted or reordered entry breaks the chain. `audit_head` holds the last id and hash in a
row every append locks (SELECT … FOR UPDATE on PostgreSQL; a process lock as well, for SQLite), so
appends are strictly ordered and truncating the tail is detected too. Entries carry the caller, the
resource, the grant, the purpose, the result and the response size; the only personal datum allowed
is `record_key`, the key that was asked for.
"""

from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select

from sharehub.consumers import Caller
from sharehub.hub import Hub
from sharehub.metadata.models import AuditEntry, AuditHead, utcnow

GENESIS = "0" * 64
_lock = threading.Lock()


def _ts(value: datetime) -> str:
    aware = value if value.tzinfo else value.replace(tzinfo=UTC)
    return aware.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")


def entry_hash(e: AuditEntry) -> str:
    """sha256 over the previous hash and the entry's canonical JSON (its id included, so order counts)."""
    body = {
        "id": e.id,
        "at": _ts(e.at),
        "action": e.action,
        "consumer_id": e.consumer_id,
        "department": e.department,
        "resource_id": e.resource_id,
        "grant_id": e.grant_id,
        "purpose": e.purpose,
        "record_key": e.record_key,
        "result": e.result,
        "response_bytes": e.response_bytes,
        "detail": e.detail,
    }
    canonical = json.dumps(body, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256((e.prev_hash + canonical).encode()).hexdigest()


def record(
    hub: Hub,
    action: str,
    caller: Caller | None,
    resource_id: str | None,
    *,
    result: str,
    grant_id: int | None = None,
    purpose: str | None = None,
    record_key: str | None = None,
    response_bytes: int = 0,
    detail: str | None = None,
) -> int:
    """Append one entry in its own transaction, after the action it records committed; return its id."""
    with _lock, hub.db() as s:
        head = s.execute(select(AuditHead).where(AuditHead.id == 1).with_for_update()).scalar_one_or_none()
        if head is None:
            head = AuditHead(id=1, last_id=0, last_hash=GENESIS)
            s.add(head)
        entry = AuditEntry(
            at=utcnow(),
            action=action,
            consumer_id=caller.id if caller else None,
            department=caller.department if caller else None,
            resource_id=resource_id,
            grant_id=grant_id,
            purpose=purpose,
            record_key=record_key,
            result=result,
            response_bytes=response_bytes,
            detail=detail,
            prev_hash=head.last_hash,
            hash="",
        )
        s.add(entry)
        s.flush()
        entry.hash = entry_hash(entry)
        head.last_id, head.last_hash = entry.id, entry.hash
        return entry.id


@dataclass(frozen=True)
class ChainCheck:
    """The outcome of verifying the chain."""

    entries: int
    first_bad: int | None = None
    reason: str = ""

    @property
    def ok(self) -> bool:
        """True when every entry and the head agree."""
        return self.first_bad is None


def verify(hub: Hub, batch: int = 10_000) -> ChainCheck:
    """Walk the chain in id order; name the first entry that was edited, removed or moved."""
    prev, count, last_id = GENESIS, 0, 0
    with hub.db() as s:
        head = s.get(AuditHead, 1)
        while True:
            rows = list(
                s.scalars(select(AuditEntry).where(AuditEntry.id > last_id).order_by(AuditEntry.id).limit(batch))
            )
            for e in rows:
                if e.prev_hash != prev:
                    return ChainCheck(count, e.id, "its previous-hash does not match the entry before it")
                if entry_hash(e) != e.hash:
                    return ChainCheck(count, e.id, "its content does not match its hash (edited)")
                prev, last_id, count = e.hash, e.id, count + 1
            if len(rows) < batch:
                break
        if head is not None and (head.last_id, head.last_hash) != (last_id, prev):
            return ChainCheck(count, head.last_id, "the chain ends before the recorded head (entries removed)")
        if head is None and count:
            return ChainCheck(count, last_id, "the chain head is missing")
    return ChainCheck(count)
