"""`sharehub upstream …`: requests for data held at the upper-level platform (MISSION 14; Zhongshan 20).

The platform office forwards or declines them and follows them upstairs; a consumer (`--consumer ID`)
files and withdraws its own. The twins of the `/upstream` routes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer
from rich.table import Table

from sharehub.cli.console import (
    Before,
    Fields,
    Limit,
    Modes,
    Purpose,
    ValidUntil,
    comma_list,
    consumer_caller,
    err,
    last_moment,
    one_of,
    out,
    page_line,
    run_step,
)
from sharehub.cli.console import hub as _hub
from sharehub.workdays import due_text

if TYPE_CHECKING:
    from sharehub.levels.upstream import Synced
    from sharehub.metadata.models import UpstreamObjection, UpstreamRequest

_T = TypeVar("_T")
upstream_app = typer.Typer(
    help="Levels (MISSION 14): requests for the upper-level platform's data, through this platform office.",
    no_args_is_help=True,
)


def _reaching(action: Callable[[], _T]) -> _T:
    """A step that calls the upper level: its silence or its refusal is printed, exit 1."""
    from sharehub.levels.upstream import Refused, Unreachable

    try:
        return run_step(action)
    except (Unreachable, Refused) as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(code=1) from None


def _show_objections(found: list[UpstreamObjection]) -> None:
    t = Table("id", "department", "resource", "fields", "status", "answer due", "upstream id", "answer")
    for o in found:
        t.add_row(
            str(o.id),
            o.department,
            o.resource_id,
            ", ".join(o.fields),
            o.status,
            due_text(o.deadline),
            str(o.upstream_objection_id),
            o.answer or "",
        )
    out.print(t)


def _show(found: list[UpstreamRequest]) -> None:
    t = Table("id", "department", "resource", "fields", "modes", "status", "forward by", "upstream", "reason")
    for r in found:
        upstairs = "-"
        if r.upstream_application_id is not None:
            upstairs = f"application {r.upstream_application_id}: {r.upstream_status}"
            if r.upstream_grant_id is not None:
                upstairs += f", grant {r.upstream_grant_id}"
        t.add_row(
            str(r.id),
            r.department,
            r.resource_id,
            ", ".join(r.fields),
            ", ".join(r.modes),
            r.status,
            due_text(r.deadline) if r.status == "collected" else "-",
            upstairs,
            r.reason or "",
        )
    out.print(t)


@upstream_app.command("catalogue")
def upstream_catalogue() -> None:
    """The upper-level platform's catalogue: what a department here may request through this platform."""
    from sharehub.levels.upstream import catalogue

    found = _reaching(lambda: catalogue(_hub(), fresh=True))
    t = Table("resource", "provider", "share type", "serving modes", "fields")
    for e in found.values():
        names = ", ".join(f["name"] for f in e["fields"])
        t.add_row(e["id"], e["provider"], e["share_type"], ", ".join(e["serving_modes"]), names)
    out.print(t)


@upstream_app.command("request")
def upstream_request(
    resource_id: Annotated[str, typer.Argument(help="The resource id in the upper level's catalogue.")],
    consumer: Annotated[int, typer.Option(help="The requesting consumer's id (sharehub consumers list).")],
    fields: Fields,
    modes: Modes,
    purpose: Purpose,
    valid_until: ValidUntil,
) -> None:
    """Request upper-level data for a consumer; the platform office is asked to forward it."""
    from sharehub.levels.upstream import file_request

    caller = consumer_caller(consumer)
    until = last_moment(valid_until)
    made = _reaching(
        lambda: file_request(_hub(), caller, resource_id, comma_list(fields), comma_list(modes), purpose, until)
    )
    _show([made])


@upstream_app.command("subscribe")
def upstream_subscribe(
    resource_id: Annotated[str, typer.Argument(help="The resource id in the upper level's catalogue.")],
    fields: Fields,
    purpose: Purpose,
    valid_until: ValidUntil,
) -> None:
    """Apply upstairs, as this platform, for the standing bulk grant under which the upper level's resource
    is pushed down and landed here (Zhejiang 14; a catalogue entry here has `source: {upstream: ID}`)."""
    from sharehub.access.callers import operator
    from sharehub.levels.pushdown import subscribe

    until = last_moment(valid_until)
    made = _reaching(lambda: subscribe(_hub(), operator(), resource_id, comma_list(fields), purpose, until))
    out.print(f"upstairs application #{made['id']} for {resource_id} (bulk): {made['status']}")


@upstream_app.command("requests")
def upstream_requests(
    status: Annotated[str | None, typer.Option(help="collected, forwarded, granted, refused, … .")] = None,
    limit: Limit = 100,
    before: Before = None,
) -> None:
    """Every request for upper-level data, newest first: what waits to be forwarded, and where the rest stand."""
    from sharehub.access.consumers import operator
    from sharehub.levels.upstream import UPSTREAM_STATES, list_requests

    one_of("--status", status, UPSTREAM_STATES)
    found = list_requests(_hub(), operator("cli"), limit, before, status=status)
    _show(list(found))
    page_line(found)


@upstream_app.command("forward")
def upstream_forward(
    request_id: int,
    by: Annotated[str, typer.Option(help="Who forwards it, at the platform office.")] = "command line",
) -> None:
    """Apply upward for a collected request, as this platform office's own application."""
    from sharehub.access.consumers import operator
    from sharehub.levels.upstream import forward

    _show([_reaching(lambda: forward(_hub(), operator(by), request_id))])


@upstream_app.command("decline")
def upstream_decline(
    request_id: int,
    reason: Annotated[str, typer.Option(help="Why it is not forwarded.")],
    by: Annotated[str, typer.Option(help="Who decides, at the platform office.")] = "command line",
) -> None:
    """Do not forward a collected request; the requester is told the reasons."""
    from sharehub.access.consumers import operator
    from sharehub.levels.upstream import decline

    _show([_reaching(lambda: decline(_hub(), operator(by), request_id, reason))])


@upstream_app.command("contest")
def upstream_contest(
    request_id: int,
    consumer: Annotated[int, typer.Option(help="The consumer that made the request.")],
    reason: Annotated[str, typer.Option(help="Why the upper level's refusal is wrong.")],
) -> None:
    """Contest the upper level's refusal of a request (Lichuan 25); sync brings the outcome down."""
    from sharehub.levels.upstream import contest

    _show([_reaching(lambda: contest(_hub(), consumer_caller(consumer), request_id, reason))])


@upstream_app.command("withdraw")
def upstream_withdraw(
    request_id: int,
    consumer: Annotated[int, typer.Option(help="The consumer that made the request.")],
    reason: Annotated[str, typer.Option(help="Why.")],
) -> None:
    """Take a request back; upstairs its application is withdrawn or its grant given up."""
    from sharehub.levels.upstream import withdraw

    _show([_reaching(lambda: withdraw(_hub(), consumer_caller(consumer), request_id, reason))])


def run_sync() -> Synced:
    """Follow every forwarded or granted request and every open objection upstairs; print what changed."""
    from sharehub.access.consumers import operator
    from sharehub.levels.upstream import sync

    changed = _reaching(lambda: sync(_hub(), operator("upstream sync")))
    _show(changed.requests)
    if changed.objections:
        _show_objections(changed.objections)
    out.print(
        f"{len(changed.requests):,} request(s) changed state upstairs; "
        f"{len(changed.objections):,} objection(s) answered"
    )
    return changed


@upstream_app.command("sync")
def upstream_sync() -> None:
    """Follow every forwarded or granted request at the upper level; each change is told to its requester."""
    run_sync()


@upstream_app.command("object")
def upstream_object(
    resource_id: Annotated[str, typer.Argument(help="The upper-level resource.")],
    consumer: Annotated[int, typer.Option(help="The consumer that uses the record.")],
    key: Annotated[list[str], typer.Option(help="A key field, as FIELD=VALUE (repeat for each).")],
    fields: Annotated[str, typer.Option(help="Comma-separated fields you dispute.")],
    reason: Annotated[str, typer.Option(help="What is wrong with the record.")],
) -> None:
    """Object to an upper-level record a consumer uses (疑义); raised upstairs by this platform office."""
    from sharehub.levels.upstream import object_upstairs

    pairs = dict(k.split("=", 1) for k in key if "=" in k)
    if len(pairs) != len(key):
        err.print("[red]--key takes FIELD=VALUE[/red]")
        raise typer.Exit(code=2)
    caller = consumer_caller(consumer)
    wanted = comma_list(fields)
    _show_objections([_reaching(lambda: object_upstairs(_hub(), caller, resource_id, pairs, wanted, reason))])


@upstream_app.command("objections")
def upstream_objections(limit: Limit = 100, before: Before = None) -> None:
    """Objections raised upstairs through this platform, newest first, with the upper level's answers."""
    from sharehub.access.consumers import operator
    from sharehub.levels.upstream import list_objections

    found = list_objections(_hub(), operator("cli"), limit, before)
    _show_objections(list(found))
    page_line(found)
