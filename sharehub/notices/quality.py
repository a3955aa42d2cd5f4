"""Quality notices: a run's quarantined rows by key, masked samples and the rules in words, written once
per run; a row that fails again stays on the notice that named it. They resolve when the rows pass."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import ColumnElement, select
from sqlalchemy.orm import Session

from sharehub.catalogue.models import Classification, Resource
from sharehub.hub import Hub
from sharehub.metadata.models import Notice, QuarantinedRow, RowDispute, Run, utcnow
from sharehub.notices.core import (
    OPEN,
    file_notice,
)
from sharehub.notices.deliveries import (
    resolve_delivered,
)
from sharehub.notices.outbox import deliver
from sharehub.pipeline import paths
from sharehub.pipeline import reasons as why
from sharehub.pipeline.rowkeys import ROW, key_strings
from sharehub.serving.masking import mask_field
from sharehub.workdays import china_time, due_text

log = logging.getLogger(__name__)


SAMPLE_ROWS = 20


def _shown_key(resource: Resource, key: str) -> str:
    """Keys of L3/L4 fields are masked in the e-mail; the full list stays in the metadata database."""
    parts = key.split("|")
    out = []
    for name, part in zip(resource.source.key, parts, strict=False):
        f = resource.field(name)
        sensitive = f.classification in (Classification.L3, Classification.L4) and not why.is_missing(part)
        out.append(mask_field(part, f) if sensitive else part)
    return "|".join(out)


@dataclass(frozen=True)
class Sample:
    """One quarantined row as the notice shows it."""

    key: str
    reasons: list[str]
    values: dict[str, str]


def _samples(hub: Hub, resource: Resource, run_id: str, rows: list[QuarantinedRow]) -> list[Sample]:
    wanted = {r.row_number for r in rows[:SAMPLE_ROWS]}
    table = hub.store.parquet_file(paths.quarantine(resource.id, run_id)).read()
    by_row = {row[ROW]: row for row in table.to_pylist() if row[ROW] in wanted}
    out = []
    for q in rows[:SAMPLE_ROWS]:
        landed = by_row.get(q.row_number, {})
        values = {}
        for reason in q.reasons:
            field = why.field_of(reason)
            if field and field in {f.name for f in resource.fields}:
                spec = resource.field(field)
                values[field] = mask_field(landed.get(spec.column), spec)
        out.append(Sample(_shown_key(resource, q.row_key), list(q.reasons), values))
    return out


def raise_quality_notice(hub: Hub, run_id: str) -> Notice | None:
    """Write the notice for a run's quarantined rows (once) and queue its e-mail; None if nothing failed."""
    with hub.db() as s:
        run = s.get(Run, run_id)
        assert run is not None
        existing = s.scalar(select(Notice).where(Notice.run_id == run_id, Notice.kind == "quality"))
        if existing is not None:
            return existing
        failed = list(
            s.scalars(select(QuarantinedRow).where(QuarantinedRow.run_id == run_id).order_by(QuarantinedRow.row_number))
        )
        told = _already_told(s, run.resource_id, run_id)
    rows = [q for q in failed if q.row_key not in told]
    earlier = sorted({told[q.row_key] for q in failed if q.row_key in told})
    if not rows:
        if failed:
            log.info("run %s: its %d quarantined rows are still pending on notices %s", run_id, len(failed), earlier)
        return None
    resource = hub.catalogue.resource(run.resource_id)
    department = hub.catalogue.departments[resource.provider]
    rule = hub.profile.deadlines["rectification"]
    now = utcnow()
    deadline = hub.calendar.deadline(now, rule.working_days)
    counts = Counter(r for q in rows for r in q.reasons)
    lines = [
        f"{department.name}：",
        "",
        f"共享平台在 {china_time(now, '%Y-%m-%d %H:%M')}（北京时间）检查资源 {resource.id}（{resource.title}）时，"
        f"有 {len(rows):,} 行未通过质量检查，已隔离，未进入{resource.store.path}库。",
        f"请在 {due_text(deadline)}（北京时间）前更正，即 {rule.working_days} 个工作日；依据：{rule.basis}。",
    ]
    if earlier:  # rows named before keep their notice and its deadline
        still, named = len(failed) - len(rows), ", ".join(f"#{n}" for n in earlier)
        lines.append(f"另有 {still:,} 行仍未通过，已在通知 {named} 中告知，其期限不变。")
    lines += [
        f"Run: {run_id}. {len(failed):,} of {run.rows_landed:,} rows quarantined"
        + (f"; {len(rows):,} new here, the other {still:,} still pending on notice(s) {named}." if earlier else "."),
        "",
        "未通过的规则 / rules that failed:",
    ]
    for reason, n in counts.most_common():
        lines.append(f"  - {why.explain(reason, resource)}：{n:,} 行")
    lines += ["", f"行（按主键，前 {min(SAMPLE_ROWS, len(rows))} 行；值已按分级脱敏）/ rows by key, values masked:"]
    for sample in _samples(hub, resource, run_id, rows):
        shown = ", ".join(f"{k}={v}" for k, v in sample.values.items())
        said = "；".join(why.explain(r, resource) for r in sample.reasons)
        lines.append(f"  - {sample.key}: {said}" + (f" [{shown}]" if shown else ""))
    more = len(rows) - SAMPLE_ROWS
    lines += ["", "更正后的行将在下一次运行时自动入库，本通知随之自动办结。"]
    keys = sorted({q.row_key for q in rows})
    subject = f"[sharehub] {resource.id}: {len(rows):,} 行数据未通过质量检查，请于 {due_text(deadline)} 前更正"
    with hub.db() as s:
        notice = Notice(
            kind="quality",
            department=department.id,
            resource_id=resource.id,
            run_id=run_id,
            created_at=now,
            deadline=deadline,
            status="open",
            subject=subject,
            body="",
            row_keys=keys,
            pending_keys=keys,
        )
        file_notice(s, notice, department.contact_email)
        if more > 0:  # the notice's own id is known once it is filed
            lines.insert(-2, f"  … and {more:,} more: GET /notices/{notice.id} lists every key")
        lines += [
            f"如某行数据无误、规则有误，请说明理由：POST /notices/{notice.id}/disputes，由平台审核。",
            f"A row that is right where the rule is wrong: POST /notices/{notice.id}/disputes with its key and "
            "your reason, for the platform office to review.",
        ]
        notice.body = "\n".join(lines)
    log.info("notice %s for run %s: %d rows, due %s", notice.id, run_id, len(rows), deadline.date())
    return notice


def _open_quality(resource_id: str, run_id: str) -> tuple[ColumnElement[bool], ...]:
    """Which notices still hold rows of a resource: its open quality notices from runs other than this one."""
    return (
        Notice.resource_id == resource_id,
        Notice.kind == "quality",
        Notice.status.in_(OPEN),
        Notice.run_id != run_id,
    )


def _already_told(s: Session, resource_id: str, run_id: str) -> dict[str, int]:
    """Row keys of the resource that a department already has before it, each with its notice: pending on
    an open quality notice of an earlier run, or disputed and awaiting the platform office's decision
    (under the disputed notice). A row that fails again is not notified again, nor its deadline reset."""
    told: dict[str, int] = {}
    for notice_id, keys in s.execute(select(Notice.id, Notice.pending_keys).where(*_open_quality(resource_id, run_id))):
        told.update(dict.fromkeys(keys, notice_id))
    disputed = s.execute(
        select(RowDispute.row_key, RowDispute.notice_id).where(
            RowDispute.resource_id == resource_id, RowDispute.review == "pending"
        )
    )
    told.update(dict(disputed.tuples().all()))
    return told


def resolve_passed(hub: Hub, run_id: str) -> list[int]:
    """Close open notices of the run's resource whose rows all passed in this run; return their ids."""
    with hub.db() as s:
        run = s.get(Run, run_id)
        assert run is not None and run.status == "succeeded"
        notices = list(s.scalars(select(Notice).where(*_open_quality(run.resource_id, run_id))))
        still_bad = set(s.scalars(select(QuarantinedRow.row_key).where(QuarantinedRow.run_id == run_id)))
    if not notices:
        return []
    resource = hub.catalogue.resource(run.resource_id)
    cols = resource.key_columns
    landed = hub.store.parquet_file(paths.landing(resource.id, run_id)).read(columns=cols)
    passed = {"|".join("" if v is None else str(v) for v in k) for k in key_strings(landed, cols)}
    passed -= still_bad
    closed = []
    with hub.db() as s:
        for n in notices:
            notice = s.get(Notice, n.id)
            assert notice is not None
            pending = [k for k in notice.pending_keys if k not in passed]
            if len(pending) != len(notice.pending_keys):
                notice.pending_keys = pending
            if not pending:
                notice.status, notice.resolved_at, notice.resolved_by_run = "resolved", utcnow(), run_id
                closed.append(notice.id)
    return closed


def pending_reasons(hub: Hub, notice: Notice) -> dict[str, list[str]]:
    """For a quality notice, why each row still pending on it fails: the rules its latest quarantine
    found (a row corrected wrongly shows its new fault, not the one first notified). Empty otherwise."""
    if notice.kind != "quality" or not notice.pending_keys:
        return {}
    latest: dict[str, tuple[str, list[str]]] = {}
    keys = list(notice.pending_keys)
    with hub.db() as s:
        for start in range(0, len(keys), 500):
            found = s.execute(
                select(QuarantinedRow.row_key, QuarantinedRow.run_id, QuarantinedRow.reasons)
                .where(
                    QuarantinedRow.resource_id == notice.resource_id,
                    QuarantinedRow.row_key.in_(keys[start : start + 500]),
                )
                .order_by(QuarantinedRow.id)
            )
            for key, run_id, reasons in found:
                run, before = latest.get(key, (None, []))
                merged = [*before, *(r for r in reasons if r not in before)] if run == run_id else list(reasons)
                latest[key] = (run_id, merged)  # a key's rows of one run together (a duplicated key is two rows)
    return {key: latest[key][1] if key in latest else [] for key in keys}


def notices_holding(hub: Hub, run_id: str) -> list[tuple[Notice, int]]:
    """The quality notices that name a run's quarantined rows (its own, and earlier ones still holding
    rows that failed again), each with how many of the run's row keys it names; oldest first."""
    with hub.db() as s:
        run = s.get(Run, run_id)
        if run is None:
            return []
        failed = set(s.scalars(select(QuarantinedRow.row_key).where(QuarantinedRow.run_id == run_id)))
        if not failed:
            return []
        found = s.scalars(
            select(Notice).where(Notice.resource_id == run.resource_id, Notice.kind == "quality").order_by(Notice.id)
        )
        return [(n, len(failed.intersection(n.row_keys))) for n in found if failed.intersection(n.row_keys)]


def expected(hub: Hub, resource_id: str, rules: Iterable[str]) -> dict[str, str]:
    """What a correct value looks like, for each of these rules, in Chinese."""
    resource = hub.catalogue.resources.get(resource_id)  # None: no longer in the catalogue
    return {rule: why.expected(rule, resource) for rule in sorted(set(rules))}


def explained(hub: Hub, resource_id: str, rules: Iterable[str]) -> dict[str, str]:
    """Each of these rules as a sentence for a clerk, with the field's title and the rule's name."""
    resource = hub.catalogue.resources.get(resource_id)
    return {rule: why.explain(rule, resource) for rule in sorted(set(rules))}


def notify(hub: Hub, run_id: str) -> dict[str, int]:
    """After a successful run: raise its notice, resolve what passed, send the outbox."""
    notice = raise_quality_notice(hub, run_id)
    closed = resolve_passed(hub, run_id) + resolve_delivered(hub, run_id)
    sent, queued = deliver(hub)
    return {"notice": notice.id if notice else 0, "resolved": len(closed), "sent": sent, "queued": queued}
