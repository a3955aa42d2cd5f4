"""Bookkeeping of runs in the metadata database: create, advance, fail."""

from __future__ import annotations

import logging
import secrets
from datetime import UTC, datetime

from sqlalchemy import Select, select

from sharehub.errors import SharehubError
from sharehub.hub import Hub
from sharehub.metadata.models import Run, Watermark, utcnow
from sharehub.paging import Page, latest_first

log = logging.getLogger(__name__)


def new_run_id(resource_id: str, external: str | None = None) -> str:
    """A run id: derived from the scheduler's run id when there is one, so retries reuse it."""
    if external:
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in external)
        return f"{resource_id}__{safe}"[:120]
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    return f"{resource_id}__{stamp}_{secrets.token_hex(3)}"


def get_run(hub: Hub, run_id: str) -> Run:
    """The recorded run, or an error naming the id."""
    with hub.db() as s:
        run = s.get(Run, run_id)
        if run is None:
            raise SharehubError(f"no run {run_id!r} in the metadata database")
        return run


def update_run(hub: Hub, run_id: str, **values: object) -> None:
    """Set fields of a run."""
    with hub.db() as s:
        run = s.get(Run, run_id)
        assert run is not None
        for k, v in values.items():
            setattr(run, k, v)


def fail_run(hub: Hub, run_id: str, step: str, exc: BaseException) -> None:
    """Record a run as failed at `step`; the message is the error's own, which carries no row data."""
    log.error("run %s failed at %s: %s", run_id, step, type(exc).__name__)
    update_run(
        hub,
        run_id,
        status="failed",
        step=step,
        finished_at=utcnow(),
        error_kind=type(exc).__name__,
        error=str(exc)[:4000],
    )


def current_watermark(hub: Hub, resource_id: str) -> str | None:
    """The committed watermark of a resource, if any."""
    with hub.db() as s:
        wm = s.get(Watermark, resource_id)
        return wm.value if wm else None


def last_runs(
    hub: Hub, resource_id: str | None = None, limit: int = 20, status: str | None = None, before: str | None = None
) -> Page[Run]:
    """The newest runs, of one resource or of all, and of one status or any: `limit` of them started before
    the run `before` (the next page), with how many there are in all."""
    with hub.db() as s:
        return latest_first(s, _runs(resource_id, status), Run.started_at, Run.id, limit, before, what="run")


def _runs(resource_id: str | None, status: str | None) -> Select[Run]:
    q = select(Run)
    if resource_id:
        q = q.where(Run.resource_id == resource_id)
    if status:
        q = q.where(Run.status == status)
    return q
