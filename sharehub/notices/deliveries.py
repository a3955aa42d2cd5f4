"""Delivery notices: a resource whose data did not arrive in its update period, and their settling."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import func, select

from sharehub import audit
from sharehub.access.callers import PLATFORM, Caller
from sharehub.catalogue.models import Resource
from sharehub.errors import Forbidden, Invalid, NotFound, WrongState
from sharehub.hub import Hub
from sharehub.metadata.models import DeliveryFiling, Notice, Run, utcnow
from sharehub.notices.core import OPEN, file_notice, tell
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
        days = delivery_days(hub, resource)
        ended = last_due_period_end(hub, now, resource.update.frequency, days)
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
            filed = s.scalar(
                select(DeliveryFiling.due_after).where(
                    DeliveryFiling.resource_id == resource.id, DeliveryFiling.period_end == ended
                )
            )
        if pending is not None or (last is not None and last >= ended) or (filed is not None and filed > now):
            continue
        due = filed or hub.calendar.deadline(ended, days)
        raised.append(_delivery_notice(hub, resource, ended, due, last, now, filed is not None).id)
    return raised


def delivery_days(hub: Hub, resource: Resource) -> int:
    """The working days the resource's department has to deliver a period's data: the catalogue's, cut to
    the active profile's limit where the regulation sets one (Zhejiang 25: 2 working days)."""
    return hub.profile.delivery_days(resource.update.deadline_working_days)


FILING_MAX_WORKING_DAYS = 10  # a filing moves a due date by at most this: later than that is rectification


def file_delivery(
    hub: Hub, caller: Caller, resource_id: str, due: datetime, reason: str, now: datetime | None = None
) -> DeliveryFiling:
    """The providing department reports ahead (报备) that a period's data will be late, moving its due date
    to `due`: the period whose data is due next (the latest ended, if its data has not arrived, else the
    current one). Refused once that data is already late, and for more than `FILING_MAX_WORKING_DAYS`.
    The platform office is told, and the filing is audited."""
    resource = hub.catalogue.resources.get(resource_id)
    if resource is None or caller.role != "provider" or caller.department != resource.provider:
        raise NotFound(f"no resource {resource_id} of yours")  # a department files for its own resources only
    if len(reason.strip()) < 4:
        raise Invalid(f"{resource_id}: a filing (报备) states why the data will be late")
    if due.tzinfo is None:
        raise Invalid(f"{resource_id}: the new due date needs a time zone")
    now = now or utcnow()
    days = delivery_days(hub, resource)
    frequency = resource.update.frequency
    period_end = period_start(now, frequency)
    with hub.db() as s:
        last = s.scalar(
            select(func.max(Run.finished_at)).where(Run.resource_id == resource.id, Run.status == "succeeded")
        )
        if last is not None and last >= period_end:
            period_end = next_boundary(period_end, frequency)  # that period arrived: the filing is for the next
        due_before = hub.calendar.deadline(period_end, days)
        if due_before <= now:
            raise WrongState(
                f"{resource_id}: the data up to {china_time(period_end, '%Y-%m-%d %H:%M')} was due "
                f"{due_text(due_before)} and is late already; a filing is made ahead, so answer the delivery notice"
            )
        latest = hub.calendar.deadline(due_before, FILING_MAX_WORKING_DAYS)
        if not due_before < due <= latest:
            raise Invalid(
                f"{resource_id}: the new due date must fall after {due_text(due_before)} and by {due_text(latest)}"
            )
        if s.scalar(
            select(DeliveryFiling.id).where(
                DeliveryFiling.resource_id == resource.id, DeliveryFiling.period_end == period_end
            )
        ):
            raise WrongState(f"{resource_id}: the period up to {period_end:%Y-%m-%d %H:%M} has a filing already")
        filing = DeliveryFiling(
            resource_id=resource.id,
            department=caller.department,
            period_end=period_end,
            due_before=due_before,
            due_after=due,
            reason=reason.strip(),
            filed_by=caller.name,
            filed_at=now,
        )
        s.add(filing)
        s.flush()
        basis = hub.profile.cite("advance_filing")
        tell(
            s,
            kind="delivery_filing",
            department=PLATFORM,
            resource_id=resource.id,
            subject=f"[sharehub] {caller.department} 报备：{resource.id} 本期数据将于 {due_text(due)} 前报送",
            body=(
                f"平台管理部门：\n\n{caller.department}（{caller.name}）报备：资源 {resource.id} 截至 "
                f"{china_time(period_end, '%Y-%m-%d %H:%M')} 的数据原应在 {due_text(due_before)} 前报送，"
                f"将推迟至 {due_text(due)}。原因：{reason.strip()}\n依据：{basis}。报备 #{filing.id}。"
            ),
            recipient=hub.settings.platform_email,
        )
    audit.record(hub, "delivery_filing", caller, resource.id, result="filed", detail=f"filing {filing.id}")
    log.info("delivery filing %s: %s moves a due date by filing", filing.id, resource.id)
    return filing


def list_filings(hub: Hub, caller: Caller, resource_id: str | None = None) -> list[DeliveryFiling]:
    """The filings the caller may see, newest first: a department its own, the platform office all."""
    if caller.role == "consumer":
        raise Forbidden("delivery filings are the providing departments' and the platform office's business")
    q = select(DeliveryFiling).order_by(DeliveryFiling.id.desc())
    if caller.role == "provider":
        q = q.where(DeliveryFiling.department == caller.department)
    if resource_id is not None:
        q = q.where(DeliveryFiling.resource_id == resource_id)
    with hub.db() as s:
        return list(s.scalars(q))


def next_boundary(boundary: datetime, frequency: str) -> datetime:
    """The start of the update period after the one that starts at `boundary`."""
    if frequency in ("realtime", "hourly"):
        return boundary + timedelta(hours=1)
    if frequency == "weekly":
        return boundary + timedelta(days=7)
    if frequency == "monthly":
        return (boundary + timedelta(days=32)).replace(day=1)
    return boundary + timedelta(days=1)


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
    hub: Hub, resource: Resource, start: datetime, due: datetime, last: datetime | None, now: datetime, filed: bool
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
            + ("（已报备推迟至此）" if filed else f"（{delivery_days(hub, resource)} 个工作日）")
            + f"，至今未收到。最近一次成功报送：{last_text}。",
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
    """A run succeeded: close its resource's open delivery notices, those asking for a conditional
    resource's data after a grant, and those ordering a record corrected after an objection (the run
    carries the correction); return their ids."""
    with hub.db() as s:
        run = s.get(Run, run_id)
        assert run is not None and run.status == "succeeded"
        open_ = list(
            s.scalars(
                select(Notice).where(
                    Notice.resource_id == run.resource_id,
                    Notice.kind.in_(("delivery", "conditional_delivery", "objection_correction")),
                    Notice.status.in_(OPEN),
                )
            )
        )
        for notice in open_:
            notice.status, notice.resolved_at, notice.resolved_by_run = "resolved", utcnow(), run_id
        return [n.id for n in open_]
