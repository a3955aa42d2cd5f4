"""Use beyond a grant that the platform can see (Lichuan 31(4): shared data used beyond its granted
purpose; Hengyang 26): a day on which a grant's calls ran far beyond the volume its application declared.
Each such grant-day is raised once as a rectification item: a notice to the consumer's department with the
profile's rectification deadline, counted in its statistics (`use_beyond_declared`).

What the platform cannot see it does not guess at: what a consumer does with an answer once it has it,
and whether data it copied was published elsewhere."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from sharehub.access.callers import PLATFORM
from sharehub.hub import Hub
from sharehub.metadata.models import AuditEntry, Consumer, Grant, Notice, utcnow
from sharehub.notices import ask
from sharehub.workdays import CHINA, due_text

OVERUSE_FACTOR = 3  # a day's calls above this many times the declared volume are raised
SERVING = ("verification", "query", "extract")
ANSWERED_REFUSED = ("denied", "rate_limited", "bad_request")


def detect_overuse(hub: Hub, day: date | None = None) -> list[int]:
    """Raise the grants whose answered calls on `day` (China time; default yesterday) exceeded
    `OVERUSE_FACTOR` times their declared daily volume; return the notices made (none twice per grant-day)."""
    day = day or (utcnow().astimezone(CHINA) - timedelta(days=1)).date()
    start = datetime.combine(day, datetime.min.time(), CHINA)
    end = start + timedelta(days=1)
    made = []
    with hub.db() as s:
        counted = s.execute(
            select(AuditEntry.grant_id, func.count())
            .where(
                AuditEntry.at >= start,
                AuditEntry.at < end,
                AuditEntry.action.in_(SERVING),
                AuditEntry.result.not_in(ANSWERED_REFUSED),
                AuditEntry.grant_id.is_not(None),
            )
            .group_by(AuditEntry.grant_id)
        ).all()
        for grant_id, calls in counted:
            grant = s.get(Grant, grant_id)
            if grant is None or grant.expected_calls_per_day is None:
                continue
            if calls <= OVERUSE_FACTOR * grant.expected_calls_per_day:
                continue
            key = f"grant {grant.id} {day:%Y-%m-%d}"
            raised = s.scalars(select(Notice).where(Notice.kind == "overuse", Notice.resource_id == grant.resource_id))
            if any(key in (n.row_keys or []) for n in raised):
                continue
            made.append(_raise(hub, s, grant, calls, day, key))
    return made


def _raise(hub: Hub, s: Session, grant: Grant, calls: int, day: date, key: str) -> int:
    """The rectification item for one grant-day, to the consumer's department; its notice id."""
    consumer = s.get(Consumer, grant.consumer_id)
    department = consumer.department if consumer else PLATFORM
    dept = hub.catalogue.departments.get(department)
    app_name = consumer.name if consumer else f"consumer {grant.consumer_id}"
    rule = hub.profile.deadlines["rectification"]
    deadline = hub.calendar.deadline(utcnow(), rule.working_days)
    notice = ask(
        s,
        kind="overuse",
        department=department,
        resource_id=grant.resource_id,
        deadline=deadline,
        subject=f"[sharehub] 授权 #{grant.id}（{grant.resource_id}）{day:%Y-%m-%d} 调用量远超申报用量，请说明并整改",
        body=(
            f"{dept.name if dept else department}：\n\n贵部门应用“{app_name}”依授权 #{grant.id}"
            f"（用途：{grant.purpose}）申报每日约 {grant.expected_calls_per_day:,} 次调用，"
            f"{day:%Y-%m-%d} 实际调用 {calls:,} 次，超过申报量的 {OVERUSE_FACTOR} 倍，"
            "可能超出授权用途使用共享数据。\n"
            f"请在 {due_text(deadline)}（北京时间）前，即 {rule.working_days} 个工作日内向平台管理部门说明并整改"
            f"（依据：{hub.profile.cite('rectification')}）；用量确需增加的，请重新申请。"
        ),
        keys=[key],
        recipient=dept.contact_email if dept else hub.settings.platform_email,
    )
    return notice.id
