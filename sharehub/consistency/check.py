"""Compare every copy of a base data item with its authoritative source, entity by entity.

The catalogue says which base resource is authoritative for an item (`authoritative_for`) and which
fields of other resources hold a copy of it (`corresponds_to: <base>.<item>`). Both sides are
normalized before comparing: full-width to half-width, no whitespace, lower case, and traditional to
simplified characters where either field declares `normalize: [traditional]`. The entity key is the
identifier (resident ID or credit code) of the authoritative resource's key.

The check is incremental: it re-compares only the entities whose rows changed in runs that succeeded
since the last check, plus those with an open conflict; `full=True` re-compares everything. Each
disagreement is a conflict record (values masked). A conflict that is no longer found closes itself.
New conflicts become one notice per resource to its provider department.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from importlib import resources

import duckdb
import pyarrow as pa
from sqlalchemy import select
from sqlalchemy.orm import Session

from connectors import duck
from expectations.sql import ident, literal
from sharehub.catalogue.models import FieldSpec, Resource
from sharehub.hub import Hub
from sharehub.masking import mask_field
from sharehub.metadata.models import Conflict, ConsistencyState, Notice, Run, utcnow
from sharehub.notices import file_notice
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


def normalized(expr: str, traditional: bool) -> str:
    """SQL for the comparable form of a value."""
    spaceless = f"regexp_replace(CAST({expr} AS VARCHAR), '[\\s\u3000]+', '', 'g')"
    out = f"lower(translate({spaceless}, {literal(FULL_WIDTH)}, {literal(HALF_WIDTH)}))"
    if traditional:
        src, dst = _traditional()
        out = f"translate({out}, {literal(src)}, {literal(dst)})"
    return out


def comparable(expr: str, spec: FieldSpec, traditional: bool) -> str:
    """SQL for what a field's value means: its normalized form, mapped through its vocabulary if any."""
    norm = normalized(expr, traditional)
    if not spec.vocabulary:
        return norm
    whens = " ".join(
        f"WHEN {literal(normalize_value(word, traditional) or '')} THEN {literal(meaning)}"
        for word, meaning in sorted(spec.vocabulary.items())
    )
    return f"(CASE {norm} {whens} ELSE {norm} END)"


def normalize_value(value: object, traditional: bool) -> str | None:
    """The same normalization in Python, for the decision and notice texts and for tests."""
    if value is None:
        return None
    text = "".join(str(value).split()).replace("\u3000", "").translate(str.maketrans(FULL_WIDTH, HALF_WIDTH)).lower()
    if traditional:
        src, dst = _traditional()
        text = text.translate(str.maketrans(src, dst))
    return text


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
    found: int = 0
    opened: int = 0
    closed: int = 0
    notices: list[int] = field(default_factory=list)
    by_department_item: dict[tuple[str, str], int] = field(default_factory=dict)


def check(hub: Hub, *, full: bool = False) -> CheckResult:
    """Compare every declared copy with its authority; record conflicts, close converged ones, notify."""
    started = utcnow()
    result = CheckResult()
    con = duck.connect()
    try:
        tables = _register_stores(hub, con)
        changed = None if full else _changed_keys(hub, con, tables)
        seen: dict[tuple[str, str, str], tuple[str, str, str | None, str | None]] = {}
        scope: dict[str, set[str] | None] = {}
        for p in pairings(hub):
            if p.authority.id not in tables or p.other.id not in tables:
                continue
            keys = None if changed is None else changed.get(p.other.id, set()) | changed.get(p.authority.id, set())
            keys = None if keys is None else keys | _open_keys(hub, p.item, p.other.id)
            scope[f"{p.item}|{p.other.id}"] = keys
            rows = _compare(con, p, keys)
            result.items.add(p.item)
            for key, a_val, o_val, missing in rows:
                kind = "missing_in_base" if missing else ("status" if p.other_field.vocabulary else "value")
                item = p.authority.store.base if missing else p.item
                seen[(str(item), key, p.other.id)] = (
                    kind,
                    p.authority.id,
                    None if missing else mask_field(a_val, p.authority_field),
                    mask_field(o_val, p.other_field),
                )
        result.found = len(seen)
        _record(hub, seen, scope, started, result)
        _mark_checked(hub, tables, started)
    finally:
        con.close()
    result.notices = _notify(hub)
    log.info("consistency: %d conflicts found, %d new, %d closed", result.found, result.opened, result.closed)
    return result


def _register_stores(hub: Hub, con: duckdb.DuckDBPyConnection) -> set[str]:
    """Load the columns the check needs from each current Delta table into a DuckDB table named after it.

    Copying (key, compared fields, `_run_id`) into DuckDB keeps DuckDB from pushing join filters
    into the Arrow dataset scan, which fails there on string views; it is also faster to join.
    """
    needed: dict[str, set[str]] = defaultdict(set)
    for p in pairings(hub):
        needed[p.authority.id] |= {p.authority_key, p.authority_field.name}
        needed[p.other.id] |= {p.other_key, p.other_field.name}
    present = set()
    for rid, columns in needed.items():
        res = hub.catalogue.resource(rid)
        table = open_table(hub.store.uri(res.store_path), hub.store.delta_options())
        if table is None:
            continue
        con.register("delta_scan", table.to_pyarrow_dataset())
        select_list = ", ".join(ident(c) for c in sorted(columns | {"_run_id"}))
        con.execute(f"CREATE OR REPLACE TEMP TABLE {_view(rid)} AS SELECT {select_list} FROM delta_scan")
        con.unregister("delta_scan")
        present.add(rid)
    return present


def _view(resource_id: str) -> str:
    return "store_" + resource_id.replace(".", "_")


def _changed_keys(hub: Hub, con: duckdb.DuckDBPyConnection, tables: set[str]) -> dict[str, set[str]]:
    """Per resource, the entity keys of rows written by runs that succeeded since its last check."""
    out: dict[str, set[str]] = {}
    with hub.db() as s:
        checked = {c.resource_id: c.checked_until for c in s.scalars(select(ConsistencyState))}
        for rid in tables:
            q = select(Run.id).where(Run.resource_id == rid, Run.status == "succeeded")
            if rid in checked:
                q = q.where(Run.finished_at >= checked[rid])
            runs = list(s.scalars(q))
            res = hub.catalogue.resource(rid)
            key = _entity_key(res, res.field(res.source.key[0]).identifier) or res.source.key[0]
            if not runs:
                out[rid] = set()
                continue
            ids = ", ".join(literal(r) for r in runs)
            rows = con.execute(
                f"SELECT DISTINCT {ident(key)} FROM {_view(rid)} WHERE list_contains([{ids}], _run_id)"
            ).fetchall()
            out[rid] = {str(k) for (k,) in rows if k is not None}
    return out


def _open_keys(hub: Hub, item: str, resource_id: str) -> set[str]:
    with hub.db() as s:
        return set(
            s.scalars(
                select(Conflict.entity_key).where(
                    Conflict.resource_id == resource_id,
                    Conflict.status.in_(OPEN),
                    Conflict.item.in_((item, item.split(".", 1)[0])),
                )
            )
        )


def _compare(con: duckdb.DuckDBPyConnection, p: Pairing, keys: set[str] | None) -> list[tuple]:
    """(key, authoritative value, other value, missing in base) for each disagreeing entity."""
    trad = "traditional" in p.authority_field.normalize or "traditional" in p.other_field.normalize
    a_val, o_val = f"a.{ident(p.authority_field.name)}", f"o.{ident(p.other_field.name)}"
    differs = f"{comparable(o_val, p.other_field, trad)} IS DISTINCT FROM {comparable(a_val, p.authority_field, trad)}"
    a_key, o_key = f"a.{ident(p.authority_key)}", f"o.{ident(p.other_key)}"
    scope = ""
    if keys is not None:
        if not keys:
            return []
        con.register("scope_keys", pa.table({"k": sorted(keys)}))
        scope = f"AND {o_key} IN (SELECT k FROM scope_keys)"
    query = f"""
        SELECT {o_key} AS k, any_value({a_val}) AS a_val,
               arg_max({o_val}, {differs}) AS o_val,
               bool_or({a_key} IS NULL) AS missing
        FROM {_view(p.other.id)} o LEFT JOIN {_view(p.authority.id)} a ON {a_key} = {o_key}
        WHERE {o_key} IS NOT NULL AND {o_val} IS NOT NULL {scope}
        GROUP BY {o_key}
        HAVING bool_or({a_key} IS NULL)
            OR bool_or({differs})
    """
    return [(str(k), a, o, bool(m)) for k, a, o, m in con.execute(query).fetchall()]


def _record(
    hub: Hub,
    seen: dict[tuple[str, str, str], tuple[str, str, str | None, str | None]],
    scope: dict[str, set[str] | None],
    now: datetime,
    result: CheckResult,
) -> None:
    """Upsert what was seen; close open conflicts inside the checked scope that were not seen again."""
    with hub.db() as s:
        existing = {(c.item, c.entity_key, c.resource_id): c for c in s.scalars(select(Conflict))}
        for (item, key, rid), (kind, authority, a_val, o_val) in seen.items():
            res = hub.catalogue.resource(rid)
            row = existing.get((item, key, rid))
            if row is None:
                row = Conflict(
                    kind=kind,
                    item=item,
                    entity_key=key,
                    resource_id=rid,
                    department=res.provider,
                    authority_resource=authority,
                    status="open",
                    first_seen=now,
                )
                s.add(row)
                result.opened += 1
            elif row.status == "closed":
                row.status, row.closed_at, row.notice_id = "open", None, None
                result.opened += 1
            row.authority_value, row.other_value, row.last_seen = a_val, o_val, now
            slot = (res.provider, item)
            result.by_department_item[slot] = result.by_department_item.get(slot, 0) + 1
        for (item, key, rid), row in existing.items():
            if row.status == "closed" or (item, key, rid) in seen:
                continue
            scopes = [v for k, v in scope.items() if k.endswith(f"|{rid}") and k.startswith(item)]
            if scopes and any(v is None or key in v for v in scopes):
                row.status, row.closed_at = "closed", now
                result.closed += 1


def _mark_checked(hub: Hub, tables: set[str], now: datetime) -> None:
    with hub.db() as s:
        for rid in tables:
            s.merge(ConsistencyState(resource_id=rid, checked_until=now))


def _notify(hub: Hub) -> list[int]:
    """One notice per resource with conflicts not yet noticed; close notices whose conflicts all ended."""
    with hub.db() as s:
        fresh = list(s.scalars(select(Conflict).where(Conflict.status == "open", Conflict.notice_id.is_(None))))
        _settle_notices(s)
    by_resource: dict[str, list[Conflict]] = defaultdict(list)
    for c in fresh:
        by_resource[c.resource_id].append(c)
    return [_conflict_notice(hub, hub.catalogue.resource(rid), cs) for rid, cs in by_resource.items()]


def _settle_notices(s: Session) -> None:
    """Each open conflict notice lists the keys still open or verifying; with none left it is resolved."""
    pending: dict[int, list[str]] = defaultdict(list)
    for c in s.scalars(select(Conflict).where(Conflict.status.in_(OPEN))):
        for notice_id in (c.notice_id, c.authority_notice_id):
            if notice_id is not None:
                pending[notice_id].append(c.entity_key)
    for notice in s.scalars(select(Notice).where(Notice.kind == "conflict", Notice.status != "resolved")):
        notice.pending_keys = sorted(set(pending.get(notice.id, [])))
        if not notice.pending_keys:
            notice.status, notice.resolved_at = "resolved", utcnow()


def _conflict_notice(hub: Hub, res: Resource, conflicts: list[Conflict]) -> int:
    department = hub.catalogue.departments[res.provider]
    rule = hub.profile.deadlines["rectification"]
    now = utcnow()
    deadline = hub.calendar.deadline(now, rule.working_days)
    key_field = res.field(_entity_key(res, "resident_id") or _entity_key(res, "uscc") or res.source.key[0])
    lines = [
        f"{department.name}：",
        "",
        f"共享平台比对发现，资源 {res.id}（{res.title}）有 {len(conflicts):,} 处数据与权威来源不一致"
        "（一数一源、多元校核）。请核实：如本部门数据有误，请更正；如权威来源有误，请说明理由，由平台协调权威部门核实。",
        f"请在 {deadline:%Y-%m-%d} 24:00（北京时间）前反馈，即 {rule.working_days} 个工作日；依据：{rule.basis}。",
        "",
        "不一致项（值已按分级脱敏）/ conflicts, values masked:",
    ]
    for c in conflicts[:20]:
        shown_key = mask_field(c.entity_key, key_field)
        if c.kind == "missing_in_base":
            lines.append(f"  - {shown_key}: 权威库（{c.authority_resource}）无此实体；本部门值 {c.other_value}")
        else:
            lines.append(
                f"  - {shown_key} · {c.item}: 本部门 {c.other_value}；"
                f"权威来源 {c.authority_resource} {c.authority_value}"
            )
    if len(conflicts) > 20:
        lines.append(f"  … and {len(conflicts) - 20:,} more: sharehub conflicts list --department {res.provider}")
    lines += ["", "数据一致后，下一次比对将自动关闭这些不一致项，本通知随之办结。"]
    keys = sorted({c.entity_key for c in conflicts})
    with hub.db() as s:
        notice = Notice(
            kind="conflict",
            department=department.id,
            resource_id=res.id,
            run_id=None,
            created_at=now,
            deadline=deadline,
            status="open",
            subject=f"[sharehub] {res.id}: {len(conflicts):,} 处数据与权威来源不一致，请于 {deadline:%Y-%m-%d} 前核实",
            body="\n".join(lines),
            row_keys=keys,
            pending_keys=keys,
        )
        file_notice(s, notice, department.contact_email)
        for c in conflicts:
            row = s.get(Conflict, c.id)
            assert row is not None
            row.notice_id = notice.id
        return notice.id


def list_conflicts(hub: Hub, department: str | None = None, status: str | None = None) -> list[Conflict]:
    """Conflicts, newest first."""
    with hub.db() as s:
        q = select(Conflict).order_by(Conflict.last_seen.desc(), Conflict.id)
        if department:
            q = q.where(Conflict.department == department)
        if status:
            q = q.where(Conflict.status == status)
        return list(s.scalars(q))


def verify(hub: Hub, conflict_ids: list[int], *, by: str, notify_authority: bool = False) -> list[Conflict]:
    """Take conflicts up for verification (核实); optionally ask the authoritative department to check its value.

    The authoritative department gets one notice per authoritative resource, with the profile's
    rectification deadline, listing the entities; it resolves when those conflicts are decided or close.
    """
    if not by.strip():
        raise ValueError("say who is verifying (--by)")
    now = utcnow()
    with hub.db() as s:
        rows = []
        for cid in conflict_ids:
            row = s.get(Conflict, cid)
            if row is None:
                raise LookupError(f"no conflict {cid}")
            if row.status not in OPEN:
                raise ValueError(f"conflict {cid} is {row.status}; only open conflicts can be verified")
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
        return rows


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
        f"请在 {deadline:%Y-%m-%d} 24:00（北京时间）前反馈，即 {rule.working_days} 个工作日；依据：{rule.basis}。",
        "",
        "待核实项（值已按分级脱敏）/ to verify, values masked:",
    ]
    for c in conflicts[:20]:
        lines.append(
            f"  - 冲突 {c.id} · {c.entity_key[:6]}… · {c.item}: 贵部门 {c.authority_value or '（无此实体）'}；"
            f"{c.department} {c.other_value}"
        )
    if len(conflicts) > 20:
        lines.append(f"  … and {len(conflicts) - 20:,} more: sharehub conflicts list --status verifying")
    keys = sorted({c.entity_key for c in conflicts})
    notice = Notice(
        kind="conflict",
        department=department.id,
        resource_id=res.id,
        run_id=None,
        created_at=now,
        deadline=deadline,
        status="open",
        subject=f"[sharehub] {res.id}: 请协助核实 {len(conflicts):,} 处不一致数据，{deadline:%Y-%m-%d} 前反馈",
        body="\n".join(lines),
        row_keys=keys,
        pending_keys=keys,
    )
    file_notice(s, notice, department.contact_email)
    return notice.id


def decide(hub: Hub, conflict_id: int, *, right: str, by: str, reason: str) -> Conflict:
    """Record which value is right (`authority` or `provider`), who decided and why."""
    if right not in ("authority", "provider") or not by.strip() or len(reason.strip()) < 4:
        raise ValueError("a decision names the right value (authority or provider), who decided, and why")
    with hub.db() as s:
        row = s.get(Conflict, conflict_id)
        if row is None:
            raise LookupError(f"no conflict {conflict_id}")
        if row.status not in OPEN:
            raise ValueError(f"conflict {conflict_id} is {row.status}; only open or verifying conflicts are decided")
        row.status, row.decision, row.decided_by, row.decision_reason = "decided", right, by.strip(), reason.strip()
        row.decided_at = utcnow()
        s.flush()
        _settle_notices(s)
        return row
