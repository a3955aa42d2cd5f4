"""`sharehub notices …`: what provider departments and the platform office do with notices."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import typer
from rich.table import Table

from sharehub.access.consumers import operator
from sharehub.cli.console import Before, Limit, err, last_moment, out, page_line
from sharehub.cli.console import hub as _hub
from sharehub.workdays import china_time, due_text

notices_app = typer.Typer(help="Notices to provider departments.", no_args_is_help=True)


@notices_app.command("list")
def notices_list(
    department: Annotated[str | None, typer.Option(help="Only this department, e.g. gongan.")] = None,
    status: Annotated[str | None, typer.Option(help="open, acknowledged, overdue or resolved.")] = None,
    kind: Annotated[str | None, typer.Option(help="quality, conflict, delivery, objection, application, …")] = None,
    limit: Limit = 100,
    before: Before = None,
) -> None:
    """Notices, newest first, with their kind, their deadlines and how many of their items (rows, entities,
    applications) are still pending."""
    from sharehub.notices import list_notices

    t = Table("id", "department", "kind", "resource", "status", "deadline (China)", "items", "pending", "run")
    found = list_notices(_hub(), department, status, limit, before, kind)
    for n in found:
        t.add_row(
            str(n.id),
            n.department,
            n.kind,
            n.resource_id,
            n.status,
            due_text(n.deadline),
            str(len(n.row_keys)),
            str(len(n.pending_keys)),
            n.run_id,
        )
    out.print(t)
    page_line(found)


@notices_app.command("show")
def notices_show(notice_id: int) -> None:
    """One notice as the department received it, then every key still pending on it and, for a quality
    notice, the rules each pending row fails as its latest run found them."""
    from sharehub.notices import explained, get_notice, pending_reasons

    hub = _hub()
    try:
        n = get_notice(hub, notice_id)
    except LookupError as exc:
        err.print(str(exc))
        raise typer.Exit(code=1) from None
    out.print(f"[bold]{n.subject}[/bold]  ({n.status})\n")
    out.print(n.body)
    reasons = pending_reasons(hub, n)
    if not reasons:
        out.print(f"\npending ({len(n.pending_keys)}): " + ", ".join(n.pending_keys))
        return
    said = explained(hub, n.resource_id, (r for rs in reasons.values() for r in rs))
    t = Table("pending row key", "fails (latest run)", title=f"pending rows: {len(reasons):,}")
    for key, failed in reasons.items():
        t.add_row(key, "\n".join(said[r] for r in failed) or "(no quarantined row on record)")
    out.print(t)


@notices_app.command("ack")
def notices_ack(notice_id: int) -> None:
    """Acknowledge a notice: the department is working on it."""
    from sharehub.notices import acknowledge

    try:
        n = acknowledge(_hub(), notice_id, actor=operator())
    except LookupError as exc:
        err.print(str(exc))
        raise typer.Exit(code=1) from None
    out.print(f"notice {n.id}: {n.status}")


@notices_app.command("dispute")
def notices_dispute(
    notice_id: int,
    key: Annotated[str, typer.Option(help="The row key, as `notices show` lists it.")],
    reason: Annotated[str, typer.Option(help="Why the row is correct and the rule wrong.")],
) -> None:
    """Confirm a quarantined row is correct ("rule wrong"); the platform office reviews it."""
    from sharehub.notices import dispute

    try:
        n = dispute(_hub(), notice_id, key, reason, actor=operator())
    except (LookupError, ValueError) as exc:
        err.print(str(exc))
        raise typer.Exit(code=1) from None
    out.print(f"notice {n.id}: {len(n.pending_keys)} row(s) still pending, status {n.status}")


@notices_app.command("disputes")
def notices_disputes(
    review: Annotated[str, typer.Option(help="pending, accepted, rejected or all.")] = "pending",
    department: Annotated[str | None, typer.Option(help="Only this department's.")] = None,
    limit: Limit = 100,
    before: Before = None,
) -> None:
    """Rows departments confirmed as correct, newest first: those awaiting the platform's review, or decided ones."""
    from sharehub.notices import list_disputes

    t = Table("id", "notice", "department", "row key", "rules", "reason", "since", "decision")
    found = list_disputes(
        _hub(), None if review == "all" else review, department=department, limit=limit, before=before
    )
    for d in found:
        decision = "" if d.review == "pending" else f"{d.review} by {d.decided_by}: {d.decision_reason}"
        rules = ", ".join(d.rules or [])
        t.add_row(
            str(d.id), str(d.notice_id), d.department, d.row_key, rules, d.reason, china_time(d.created_at), decision
        )
    out.print(t)
    page_line(found)


@notices_app.command("decide")
def notices_decide(
    dispute_id: int,
    by: Annotated[str, typer.Option(help="Who decides, for the record.")],
    reason: Annotated[str, typer.Option(help="Why.")],
    accept: Annotated[bool, typer.Option("--accept/--reject", help="Accept: waive the rules for that row.")],
) -> None:
    """The platform office decides a dispute: accept waives the rules for that row, reject reopens it."""
    from sharehub.notices import decide_dispute

    try:
        d = decide_dispute(_hub(), dispute_id, accept=accept, by=by, reason=reason, actor=operator(by))
    except (LookupError, ValueError) as exc:
        err.print(str(exc))
        raise typer.Exit(code=1) from None
    effect = "its rules are waived for that row from the next run" if accept else "the row is back on its notice"
    out.print(f"dispute {d.id}: {d.review}; {effect}")


@notices_app.command("file")
def notices_file(
    resource_id: str,
    department: Annotated[str, typer.Option(help="The providing department filing, e.g. mzj.")],
    due: Annotated[datetime, typer.Option(help="The new due date: a day (23:59 China time) or a moment.")],
    reason: Annotated[str, typer.Option(help="Why the data will be late.")],
    by: Annotated[str, typer.Option(help="Who files, at the department.")] = "command line",
) -> None:
    """Report ahead (报备) that the resource's next data will be late, moving its due date; the platform
    office is told and no delivery notice is raised before the new date."""
    from sharehub.errors import SharehubError
    from sharehub.notices import file_delivery

    try:
        f = file_delivery(_hub(), operator(by, department), resource_id, last_moment(due), reason)
    except SharehubError as exc:
        err.print(f"error: {exc}")
        raise typer.Exit(code=1) from None
    out.print(
        f"filing {f.id}: {f.resource_id} data up to {china_time(f.period_end, '%Y-%m-%d %H:%M')} now due "
        f"{due_text(f.due_after)} (was {due_text(f.due_before)})"
    )


@notices_app.command("filings")
def notices_filings(
    department: Annotated[str | None, typer.Option(help="Only this department's (default: every one).")] = None,
    resource_id: Annotated[str | None, typer.Option("--resource", help="Only this resource's.")] = None,
) -> None:
    """Delivery filings (报备), newest first: the period, the due date moved, and why."""
    from sharehub.access.callers import operator as acting
    from sharehub.notices import list_filings

    caller = acting() if department is None else acting(department=department)
    t = Table("id", "resource", "department", "period up to", "was due", "now due", "reason", "filed by")
    for f in list_filings(_hub(), caller, resource_id):
        t.add_row(
            str(f.id),
            f.resource_id,
            f.department,
            china_time(f.period_end, "%Y-%m-%d %H:%M"),
            due_text(f.due_before),
            due_text(f.due_after),
            f.reason,
            f.filed_by,
        )
    out.print(t)


@notices_app.command("check")
def notices_check() -> None:
    """Raise notices for missed deliveries, mark overdue ones and send the outbox (the daily DAG's task)."""
    from sharehub.notices import check_deliveries, deliver, mark_overdue

    hub = _hub()
    missed = check_deliveries(hub)
    late = mark_overdue(hub)
    sent, queued = deliver(hub)
    out.print(
        f"{len(missed)} missed deliveries noticed; {len(late)} notice(s) now overdue; "
        f"{sent} e-mail(s) sent, {queued} still queued"
    )
