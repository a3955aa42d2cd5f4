"""Notices to provider departments: quarantined rows by key, masked samples, rules, and a deadline.

A notice is written once per run (retries find it), queued in an outbox once per recipient, and
sent over SMTP. It resolves itself when its rows pass in a later run; rows still bad keep it open.
A row that fails again is not notified again: it stays on the notice that named it, with that notice's
deadline, and a later run's notice names only the rows no open notice or pending dispute holds.
"""

from __future__ import annotations

import logging
import smtplib
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage

from sqlalchemy import ColumnElement, select
from sqlalchemy.orm import Session

from sharehub import audit
from sharehub.access.consumers import PLATFORM, Caller
from sharehub.catalogue.models import Classification, Resource
from sharehub.errors import Invalid, NotFound
from sharehub.hub import Hub
from sharehub.metadata.models import Conflict, Notice, OutboxMessage, QuarantinedRow, RowDispute, Run, utcnow
from sharehub.paging import Page, newest_first
from sharehub.pipeline import paths
from sharehub.pipeline import reasons as why
from sharehub.pipeline.rowkeys import ROW, UNIQUE_RULE, key_strings
from sharehub.serving.masking import mask_field
from sharehub.settings import Settings
from sharehub.workdays import CHINA, china_time, due_text

log = logging.getLogger(__name__)
SAMPLE_ROWS = 20
OPEN = ("open", "acknowledged", "overdue")


def file_notice(s: Session, notice: Notice, recipient: str) -> Notice:
    """Store a notice and queue its e-mail in the outbox, in the caller's transaction."""
    s.add(notice)
    s.flush()
    s.add(OutboxMessage(notice_id=notice.id, recipient=recipient))
    return notice


def ask(
    s: Session,
    *,
    kind: str,
    department: str,
    resource_id: str,
    deadline: datetime,
    subject: str,
    body: str,
    keys: list[str],
    recipient: str,
) -> Notice:
    """An open notice asking a department to act on `keys` by `deadline`, with its e-mail queued."""
    notice = Notice(
        kind=kind,
        department=department,
        resource_id=resource_id,
        run_id=None,
        created_at=utcnow(),
        deadline=deadline,
        status="open",
        subject=subject,
        body=body,
        row_keys=keys,
        pending_keys=list(keys),
    )
    return file_notice(s, notice, recipient)


def resolve(notice: Notice | None, now: datetime) -> None:
    """A notice whose question was answered (or no longer stands): resolved, nothing left pending. A notice
    resolved already keeps its time, and none (a step that asked nobody) is nothing to do."""
    if notice is not None and notice.status != "resolved":
        notice.status, notice.resolved_at, notice.pending_keys = "resolved", now, []


def resolve_id(s: Session, notice_id: int | None, now: datetime) -> None:
    """`resolve` the notice with this id, where a step recorded one."""
    resolve(s.get(Notice, notice_id) if notice_id else None, now)


def addressee(hub: Hub, department: str) -> tuple[str, str]:
    """How a notice to a department opens and where its e-mail goes: the catalogue's name and contact, or,
    for a department the catalogue does not list, its id and the platform office's address."""
    dept = hub.catalogue.departments.get(department)
    return (dept.name, dept.contact_email) if dept else (department, hub.settings.platform_email)


def tell(
    s: Session, *, kind: str, department: str, resource_id: str, subject: str, body: str, recipient: str
) -> Notice:
    """A notice that only informs (resolved as it is made), with its e-mail queued."""
    now = utcnow()
    notice = Notice(
        kind=kind,
        department=department,
        resource_id=resource_id,
        run_id=None,
        created_at=now,
        deadline=now,
        status="resolved",
        resolved_at=now,
        subject=subject,
        body=body,
        row_keys=[],
        pending_keys=[],
    )
    return file_notice(s, notice, recipient)


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


def mark_overdue(hub: Hub, now: datetime | None = None) -> list[int]:
    """Notices past their deadline become overdue and are escalated to the platform office; return their ids.

    A conflict notice asks for feedback (Zhejiang 28: 核实反馈): it runs overdue only while one of its
    conflicts still has none, neither a correction (the conflict closed) nor a reply holding the value
    right (`sharehub conflicts reply`), nor a decision; feedback given in time leaves the notice open,
    waiting for the platform office's decision, not late.
    """
    now = now or utcnow()
    with hub.db() as s:
        due = select(Notice).where(Notice.status.in_(("open", "acknowledged")), Notice.deadline < now)
        asked = (
            "quality",
            "delivery",
            "objection",
            "open_request",
            "conflict_decision",
            "upstream_request",
            "application_contest",
        )
        late = list(s.scalars(due.where(Notice.kind.in_(asked))))
        late += [n for n in s.scalars(due.where(Notice.kind == "conflict")) if _feedback_owed(s, n)]
        for n in late:
            n.status = "overdue"
    for n in late:
        if n.department != PLATFORM:  # the platform office's own late work shows as overdue; it is not told of it
            escalate(hub, n, now)
    return [n.id for n in late]


def _feedback_owed(s: Session, notice: Notice) -> bool:
    """Whether a conflict notice's department still owes feedback on one of its conflicts: to the copy's
    holder, a conflict still open with no reply; to the authority (asked to check its value), one under
    verification that it has not replied to."""
    held = select(Conflict.id).where(
        Conflict.notice_id == notice.id, Conflict.status == "open", Conflict.reply.is_(None)
    )
    asked = select(Conflict.id).where(
        Conflict.authority_notice_id == notice.id,
        Conflict.status == "verifying",
        Conflict.authority_reply.is_(None),
    )
    return s.scalar(held.limit(1)) is not None or s.scalar(asked.limit(1)) is not None


def escalate(hub: Hub, notice: Notice, now: datetime) -> Notice:
    """Tell the platform office that a department let a notice run past its deadline (once per notice)."""
    with hub.db() as s:
        found = s.scalar(select(Notice).where(Notice.parent_id == notice.id, Notice.kind == "escalation"))
        if found is not None:
            return found
        dept = hub.catalogue.departments.get(notice.department)
        rule = hub.profile.deadlines["rectification"]
        body = "\n".join(
            [
                "平台管理部门：",
                "",
                f"{dept.name if dept else notice.department}未在 {due_text(notice.deadline)} 前"
                + {
                    "quality": f"更正资源 {notice.resource_id} 的 {len(notice.pending_keys):,} 行数据",
                    "delivery": f"报送资源 {notice.resource_id} 的更新数据",
                    "objection": f"答复对资源 {notice.resource_id} 的数据疑义",
                    "open_request": f"答复对资源 {notice.resource_id} 的依申请开放请求",
                    "conflict": f"核实反馈资源 {notice.resource_id} 与权威来源不一致的数据",
                    "conflict_decision": f"按平台裁定更正资源 {notice.resource_id} 的数据",
                }.get(notice.kind, f"处理资源 {notice.resource_id} 的通知")
                + f"（通知 #{notice.id}），已逾期。",
                f"整改时限依据：{rule.basis}。请督促整改，并计入部门考核（利川办法第三十一条；衡阳办法第二十六条）。",
                f"明细：sharehub notices show {notice.id}",
            ]
        )
        escalation = Notice(
            kind="escalation",
            department="platform",
            resource_id=notice.resource_id,
            run_id=notice.run_id,
            parent_id=notice.id,
            created_at=now,
            deadline=hub.calendar.deadline(now, rule.working_days),
            status="open",
            subject=f"[sharehub] 逾期未整改：{notice.department} · {notice.resource_id}（通知 #{notice.id}）",
            body=body,
            row_keys=[],
            pending_keys=list(notice.pending_keys),
        )
        file_notice(s, escalation, hub.settings.platform_email)
    log.info("notice %s overdue: escalated as %s", notice.id, escalation.id)
    return escalation


def _addressed(s: Session, notice_id: int, department: str | None) -> Notice:
    """The notice, if it is to `department` (None: whoever asks, as the hub's own command line does);
    LookupError if there is none or it is another department's: a department's list shows its own only,
    and an id must not tell whether another department was notified."""
    notice = s.get(Notice, notice_id)
    if notice is None or (department is not None and notice.department != department):
        raise NotFound(f"no notice {notice_id}")
    return notice


def dispute(
    hub: Hub, notice_id: int, row_key: str, reason: str, department: str | None = None, *, actor: Caller | None = None
) -> Notice:
    """The department confirms a row is correct and the rule wrong: it leaves the notice and awaits review.

    A reason is required; the platform office sees every dispute (`sharehub notices disputes`). Only a
    quality notice lists rows that rules failed; a conflict is answered by correcting the copy, or by
    replying to the conflict.
    """
    if len(reason.strip()) < 4:
        raise Invalid("a dispute needs a reason the platform can review")
    with hub.db() as s:
        notice = _addressed(s, notice_id, department)
        if notice.kind != "quality":
            raise Invalid(f"notice {notice_id} is a {notice.kind} notice: only a quality notice's rows are disputed")
        if row_key not in notice.pending_keys:
            raise NotFound(f"notice {notice_id} has no pending row with that key")
        failed = s.scalar(
            select(QuarantinedRow.reasons).where(
                QuarantinedRow.run_id == notice.run_id, QuarantinedRow.row_key == row_key
            )
        )
        s.add(
            RowDispute(
                notice_id=notice_id,
                department=notice.department,
                resource_id=notice.resource_id,
                row_key=row_key,
                rules=[r for r in failed or [] if why.is_rule(r) and not r.startswith(UNIQUE_RULE)],
                reason=reason.strip(),
            )
        )
        notice.pending_keys = [k for k in notice.pending_keys if k != row_key]
        if not notice.pending_keys:
            notice.status, notice.resolved_at = "resolved", utcnow()
    audit.record(
        hub,
        "notice_dispute",
        actor,
        notice.resource_id,
        record_key=row_key,
        result="disputed",
        detail=f"notice {notice.id}",
    )
    return notice


def decide_dispute(
    hub: Hub, dispute_id: int, *, accept: bool, by: str, reason: str, actor: Caller | None = None
) -> RowDispute:
    """The platform office's decision on a disputed row, with who decided and why.

    Accepted: the rules the row failed are waived for that key of that resource, so later runs let it
    pass those rules (it still has to pass every other one; see `sharehub.pipeline.gate.waivers`).
    Rejected: the row goes back on its notice, which reopens if it had closed, and the department
    must correct it.
    """
    if len(reason.strip()) < 4 or not by.strip():
        raise Invalid("a decision needs the name of who decided and a reason")
    with hub.db() as s:
        found = s.get(RowDispute, dispute_id)
        if found is None:
            raise NotFound(f"no dispute {dispute_id}")
        if found.review != "pending":
            raise Invalid(f"dispute {dispute_id} was already {found.review} by {found.decided_by}")
        found.review = "accepted" if accept else "rejected"
        found.decided_by, found.decided_at, found.decision_reason = by.strip(), utcnow(), reason.strip()
        if not accept:
            notice = s.get(Notice, found.notice_id)
            assert notice is not None
            notice.pending_keys = [*notice.pending_keys, found.row_key]
            if notice.status == "resolved":
                overdue = notice.deadline < utcnow()
                notice.status, notice.resolved_at = ("overdue" if overdue else "open"), None
    audit.record(
        hub,
        "dispute_decision",
        actor,
        found.resource_id,
        record_key=found.row_key,
        result=found.review,
        detail=f"dispute {found.id} on notice {found.notice_id}",
    )
    return found


def check_deliveries(hub: Hub, now: datetime | None = None) -> list[int]:
    """Raise a notice for each resource whose data for a past period is past its delivery deadline.

    Periods are days, weeks (from Monday), months or hours in China time, as the resource's update
    frequency says. A period's data is due `deadline_working_days` working days after it ends, and
    counts as delivered by any run that succeeds after it ends. One delivery notice per resource
    stays open until a run succeeds (`resolve_delivered`).
    """
    now = now or utcnow()
    raised = []
    for resource in hub.catalogue.resources.values():
        ended = last_due_period_end(hub, now, resource.update.frequency, resource.update.deadline_working_days)
        with hub.db() as s:
            last = s.scalar(
                select(Run.finished_at)
                .where(Run.resource_id == resource.id, Run.status == "succeeded")
                .order_by(Run.finished_at.desc())
                .limit(1)
            )
            pending = s.scalar(
                select(Notice.id).where(
                    Notice.resource_id == resource.id, Notice.kind == "delivery", Notice.status.in_(OPEN)
                )
            )
        if pending is not None or (last is not None and last >= ended):
            continue
        due = hub.calendar.deadline(ended, resource.update.deadline_working_days)
        raised.append(_delivery_notice(hub, resource, ended, due, last, now).id)
    return raised


def last_due_period_end(hub: Hub, now: datetime, frequency: str, working_days: int) -> datetime:
    """The end of the latest update period whose data was due by `now`."""
    end = period_start(now, frequency)
    while hub.calendar.deadline(end, working_days) > now:
        end = previous_boundary(end, frequency)
    return end


def previous_boundary(boundary: datetime, frequency: str) -> datetime:
    """The start of the update period before the one that starts at `boundary`."""
    if frequency in ("realtime", "hourly"):
        return boundary - timedelta(hours=1)
    if frequency == "weekly":
        return boundary - timedelta(days=7)
    if frequency == "monthly":
        return (boundary - timedelta(days=1)).replace(day=1)
    return boundary - timedelta(days=1)


def period_start(now: datetime, frequency: str) -> datetime:
    """The start, in China time, of the update period that `now` falls in."""
    local = now.astimezone(CHINA)
    if frequency in ("realtime", "hourly"):
        return local.replace(minute=0, second=0, microsecond=0)
    day = local.replace(hour=0, minute=0, second=0, microsecond=0)
    if frequency == "weekly":
        return day - timedelta(days=day.weekday())
    if frequency == "monthly":
        return day.replace(day=1)
    return day


def _delivery_notice(
    hub: Hub, resource: Resource, start: datetime, due: datetime, last: datetime | None, now: datetime
) -> Notice:
    department = hub.catalogue.departments[resource.provider]
    rule = hub.profile.deadlines["rectification"]
    deadline = hub.calendar.deadline(now, rule.working_days)
    last_text = china_time(last, "%Y-%m-%d %H:%M") if last else "从未成功"
    body = "\n".join(
        [
            f"{department.name}：",
            "",
            f"资源 {resource.id}（{resource.title}）按目录应{_FREQUENCY[resource.update.frequency]}更新，"
            f"截至 {start:%Y-%m-%d %H:%M} 的数据应在 {due_text(due)} 前报送"
            f"（{resource.update.deadline_working_days} 个工作日），至今未收到。最近一次成功报送：{last_text}。",
            f"请在 {due_text(deadline)}（北京时间）前报送，即 {rule.working_days} 个工作日；依据：{rule.basis}。",
            "前置库恢复报送、下一次运行成功后，本通知自动办结。",
        ]
    )
    with hub.db() as s:
        notice = Notice(
            kind="delivery",
            department=department.id,
            resource_id=resource.id,
            run_id=None,
            created_at=now,
            deadline=deadline,
            status="open",
            subject=f"[sharehub] {resource.id}: 本期数据未按时报送，请于 {due_text(deadline)} 前报送",
            body=body,
            row_keys=[],
            pending_keys=[],
        )
        file_notice(s, notice, department.contact_email)
    log.info("delivery notice %s: %s has no data since %s", notice.id, resource.id, start)
    return notice


_FREQUENCY = {"realtime": "实时", "hourly": "每小时", "daily": "每日", "weekly": "每周", "monthly": "每月"}


def resolve_delivered(hub: Hub, run_id: str) -> list[int]:
    """A run succeeded: close its resource's open delivery notices; return their ids."""
    with hub.db() as s:
        run = s.get(Run, run_id)
        assert run is not None and run.status == "succeeded"
        open_ = list(
            s.scalars(
                select(Notice).where(
                    Notice.resource_id == run.resource_id, Notice.kind == "delivery", Notice.status.in_(OPEN)
                )
            )
        )
        for notice in open_:
            notice.status, notice.resolved_at, notice.resolved_by_run = "resolved", utcnow(), run_id
        return [n.id for n in open_]


def list_disputes(
    hub: Hub,
    review: str | None = "pending",
    *,
    department: str | None = None,
    limit: int | None = None,
    before: int | None = None,
    only: int | None = None,
) -> Page[RowDispute]:
    """Disputed rows, newest first: those awaiting the platform office's review, or decided ones (`review`
    None: all); of one department's notices, or every department's."""
    with hub.db() as s:
        q = select(RowDispute)
        if review:
            q = q.where(RowDispute.review == review)
        if department:
            q = q.where(RowDispute.department == department)
        return newest_first(s, q, RowDispute.id, limit, before, only)


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


def get_notice(hub: Hub, notice_id: int, department: str | None = None) -> Notice:
    """One notice, if it is to `department` (None: any)."""
    with hub.db() as s:
        return _addressed(s, notice_id, department)


def acknowledge(hub: Hub, notice_id: int, department: str | None = None, *, actor: Caller | None = None) -> Notice:
    """The department has seen the notice and is working on it (audited as `actor`'s)."""
    with hub.db() as s:
        notice = _addressed(s, notice_id, department)
        if notice.status == "open":
            notice.status = "acknowledged"
    audit.record(hub, "notice_ack", actor, notice.resource_id, result=notice.status, detail=f"notice {notice.id}")
    return notice


# Refusals of one message; anything else is the server's (unreachable, refused, dropped) and ends the round.
_ONE_MESSAGE = (smtplib.SMTPRecipientsRefused, smtplib.SMTPSenderRefused, smtplib.SMTPDataError)


def deliver(hub: Hub) -> tuple[int, int]:
    """Send queued e-mails over SMTP; return (sent, still queued). Without an SMTP host nothing is sent.

    One connection carries every queued message. A message the server refuses stays queued with its
    error, and the others go on; a server that cannot be reached, or that drops the connection, ends the
    round at once (one timeout, not one per message), and what was not sent stays queued for the next.
    """
    settings = hub.settings
    with hub.db() as s:
        queued = list(s.scalars(select(OutboxMessage).where(OutboxMessage.sent_at.is_(None))))
        notices = {n.id: n for n in s.scalars(select(Notice).where(Notice.id.in_([m.notice_id for m in queued])))}
    if not queued or not settings.smtp_host:
        return 0, len(queued)
    sent: set[int] = set()
    failed: dict[int, str] = {}
    try:
        with smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=15) as smtp:
            if settings.smtp_starttls:
                smtp.starttls()
            if settings.smtp_user:
                smtp.login(settings.smtp_user, settings.smtp_password.get_secret_value())
            for msg in queued:
                try:
                    smtp.send_message(_email(settings, notices[msg.notice_id], msg))
                except _ONE_MESSAGE as exc:
                    log.warning("notice %s not sent to its department yet: %s", msg.notice_id, type(exc).__name__)
                    failed[msg.id] = _error(exc)
                    continue
                _attempted(hub, [msg.id], sent=True)  # at once: a crash later must not send it twice
                sent.add(msg.id)
    except (OSError, smtplib.SMTPException) as exc:
        left = [m.id for m in queued if m.id not in sent and m.id not in failed]
        log.warning(
            "SMTP server %s:%s: %s; %d e-mail(s) stay queued",
            settings.smtp_host,
            settings.smtp_port,
            type(exc).__name__,
            len(left),
        )
        failed |= dict.fromkeys(left, _error(exc))
    for error in set(failed.values()):
        _attempted(hub, [i for i, e in failed.items() if e == error], sent=False, error=error)
    return len(sent), len(queued) - len(sent)


def _email(settings: Settings, notice: Notice, msg: OutboxMessage) -> EmailMessage:
    email = EmailMessage()
    email["From"], email["To"], email["Subject"] = settings.smtp_sender, msg.recipient, notice.subject
    email["Message-ID"] = f"<sharehub-notice-{notice.id}-{msg.id}@sharehub>"
    email.set_content(notice.body)
    return email


def _error(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {str(exc)[:200]}"


def _attempted(hub: Hub, ids: list[int], *, sent: bool, error: str | None = None) -> None:
    """Count a delivery attempt on these outbox messages: sent now, or failed with this error."""
    with hub.db() as s:
        for row in s.scalars(select(OutboxMessage).where(OutboxMessage.id.in_(ids))):
            row.attempts += 1
            if sent:
                row.sent_at = utcnow()
            else:
                row.last_error = error


def notify(hub: Hub, run_id: str) -> dict[str, int]:
    """After a successful run: raise its notice, resolve what passed, send the outbox."""
    notice = raise_quality_notice(hub, run_id)
    closed = resolve_passed(hub, run_id) + resolve_delivered(hub, run_id)
    sent, queued = deliver(hub)
    return {"notice": notice.id if notice else 0, "resolved": len(closed), "sent": sent, "queued": queued}


def list_notices(
    hub: Hub,
    department: str | None = None,
    status: str | None = None,
    limit: int | None = None,
    before: int | None = None,
    kind: str | None = None,
) -> Page[Notice]:
    """Notices, newest first, of one department or all (and of one kind: quality, conflict, delivery,
    objection, application, ...): a page of `limit` below `before`."""
    with hub.db() as s:
        q = select(Notice)
        if department:
            q = q.where(Notice.department == department)
        if status:
            q = q.where(Notice.status == status)
        if kind:
            q = q.where(Notice.kind == kind)
        return newest_first(s, q, Notice.id, limit, before)
