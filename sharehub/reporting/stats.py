"""Statistics per department (Lichuan 31; Hengyang 26): what it provides, how well, and what it uses.

All figures are counted in SQL from the metadata database: runs and rows, quarantined rows, notices open
and overdue, deliveries late, open conflicts, application steps overdue against the department,
objections received, open-data requests answered late (or unanswered past their deadline), resources
whose latest run found the source no longer as the catalogue describes it (schema drift), and serving
calls made (as a consumer) and answered (on its resources; a call the hub refused is made but not
answered), and those it made to the upper-level platform through this one, from the audit chain. From
these, each row names what the department must rectify (Lichuan 31: catalogue not updated, data late,
not corrected in time, inconsistent with its source; steps and open-data requests it let run late), so
the platform office can publish who is to rectify what.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_, case, func, or_, select

from sharehub.hub import Hub
from sharehub.metadata.models import Application, AuditEntry, Conflict, Notice, Objection, OpenRequest, Run, utcnow

SERVING = ("verification", "query", "extract")
# Calls relayed to the upper-level platform (`sharehub.levels.upstream`): made by a department here, answered by
# no department here, so they count apart and never as a use of a resource of this level.
UPSTREAM_SERVING = ("upstream_verification", "upstream_query", "upstream_extract")
REFUSED = ("denied", "rate_limited", "bad_request")  # calls the hub turned away: made, but not answered
FIGURES = (  # every row has each of these, zero or not
    "resources",
    "runs",
    "runs_succeeded",
    "rows_landed",
    "rows_quarantined",
    "notices_open",
    "notices_overdue",
    "deliveries_late",
    "conflicts_open",
    "application_steps_overdue",
    "objections_received",
    "open_requests_late",
    "catalogue_drift",
    "calls_made",
    "calls_upstream",
    "calls_answered",
    "use_beyond_declared",
)
RECTIFY = {  # what a department must rectify, and the figure that says so when it is above zero
    # Its front-end database changed what a resource publishes and the catalogue was not updated to match.
    "catalogue_not_updated": "catalogue_drift",
    "data_late": "deliveries_late",
    "notices_overdue": "notices_overdue",
    "inconsistent_with_source": "conflicts_open",
    "application_steps_overdue": "application_steps_overdue",
    "open_requests_late": "open_requests_late",
    # Its consumers' calls ran far beyond the volume their applications declared (Lichuan 31(4)).
    "use_beyond_grant": "use_beyond_declared",
}


def department_stats(hub: Hub, department: str | None = None) -> list[dict[str, Any]]:
    """One row of figures per department (all, or the one named)."""
    owner = {r.id: r.provider for r in hub.catalogue.resources.values()}
    depts = sorted(hub.catalogue.departments) if department is None else [department]
    out: dict[str, dict[str, Any]] = {d: {"department": d, **dict.fromkeys(FIGURES, 0)} for d in depts}
    for d, figures in out.items():
        figures["resources"] = sum(1 for p in owner.values() if p == d)
    with hub.db() as s:
        for rid, runs, ok, landed, quarantined in s.execute(
            select(
                Run.resource_id,
                func.count(),
                func.sum(case((Run.status == "succeeded", 1), else_=0)),
                func.coalesce(func.sum(Run.rows_landed), 0),
                func.coalesce(func.sum(Run.rows_quarantined), 0),
            ).group_by(Run.resource_id)
        ):
            row = out.get(owner.get(rid, ""))
            if row is not None:
                row["runs"] += runs
                row["runs_succeeded"] += int(ok or 0)
                row["rows_landed"] += int(landed)
                row["rows_quarantined"] += int(quarantined)
        newest = (
            select(Run.resource_id, func.max(Run.started_at).label("started_at")).group_by(Run.resource_id).subquery()
        )
        drifted = select(Run.resource_id).join(
            newest, and_(Run.resource_id == newest.c.resource_id, Run.started_at == newest.c.started_at)
        )
        for (rid,) in s.execute(drifted.where(Run.error_kind == "SchemaDrift")):
            row = out.get(owner.get(rid, ""))
            if row is not None:
                row["catalogue_drift"] += 1
        for dept, kind, status, n in s.execute(
            select(Notice.department, Notice.kind, Notice.status, func.count()).group_by(
                Notice.department, Notice.kind, Notice.status
            )
        ):
            row = out.get(dept)
            told = kind in ("application", "grant_expiring", "direct_grant")  # told, not asked to act
            if row is not None and kind == "overuse":
                row["use_beyond_declared"] += n
            if row is not None and not told:
                row["notices_open"] += n if status in ("open", "acknowledged", "disputed", "overdue") else 0
                row["notices_overdue"] += n if status == "overdue" else 0
                row["deliveries_late"] += n if kind == "delivery" and status != "resolved" else 0
        for dept, n in s.execute(
            select(Conflict.department, func.count())
            .where(Conflict.status.in_(("open", "verifying")))
            .group_by(Conflict.department)
        ):
            if dept in out:
                out[dept]["conflicts_open"] += n
        for late, n in s.execute(
            select(Application.overdue_department, func.count())
            .where(Application.overdue_department.is_not(None))
            .group_by(Application.overdue_department)
        ):
            if late in out:
                out[str(late)]["application_steps_overdue"] += n
        for dept, n in s.execute(select(Objection.provider, func.count()).group_by(Objection.provider)):
            if dept in out:
                out[dept]["objections_received"] += n
        answered_late = and_(
            OpenRequest.status != "withdrawn",
            or_(
                OpenRequest.decided_at > OpenRequest.deadline,
                and_(OpenRequest.decided_at.is_(None), OpenRequest.deadline < utcnow()),
            ),
        )
        for dept, n in s.execute(
            select(OpenRequest.provider, func.count()).where(answered_late).group_by(OpenRequest.provider)
        ):
            if dept in out:
                out[dept]["open_requests_late"] += n
        for caller, rid, result, n in s.execute(
            select(AuditEntry.department, AuditEntry.resource_id, AuditEntry.result, func.count())
            .where(AuditEntry.action.in_(SERVING))
            .group_by(AuditEntry.department, AuditEntry.resource_id, AuditEntry.result)
        ):
            if caller in out:
                out[str(caller)]["calls_made"] += n
            provider = owner.get(rid or "")
            if provider in out and result not in REFUSED:
                out[provider]["calls_answered"] += n
        for caller, n in s.execute(
            select(AuditEntry.department, func.count())
            .where(AuditEntry.action.in_(UPSTREAM_SERVING))
            .group_by(AuditEntry.department)
        ):
            if caller in out:
                out[str(caller)]["calls_upstream"] += n
    return [{**row, "rectify": [why for why, figure in RECTIFY.items() if row[figure]]} for row in out.values()]
