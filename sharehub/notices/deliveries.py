"""Delivery notices: a resource whose data did not arrive in its update period, and their settling."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import select

from sharehub.catalogue.models import Resource
from sharehub.hub import Hub
from sharehub.metadata.models import Notice, Run, utcnow
from sharehub.notices.core import (
    OPEN,
    file_notice,
)
from sharehub.workdays import CHINA, china_time, due_text

log = logging.getLogger(__name__)


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
