"""`sharehub themes …`: thematic stores built from SQL models over several departments' stores."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from sharehub.cli.console import err, out
from sharehub.cli.console import hub as _hub
from sharehub.errors import SharehubError

themes_app = typer.Typer(help="Thematic stores (主题库): SQL models in warehouse/models, written as Delta tables.")


def build_table(builds: list) -> Table:
    """What a build did, model by model, with the source versions it read."""
    t = Table("model", "status", "rows", "version", "built from (resource@version)", "seconds")
    for b in builds:
        sources = ", ".join(f"{rid}@v{v}" for rid, v in sorted(b.sources.items())) or b.detail
        version = "-" if b.version is None else f"v{b.version}"
        rows = f"{b.rows:,}" if b.status == "built" else "-"
        t.add_row(b.model, b.status, rows, version, sources, f"{b.seconds:.1f}")
    return t


def run_builds(model_ids: list[str] | None, force: bool = False) -> list:
    """Build models and print the outcome; a broken model is reported with its file and reason."""
    from sharehub.pipeline.themes import build

    try:
        with err.status("thematic stores: running the SQL models whose sources changed…"):
            builds = build(_hub(), model_ids, force=force)
    except SharehubError as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(code=1) from None
    out.print(build_table(builds))
    return builds


@themes_app.command("build")
def themes_build(
    model_ids: Annotated[list[str] | None, typer.Argument(help="e.g. market_credit.company_credit")] = None,
    force: Annotated[bool, typer.Option("--force", help="Rebuild even if no source changed.")] = False,
) -> None:
    """Build thematic stores whose sources or SQL changed since their last build."""
    run_builds(model_ids, force)


@themes_app.command("list")
def themes_list() -> None:
    """Every declared model, its store and what its current version was built from."""
    from sharehub.pipeline.themes import last_build, models

    hub = _hub()
    t = Table("model", "title", "key", "store", "version", "built from")
    try:
        declared = models(hub)
    except SharehubError as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(code=1) from None
    for m in declared.values():
        last = last_build(hub.store.uri(m.store_path), hub.store.delta_options())
        built = ", ".join(f"{r}@v{v}" for r, v in sorted(((last or {}).get("sharehub.sources") or {}).items()))
        version = f"v{last['version']}" if last else "not built"
        t.add_row(m.id, m.title, ", ".join(m.key), m.store_path, version, built)
    out.print(t)
