"""Each provider department's score for a period: the quantity, timeliness, quality and use of what it
provides (Zhejiang 35; Hengyang 25: 对各部门提供信息的质量、数量、更新时效和使用情况进行评估并公布结果).

Four parts, each 0–100, and the score is their mean (a part with nothing to measure in the period, say
the use of a department whose resources are all 不予共享, is left out rather than counted as 0 or 100):
  - quantity (数量): of the resources the department provides, the share that delivered in the period
    (at least one successful run);
  - timeliness (更新时效): of the update periods that fell due in the period, the share delivered on
    time. A period (a day, week, month or hour in China time, as the catalogue's update frequency says)
    ends at E and is due `deadline_working_days` working days later; it is on time when a run
    succeeded between E and that deadline, the rule `check_deliveries` applies. Periods count from the
    resource's first run: the hub cannot hold a department to periods before it was connected;
  - quality (质量): the share of the rows landed in the period that passed the quality gate;
  - use (使用情况): of its shared resources (not 不予共享), the share that answered at least one serving
    call (verification, query, extract) in the period, from the audit chain.
Every figure behind each part is returned with it, so a department can see what its score is made of.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import func, select

from sharehub.catalogue.models import Resource
from sharehub.hub import Hub
from sharehub.metadata.models import AuditEntry, DeliveryFiling, Run, as_utc, utcnow
from sharehub.notices import period_start, previous_boundary
from sharehub.reporting.stats import REFUSED, SERVING
from sharehub.workdays import CHINA

PARTS = ("quantity", "timeliness", "quality", "use")


@dataclass
class Score:
    """One department's score for the period, with the figures it is computed from."""

    department: str
    resources: int = 0
    resources_delivering: int = 0
    periods_due: int = 0
    periods_on_time: int = 0
    rows_landed: int = 0
    rows_passed: int = 0
    resources_shared: int = 0
    resources_used: int = 0
    calls_answered: int = 0
    parts: dict[str, float | None] = field(default_factory=dict)
    score: float | None = None
    rank: int | None = None


def window(since: date | None, until: date | None, now: datetime | None = None) -> tuple[datetime, datetime]:
    """The period as moments: from 00:00 China time of `since` (default: 1 January of this year) to 24:00
    of `until` (default: now), never later than now."""
    now = now or utcnow()
    today = now.astimezone(CHINA).date()
    start = datetime.combine(since or date(today.year, 1, 1), datetime.min.time(), CHINA)
    end = (
        now
        if until is None or until >= today
        else datetime.combine(until + timedelta(days=1), datetime.min.time(), CHINA)
    )
    if start >= end:
        raise ValueError(f"the period is empty: it starts {start:%Y-%m-%d} and ends {end:%Y-%m-%d %H:%M}")
    return start, end


def _ratio(part: int, whole: int) -> float | None:
    return None if whole == 0 else round(100.0 * part / whole, 1)


def _periods(
    hub: Hub, resource: Resource, start: datetime, end: datetime, filed: dict[datetime, datetime]
) -> list[tuple[datetime, datetime]]:
    """(period end, its delivery deadline) of the resource's update periods that end at or after `start`
    and fall due by `end`, oldest first; a period filed for (报备: `filed`, period end → new due date) is
    due when its filing says."""
    update = resource.update
    days = hub.profile.delivery_days(update.deadline_working_days)
    out = []
    boundary = period_start(end, update.frequency)
    while boundary >= start:
        due = filed.get(boundary) or hub.calendar.deadline(boundary, days)
        if due <= end:
            out.append((boundary, due))
        boundary = previous_boundary(boundary, update.frequency)
    return out[::-1]


@dataclass
class ResourceFigures:
    """What one resource delivered and answered in the period: the counts scores and bulletins use."""

    resource_id: str
    provider: str
    shared: bool
    runs: int = 0
    runs_succeeded: int = 0
    periods_due: int = 0
    periods_on_time: int = 0
    rows_landed: int = 0
    rows_passed: int = 0
    calls_answered: int = 0
    last_delivered: datetime | None = None


def resource_figures(hub: Hub, start: datetime, end: datetime) -> list[ResourceFigures]:
    """Each catalogue resource's figures between two moments, in catalogue order."""
    with hub.db() as s:
        runs = s.execute(
            select(Run.resource_id, Run.status, Run.started_at, Run.finished_at, Run.rows_landed, Run.rows_quarantined)
        ).all()
        calls = s.execute(
            select(AuditEntry.resource_id, func.count())
            .where(
                AuditEntry.action.in_(SERVING),
                AuditEntry.result.not_in(REFUSED),
                AuditEntry.at >= start,
                AuditEntry.at < end,
            )
            .group_by(AuditEntry.resource_id)
        )
        answered: dict[str | None, int] = {rid: n for rid, n in calls}
        filings: dict[str, dict[datetime, datetime]] = {}
        for rid, period_end, due_after in s.execute(
            select(DeliveryFiling.resource_id, DeliveryFiling.period_end, DeliveryFiling.due_after)
        ):
            filings.setdefault(rid, {})[as_utc(period_end)] = as_utc(due_after)
    figures = {
        r.id: ResourceFigures(r.id, r.provider, r.share.type != "not_shared", calls_answered=answered.get(r.id, 0))
        for r in hub.catalogue.resources.values()
    }
    first_run: dict[str, datetime] = {}
    delivered: dict[str, list[datetime]] = {}
    for rid, status, started, finished, landed, quarantined in runs:
        row = figures.get(rid)
        if row is None:  # a resource no longer in the catalogue
            continue
        started = as_utc(started)
        first_run[rid] = min(first_run.get(rid, started), started)
        row.runs += start <= started < end
        if status != "succeeded" or finished is None:
            continue
        finished = as_utc(finished)
        delivered.setdefault(rid, []).append(finished)
        if start <= finished < end:
            row.runs_succeeded += 1
            row.rows_landed += landed
            row.rows_passed += landed - quarantined
            row.last_delivered = max(row.last_delivered or finished, finished)
    for resource in hub.catalogue.resources.values():
        if resource.id not in first_run:
            continue
        row, times = figures[resource.id], sorted(delivered.get(resource.id, []))
        for period_end, due in _periods(
            hub, resource, max(start, first_run[resource.id]), end, filings.get(resource.id, {})
        ):
            row.periods_due += 1
            after = bisect.bisect_left(times, period_end)
            row.periods_on_time += after < len(times) and times[after] <= due
    return list(figures.values())


def department_scores(
    hub: Hub, since: date | None = None, until: date | None = None, now: datetime | None = None
) -> list[Score]:
    """Every provider department's score for the period, best first (ties share a rank)."""
    start, end = window(since, until, now)
    scores: dict[str, Score] = {}
    for f in resource_figures(hub, start, end):
        row = scores.setdefault(f.provider, Score(f.provider))
        row.resources += 1
        row.resources_delivering += f.runs_succeeded > 0
        row.periods_due += f.periods_due
        row.periods_on_time += f.periods_on_time
        row.rows_landed += f.rows_landed
        row.rows_passed += f.rows_passed
        if f.shared:
            row.resources_shared += 1
            row.resources_used += f.calls_answered > 0
            row.calls_answered += f.calls_answered
    for row in scores.values():
        row.parts = {
            "quantity": _ratio(row.resources_delivering, row.resources),
            "timeliness": _ratio(row.periods_on_time, row.periods_due),
            "quality": _ratio(row.rows_passed, row.rows_landed),
            "use": _ratio(row.resources_used, row.resources_shared),
        }
        counted = [v for v in row.parts.values() if v is not None]
        row.score = round(sum(counted) / len(counted), 1) if counted else None
    ranked = sorted(scores.values(), key=lambda r: (r.score is None, -(r.score or 0), r.department))
    for row in ranked:
        if row.score is not None:
            row.rank = 1 + sum(1 for other in ranked if other.score is not None and other.score > row.score)
    return ranked


def as_dict(score: Score) -> dict[str, Any]:
    """A score as the API and the CLI show it."""
    return {
        "department": score.department,
        "score": score.score,
        "rank": score.rank,
        **{part: score.parts.get(part) for part in PARTS},
        "figures": {
            "resources": score.resources,
            "resources_delivering": score.resources_delivering,
            "periods_due": score.periods_due,
            "periods_on_time": score.periods_on_time,
            "rows_landed": score.rows_landed,
            "rows_passed": score.rows_passed,
            "resources_shared": score.resources_shared,
            "resources_used": score.resources_used,
            "calls_answered": score.calls_answered,
        },
    }
