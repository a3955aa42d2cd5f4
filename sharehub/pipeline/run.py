"""One whole run of a resource, the same three steps the Airflow DAG runs as tasks."""

from __future__ import annotations

from dataclasses import dataclass

from sharehub.hub import Hub
from sharehub.notices import notify
from sharehub.pipeline.extract import Progress, extract
from sharehub.pipeline.gate import gate
from sharehub.pipeline.promote import promote
from sharehub.pipeline.runs import get_run


@dataclass(frozen=True)
class RunSummary:
    """The counts of one finished run."""

    run_id: str
    resource_id: str
    status: str
    landed: int
    passed: int
    quarantined: int
    inserted: int
    updated: int
    deleted: int
    store_version: int | None
    error: str | None = None


def summarize(hub: Hub, run_id: str) -> RunSummary:
    """The recorded counts of a run."""
    r = get_run(hub, run_id)
    return RunSummary(
        r.id,
        r.resource_id,
        r.status,
        r.rows_landed,
        r.rows_passed,
        r.rows_quarantined,
        r.rows_inserted,
        r.rows_updated,
        r.rows_deleted,
        r.store_version,
        r.error,
    )


def run_resource(hub: Hub, resource_id: str, *, trigger: str = "cli", on_rows: Progress | None = None) -> RunSummary:
    """Extract, gate and promote one resource; the run is recorded as failed if any step raises."""
    run_id = extract(hub, resource_id, trigger=trigger, on_rows=on_rows)
    gate(hub, run_id)
    promote(hub, run_id)
    notify(hub, run_id)
    return summarize(hub, run_id)
