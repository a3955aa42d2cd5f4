"""`sharehub consistency` and `sharehub conflicts …`: departments that disagree about the same entity."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, TypeVar

import typer
from rich.table import Table

from sharehub.access.consumers import operator
from sharehub.cli.console import Before, Limit, err, out, page_line
from sharehub.cli.console import hub as _hub
from sharehub.workdays import china_time

T = TypeVar("T")
conflicts_app = typer.Typer(help="Conflicts between departments' copies and the authoritative source.")


def _step(action: Callable[[], T]) -> T:
    """Run a step on conflicts; a refusal (no such conflict, wrong state, another department's) is
    printed with its reason and exits 1."""
    try:
        return action()
    except (LookupError, PermissionError, ValueError) as exc:
        err.print(str(exc))
        raise typer.Exit(code=1) from None


def conflict_table(by_department_item: dict[tuple[str, str], int]) -> Table:
    """Conflicts found, by department and item."""
    t = Table("department", "item", "conflicts")
    for (dept, item), n in sorted(by_department_item.items()):
        t.add_row(dept, item, f"{n:,}")
    return t


def run_check(full: bool, reload: bool = False) -> None:
    """Run the consistency check and print what it found."""
    from sharehub.consistency.check import check

    with err.status("consistency: starting…") as line:
        result = check(
            _hub(), full=full or reload, reload=reload, say=lambda step: line.update(f"consistency: {step}…")
        )
    if result.by_department_item:
        out.print(conflict_table(result.by_department_item))
    if result.waiting:
        out.print(f"not compared until they have a store: {', '.join(sorted(result.waiting))}")
    if not result.items:
        return
    if result.entities == 0:
        out.print("incremental check: no entity changed since the last check (--full compares every entity)")
        return
    if result.entities is not None:
        what = f"incremental check of {len(result.items)} item(s) over {result.entities:,} changed entities"
    else:
        what = f"{'full ' if full else ''}check of {len(result.items)} item(s) over every entity"
        what += "" if full else " (a new store, or one without change data, is compared whole)"
    out.print(
        f"{what}: {result.found:,} conflict(s) in scope, {result.opened:,} new, {result.closed:,} closed, "
        f"{len(result.notices)} notice(s) raised"
    )


def consistency(
    full: Annotated[bool, typer.Option("--full", help="Re-compare every entity, not only the changed ones.")] = False,
    reload: Annotated[
        bool, typer.Option("--reload", help="Also rebuild the cached columns from the Delta stores (implies --full).")
    ] = False,
) -> None:
    """Compare every department's copy of a base item with its authoritative source (一数一源)."""
    run_check(full, reload)


@conflicts_app.command("list")
def conflicts_list(
    department: Annotated[
        str | None, typer.Option(help="Only this department's: its copies', and those on items it is the authority of.")
    ] = None,
    status: Annotated[str | None, typer.Option(help="open, verifying, decided or closed.")] = None,
    notice: Annotated[int | None, typer.Option(help="Only the conflicts of this notice.")] = None,
    limit: Limit = 50,
    before: Before = None,
) -> None:
    """Conflicts, newest first, values masked: a department's are those of its copies and those on items
    it is the authoritative source of."""
    from sharehub.consistency.check import list_conflicts

    t = Table("id", "status", "department", "resource", "item", "entity", "value", "authoritative", "since", "reply")
    found = list_conflicts(_hub(), department, status, limit, as_authority=True, notice_id=notice, before=before)
    for c in found:
        replies = ((c.replied_by, c.reply), (c.authority_replied_by, c.authority_reply))
        t.add_row(
            str(c.id),
            c.status,
            c.department,
            c.resource_id,
            c.item,
            c.entity_key[:6] + "…",
            c.other_value or "",
            c.authority_value or "(absent)",
            china_time(c.first_seen),
            "\n".join(f"{by}: {text}" for by, text in replies if text),
        )
    out.print(t)
    page_line(found)


@conflicts_app.command("decide")
def conflicts_decide(
    conflict_ids: Annotated[list[int], typer.Argument(help="The conflicts decided alike.")],
    right: Annotated[str, typer.Option(help="Whose value is right: authority or provider.")],
    by: Annotated[str, typer.Option(help="Who decided.")],
    reason: Annotated[str, typer.Option(help="Why.")],
) -> None:
    """Record the verified outcome of conflicts, all or none: which value is right, who decided and why.
    Each department hears it once per resource."""
    from sharehub.consistency.check import decide_many

    rows = _step(lambda: decide_many(_hub(), conflict_ids, right=right, by=by, reason=reason, actor=operator(by)))
    for c in rows:
        out.print(f"conflict {c.id}: decided, the {c.decision}'s value is right")
    notices = sorted({c.correction_notice_id for c in rows if c.correction_notice_id is not None})
    out.print(f"correction asked by notice {', '.join(f'#{n}' for n in notices)}")


@conflicts_app.command("verify")
def conflicts_verify(
    conflict_ids: Annotated[list[int], typer.Argument(help="The conflicts to take up.")],
    by: Annotated[str, typer.Option(help="Who is verifying.")],
    notify_authority: Annotated[
        bool, typer.Option("--notify-authority", help="Also ask the authoritative department to check its value.")
    ] = False,
) -> None:
    """Put conflicts under verification (核实), optionally notifying the authoritative department."""
    from sharehub.consistency.check import verify

    rows = _step(lambda: verify(_hub(), conflict_ids, by=by, notify_authority=notify_authority, actor=operator(by)))
    asked = sorted({r.authority_resource for r in rows if r.authority_notice_id is not None})
    out.print(f"{len(rows)} conflict(s) under verification" + (f"; asked {', '.join(asked)}" if asked else ""))


@conflicts_app.command("reply")
def conflicts_reply(
    conflict_id: int,
    department: Annotated[str, typer.Option(help="The replying department: the copy's, or the authority's.")],
    by: Annotated[str, typer.Option(help="Who replies.")],
    reason: Annotated[str, typer.Option(help="Why the department's value is right.")],
) -> None:
    """A department holds its value right, with reasons; the conflict goes under verification."""
    from sharehub.consistency.check import reply

    c = _step(
        lambda: reply(_hub(), conflict_id, department=department, by=by, reason=reason, actor=operator(by, department))
    )
    out.print(f"conflict {c.id}: {c.status}, {department}'s reply recorded for the platform office's decision")
