"""Grants running out: each consumer's department is told, once per grant, ahead of the end by as many
working days as a conditional application's steps may take, so that applying again keeps its service
going; a reminder a renewal made needless is resolved."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from sharehub.access.callers import PLATFORM
from sharehub.hub import Hub
from sharehub.metadata.models import Consumer, Grant, Notice, utcnow
from sharehub.notices import file_notice, resolve
from sharehub.workdays import china_time

# A grant's department is told it runs out as many working days ahead as a conditional application's
# two steps may take, so that applying again keeps its service going.
RENEWAL_STEPS = ("application_review", "provider_decision")


def remind_expiring(hub: Hub, now: datetime | None = None) -> list[int]:
    """Tell each consumer's department, once per grant, that a grant runs out within the renewal lead time
    (the working days of `RENEWAL_STEPS` in the profile); return the grants reminded. A reminder for a
    grant that has run out, or that a newer grant renewed, is resolved."""
    now = now or utcnow()
    lead = sum(hub.profile.deadlines[step].working_days for step in RENEWAL_STEPS)
    horizon = hub.calendar.deadline(now, lead)
    reminded = []
    with hub.db() as s:
        settle_reminders(s, now)
        due = select(Grant).where(
            Grant.revoked_at.is_(None),
            Grant.reminded_at.is_(None),
            Grant.valid_until > now,
            Grant.valid_until <= horizon,
        )
        for grant in s.scalars(due):
            if _renewed(s, grant):
                grant.reminded_at = now  # a newer grant covers it: nothing to tell
                continue
            consumer = s.get(Consumer, grant.consumer_id)
            dept = hub.catalogue.departments.get(consumer.department) if consumer else None
            name = consumer.name if consumer else f"consumer {grant.consumer_id}"
            notice = Notice(
                kind="grant_expiring",
                department=consumer.department if consumer else PLATFORM,
                resource_id=grant.resource_id,
                run_id=None,
                created_at=now,
                deadline=grant.valid_until,
                status="open",
                subject=f"[sharehub] 授权 #{grant.id}（{grant.resource_id}）将于 {china_time(grant.valid_until)} 到期",
                body=(
                    f"{dept.name if dept else name}：\n\n"
                    f"贵部门应用“{name}”对 {grant.resource_id} 的授权 #{grant.id}"
                    f"（字段 {', '.join(grant.fields)}；方式 {', '.join(grant.modes)}；用途 {grant.purpose}）"
                    f"将于 {china_time(grant.valid_until, '%Y-%m-%d %H:%M')}（北京时间）到期，到期后调用将被拒绝。\n"
                    f"如需继续使用，请在到期前重新申请：POST /applications（有条件共享的资源需经平台审核和提供部门"
                    f"授权，最长约 {lead} 个工作日）。新授权生效后，本通知自动办结。"
                ),
                row_keys=[str(grant.id)],
                pending_keys=[str(grant.id)],
            )
            file_notice(s, notice, dept.contact_email if dept else hub.settings.platform_email)
            grant.reminded_at = now
            reminded.append(grant.id)
    return reminded


def _renewed(s: Session, grant: Grant) -> bool:
    """Whether a newer grant of the same consumer on the same resource runs on past this one."""
    later = select(Grant.id).where(
        Grant.consumer_id == grant.consumer_id,
        Grant.resource_id == grant.resource_id,
        Grant.id != grant.id,
        Grant.revoked_at.is_(None),
        Grant.valid_until > grant.valid_until,
    )
    return s.scalar(later.limit(1)) is not None


def settle_reminders(s: Session, now: datetime, resource_id: str | None = None) -> None:
    """Resolve the open reminders (of one resource's grants, or all) whose grant has run out, been revoked
    or been renewed."""
    q = select(Notice).where(Notice.kind == "grant_expiring", Notice.status == "open")
    for notice in s.scalars(q if resource_id is None else q.where(Notice.resource_id == resource_id)):
        grant = s.get(Grant, int(notice.pending_keys[0])) if notice.pending_keys else None
        if grant is None or grant.valid_until <= now or grant.revoked_at is not None or _renewed(s, grant):
            resolve(notice, now)
