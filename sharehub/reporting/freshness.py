"""How current each resource's store is (数据时效): what the hub's data engineers watch every morning.

A resource's data arrives by update period (day, week, month or hour, in China time, as its catalogue
entry says), and a period's data is due `deadline_working_days` working days after the period ends: the
same rule as the delivery check that raises delivery notices (`notices.check_deliveries`) and the
timeliness part of the scores. A run that succeeds after a period ended delivers that period. So each
resource is
  - `current`: delivered for the latest period that has ended;
  - `due`: not yet delivered for it, but still within its deadline (`due` says until when);
  - `late`: an earlier period's deadline has passed without a delivery (`due` says since when);
  - `never`: no run has succeeded yet.
The latest run is shown beside it, so a resource whose runs now fail is seen before it turns late.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from sqlalchemy import select

from sharehub.hub import Hub
from sharehub.metadata.models import Run, utcnow
from sharehub.notices import last_due_period_end, period_start

FreshState = Literal["current", "due", "late", "never"]


@dataclass(frozen=True)
class Freshness:
    """One resource's delivery state at a moment."""

    resource_id: str
    provider: str
    frequency: str
    state: FreshState
    period_end: datetime  # the end of the period the state is about
    due: datetime  # that period's deadline (passed, when late)
    delivered_at: datetime | None  # the last successful run's end
    store_version: int | None  # the version it left the store at
    latest_run: str | None
    latest_status: str | None  # running, succeeded, failed
    latest_step: str | None
    latest_started: datetime | None


def freshness(hub: Hub, now: datetime | None = None, provider: str | None = None) -> list[Freshness]:
    """Every resource's delivery state at `now` (of one provider department's, with `provider`)."""
    now = now or utcnow()
    out = []
    with hub.db() as s:
        for res in sorted(hub.catalogue.resources.values(), key=lambda r: r.id):
            if provider is not None and res.provider != provider:
                continue
            frequency, days = res.update.frequency, hub.profile.delivery_days(res.update.deadline_working_days)
            delivered = s.execute(
                select(Run.finished_at, Run.store_version)
                .where(Run.resource_id == res.id, Run.status == "succeeded")
                .order_by(Run.finished_at.desc())
                .limit(1)
            ).first()
            latest = s.scalars(select(Run).where(Run.resource_id == res.id).order_by(Run.started_at.desc()).limit(1))
            run = latest.first()
            at = delivered[0] if delivered else None
            overdue_end = last_due_period_end(hub, now, frequency, days)
            ended = period_start(now, frequency)
            state: FreshState
            if at is None:
                state, period_end = "never", overdue_end
            elif at < overdue_end:
                state, period_end = "late", overdue_end
            elif at < ended:
                state, period_end = "due", ended
            else:
                state, period_end = "current", ended
            out.append(
                Freshness(
                    resource_id=res.id,
                    provider=res.provider,
                    frequency=frequency,
                    state=state,
                    period_end=period_end,
                    due=hub.calendar.deadline(period_end, days),
                    delivered_at=at,
                    store_version=delivered[1] if delivered else None,
                    latest_run=run.id if run else None,
                    latest_status=run.status if run else None,
                    latest_step=run.step if run else None,
                    latest_started=run.started_at if run else None,
                )
            )
    return out
