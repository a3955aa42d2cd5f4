"""Compare every copy of a base data item with its authoritative source, entity by entity.

The catalogue says which base resource is authoritative for an item (`authoritative_for`) and which
fields of other resources hold a copy of it (`corresponds_to: <base>.<item>`). Both sides are
normalized before comparing: full-width to half-width, no whitespace, lower case, traditional to
simplified characters where either field declares `normalize: [traditional]`, and a date compared with
its ISO form however either side writes it (`sharehub.dates`). The entity key is the
identifier (resident ID or credit code) of the authoritative resource's key.

The compared columns live in a local DuckDB cache kept in step with the stores' Delta change data
(`cache.py`). The check is incremental: it re-compares only the entities whose rows changed in either
store since the last check; `full=True` reloads the stores and re-compares everything. Values equal as
stored are settled in SQL; only the rest go through the normalization, so its cost follows the
disagreements, not the table size. Each disagreement is a conflict record (values masked). A conflict
that is no longer found closes itself. New conflicts become one notice per resource to its provider.
"""

from __future__ import annotations

import functools
import gc
import json
import logging
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from importlib import resources
from typing import Any, cast

import duckdb
import pyarrow as pa
from duckdb.func import PythonUDFType
from duckdb.sqltypes import VARCHAR
from sqlalchemy import ARRAY, Table, any_, bindparam, func, insert, literal_column, or_, select, update
from sqlalchemy.orm import Session

from expectations.sql import ident, literal
from sharehub import audit
from sharehub.access.consumers import Caller
from sharehub.catalogue.models import FieldSpec, Resource
from sharehub.consistency.cache import StoreCache
from sharehub.dates import date_from_text
from sharehub.errors import Invalid, NotFound
from sharehub.hub import Hub
from sharehub.metadata.models import Conflict, Notice, utcnow
from sharehub.notices import ask, file_notice, tell
from sharehub.paging import Page, newest_first
from sharehub.serving.masking import mask_field
from sharehub.workdays import due_text
from warehouse.delta import open_table

log = logging.getLogger(__name__)
OPEN = ("open", "verifying")
FULL_WIDTH = "".join(chr(c) for c in range(0xFF01, 0xFF5F))
HALF_WIDTH = "".join(chr(c) for c in range(0x21, 0x7F))


@lru_cache(maxsize=1)
def _traditional() -> tuple[str, str]:
    text = resources.files("sharehub.consistency").joinpath("data/t2s.tsv").read_text(encoding="utf-8")
    pairs = [line.split("\t") for line in text.splitlines() if line and not line.startswith("#")]
    return "".join(a for a, _ in pairs), "".join(b for _, b in pairs)


def _register_normalizers(con: duckdb.DuckDBPyConnection) -> None:
    """`sh_norm(v)` and `sh_norm_t(v)` (also traditional → simplified) in SQL: Python's str.translate,
    vectorized; `sh_date(v)`: the ISO form of a date however it is written (else `sh_norm`)."""
    for name, trad in (("sh_norm", False), ("sh_norm_t", True)):
        con.create_function(name, functools.partial(_normalize_array, trad), [VARCHAR], VARCHAR, **UDF)
    con.create_function("sh_date", _date_array, [VARCHAR], VARCHAR, **UDF)


UDF: dict[str, Any] = {"type": PythonUDFType.ARROW, "side_effects": False}


def _normalize_array(traditional: bool, values: pa.Array) -> pa.Array:
    return pa.array([normalize_value(v, traditional) for v in values.to_pylist()], pa.string())


def _date_array(values: pa.Array) -> pa.Array:
    return pa.array([date_value(v) for v in values.to_pylist()], pa.string())


def date_value(value: object) -> str | None:
    """What a date field's value means, however it is written: the ISO form of its date; a text that is
    no date, normalized like any other text (so it equals only itself)."""
    read = date_from_text(value)
    return normalize_value(value, False) if read is None else read.isoformat()


def _as_stored(o_val: str, a_val: str, p: Pairing) -> str:
    """SQL true where two values differ as stored (through their vocabularies): equal here means equal."""
    if not p.other_field.vocabulary and p.other_field.arrow_type == p.authority_field.arrow_type:
        return f"{o_val} IS DISTINCT FROM {a_val}"
    return f"{_stored_text(o_val, p.other_field)} IS DISTINCT FROM {_stored_text(a_val, p.authority_field)}"


def _stored_text(expr: str, spec: FieldSpec) -> str:
    text = f"CAST({expr} AS VARCHAR)"
    if not spec.vocabulary:
        return text
    whens = " ".join(f"WHEN {literal(w)} THEN {literal(m)}" for w, m in sorted(spec.vocabulary.items()))
    return f"(CASE {text} {whens} ELSE {text} END)"


def comparable(expr: str, spec: FieldSpec, traditional: bool, dated: bool = False) -> str:
    """SQL for what a field's value means: its normalized form (`dated`: the date it writes, in ISO form),
    mapped through its vocabulary if any."""
    normalizer = "sh_date" if dated else "sh_norm_t" if traditional else "sh_norm"
    norm = f"{normalizer}(CAST({expr} AS VARCHAR))"
    if not spec.vocabulary:
        return norm
    whens = " ".join(
        f"WHEN {literal(normalize_value(word, traditional) or '')} THEN {literal(meaning)}"
        for word, meaning in sorted(spec.vocabulary.items())
    )
    return f"(CASE {norm} {whens} ELSE {norm} END)"


@lru_cache(maxsize=2)
def _table(traditional: bool) -> dict[int, int]:
    table = str.maketrans(FULL_WIDTH + "\u3000", HALF_WIDTH + " ")
    if traditional:
        src, dst = _traditional()
        table.update(str.maketrans(src, dst))
    return table


def normalize_value(value: object, traditional: bool) -> str | None:
    """The comparable form of a value: half-width, no whitespace, lower case, simplified if `traditional`.

    Width and traditional forms map character by character and never produce upper case or
    whitespace, so one translation table does both before the rest.
    """
    if value is None:
        return None
    return "".join(str(value).translate(_table(traditional)).split()).lower()


@dataclass(frozen=True)
class Pairing:
    """One copy of a base item: the authoritative field and a field of another resource."""

    item: str
    authority: Resource
    authority_field: FieldSpec
    authority_key: str
    other: Resource
    other_field: FieldSpec
    other_key: str


def pairings(hub: Hub) -> list[Pairing]:
    """Every (authoritative field, copy) pair the catalogue declares."""
    owners: dict[str, Resource] = {}
    for res in hub.catalogue.resources.values():
        if res.store.kind == "base":
            for item in res.authoritative_for:
                owners[f"{res.store.base}.{item}"] = res
    out = []
    for res in hub.catalogue.resources.values():
        for f in res.fields:
            if not f.corresponds_to or f.corresponds_to not in owners:
                continue
            authority = owners[f.corresponds_to]
            if authority.id == res.id:
                continue
            key = authority.field(authority.source.key[0])
            other_key = _entity_key(res, key.identifier)
            if other_key is None:
                continue
            item = f.corresponds_to.split(".", 1)[1]
            out.append(Pairing(f.corresponds_to, authority, authority.field(item), key.name, res, f, other_key))
    return out


def _key_field(res: Resource) -> FieldSpec:
    """The field whose classification masks an entity key where a notice shows it: the resource's resident
    ID or credit code field, else its first key field."""
    return res.field(_entity_key(res, "resident_id") or _entity_key(res, "uscc") or res.source.key[0])


def _entity_key(res: Resource, identifier: object) -> str | None:
    """The field of `res` that holds the entity's identifier: a key field first, else any such field."""
    candidates = [f for f in res.fields if f.identifier == identifier]
    keyed = [f for f in candidates if f.name in res.source.key]
    chosen = keyed or candidates
    return chosen[0].name if chosen else None


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
        for p in pairings(hub):
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
    for p in pairings(hub):
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


def _among(s: Session, column: Any, values: Sequence[Any]) -> Any:
    """`column IN values` with all the values in one bound parameter, however many: a JSON array read
    by `json_each` on SQLite, an array on PostgreSQL. SQLAlchemy's IN writes a placeholder per value,
    and for the thousands of keys an incremental check touches, compiling those cost more than the
    statements themselves. Other databases get the plain IN."""
    dialect = s.get_bind().dialect.name
    if dialect == "postgresql":
        return column == any_(bindparam(None, list(values), type_=ARRAY(column.type)))
    if dialect == "sqlite":
        given = func.json_each(bindparam(None, json.dumps(list(values), ensure_ascii=False)))
        return column.in_(select(literal_column("value")).select_from(given))
    return column.in_(list(values))


SAMPLE_CONFLICTS = 20  # conflicts a notice lists; the rest are a GET away


def _notify(hub: Hub, settle: dict[int, set[str]]) -> list[int]:
    """One notice per resource with conflicts not yet noticed; close notices whose conflicts all ended."""
    cols = (
        Conflict.id,
        Conflict.kind,
        Conflict.item,
        Conflict.entity_key,
        Conflict.resource_id,
        Conflict.authority_resource,
        Conflict.authority_value,
        Conflict.other_value,
    )
    with hub.db() as s:
        fresh = s.execute(select(*cols).where(Conflict.status == "open", Conflict.notice_id.is_(None))).all()
        _settle_notices(s, settle)
        held = _quarantined_at_authority(s, fresh)
    by_resource: dict[str, list[Any]] = defaultdict(list)
    waiting: dict[str, int] = defaultdict(int)
    for c in fresh:
        if c.kind == "missing_in_base" and (c.authority_resource, c.entity_key) in held:
            waiting[c.resource_id] += 1  # the authority's to correct, and its quality notice says so
        else:
            by_resource[c.resource_id].append(c)
    return [_conflict_notice(hub, hub.catalogue.resource(rid), cs, waiting[rid]) for rid, cs in by_resource.items()]


def _quarantined_at_authority(s: Session, conflicts: Sequence[Any]) -> set[tuple[str, str]]:
    """(authoritative resource, entity key) of entities the authority did deliver, but whose rows failed its
    quality gate and await its correction (pending on an open quality notice to it).

    The base store lacks such an entity only until the authority corrects it, so the department holding
    a copy is not asked to verify it: the conflict stays on record, un-noticed, and is noticed at a later
    check only if it outlives the authority's quality notice."""
    authorities = {c.authority_resource for c in conflicts if c.kind == "missing_in_base"}
    if not authorities:
        return set()
    pending = select(Notice.resource_id, Notice.pending_keys).where(
        Notice.kind == "quality", Notice.resource_id.in_(sorted(authorities)), Notice.status != "resolved"
    )
    return {(rid, str(k).split("|")[0]) for rid, keys in s.execute(pending) for k in keys or []}


def _settle_notices(s: Session, ended: dict[int, set[str]]) -> None:
    """Take the keys whose conflicts ended off their notices' pending lists (unless the key still has an
    open conflict under that notice); a notice with no key left is resolved. Only the ended keys are
    looked up, so the cost follows what changed, not how many conflicts a notice lists."""
    if not ended:
        return
    ids = sorted(ended)
    linked = or_(Conflict.notice_id.in_(ids), Conflict.authority_notice_id.in_(ids))
    cols = (Conflict.entity_key, Conflict.notice_id, Conflict.authority_notice_id)
    still: dict[int, set[str]] = defaultdict(set)
    ended_keys = sorted(set().union(*ended.values()))
    query = select(*cols).where(Conflict.status.in_(OPEN), _among(s, Conflict.entity_key, ended_keys), linked)
    for key, notice_id, asked_id in s.execute(query):
        for nid in (notice_id, asked_id):
            if nid in ended:
                still[nid].add(key)
    # A correction notice is about the conflicts decided together: an entity leaves it only when every one
    # of them on that entity has closed (a company's name and its status, say, decided at once).
    decided = select(Conflict.entity_key, Conflict.correction_notice_id).where(
        Conflict.status == "decided", Conflict.correction_notice_id.in_(ids), _among(s, Conflict.entity_key, ended_keys)
    )
    for key, correction_id in s.execute(decided):
        if correction_id is not None:
            still[correction_id].add(key)
    unresolved = select(Notice).where(
        Notice.id.in_(ids), Notice.kind.in_(("conflict", "conflict_decision")), Notice.status != "resolved"
    )
    for notice in s.scalars(unresolved):
        gone = ended[notice.id] - still[notice.id]
        keys = [k for k in notice.pending_keys if k not in gone]
        if len(keys) != len(notice.pending_keys):
            notice.pending_keys = keys
        if not keys:
            notice.status, notice.resolved_at = "resolved", utcnow()


def _conflict_notice(hub: Hub, res: Resource, conflicts: list[Any], waiting: int = 0) -> int:
    department = hub.catalogue.departments[res.provider]
    rule = hub.profile.deadlines["rectification"]
    now = utcnow()
    deadline = hub.calendar.deadline(now, rule.working_days)
    key_field = _key_field(res)
    lines = [
        f"{department.name}：",
        "",
        f"共享平台比对发现，资源 {res.id}（{res.title}）有 {len(conflicts):,} 处数据与权威来源不一致"
        "（一数一源、多元校核）。请核实：如本部门数据有误，请更正；如权威来源有误，请说明理由，由平台协调权威部门核实。",
        f"请在 {due_text(deadline)}（北京时间）前反馈，即 {rule.working_days} 个工作日；依据：{rule.basis}。",
        "",
        f"如本部门的值无误，请逐项答复理由：POST /conflicts/{{冲突编号}}/reply，或 sharehub conflicts reply 冲突编号"
        f" --department {res.provider} --by 经办人 --reason 理由（全部冲突及完整实体键：GET /conflicts）。",
        "",
        "不一致项（值已按分级脱敏）/ conflicts, values masked:",
    ]
    for c in conflicts[:SAMPLE_CONFLICTS]:
        shown_key = mask_field(c.entity_key, key_field)
        if c.kind == "missing_in_base":
            lines.append(
                f"  - 冲突 {c.id} · {shown_key}: 权威库（{c.authority_resource}）无此实体；本部门值 {c.other_value}"
            )
        else:
            lines.append(
                f"  - 冲突 {c.id} · {shown_key} · {c.item}: 本部门 {c.other_value}；"
                f"权威来源 {c.authority_resource} {c.authority_value}"
            )
    after = []
    if waiting:
        after += [
            "",
            f"另有 {waiting:,} 个实体权威库暂缺：权威来源报送了这些实体，但其数据未通过质量检查、已隔离待其更正"
            "（见对其的质量整改通知），无需本部门处理。",
        ]
    after += ["", "数据一致后，下一次比对将自动关闭这些不一致项，本通知随之办结。"]
    subject = f"[sharehub] {res.id}: {len(conflicts):,} 处数据与权威来源不一致，请于 {due_text(deadline)} 前核实"
    with hub.db() as s:
        notice = _file_conflict_notice(s, res, department, deadline, subject, lines, conflicts, after)
        s.execute(update(Conflict).where(_among(s, Conflict.id, [c.id for c in conflicts])).values(notice_id=notice.id))
        return notice.id


def list_conflicts(
    hub: Hub,
    department: str | None = None,
    status: str | None = None,
    limit: int | None = None,
    *,
    as_authority: bool = False,
    notice_id: int | None = None,
    resource_id: str | None = None,
    before: int | None = None,
    only: int | None = None,
) -> Page[Conflict]:
    """Conflicts, newest first, a page of `limit` below `before`: of `department`'s copies, and with
    `as_authority` also those on items it is the authoritative source of; of one notice or one resource."""
    with hub.db() as s:
        q = select(Conflict)
        if department and as_authority:
            own = sorted(r.id for r in hub.catalogue.resources.values() if r.provider == department)
            q = q.where(or_(Conflict.department == department, Conflict.authority_resource.in_(own)))
        elif department:
            q = q.where(Conflict.department == department)
        if status:
            q = q.where(Conflict.status == status)
        if notice_id is not None:
            linked = (Conflict.notice_id, Conflict.authority_notice_id, Conflict.correction_notice_id)
            q = q.where(or_(*(column == notice_id for column in linked)))
        if resource_id:
            q = q.where(Conflict.resource_id == resource_id)
        return newest_first(s, q, Conflict.id, limit, before, only)


def verify(
    hub: Hub, conflict_ids: list[int], *, by: str, notify_authority: bool = False, actor: Caller | None = None
) -> list[Conflict]:
    """Take conflicts up for verification (核实); optionally ask the authoritative department to check its value.

    The authoritative department gets one notice per authoritative resource, with the profile's
    rectification deadline, listing the entities; it resolves when those conflicts are decided or close.
    """
    if not by.strip():
        raise Invalid("say who is verifying (--by)")
    now = utcnow()
    with hub.db() as s:
        rows = []
        for cid in conflict_ids:
            row = s.get(Conflict, cid)
            if row is None:
                raise NotFound(f"no conflict {cid}")
            if row.status not in OPEN:
                raise Invalid(f"conflict {cid} is {row.status}; only open conflicts can be verified")
            row.status, row.verifying_by, row.verifying_since = "verifying", by.strip(), now
            rows.append(row)
        if notify_authority:
            asked: dict[str, list[Conflict]] = defaultdict(list)
            for row in rows:
                if row.authority_notice_id is None:
                    asked[row.authority_resource].append(row)
            for rid, conflicts in asked.items():
                notice_id = _authority_notice(hub, s, hub.catalogue.resource(rid), conflicts, by.strip())
                for row in conflicts:
                    row.authority_notice_id = notice_id
        s.flush()
    for row in rows:
        _audit_step(hub, "conflict_verify", actor, row)
    return rows


def _audit_step(hub: Hub, action: str, actor: Caller | None, row: Conflict) -> None:
    """A step on a conflict, in the audit chain: the entity key is the record key."""
    audit.record(
        hub, action, actor, row.resource_id, record_key=row.entity_key, result=row.status, detail=f"conflict {row.id}"
    )


def _authority_notice(hub: Hub, s: Session, res: Resource, conflicts: list[Conflict], by: str) -> int:
    department = hub.catalogue.departments[res.provider]
    rule = hub.profile.deadlines["rectification"]
    now = utcnow()
    deadline = hub.calendar.deadline(now, rule.working_days)
    lines = [
        f"{department.name}：",
        "",
        f"贵部门是下列数据项的权威来源（{res.id}）。其他部门的数据与贵部门不一致，平台（{by}）请贵部门协助核实"
        "贵部门的值是否正确；如有误，请更正后重新报送。",
        f"请在 {due_text(deadline)}（北京时间）前反馈，即 {rule.working_days} 个工作日；依据：{rule.basis}。",
        "",
        "待核实项（值已按分级脱敏）/ to verify, values masked:",
    ]
    for c in conflicts[:SAMPLE_CONFLICTS]:
        lines.append(
            f"  - 冲突 {c.id} · {c.entity_key[:6]}… · {c.item}: 贵部门 {c.authority_value or '（无此实体）'}；"
            f"{c.department} {c.other_value}"
        )
    subject = f"[sharehub] {res.id}: 请协助核实 {len(conflicts):,} 处不一致数据，{due_text(deadline)} 前反馈"
    return _file_conflict_notice(s, res, department, deadline, subject, lines, conflicts).id


def _file_conflict_notice(
    s: Session,
    res: Resource,
    department: Any,
    deadline: datetime,
    subject: str,
    lines: list[str],
    conflicts: list[Any],
    after: Sequence[str] = (),
) -> Notice:
    """A conflict notice to a department about these conflicts' entities, with its e-mail queued. `lines`
    end with the first conflicts; where there are more, a line naming the notice's own route for all of
    them follows, then `after`."""
    keys = sorted({c.entity_key for c in conflicts})
    notice = Notice(
        kind="conflict",
        department=department.id,
        resource_id=res.id,
        run_id=None,
        created_at=utcnow(),
        deadline=deadline,
        status="open",
        subject=subject,
        body="",
        row_keys=keys,
        pending_keys=keys,
    )
    file_notice(s, notice, department.contact_email)  # its id is known from here
    more = len(conflicts) - SAMPLE_CONFLICTS
    if more > 0:
        lines = [*lines, f"  … 另有 {more:,} 处 / and {more:,} more: GET /conflicts?notice={notice.id} lists them all"]
    notice.body = "\n".join([*lines, *after])
    return notice


def reply(
    hub: Hub, conflict_id: int, *, department: str, by: str, reason: str, actor: Caller | None = None
) -> Conflict:
    """A department holds its value right (核实反馈): the conflict goes under verification with its reasons,
    for the platform office to decide. Only the department holding the copy, or the authoritative one,
    replies; correcting the copy instead needs no reply, since the next check closes the conflict."""
    if not by.strip() or len(reason.strip()) < 4:
        raise Invalid("a reply names who replies and gives the reasons")
    with hub.db() as s:
        row = s.get(Conflict, conflict_id)
        if row is None:
            raise NotFound(f"no conflict {conflict_id}")
        authority = hub.catalogue.resources.get(row.authority_resource)
        if department not in (row.department, authority.provider if authority else None):
            raise NotFound(f"no conflict {conflict_id}")  # as GET /conflicts/{id}: others' conflicts look absent
        if row.status not in OPEN:
            raise Invalid(f"conflict {conflict_id} is {row.status}; only open or verifying conflicts are replied to")
        now = utcnow()
        who = f"{department} · {by.strip()}"[:100]
        if department == row.department:  # the copy's holder (also when it is the authority's own department)
            row.reply, row.replied_by, row.replied_at = reason.strip(), who, now
        else:
            row.authority_reply, row.authority_replied_by, row.authority_replied_at = reason.strip(), who, now
        if row.status == "open":
            row.status, row.verifying_by, row.verifying_since = "verifying", who, now
        s.flush()
    _audit_step(hub, "conflict_reply", actor, row)
    return row


def decide(hub: Hub, conflict_id: int, *, right: str, by: str, reason: str, actor: Caller | None = None) -> Conflict:
    """Record which value is right (`authority` or `provider`), who decided and why."""
    return decide_many(hub, [conflict_id], right=right, by=by, reason=reason, actor=actor)[0]


def decide_many(
    hub: Hub, conflict_ids: list[int], *, right: str, by: str, reason: str, actor: Caller | None = None
) -> list[Conflict]:
    """One decision on many conflicts, all of them or none (the same value right, by the same person, for
    the same reason): each department hears it once per resource, not once per conflict."""
    if right not in ("authority", "provider") or not by.strip() or len(reason.strip()) < 4:
        raise Invalid("a decision names the right value (authority or provider), who decided, and why")
    now = utcnow()
    with hub.db() as s:
        rows = []
        for cid in dict.fromkeys(conflict_ids):
            row = s.get(Conflict, cid)
            if row is None:
                raise NotFound(f"no conflict {cid}")
            if row.status not in OPEN:
                raise Invalid(f"conflict {cid} is {row.status}; only open or verifying conflicts are decided")
            row.status, row.decision, row.decided_by, row.decision_reason = "decided", right, by.strip(), reason.strip()
            row.decided_at = now
            rows.append(row)
        s.flush()
        settled: dict[int, set[str]] = defaultdict(set)
        for row in rows:
            for n in (row.notice_id, row.authority_notice_id):
                if n is not None:
                    settled[n].add(row.entity_key)
        _settle_notices(s, settled)
        wrong_side: dict[str, list[Conflict]] = defaultdict(list)
        for row in rows:
            wrong_side[row.resource_id if right == "authority" else row.authority_resource].append(row)
        for group in wrong_side.values():
            correction = _tell_decision(hub, s, group)
            for row in group:
                row.correction_notice_id = correction
    for row in rows:
        _audit_step(hub, "conflict_decision", actor, row)
    return rows


def _tell_decision(hub: Hub, s: Session, rows: list[Conflict]) -> int:
    """A decision goes to both departments, once for all the conflicts it settles in one resource: the one
    whose values were judged wrong gets a notice to correct them by the rectification deadline (it
    resolves when the copies converge and every one of these conflicts closes; past the deadline it runs
    overdue like any notice); each other one is told. Returns the correction notice."""
    first = rows[0]
    authority = hub.catalogue.resource(first.authority_resource)
    held = hub.catalogue.resource(first.resource_id)
    wrong = held if first.decision == "authority" else authority
    rule = hub.profile.deadlines["rectification"]
    deadline = hub.calendar.deadline(utcnow(), rule.working_days)
    winner = f"{authority.provider}（权威来源）" if first.decision == "authority" else "持有副本的部门"
    decided = f"平台（{first.decided_by}）裁定：{winner}的值正确。"
    decided += f"理由：{first.decision_reason}"
    wrong_dept = hub.catalogue.departments[wrong.provider]
    lines: dict[str, list[str]] = defaultdict(list)  # the other side's resource → its lines
    for row in rows:
        copy = hub.catalogue.resource(row.resource_id)
        shown = mask_field(row.entity_key, _key_field(copy))
        authoritative = row.authority_value or "（无此实体）"
        values = f"{authority.provider}（权威）{authoritative}；{copy.provider} {row.other_value}"
        lines[row.authority_resource if wrong.id == row.resource_id else row.resource_id].append(
            f"  - 冲突 {row.id} · {shown} · {row.item}: {values}"
        )
    listed = [line for group in lines.values() for line in group]
    more = len(listed) - SAMPLE_CONFLICTS
    listing = listed[:SAMPLE_CONFLICTS] + ([f"  … 另有 {more:,} 项 / {more:,} more"] if more > 0 else [])
    which = f"冲突 {first.id}（{first.item}）" if len(rows) == 1 else f"{len(rows):,} 项冲突"
    correction = ask(
        s,
        kind="conflict_decision",
        department=wrong.provider,
        resource_id=wrong.id,
        deadline=deadline,
        subject=f"[sharehub] {which}已裁定：请于 {due_text(deadline)} 前更正 {wrong.id}",
        body="\n".join(
            [
                f"{wrong_dept.name}：",
                "",
                *listing,
                decided,
                f"请更正 {wrong.id} 中这些实体的数据并重新报送，于 {due_text(deadline)}（北京时间）前完成，"
                f"即 {rule.working_days} 个工作日（依据：{rule.basis}）；数据一致后本通知自动办结。",
            ]
        ),
        keys=sorted({row.entity_key for row in rows}),
        recipient=wrong_dept.contact_email,
    )
    for rid, told in lines.items():
        right = hub.catalogue.resource(rid)
        right_dept = hub.catalogue.departments[right.provider]
        tell(
            s,
            kind="conflict_decision",
            department=right.provider,
            resource_id=right.id,
            subject=f"[sharehub] {which}已裁定：{right.id} 的值无需更正",
            body="\n".join([f"{right_dept.name}：", "", *told[:SAMPLE_CONFLICTS], decided, "贵部门的值无需更正。"]),
            recipient=right_dept.contact_email,
        )
    return correction.id
