"""`sharehub open …`: the open datasets handed to the city's open-data portal (Fushun 20–22)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from sharehub.console import err, out
from sharehub.console import hub as _hub

open_app = typer.Typer(help="Open data (政务数据开放): datasets for the open-data portal.", no_args_is_help=True)


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
    """Every resource open to the public: its open (L1) fields, and its dataset or whom to apply to."""
    from sharehub.opendata import open_catalogue

    t = Table("resource", "open", "fields", "dataset, or apply to")
    for e in open_catalogue(_hub()):
        where = e.get("dataset") or "(not published yet)"
        if e["open"] == "on_application":
            where = f"{e['apply_to']['department']} <{e['apply_to']['contact']}>, answer within "
            where += f"{e['answer_within_working_days']} working days"
        t.add_row(e["resource_id"], e["open"], ", ".join(f["name"] for f in e["fields"]), where)
    out.print(t)
