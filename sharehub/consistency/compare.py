"""Compare every copy of a base data item with its authoritative source, entity by entity.

The catalogue says which base resource is authoritative for an item (`authoritative_for`) and which
fields of other resources hold a copy of it (`corresponds_to: <base>.<item>`). Both sides are normalized
before comparing (`normalize`). The entity key is the identifier (resident ID or credit code) of the
authoritative resource's key.

The compared columns live in a local DuckDB cache kept in step with the stores' Delta change data
(`cache.py`). The check is incremental: it re-compares only the entities whose rows changed in either
store since the last check; `full=True` reloads the stores and re-compares everything. Values equal as
stored are settled in SQL; only the rest go through the normalization, so its cost follows the
disagreements, not the table size. Each disagreement is a conflict record (values masked). A conflict
that is no longer found closes itself. New conflicts become one notice per resource to its provider."""

from __future__ import annotations

import gc
import logging
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import cast

import duckdb
import pyarrow as pa
from sqlalchemy import Table, insert, select, update
from sqlalchemy.orm import Session

from expectations.sql import ident
from sharehub.consistency.cache import StoreCache
from sharehub.consistency.conflicts import (
    _notify,
)
from sharehub.consistency.normalize import (
    _as_stored,
    _register_normalizers,
    comparable,
)
from sharehub.consistency.pairs import Pairing, _among, pairings
from sharehub.hub import Hub
from sharehub.metadata.models import Conflict, utcnow
from sharehub.serving.masking import mask_field
from warehouse.delta import open_table

log = logging.getLogger(__name__)


@dataclass
class CheckResult:
    """What one consistency check found."""

    items: set[str] = field(default_factory=set)  # the base items compared
    entities: int | None = 0  # how many entities were compared; None when every one was
    found: int = 0
    opened: int = 0
    closed: int = 0
    notices: list[int] = field(default_factory=list)
    settle: dict[int, set[str]] = field(default_factory=dict)  # notice → keys whose conflicts closed in this check
    by_department_item: dict[tuple[str, str], int] = field(default_factory=dict)
    waiting: set[str] = field(default_factory=set)  # resources of a declared copy that have no store yet


Scope = dict[str, tuple[set[str], set[str] | None]]  # resource → (items, entity keys checked or None = all)


def check(
    hub: Hub, *, full: bool = False, reload: bool = False, say: Callable[[str], None] | None = None
) -> CheckResult:
    """Compare every declared copy with its authority; record conflicts, close converged ones, notify.

    `full` compares every entity instead of the changed ones; `reload` also rebuilds the cached
    columns from the Delta tables instead of applying their change data. `say` hears each step as it
    starts (resource ids and counts only), for a progress line.
    """
    collecting = gc.isenabled()
    gc.disable()  # a check makes no reference cycles; collections would only rescan the whole heap, many times
    try:
        return _check(hub, full, reload, say or _quiet)
    finally:
        if collecting:
            gc.enable()


def _quiet(_: str) -> None:
    """No progress line."""


def _check(hub: Hub, full: bool, reload: bool, say: Callable[[str], None]) -> CheckResult:
    started = utcnow()
    result = CheckResult()
    cache = StoreCache(hub.settings.home / "consistency.duckdb")
    try:
        _register_normalizers(cache.con)
        changed = _sync(hub, cache, reload, say)
        if full:
            changed = dict.fromkeys(changed)
        seen: dict[tuple[str, str, str], tuple[str, str, str | None, str | None]] = {}
        scope: Scope = {}
        compared: set[str] | None = set()
        groups: dict[tuple[str, str], list[Pairing]] = defaultdict(list)
        for p in pairings(hub.catalogue):
            groups[(p.other.id, p.authority.id)].append(p)
        for (other, authority), pairs in groups.items():
            if authority not in changed or other not in changed:
                result.waiting |= {rid for rid in (authority, other) if rid not in changed}
                continue
            a, o = changed[authority], changed[other]
            keys = None if a is None or o is None else a | o
            compared = None if keys is None or compared is None else compared | keys
            items, prev = scope.get(other, (set(), set()))
            items |= {str(pairs[0].authority.store.base), *(p.item for p in pairs)}
            scope[other] = (items, None if keys is None or prev is None else prev | keys)
            result.items |= {p.item for p in pairs}
            scale = "every entity" if keys is None else f"{len(keys):,} changed entities"
            say(f"comparing {other} with {authority} ({', '.join(p.item for p in pairs)}) over {scale}")
            for key, missing, fields in _compare(cache.con, pairs, keys):
                if missing:
                    p, _, o_val = next((pairs[i], a_val, o_val) for i, a_val, o_val in fields)
                    seen[(str(p.authority.store.base), key, other)] = (
                        "missing_in_base",
                        authority,
                        None,
                        mask_field(o_val, p.other_field),
                    )
                    continue
                for i, a_val, o_val in fields:
                    p = pairs[i]
                    seen[(p.item, key, other)] = (
                        "status" if p.other_field.vocabulary else "value",
                        authority,
                        mask_field(a_val, p.authority_field),
                        mask_field(o_val, p.other_field),
                    )
        result.found = len(seen)
        result.entities = None if compared is None else len(compared)
        say(f"recording {len(seen):,} conflict(s) in scope")
        _record(hub, seen, scope, started, result)
        cache.commit()  # the synced versions count as checked only once the results are recorded
    finally:
        cache.close()
    say("notifying the departments")
    result.notices = _notify(hub, result.settle)
    log.info("consistency: %d conflicts found, %d new, %d closed", result.found, result.opened, result.closed)
    return result


def _sync(hub: Hub, cache: StoreCache, reload: bool, say: Callable[[str], None]) -> dict[str, set[str] | None]:
    """Bring every compared store's cached columns up to date; per resource, the entities that changed."""
    needed: dict[str, set[str]] = defaultdict(set)
    entity: dict[str, str] = {}
    for p in pairings(hub.catalogue):
        needed[p.authority.id] |= {p.authority_key, p.authority_field.name}
        needed[p.other.id] |= {p.other_key, p.other_field.name}
        entity[p.authority.id], entity[p.other.id] = p.authority_key, p.other_key
    out = {}
    for rid, columns in sorted(needed.items()):
        res = hub.catalogue.resource(rid)
        table = open_table(hub.store.uri(res.store_path), hub.store.delta_options())
        if table is None:
            continue
        cols = sorted(columns | set(res.source.key) | {"_run_id"})
        say(f"bringing the cached columns of {rid} to store v{table.version()}")
        out[rid] = cache.sync(rid, table, cols, res.source.key, entity[rid], reload)
    return out


def _compare(con: duckdb.DuckDBPyConnection, pairs: list[Pairing], keys: set[str] | None) -> list[tuple]:
    """(key, missing in base, [(pair index, authoritative value, other value)]) per disagreeing entity.

    All copies one resource holds of one authority are compared in one join. Rows whose values
    are equal as stored are settled by the join itself; only the remaining candidates are
    normalized, which is where the cost of comparing lies.
    """
    first = pairs[0]
    a_key, o_key = f"a.{ident(first.authority_key)}", f"o.{ident(first.other_key)}"
    picked, candidates, flags, aggregates = [], [], [], []
    for i, p in enumerate(pairs):
        trad = "traditional" in p.authority_field.normalize or "traditional" in p.other_field.normalize
        a_val, o_val = f"a.{ident(p.authority_field.name)}", f"o.{ident(p.other_field.name)}"
        picked += [f"{a_val} AS a_{i}", f"{o_val} AS o_{i}"]
        as_stored = _as_stored(o_val, a_val, p)
        candidates.append(f"({o_val} IS NOT NULL AND {as_stored})")
        dated = p.authority_field.type == "date" or p.other_field.type == "date"
        o_means = comparable(f"o_{i}", p.other_field, trad, dated)
        a_means = comparable(f"a_{i}", p.authority_field, trad, dated)
        meaning = f"{o_means} IS DISTINCT FROM {a_means}"
        flags.append(f"(NOT missing AND o_{i} IS NOT NULL AND {meaning}) AS d_{i}")
        aggregates += [f"any_value(a_{i})", f"arg_max(o_{i}, d_{i})", f"bool_or(d_{i})", f"any_value(o_{i})"]
    other, authority = StoreCache.table(first.other.id), StoreCache.table(first.authority.id)
    if keys is not None:  # both sides cut to the entities in scope before the join
        if not keys:
            return []
        con.register("scope_keys", pa.table({"k": sorted(keys)}))
        other = f"(SELECT * FROM {other} WHERE {ident(first.other_key)} IN (SELECT k FROM scope_keys))"
        authority = f"(SELECT * FROM {authority} WHERE {ident(first.authority_key)} IN (SELECT k FROM scope_keys))"
    query = f"""
        WITH candidates AS MATERIALIZED (
            SELECT {o_key} AS k, {a_key} IS NULL AS missing, {", ".join(picked)}
            FROM {other} o LEFT JOIN {authority} a ON {a_key} = {o_key}
            WHERE {o_key} IS NOT NULL AND ({a_key} IS NULL OR {" OR ".join(candidates)})
        ), flagged AS MATERIALIZED (
            SELECT *, {", ".join(flags)} FROM candidates
        )
        SELECT k, bool_or(missing), {", ".join(aggregates)}
        FROM flagged
        GROUP BY k
        HAVING bool_or(missing) OR {" OR ".join(f"bool_or(d_{i})" for i in range(len(pairs)))}
    """
    out = []
    for row in con.execute(query).fetchall():
        key, missing, rest = str(row[0]), bool(row[1]), row[2:]
        if missing:
            fields = [(i, None, rest[4 * i + 3]) for i in range(len(pairs)) if rest[4 * i + 3] is not None]
        else:
            fields = [(i, rest[4 * i], rest[4 * i + 1]) for i in range(len(pairs)) if rest[4 * i + 2]]
        if fields:
            out.append((key, missing, fields))
    return out


def _record(
    hub: Hub,
    seen: dict[tuple[str, str, str], tuple[str, str, str | None, str | None]],
    scope: Scope,
    now: datetime,
    result: CheckResult,
) -> None:
    """Upsert what was seen and close the conflicts in scope that were not seen again, in bulk.

    Only conflicts that are new, reopened, closed or whose values changed are written row by row;
    `last_seen` of everything seen is then set in one statement per scope, since after the closing
    every conflict still open in the checked scope is one that was seen.
    """
    with hub.db() as s:
        existing = _existing(s, scope)
        inserts, changed, reopened = [], [], []
        for (item, key, rid), (kind, authority, a_val, o_val) in seen.items():
            department = hub.catalogue.resource(rid).provider
            values = {"authority_value": a_val, "other_value": o_val, "last_seen": now}
            found = existing.get((item, key, rid))
            if found is None:
                inserts.append(
                    {
                        "kind": kind,
                        "item": item,
                        "entity_key": key,
                        "resource_id": rid,
                        "department": department,
                        "authority_resource": authority,
                        "status": "open",
                        "first_seen": now,
                        **values,
                    }
                )
                result.opened += 1
            elif found[1] == "closed":
                unlinked = {"notice_id": None, "correction_notice_id": None}
                reopened.append({"id": found[0], "status": "open", "closed_at": None, **unlinked, **values})
                result.opened += 1
            elif found[2:4] != (a_val, o_val):
                changed.append({"id": found[0], **values})
            label = f"{item}: entity absent from the base store" if kind == "missing_in_base" else item
            slot = (department, label)
            result.by_department_item[slot] = result.by_department_item.get(slot, 0) + 1
        gone = [(slot, row) for slot, row in existing.items() if row[1] != "closed" and slot not in seen]
        result.closed = len(gone)
        for (_, key, _), row in gone:
            for n in row[4:]:
                if n is not None:
                    result.settle.setdefault(n, set()).add(key)
        table = cast(Table, Conflict.__table__)
        if inserts:  # Core executemany: the ORM's bulk path costs more than the database here
            s.execute(insert(table), inserts)
        for batch in (changed, reopened):
            if batch:
                s.execute(update(Conflict), batch)
        if gone:
            closing = update(table).where(_among(s, table.c.id, [row[0] for _, row in gone]))
            s.execute(closing.values(status="closed", closed_at=now))
        for rid, (items, keys) in scope.items():
            q = update(Conflict).where(
                Conflict.resource_id == rid, Conflict.item.in_(sorted(items)), Conflict.status != "closed"
            )
            if keys is not None:
                q = q.where(_among(s, Conflict.entity_key, sorted(keys)))
            s.execute(q.values(last_seen=now).execution_options(synchronize_session=False))


def _existing(s: Session, scope: Scope) -> dict[tuple[str, str, str], tuple]:
    """(item, key, resource) → (id, status, authority value, other value, notice ids: the copy holder's, the
    authority's, the correction after a decision) of conflicts in scope."""
    out = {}
    cols = (
        Conflict.id,
        Conflict.item,
        Conflict.entity_key,
        Conflict.resource_id,
        Conflict.status,
        Conflict.authority_value,
        Conflict.other_value,
        Conflict.notice_id,
        Conflict.authority_notice_id,
        Conflict.correction_notice_id,
    )
    for rid, (items, keys) in scope.items():
        q = select(*cols).where(Conflict.resource_id == rid, Conflict.item.in_(sorted(items)))
        if keys is not None:
            q = q.where(_among(s, Conflict.entity_key, sorted(keys)))
        for cid, item, key, res, status, a_val, o_val, notice, asked, correct in s.execute(q):
            out[(item, key, res)] = (cid, status, a_val, o_val, notice, asked, correct)
    return out
