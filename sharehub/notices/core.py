"""Filing notices: asking a department to act by a deadline, telling it something, marking notices
overdue and escalating them; reading a department's own notices."""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from sharehub import audit
from sharehub.access.consumers import PLATFORM, Caller
from sharehub.errors import NotFound
from sharehub.hub import Hub
from sharehub.metadata.models import Conflict, Notice, OutboxMessage, utcnow
from sharehub.paging import Page, newest_first
from sharehub.workdays import due_text

log = logging.getLogger(__name__)


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
            "conditional_delivery",
            "objection",
            "objection_correction",
            "reclassification",
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
                    "conditional_delivery": f"提供已授权的有条件共享资源 {notice.resource_id} 的数据",
                    "objection": f"答复对资源 {notice.resource_id} 的数据疑义",
                    "objection_correction": f"按平台审核更正资源 {notice.resource_id} 中有疑义的记录",
                    "reclassification": f"将资源 {notice.resource_id} 变更为共享属性",
                    "open_request": f"答复对资源 {notice.resource_id} 的依申请开放请求",
                    "conflict": f"核实反馈资源 {notice.resource_id} 与权威来源不一致的数据",
                    "conflict_decision": f"按平台裁定更正资源 {notice.resource_id} 的数据",
                }.get(notice.kind, f"处理资源 {notice.resource_id} 的通知")
                + f"（通知 #{notice.id}），已逾期。",
                f"整改时限依据：{rule.basis}。请督促整改（依据：{hub.profile.cite('rectification')}）。",
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
