"""The functions Airflow tasks call: ids and dates in, ids and counts out, never rows."""

from __future__ import annotations

from sharehub import opendata
from sharehub.access.clocks import mark_overdue_steps, mark_told_late
from sharehub.access.consumers import operator
from sharehub.access.contests import settle_reclassifications
from sharehub.access.reminders import remind_expiring
from sharehub.anchors import checkpoint
from sharehub.consistency.check import check
from sharehub.hub import Hub
from sharehub.levels.upstream import sync
from sharehub.notices import check_deliveries, deliver, mark_overdue, notify
from sharehub.pipeline.extract import extract
from sharehub.pipeline.gate import gate
from sharehub.pipeline.promote import promote
from sharehub.pipeline.themes import build
from sharehub.reporting import bulletin
from sharehub.reporting.overuse import detect_overuse
from sharehub.serving.bulk import prune


def extract_task(resource_id: str, scheduler_run_id: str) -> str:
    """Land the resource's new rows for this scheduler run; retries reuse the same run id."""
    return extract(Hub.from_env(), resource_id, external_run_id=scheduler_run_id, trigger="airflow")


def gate_task(run_id: str) -> dict[str, int]:
    """Validate a landed run; return its pass and quarantine counts."""
    result = gate(Hub.from_env(), run_id)
    return {"passed": result.passed, "quarantined": result.quarantined}


def notify_task(run_id: str) -> dict[str, int]:
    """Raise the run's quality notice, resolve notices whose rows passed, and send the outbox."""
    return notify(Hub.from_env(), run_id)


def daily_notice_check() -> dict[str, int]:
    """Notice missed deliveries, mark overdue notices and application steps, tell of grants running out,
    remove extracts kept past their time, send the outbox, and mark applicants not told in time; the
    daily DAG's one task."""
    hub = Hub.from_env()
    missed = check_deliveries(hub)
    reclassified = settle_reclassifications(hub)  # before marking overdue: a changed catalogue is on time
    late = mark_overdue(hub)
    steps = mark_overdue_steps(hub)
    expiring = remind_expiring(hub)
    overused = detect_overuse(hub)  # yesterday's calls against the volumes declared
    removed = prune(hub)
    sent, queued = deliver(hub)
    untold = mark_told_late(hub)  # after the outbox ran: an e-mail that just left was in time
    return {
        "extracts_removed": sum(removed.values()),
        "missed_deliveries": len(missed),
        "overdue": len(late),
        "overdue_application_steps": len(steps),
        "grants_expiring": len(expiring),
        "applicants_told_late": len(untold),
        "reclassified": len(reclassified),
        "use_beyond_declared": len(overused),
        "sent": sent,
        "queued": queued,
    }


def upstream_sync_task() -> dict[str, int]:
    """Follow this platform's applications and objections at the upper level and send what the departments are told;
    the upstream DAG's one task (`sharehub upstream sync`). Nothing to do on a platform with no level above."""
    hub = Hub.from_env()
    if not hub.settings.upstream_url:
        return {"configured": 0, "changed": 0}
    changed = sync(hub, operator("upstream sync"))
    sent, queued = deliver(hub)
    return {
        "configured": 1,
        "changed": len(changed.requests),
        "objections_answered": len(changed.objections),
        "sent": sent,
        "queued": queued,
    }


def bulletin_task() -> dict[str, str | int]:
    """Publish the bulletin of the month just ended and send each department its score; the monthly DAG's one
    task (a rerun changes nothing and tells no one twice)."""
    hub = Hub.from_env()
    path, made = bulletin.publish(hub, bulletin.month_of(None))
    sent, queued = deliver(hub)  # each department's score, by e-mail now rather than at the next daily run
    return {
        "month": made["month"],
        "path": path,
        "applications": made["authorizations"]["applications"],
        "sent": sent,
        "queued": queued,
    }


def open_data_task() -> dict[str, str]:
    """Republish the open datasets whose stores moved; the `sharehub.open_data` DAG's task."""
    return {p.resource_id: p.status for p in opendata.publish(Hub.from_env())}


def promote_task(run_id: str) -> dict[str, int]:
    """Merge a validated run into its store; return the store version and change counts."""
    out = promote(Hub.from_env(), run_id)
    return {"version": out.version, "inserted": out.inserted, "updated": out.updated, "deleted": out.deleted}


def consistency_task(full: bool = False) -> dict[str, int]:
    """The consistency check over the stores that changed; the `sharehub.consistency` DAG's task."""
    result = check(Hub.from_env(), full=full)
    return {"found": result.found, "opened": result.opened, "closed": result.closed, "notices": len(result.notices)}


def theme_task(model_id: str) -> dict[str, int | str | None]:
    """Build one thematic model if its sources changed; the `sharehub.theme.<model>` DAG's task."""
    (done,) = build(Hub.from_env(), [model_id])
    return {"status": done.status, "version": done.version, "rows": done.rows}


def audit_checkpoint_task() -> dict[str, int]:
    """Anchor the audit chain's head outside the database (sealed, in the object store)."""
    made = checkpoint(Hub.from_env())
    return {"last_id": made.last_id if made else 0}
