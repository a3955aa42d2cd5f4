"""`sharehub stats`, `scores`, `bulletin` and `freshness`: what the platform office watches and publishes
about each department and resource."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import typer
from rich.table import Table

from sharehub.cli.console import err, out
from sharehub.cli.console import hub as _hub

Day = Annotated[datetime | None, typer.Option(formats=["%Y-%m-%d"], help="A day, e.g. 2026-01-01 (China time).")]


def stats(department: Annotated[str | None, typer.Option(help="Only this department.")] = None) -> None:
    """Figures per department: runs, quarantine, notices, conflicts, overdue steps, objections, calls,
    and what each must rectify. One column per department, one line per figure."""
    from sharehub.reporting.stats import FIGURES, department_stats

    rows = department_stats(_hub(), department)
    t = Table("figure", *[row["department"] for row in rows])
    for figure in FIGURES:
        t.add_row(figure.replace("_", " "), *[f"{row[figure]:,}" for row in rows])
    t.add_row("to rectify", *["\n".join(row["rectify"]).replace("_", " ") or "-" for row in rows])
    out.print(t)


def freshness(
    department: Annotated[str | None, typer.Option(help="Only this provider department's resources.")] = None,
) -> None:
    """How current each resource's store is: delivered for its latest update period, due, or late, with
    the latest run beside it. Exit 1 when any is late or never delivered, for a monitor to alert on."""
    from sharehub.reporting.freshness import freshness as states
    from sharehub.workdays import china_time, due_text

    rows = states(_hub(), provider=department)
    t = Table("resource", "provider", "update", "state", "period ended", "deadline", "delivered", "latest run")
    styled = {"current": "green", "due": "yellow", "late": "red", "never": "red"}
    for f in rows:
        latest = "-"
        if f.latest_run is not None and f.latest_started is not None:
            what = f"failed at {f.latest_step}" if f.latest_status == "failed" else str(f.latest_status)
            latest = f"{what} ({china_time(f.latest_started, '%m-%d %H:%M')})"
        delivered = (
            "-" if f.delivered_at is None else f"{china_time(f.delivered_at, '%Y-%m-%d %H:%M')} (v{f.store_version})"
        )
        t.add_row(
            f.resource_id,
            f.provider,
            f.frequency,
            f"[{styled[f.state]}]{f.state}[/{styled[f.state]}]",
            china_time(f.period_end, "%Y-%m-%d %H:%M"),
            due_text(f.due),
            delivered,
            latest,
        )
    out.print(t)
    behind = [f.resource_id for f in rows if f.state in ("late", "never")]
    if behind:
        err.print(f"{len(behind)} resource(s) late or never delivered: {', '.join(behind)}")
        raise typer.Exit(code=1)


def scores(since: Day = None, until: Day = None) -> None:
    """Each provider department's score for a period (Zhejiang 35; Hengyang 25): quantity, timeliness,
    quality and use of what it provides, 0–100 each, and their mean. Default: this year to date."""
    from sharehub.metadata.models import utcnow
    from sharehub.reporting.scores import department_scores, window

    first, last, now = since.date() if since else None, until.date() if until else None, utcnow()
    try:
        start, end = window(first, last, now)
        rows = department_scores(_hub(), first, last, now)
    except ValueError as exc:
        err.print(str(exc))
        raise typer.Exit(code=1) from None

    def part(value: float | None, figures: str) -> str:
        return "-" if value is None else f"{value:.1f} ({figures})"

    t = Table(
        "rank",
        "department",
        "score",
        "quantity (resources delivering)",
        "timeliness (periods on time)",
        "quality (rows passed)",
        "use (resources called)",
        title=f"scores from {start:%Y-%m-%d %H:%M} to {end.astimezone(start.tzinfo):%Y-%m-%d %H:%M} (China time)",
    )
    for r in rows:
        calls = f"{r.calls_answered:,} call" + ("" if r.calls_answered == 1 else "s")
        t.add_row(
            "-" if r.rank is None else str(r.rank),
            r.department,
            "-" if r.score is None else f"{r.score:.1f}",
            part(r.parts["quantity"], f"{r.resources_delivering}/{r.resources}"),
            part(r.parts["timeliness"], f"{r.periods_on_time:,}/{r.periods_due:,}"),
            part(r.parts["quality"], f"{r.rows_passed:,}/{r.rows_landed:,}"),
            part(r.parts["use"], f"{r.resources_used}/{r.resources_shared}, {calls}"),
        )
    out.print(t)
    out.print("a part with nothing to measure in the period shows '-' and is left out of the score")


def bulletin(
    month: Annotated[str | None, typer.Option(help="YYYY-MM; default: the month just ended.")] = None,
    publish: Annotated[bool, typer.Option(help="Freeze it in the object store, for GET /bulletins/{month}.")] = False,
) -> None:
    """The monthly statistics bulletin (Lichuan 26): authorizations, calls, availability and scores."""
    from sharehub.reporting import bulletin as bulletins

    hub = _hub()
    try:
        first = bulletins.month_of(month)
        if publish:
            path, made = bulletins.publish(hub, first)
        else:
            path, made = "", bulletins.bulletin(hub, first)
    except ValueError as exc:
        err.print(str(exc))
        raise typer.Exit(code=1) from None
    auth = made["authorizations"]
    out.print(
        f"[bold]bulletin {made['month']}[/bold] ({made['from'][:10]} to {made['to'][:16]}, China time)"
        + ("" if made["complete"] else " [yellow]month not over yet[/yellow]")
    )
    out.print(
        f"applications: {auth['applications']:,} "
        f"({', '.join(f'{k} {v}' for k, v in auth['by_share_type'].items()) or 'none'}); "
        f"now: {', '.join(f'{k} {v}' for k, v in auth['by_status_now'].items()) or '-'}; "
        f"steps overdue: {', '.join(f'{k} {v}' for k, v in auth['steps_overdue'].items()) or 'none'}"
    )
    out.print(
        f"open-data requests: {auth['open_data_requests']:,}; "
        f"now: {', '.join(f'{k} {v}' for k, v in auth['open_data_by_status_now'].items()) or '-'}; "
        f"answered late: {', '.join(f'{k} {v}' for k, v in auth['open_data_answered_late'].items()) or 'none'}"
    )
    t = Table(
        "resource", "runs (succeeded)", "periods on time", "rows passed", "calls answered / refused", "last delivered"
    )
    for a in made["availability"]:
        modes = made["calls"].get(a["resource_id"], {})
        answered = sum(m["answered"] for m in modes.values())
        refused = sum(m["refused"] for m in modes.values())
        t.add_row(
            a["resource_id"],
            f"{a['runs']:,} ({a['runs_succeeded']:,})",
            f"{a['periods_on_time']:,}/{a['periods_due']:,}",
            f"{a['rows_passed']:,}/{a['rows_landed']:,}",
            f"{answered:,} / {refused:,}",
            (a["last_delivered"] or "-")[:16].replace("T", " "),
        )
    out.print(t)
    ranks = ", ".join(
        f"{s['rank'] or '-'}. {s['department']} {s['score'] if s['score'] is not None else '-'}" for s in made["scores"]
    )
    out.print(f"scores: {ranks}")
    if publish:
        out.print(f"published: {hub.store.uri(path)} (GET /bulletins/{made['month']}), made {made['made_at'][:16]}")
