"""`sharehub open …`: the open datasets handed to the city's open-data portal (Fushun 20–22)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from sharehub.cli.console import Before, Limit, comma_list, err, one_of, out, page_line, run_step
from sharehub.cli.console import hub as _hub
from sharehub.workdays import due_text

if TYPE_CHECKING:
    from sharehub.metadata.models import OpenRequest

open_app = typer.Typer(
    help="Open data (政务数据开放): datasets for the open-data portal, and requests for data opened on application.",
    no_args_is_help=True,
)


def run_publish(resource_ids: list[str] | None) -> None:
    """Publish the open datasets whose stores moved, and print what happened to each."""
    from deltalake.exceptions import DeltaError

    from sharehub.opendata import publish

    hub = _hub()
    try:
        with err.status("open data: writing the datasets whose stores moved…"):
            done = publish(hub, resource_ids)
    except ValueError as exc:
        err.print(str(exc))
        raise typer.Exit(code=1) from None
    except (OSError, DeltaError) as exc:  # the store is unreachable: the datasets stay as last published
        err.print(f"[red]open datasets not published: {exc}[/red]")
        raise typer.Exit(code=1) from None
    t = Table("open dataset", "status", "store version", "rows", "where")
    for p in done:
        where = hub.store.uri(f"open/{p.resource_id}/v{p.store_version}.parquet") if p.status != "no_store" else "-"
        version = "-" if p.store_version is None else f"v{p.store_version}"
        t.add_row(p.resource_id, p.status, version, f"{p.rows:,}", where)
    out.print(t)


@open_app.command("publish")
def open_publish(
    resource_ids: Annotated[list[str] | None, typer.Argument(help="Only these, e.g. scjg.legal_entity.")] = None,
) -> None:
    """Write the L1 fields of each unconditionally open resource whose store moved, and the open catalogue."""
    run_publish(resource_ids)


@open_app.command("catalogue")
def open_catalogue_() -> None:
    """Every resource open to the public: its open (L1) fields, and its dataset or whom to apply to; where
    the profile publishes it (Fushun 22), why the others are not open."""
    from sharehub.opendata import open_catalogue

    t = Table("resource", "open", "fields", "dataset, or apply to (or why it is not open)")
    for e in open_catalogue(_hub()):
        where = e.get("dataset") or "(not published yet)"
        if e["open"] in ("on_application", "conditional"):
            where = f"{e['apply_to']['department']} <{e['apply_to']['contact']}>, answer within "
            where += f"{e['answer_within_working_days']} working days"
            if "restriction_basis" in e:
                where += f"; restricted: {e['restriction_basis']}"
        elif e["open"] == "not_open":
            where = f"not open: {e['not_open_basis']}"
        t.add_row(e["resource_id"], e["open"], ", ".join(f["name"] for f in e.get("fields", [])), where)
    out.print(t)


@open_app.command("request")
def open_request(
    resource_id: str,
    applicant: Annotated[str, typer.Option(help="The requester, as the portal knows them.")],
    fields: Annotated[str, typer.Option(help="Comma-separated L1 (public) fields, e.g. uscc,name.")],
    purpose: Annotated[str, typer.Option(help="What the data is for.")],
    portal_ref: Annotated[str | None, typer.Option(help="The portal's own number for the request.")] = None,
    by: Annotated[str, typer.Option(help="Who files it, at the platform office.")] = "open-data portal",
    accepts_conditions: Annotated[
        bool, typer.Option(help="For data opened on conditions (有条件开放): the requester accepts them.")
    ] = False,
) -> None:
    """File a request for a resource opened on application (依申请开放) or on conditions (有条件开放); its
    department is told the deadline."""
    from sharehub.access.consumers import operator
    from sharehub.access.openrequests import file_request

    wanted = comma_list(fields)
    _show(
        [
            run_step(
                lambda: file_request(
                    _hub(), operator(by), resource_id, applicant, wanted, purpose, portal_ref, accepts_conditions
                )
            )
        ]
    )


@open_app.command("requests")
def open_requests(
    department: Annotated[str | None, typer.Option(help="Only requests on this department's resources.")] = None,
    status: Annotated[str | None, typer.Option(help="pending, approved, refused or withdrawn.")] = None,
    resource: Annotated[str | None, typer.Option(help="Only this resource.")] = None,
    limit: Limit = 100,
    before: Before = None,
) -> None:
    """Open-data requests, newest first, with their deadlines and answers."""
    from sharehub.access.consumers import PLATFORM, operator
    from sharehub.access.openrequests import OPEN_REQUEST_STATES, list_requests

    one_of("--status", status, OPEN_REQUEST_STATES)
    caller = operator("cli", department or PLATFORM)
    found = list_requests(_hub(), caller, limit, before, status=status, resource_id=resource)
    _show(found)
    page_line(found)


@open_app.command("decide")
def open_decide(
    request_id: int,
    department: Annotated[str, typer.Option(help="The providing department answering.")],
    approve: Annotated[bool, typer.Option("--approve/--refuse", help="Open the data to the applicant, or refuse.")],
    by: Annotated[str, typer.Option(help="Who decided.")],
    reason: Annotated[str, typer.Option(help="Reasons (required to refuse).")] = "",
) -> None:
    """The providing department's answer; approved, the request's dataset is written and sealed."""
    from deltalake.exceptions import DeltaError

    from sharehub.access.consumers import operator
    from sharehub.access.openrequests import decide_request

    caller = operator(by, department)
    try:
        _show([run_step(lambda: decide_request(_hub(), caller, request_id, approve, reason))])
    except (OSError, DeltaError) as exc:  # the store is unreachable: the request stays pending
        err.print(f"[red]open-data request {request_id} not answered: {exc}[/red]")
        raise typer.Exit(code=1) from None


@open_app.command("withdraw")
def open_withdraw(
    request_id: int,
    reason: Annotated[str, typer.Option(help="Why the applicant takes it back.")],
    by: Annotated[str, typer.Option(help="Who withdraws it, at the platform office.")] = "open-data portal",
) -> None:
    """Take back a pending request for its applicant; the department's notice is resolved."""
    from sharehub.access.consumers import operator
    from sharehub.access.openrequests import withdraw_request

    _show([run_step(lambda: withdraw_request(_hub(), operator(by), request_id, reason))])


def _show(requests: list[OpenRequest]) -> None:
    from sharehub.access.openrequests import late

    t = Table("id", "resource", "applicant", "fields", "status", "due (China)", "late", "answer", "dataset")
    for r in requests:
        where = f"{r.dataset} ({r.rows:,} rows, store v{r.store_version})" if r.dataset else ""
        t.add_row(
            str(r.id),
            r.resource_id,
            r.applicant,
            ", ".join(r.fields),
            r.status,
            due_text(r.deadline),
            "late" if late(r) else "",
            r.reason or "",
            where,
        )
    out.print(t)
