"""The audit chain: every serving call, application step, grant change and key change, append-only.

Each entry stores the sha256 of the previous entry and its own hash over its canonical JSON, so
an edited, deleted or reordered entry breaks the chain. `audit_head` holds the last id and hash in a
row every append locks (SELECT … FOR UPDATE on PostgreSQL; the write lock and a process lock, for
SQLite), so appends are strictly ordered and truncating the tail is detected too. Appends are plain
DBAPI statements (the API makes one per call). Entries carry the caller, the resource, the grant, the
purpose, the result and the response size; the only personal datum allowed is `record_key`, the key
that was asked for.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import threading
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from json.encoder import encode_basestring
from typing import Any

from sqlalchemy import and_, or_, select

from sharehub import anchors
from sharehub.access.callers import Caller
from sharehub.catalogue.models import SEP, Classification
from sharehub.hub import Hub
from sharehub.metadata import dbapi
from sharehub.metadata.models import AuditEntry, AuditHead, utcnow
from sharehub.paging import Page, newest_first
from sharehub.serving.masking import mask_field

GENESIS = "0" * 64
UNANSWERED = ("not_found", "no_match")  # the verification outcomes a consumer sees as one
_lock = threading.RLock()


def _ts(value: datetime) -> str:
    if value.tzinfo is None:
        return value.isoformat("T", "microseconds")
    return value.astimezone(UTC).isoformat("T", "microseconds")[:-6]  # without its "+00:00"


HASHED = (
    "action",
    "consumer_id",
    "department",
    "resource_id",
    "grant_id",
    "purpose",
    "record_key",
    "result",
    "response_bytes",
    "detail",
)


_CANONICAL = json.JSONEncoder(ensure_ascii=False, sort_keys=True, separators=(",", ":"))
_CANONICAL_KEYS = tuple(sorted((*HASHED, "id", "at")))


def canonical(body: dict[str, Any]) -> str:
    """`body` as canonical JSON (sorted keys, no spaces, UTF-8 as is): what `_CANONICAL` writes, byte for
    byte, built directly for the entries' own shape (text, whole numbers, nulls), three times faster;
    any other shape goes to the encoder itself."""
    if len(body) != len(_CANONICAL_KEYS):
        return _CANONICAL.encode(body)
    parts = []
    for name in _CANONICAL_KEYS:
        value = body[name]
        if type(value) is str:
            parts.append(f'"{name}":{encode_basestring(value)}')
        elif value is None:
            parts.append(f'"{name}":null')
        elif type(value) is int:
            parts.append(f'"{name}":{int.__repr__(value)}')
        else:
            return _CANONICAL.encode(body)
    return "{" + ",".join(parts) + "}"


def entry_hash(e: AuditEntry) -> str:
    """sha256 over the previous hash and the entry's canonical JSON (its id included, so order counts)."""
    return _hash(e.id, e.prev_hash, e.at, {name: getattr(e, name) for name in HASHED})


def _hash(entry_id: int, prev_hash: str, at: datetime, values: dict[str, Any]) -> str:
    body = {name: values[name] for name in HASHED}
    body["id"], body["at"] = entry_id, _ts(at)
    return hashlib.sha256((prev_hash + canonical(body)).encode()).hexdigest()


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
    """Append one entry, after the action it records committed; return its id once it is durable."""
    values = _values(action, caller, resource_id, result, grant_id, purpose, record_key, response_bytes, detail)
    return _append(hub, [values])[0]


async def arecord(
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
    """`record` for async routes, with group commit: entries queued in one turn of the event loop are
    appended in one transaction, and every caller still waits for the commit of its own entry."""
    values = _values(action, caller, resource_id, result, grant_id, purpose, record_key, response_bytes, detail)
    loop = asyncio.get_running_loop()
    per_loop = _batchers.setdefault(loop, {})
    batcher = per_loop.get(hub.settings.metadata_url)
    if batcher is None:
        batcher = per_loop[hub.settings.metadata_url] = _Batcher(hub)
    return await batcher.add(loop, values)


def _values(
    action: str,
    caller: Caller | None,
    resource_id: str | None,
    result: str,
    grant_id: int | None,
    purpose: str | None,
    record_key: str | None,
    response_bytes: int,
    detail: str | None,
) -> dict[str, Any]:
    return {
        "at": utcnow(),
        "action": action,
        "consumer_id": caller.id if caller else None,
        "department": caller.department if caller else None,
        "resource_id": resource_id,
        "grant_id": grant_id,
        "purpose": purpose,
        "record_key": record_key,
        "result": result,
        "response_bytes": response_bytes,
        "detail": detail,
    }


class _Batcher:
    """Collects the entries of one event-loop turn and appends them together, on the loop itself
    (a writer thread would fight the loop for the GIL and slow every request down)."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self.rows: list[dict[str, Any]] = []
        self.futures: list[asyncio.Future[int]] = []

    def add(self, loop: asyncio.AbstractEventLoop, values: dict[str, Any]) -> asyncio.Future[int]:
        future: asyncio.Future[int] = loop.create_future()
        if not self.rows:
            loop.call_soon(self.flush)
        self.rows.append(values)
        self.futures.append(future)
        return future

    def flush(self) -> None:
        rows, futures = self.rows, self.futures
        self.rows, self.futures = [], []
        try:
            ids = _append(self.hub, rows)
        except Exception as exc:  # noqa: BLE001 -- whatever failed, every waiting caller must learn it
            for future in futures:
                future.set_exception(exc)
            return
        for future, entry_id in zip(futures, ids, strict=True):
            future.set_result(entry_id)


# Per event loop (weakly: a closed loop takes its batchers with it), per metadata database.
_batchers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, _Batcher]] = weakref.WeakKeyDictionary()


_COLUMNS = ("id", "at", *HASHED, "prev_hash", "hash")
_FIRST_HEAD = "INSERT INTO audit_head (id, last_id, last_hash) VALUES (1, 0, ?) ON CONFLICT (id) DO NOTHING"
_INSERT = f"INSERT INTO audit_log ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' for _ in _COLUMNS)})"


def _append(hub: Hub, rows: list[dict[str, Any]]) -> list[int]:
    """Append entries in one transaction, chaining each to the one before.

    The head row is locked before it is read (SQLite: the transaction starts with the write lock;
    elsewhere SELECT … FOR UPDATE), so appends from several processes queue instead of forking the chain.
    The very first append creates the head row; when several processes make it at once, one insert
    wins and the others wait for it (ON CONFLICT DO NOTHING) and then lock the row it made.
    """
    db = dbapi.raw(hub.settings.metadata_url)
    head_sql = db.sql("SELECT last_id, last_hash FROM audit_head WHERE id = 1" + ("" if db.sqlite else " FOR UPDATE"))
    with _lock, db.transaction() as cur:
        cur.execute(head_sql, ())
        head = cur.fetchone()
        if head is None:
            cur.execute(db.sql(_FIRST_HEAD), (GENESIS,))
            cur.execute(head_sql, ())
            head = cur.fetchone()
        last_id, last_hash = int(head[0]), str(head[1])
        params, ids = [], []
        for values in rows:
            last_id += 1
            last_hash_before, last_hash = last_hash, _hash(last_id, last_hash, values["at"], values)
            params.append((last_id, db.stamp(values["at"]), *(values[n] for n in HASHED), last_hash_before, last_hash))
            ids.append(last_id)
        cur.executemany(db.sql(_INSERT), params)
        cur.execute(db.sql("UPDATE audit_head SET last_id = ?, last_hash = ? WHERE id = 1"), (last_id, last_hash))
    return ids


@dataclass(frozen=True)
class ChainCheck:
    """The outcome of verifying the chain, and how many sealed checkpoints it was held against."""

    entries: int
    first_bad: int | None = None
    reason: str = ""
    checkpoints: int = 0

    @property
    def ok(self) -> bool:
        """True when every entry, the head and every checkpoint agree."""
        return self.first_bad is None


def verify(hub: Hub, batch: int = 10_000, on_entries: Callable[[int, int], None] | None = None) -> ChainCheck:
    """Walk the chain in id order; name the first entry that was edited, removed or moved, or that differs
    from a sealed checkpoint in the object store (`sharehub.anchors`: a chain rewritten whole, hashes and
    head recomputed). `on_entries` hears, after each batch, how many entries were walked out of how many
    the head records."""
    try:
        sealed = anchors.checkpoints(hub)  # oldest first
    except anchors.BadCheckpoint as exc:
        return ChainCheck(0, 0, str(exc))
    due = 0  # the next checkpoint the walk must reach
    prev, count, last_id = GENESIS, 0, 0
    with hub.db() as s:
        head = s.get(AuditHead, 1)
        recorded = head.last_id if head is not None else 0
        while True:
            rows = list(
                s.scalars(select(AuditEntry).where(AuditEntry.id > last_id).order_by(AuditEntry.id).limit(batch))
            )
            for e in rows:
                if e.prev_hash != prev:
                    return ChainCheck(count, e.id, "its previous-hash does not match the entry before it")
                if entry_hash(e) != e.hash:
                    return ChainCheck(count, e.id, "its content does not match its hash (edited)")
                while due < len(sealed) and sealed[due].last_id <= e.id:
                    c = sealed[due]
                    if c.last_id < e.id:
                        return ChainCheck(
                            count,
                            c.last_id,
                            f"{_named(c)} names entry {c.last_id}, which is missing: the chain was rewritten",
                        )
                    if c.last_hash != e.hash:
                        return ChainCheck(count, e.id, f"its hash differs from {_named(c)}: the chain was rewritten")
                    due += 1
                prev, last_id, count = e.hash, e.id, count + 1
            if on_entries is not None:
                on_entries(count, max(recorded, count))
            if len(rows) < batch:
                break
        if due < len(sealed):
            c = sealed[due]
            return ChainCheck(
                count,
                c.last_id,
                f"the chain ends before entry {c.last_id}, which {_named(c)} names: entries were removed",
            )
        if head is not None and (head.last_id, head.last_hash) != (last_id, prev):
            return ChainCheck(count, head.last_id, "the chain ends before the recorded head (entries removed)")
        if head is None and count:
            return ChainCheck(count, last_id, "the chain head is missing")
    return ChainCheck(count, checkpoints=len(sealed))


def _named(c: anchors.Checkpoint) -> str:
    return f"the checkpoint sealed at {c.at:%Y-%m-%d %H:%M:%S} UTC ({c.path})"


def trail(
    hub: Hub,
    viewer: Caller,
    *,
    action: str | None = None,
    resource_id: str | None = None,
    consumer_id: int | None = None,
    record_key: str | None = None,
    result: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int | None = None,
    before: int | None = None,
) -> Page[AuditEntry]:
    """Entries, newest first, that `viewer` may trace (a page of `limit` below `before`): every one for the
    platform office; for a provider department, the calls on its resources and whatever its own
    department's keys did; for a consumer, its own calls. `record_key` is written as the API writes
    keys, key fields joined by |; `result` picks an outcome (`denied`: the refusals, where probing shows);
    `since` and `until` bound `at` (until exclusive). The read is itself
    audited (`audit_read`, as `viewer`'s, with the key looked for)."""
    stored = None if record_key is None else record_key.replace("|", SEP)
    q = select(AuditEntry)
    if viewer.role == "consumer":
        q = q.where(AuditEntry.consumer_id == viewer.id)
    elif viewer.role == "provider":
        own = sorted(r.id for r in hub.catalogue.resources.values() if r.provider == viewer.department)
        q = q.where(or_(AuditEntry.resource_id.in_(own), AuditEntry.department == viewer.department))
    for column, value in (
        (AuditEntry.action, action),
        (AuditEntry.resource_id, resource_id),
        (AuditEntry.consumer_id, consumer_id),
        (AuditEntry.record_key, stored),
    ):
        if value is not None:
            q = q.where(column == value)
    if result is not None:
        if viewer.role == "consumer" and result in UNANSWERED:
            # A verifying consumer must not learn existence from its own trail: both outcomes are one to it.
            q = q.where(
                or_(
                    and_(AuditEntry.action == "verification", AuditEntry.result.in_(UNANSWERED)),
                    and_(AuditEntry.action != "verification", AuditEntry.result == result),
                )
            )
        else:
            q = q.where(AuditEntry.result == result)
    if since is not None:
        q = q.where(AuditEntry.at >= since)
    if until is not None:
        q = q.where(AuditEntry.at < until)
    with hub.db() as s:
        found = newest_first(s, q, AuditEntry.id, limit, before)
    record(hub, "audit_read", viewer, resource_id, record_key=stored, result="ok", detail=f"{len(found)} entries")
    return found


def shown_result(entry: AuditEntry, viewer: Caller) -> str:
    """An entry's outcome as `viewer` may see it: a consumer's verification that found no record reads as
    `no_match`, as the call itself answered, so its own trail never tells it whether a person exists."""
    if viewer.role == "consumer" and entry.action == "verification" and entry.result in UNANSWERED:
        return "no_match"
    return entry.result


def shown_key(hub: Hub, resource_id: str | None, record_key: str | None, *, whole: bool = False) -> str | None:
    """An entry's record key as the API and the command line show it, key fields joined by |: `whole` for
    the platform office; otherwise each L3/L4 key field masked by its rule, and a key of no known
    resource not shown at all."""
    if record_key is None:
        return None
    if whole:
        return record_key.replace(SEP, "|")
    resource = hub.catalogue.resources.get(resource_id or "")
    if resource is None:
        return "***"
    parts = record_key.replace("|", SEP).split(SEP)
    shown = []
    for name, part in zip(resource.source.key, parts, strict=False):
        spec = resource.field(name)
        shown.append(mask_field(part, spec) if spec.classification in (Classification.L3, Classification.L4) else part)
    return "|".join(shown)
