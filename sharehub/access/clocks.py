"""The clocks of the application workflow: a step (the platform office's review, the provider's decision)
left past its deadline, and an applicant not told the outcome within the profile's `notify_applicant`
limit. Each is marked against the department that owed it and escalated to the platform office once;
the daily DAG task and `sharehub applications check` run them."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from sharehub.access.callers import PLATFORM
from sharehub.access.grants import STEP_NAME, STEP_RULE, provider_notices
from sharehub.hub import Hub
from sharehub.metadata.models import Application, Notice, OutboxMessage, utcnow
from sharehub.notices import file_notice
from sharehub.profiles import Deadline
from sharehub.workdays import china_time


def mark_overdue_steps(hub: Hub, now: datetime | None = None) -> list[int]:
    """Applications whose open step ran past its deadline: marked against the department, escalated once."""
    now = now or utcnow()
    late = []
    with hub.db() as s:
        for app in s.scalars(
            select(Application).where(Application.status.in_(tuple(STEP_RULE)), Application.overdue_at.is_(None))
        ):
            if app.step_deadline is not None and app.step_deadline < now:
                app.overdue_at = now
                app.overdue_department = PLATFORM if app.status == "review" else app.provider
                for asked in provider_notices(s, app):
                    asked.status = "overdue"
                rule = hub.profile.deadlines[STEP_RULE[app.status]]
                notice = Notice(
                    kind="escalation",
                    department=PLATFORM,
                    resource_id=app.resource_id,
                    run_id=None,
                    created_at=now,
                    deadline=now,
                    status="open",
                    subject=f"[sharehub] 数据申请 #{app.id}（{app.resource_id}）{STEP_NAME[app.status]}已逾期",
                    body=(
                        f"平台管理部门：\n\n{app.department} 对 {app.resource_id} 的数据申请 #{app.id} 在"
                        f"{STEP_NAME[app.status]}环节逾期（时限 {rule.working_days} 个工作日，依据：{rule.basis}）。"
                        f"逾期计入 {app.overdue_department} 的考核。"
                    ),
                    row_keys=[],
                    pending_keys=[],
                )
                file_notice(s, notice, hub.settings.platform_email)
                late.append(app.id)
    return late


def mark_told_late(hub: Hub, now: datetime | None = None) -> list[int]:
    """Applications whose applicant was not told the outcome within the profile's `notify_applicant` limit
    of the decision (Lichuan 20): the notice's e-mail has not left the outbox. Marked against the platform
    office, which tells applicants (the bulletin counts it among the office's steps overdue), and escalated
    to it once."""
    now = now or utcnow()
    rule = hub.profile.deadlines["notify_applicant"]
    # An applicant is told once the notice's e-mail leaves the outbox. (It can read the outcome over the API
    # at once, but nothing records that it did: a hub without SMTP is late to tell.) Those told are left out
    # here, in SQL, so the daily scan does not grow with every application ever decided.
    sent = select(OutboxMessage.id).where(
        OutboxMessage.notice_id == Application.told_notice_id, OutboxMessage.sent_at.is_not(None)
    )
    waiting = select(Application).where(
        Application.told_notice_id.is_not(None), Application.told_overdue_at.is_(None), ~sent.exists()
    )
    with hub.db() as s:
        late = [app.id for app in s.scalars(waiting) if _told_late(hub, s, app, rule, now)]
    return late


def _told_late(hub: Hub, s: Session, app: Application, rule: Deadline, now: datetime) -> bool:
    """Mark and escalate the application if its applicant was not told in time; whether it was late."""
    assert app.decided_at is not None and app.told_notice_id is not None
    if hub.calendar.deadline(app.decided_at, rule.working_days) >= now:
        return False
    app.told_overdue_at = now
    subject = f"[sharehub] 数据申请 #{app.id}（{app.resource_id}）的结果未按时告知申请部门"
    body = (
        f"平台管理部门：\n\n{app.department} 的数据申请 #{app.id}（{app.resource_id}）已于 "
        f"{china_time(app.decided_at, '%Y-%m-%d %H:%M')} 办结，但告知申请部门的通知 #{app.told_notice_id} "
        f"的邮件至今未发出。应在 {rule.working_days} 个工作日内告知"
        f"（依据：{rule.basis}）。逾期计入平台管理部门。\n请检查邮件服务：sharehub notices deliver"
    )
    escalation = Notice(
        kind="escalation",
        department=PLATFORM,
        resource_id=app.resource_id,
        run_id=None,
        parent_id=app.told_notice_id,
        created_at=now,
        deadline=now,
        status="open",
        subject=subject,
        body=body,
        row_keys=[],
        pending_keys=[],
    )
    file_notice(s, escalation, hub.settings.platform_email)
    return True
