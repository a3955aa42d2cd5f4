"""The `sharehub` command line: the same functions the DAGs and the API call."""

from __future__ import annotations

import logging
import os
import sys
from typing import TYPE_CHECKING, Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from sharehub.cli.consistency import conflicts_app, consistency, run_check
from sharehub.cli.console import Limit, err, out, page_line
from sharehub.cli.console import hub as _hub
from sharehub.cli.consumers import consumers_app
from sharehub.cli.grants import applications_app, audit_app, extracts_app, grants_app, objections_app
from sharehub.cli.notices import notices_app
from sharehub.cli.open import open_app, run_publish
from sharehub.cli.seal import seal_app
from sharehub.cli.stats import bulletin, freshness, scores, stats
from sharehub.cli.themes import run_builds, themes_app
from sharehub.cli.upstream import upstream_app
from sharehub.errors import SharehubError

if TYPE_CHECKING:
    from sharehub.hub import Hub

app = typer.Typer(
    help="sharehub: the government data-sharing hub.", no_args_is_help=True, pretty_exceptions_enable=False
)
catalogue_app = typer.Typer(help="Inspect and validate the resource catalogue.", no_args_is_help=True)
runs_app = typer.Typer(help="Inspect pipeline runs.", no_args_is_help=True)
db_app = typer.Typer(help="Manage the metadata database.", no_args_is_help=True)
app.add_typer(catalogue_app, name="catalogue")
app.add_typer(runs_app, name="runs")
app.add_typer(db_app, name="db")
app.add_typer(notices_app, name="notices")
app.add_typer(consumers_app, name="consumers")
app.add_typer(conflicts_app, name="conflicts")
app.add_typer(themes_app, name="themes")
app.add_typer(applications_app, name="applications")
app.add_typer(grants_app, name="grants")
app.add_typer(objections_app, name="objections")
app.add_typer(extracts_app, name="extracts")
app.add_typer(audit_app, name="audit")
app.add_typer(open_app, name="open")
app.add_typer(seal_app, name="seal")
app.add_typer(upstream_app, name="upstream")
app.command("stats")(stats)
app.command("freshness")(freshness)
app.command("scores")(scores)
app.command("bulletin")(bulletin)
app.command("consistency")(consistency)


@app.callback()
def main(verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log ids and counts at INFO.")] = False) -> None:
    """Configure logging for every command."""
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    # Great Expectations logs its own housekeeping at INFO; keep it to warnings unless asked.
    logging.getLogger("great_expectations").setLevel(logging.INFO if verbose else logging.WARNING)


def _fail(exc: SharehubError) -> None:
    kind = "retryable" if exc.retryable else "fatal"
    err.print(f"[red]error ({kind}, {type(exc).__name__}):[/red] {exc}")
    raise typer.Exit(code=1)


# -- catalogue -------------------------------------------------------------------------------------
@catalogue_app.command("validate")
def catalogue_validate(
    directory: Annotated[
        str | None, typer.Option("--dir", help="Catalogue folder (default: SHAREHUB_CATALOGUE_DIR).")
    ] = None,
    strict: Annotated[
        bool, typer.Option(help="Fail on a delivery rule the active profile does not allow (default: warn).")
    ] = False,
) -> None:
    """Validate the catalogue; print every problem with its file, key and reason, and record the version.
    Delivery deadlines and frequencies the active profile does not allow are warned of (`--strict`: fail)."""
    from pathlib import Path

    from sharehub.catalogue import load_catalogue

    hub = _hub()
    try:
        cat = load_catalogue(Path(directory) if directory else hub.settings.catalogue_dir)
        version = hub.record_catalogue(cat)
    except SharehubError as exc:
        _fail(exc)
    out.print(
        f"catalogue OK: {len(cat.departments)} departments, {len(cat.resources)} resources, "
        f"version {version} ({cat.digest[:12]})"
    )
    from sharehub.profiles.check import catalogue_against_profile

    beyond = catalogue_against_profile(hub.profile, cat)
    for problem in beyond:
        err.print(f"[yellow]profile {hub.profile.id}:[/yellow] {problem}")
    if beyond:
        err.print(f"{len(beyond)} declaration(s) the profile does not allow (its delivery limits apply regardless)")
        if strict:
            raise typer.Exit(code=1)


@catalogue_app.command("list")
def catalogue_list() -> None:
    """List the resources: id, store, share type, modes, frequency."""
    try:
        cat = _hub().catalogue
    except SharehubError as exc:
        _fail(exc)
    t = Table("id", "title", "provider", "store", "share", "modes", "update")
    for r in sorted(cat.resources.values(), key=lambda r: r.id):
        t.add_row(
            r.id,
            r.title,
            cat.departments[r.provider].name,
            r.store.path,
            r.share.type,
            ",".join(r.serving_modes) or "-",
            f"{r.update.frequency}/{r.update.deadline_working_days}wd",
        )
    out.print(t)


@catalogue_app.command("show")
def catalogue_show(resource_id: str) -> None:
    """Show one resource's declaration as YAML."""
    import yaml

    try:
        res = _hub().catalogue.resource(resource_id)
    except SharehubError as exc:
        _fail(exc)
    out.print(yaml.safe_dump(res.model_dump(mode="json"), allow_unicode=True, sort_keys=False))


# -- runs ------------------------------------------------------------------------------------------
def _summary_table(summaries: list) -> Table:
    t = Table("resource", "status", "landed", "passed", "quarantined", "inserted", "updated", "deleted", "version")
    for s in summaries:
        t.add_row(
            s.resource_id,
            s.status,
            f"{s.landed:,}",
            f"{s.passed:,}",
            f"{s.quarantined:,}",
            f"{s.inserted:,}",
            f"{s.updated:,}",
            f"{s.deleted:,}",
            "-" if s.store_version is None else f"v{s.store_version}",
        )
    return t


def run_many(resource_ids: list[str]) -> list:
    """Run resources one after another with a progress bar; a failure is reported and the next goes on."""
    from sharehub.pipeline.run import run_resource, summarize
    from sharehub.pipeline.runs import last_runs

    hub = _hub()
    summaries, failed = [], []
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rows]:>12,} rows"),
        TimeElapsedColumn(),
        console=err,
    ) as bar:
        overall = bar.add_task("resources", total=len(resource_ids), rows=0)
        for rid in resource_ids:
            task = bar.add_task(f"  {rid}", total=None, rows=0)

            def advance(n: int, task: TaskID = task) -> None:
                bar.update(task, advance=n, rows=bar.tasks[task].completed + n)
                bar.update(overall, rows=bar.tasks[overall].fields["rows"] + n)

            try:
                s = run_resource(hub, rid, on_rows=advance)
                summaries.append(s)
            except SharehubError as exc:
                err.print(f"[red]{rid} failed ({'retryable' if exc.retryable else 'fatal'}):[/red] {exc}")
                last = last_runs(hub, rid, limit=1)
                if last:
                    summaries.append(summarize(hub, last[0].id))
                failed.append(rid)
            bar.update(task, total=1, completed=1)
            bar.advance(overall)
    out.print(_summary_table(summaries))
    if any(s.status == "succeeded" for s in summaries):
        run_check(full=False)  # the conflict check, on the entities these runs changed
        run_builds(None)  # thematic stores whose sources changed
        run_publish(None)  # open datasets whose stores moved
    if failed:
        err.print(f"[red]{len(failed)} resource(s) failed: {', '.join(failed)}[/red]")
    return summaries if not failed else [*summaries, None]


@app.command("run")
def run(
    resource_ids: Annotated[list[str] | None, typer.Argument(help="Resource ids, e.g. gongan.population.")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Run every resource in the catalogue.")] = False,
) -> None:
    """Extract, gate and promote resources: the same steps as their Airflow DAGs."""
    try:
        cat = _hub().catalogue
        ids = sorted(cat.resources) if all_ else list(resource_ids or [])
        if not ids:
            err.print("name resource ids or pass --all")
            raise typer.Exit(code=2)
        for rid in ids:
            cat.resource(rid)
    except SharehubError as exc:
        _fail(exc)
    result = run_many(ids)
    if result and result[-1] is None:
        raise typer.Exit(code=1)


@runs_app.command("list")
def runs_list(
    resource: Annotated[str | None, typer.Option(help="Only this resource.")] = None,
    status: Annotated[str | None, typer.Option(help="Only runs in this state, e.g. failed or succeeded.")] = None,
    limit: Limit = 20,
    before: Annotated[
        str | None,
        typer.Option(help="Only runs started before this one: the next page, as the line under the list names it."),
    ] = None,
) -> None:
    """The newest runs with their counts and outcome; a run whose process died is marked abandoned first."""
    from sharehub.pipeline.liveness import reap
    from sharehub.pipeline.runs import last_runs

    hub = _hub()
    reap(hub)
    t = Table(
        "run id", "resource", "status", "step", "landed", "passed", "quarantined", "version", "error / worked on by"
    )
    try:
        shown = last_runs(hub, resource, limit, status, before)
    except LookupError as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(code=1) from None
    for r in shown:
        t.add_row(
            r.id,
            r.resource_id,
            r.status,
            r.step,
            f"{r.rows_landed or 0:,}",
            f"{r.rows_passed or 0:,}",
            f"{r.rows_quarantined or 0:,}",
            "-" if r.store_version is None else f"v{r.store_version}",
            (r.holder or "") if r.status == "running" else (r.error or "")[:160],
        )
    out.print(t)
    page_line(shown)


@runs_app.command("show")
def runs_show(run_id: str) -> None:
    """One run: its counts, each rule's result and the quarantined rows' reasons, by count."""
    from collections import Counter

    from sqlalchemy import select

    from sharehub.metadata.models import QualityResult, QuarantinedRow
    from sharehub.pipeline.run import summarize

    hub = _hub()
    try:
        s = summarize(hub, run_id)
    except SharehubError as exc:
        _fail(exc)
    out.print(_summary_table([s]))
    if s.error:
        out.print(f"[red]error:[/red] {s.error}")
    with hub.db() as db:
        rules = list(db.scalars(select(QualityResult).where(QualityResult.run_id == run_id)))
        reasons = Counter(
            r for q in db.scalars(select(QuarantinedRow).where(QuarantinedRow.run_id == run_id)) for r in q.reasons
        )
    t = Table("rule", "checked", "failed", "ok")
    for q in rules:
        t.add_row(q.rule, f"{q.element_count:,}", f"{q.unexpected_count:,}", "yes" if q.success else "[red]no[/red]")
    out.print(t)
    from sharehub.pipeline.reasons import explain

    resource = hub.catalogue.resources.get(s.resource_id)
    for reason, n in reasons.most_common():
        out.print(f"  {n:>7,}  {explain(reason, resource)}")
    from sharehub.notices import notices_holding
    from sharehub.workdays import due_text

    for notice, keys in notices_holding(hub, run_id):
        own = "this run's" if notice.run_id == run_id else f"from run {notice.run_id}"
        due = due_text(notice.deadline)
        out.print(f"notice #{notice.id} ({own}, {notice.status}, due {due}) names {keys:,} of these row keys")
    from sharehub.pipeline.report import report_path

    out.print(f"HTML report: {hub.store.uri(report_path(s.resource_id, run_id))}")


def served_url(host: str, port: int) -> str:
    """The address `serve` answers at, for links: a wildcard interface is reached through loopback here."""
    if host in ("0.0.0.0", "::", ""):
        host = "127.0.0.1"
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


@app.command("serve")
def serve(
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    workers: Annotated[
        int, typer.Option(min=1, help="Worker processes; the rate limit and key revocations hold across them.")
    ] = 1,
) -> None:
    """Start the HTTP API."""
    import uvicorn

    if not os.environ.get("SHAREHUB_PUBLIC_URL"):  # download links must name the port actually served
        os.environ["SHAREHUB_PUBLIC_URL"] = served_url(host, port)
        out.print(
            f"download links point at {os.environ['SHAREHUB_PUBLIC_URL']}; set SHAREHUB_PUBLIC_URL to the address"
            " consumers reach this API at" + (" (it listens on every interface)" if host in ("0.0.0.0", "::") else "")
        )
    from sharehub.settings import get_settings

    get_settings()  # refuse a bad configuration here, cleanly, before any worker starts (after PUBLIC_URL is set)
    uvicorn.run("api.app:create_app", factory=True, host=host, port=port, workers=workers, log_level="info")


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Migrate the metadata database to the newest schema."""
    from sharehub.metadata.db import upgrade

    upgrade(_hub().settings.metadata_url)
    out.print("metadata database is up to date")


@db_app.command("backup")
def db_backup(out_file: Annotated[str, typer.Argument(help="The backup file to write (a new one).")]) -> None:
    """A consistent backup of the metadata database, taken while the hub runs; its audit chain is checked.

    SQLite: a copy by SQLite's online backup API (restore: stop the hub, put it back as the database
    file, delete the old file's -wal and -shm). PostgreSQL: a pg_dump custom-format archive (restore:
    pg_restore --clean --no-owner --dbname URL)."""
    from pathlib import Path

    from sharehub.metadata.backup import backup

    try:
        made = backup(_hub(), Path(out_file))
    except SharehubError as exc:
        _fail(exc)
    out.print(f"metadata database backed up to {made.path} ({made.bytes:,} bytes)")
    if not made.chain.ok:
        err.print(
            f"[red]the audit chain of {made.checked} is broken at entry {made.chain.first_bad}: "
            f"{made.chain.reason}[/red] (the backup keeps it as it is)"
        )
        raise typer.Exit(code=1)
    out.print(f"audit chain of {made.checked}: intact, {made.chain.entries:,} entries")


# -- demo ------------------------------------------------------------------------------------------
@app.command("demo")
def demo(
    persons: Annotated[int, typer.Option(help="Residents to generate.")] = 100_000,
    entities: Annotated[int, typer.Option(help="Legal entities to generate.")] = 20_000,
    keep: Annotated[bool, typer.Option(help="Keep existing stores instead of starting fresh.")] = False,
    serve_after: Annotated[bool, typer.Option("--serve", help="Start the API afterwards.")] = False,
) -> None:
    """Build the embedded department databases with synthetic data, run every pipeline once, print the outcome."""
    from sharehub.demo.build import build_sources, reset_embedded_state

    hub = _hub()
    if not keep:
        reset_embedded_state(hub.settings)
    try:
        cat = hub.catalogue
        departments = len({r.provider for r in cat.resources.values()})
        with err.status(
            f"generating {persons:,} persons and {entities:,} legal entities in {departments} departments…"
        ):
            sources = build_sources(hub.settings, cat, persons, entities)
    except SharehubError as exc:
        _fail(exc)
    t = Table("resource", "department", "source rows", "planted defects and disagreements")
    for rid, n in sorted(sources.rows.items()):
        planted = ", ".join(f"{k} {v}" for k, v in sources.world.planted.get(rid, {}).items())
        t.add_row(rid, cat.departments[cat.resource(rid).provider].name, f"{n:,}", planted)
    out.print(t)
    result = run_many(sorted(cat.resources))
    out.print(
        f"stores, landing and quarantine under {hub.settings.storage_url}; metadata in {hub.settings.metadata_url}"
    )
    out.print("why rows were quarantined: sharehub runs show <run id>  (run ids: sharehub runs list)")
    from sharehub.notices import list_notices

    notices = list_notices(hub)
    quality = sum(n.kind == "quality" for n in notices)
    conflicts = sum(n.kind == "conflict" for n in notices)
    where = f"sent via {hub.settings.smtp_host}" if hub.settings.smtp_host else "queued (no SHAREHUB_SMTP_HOST set)"
    out.print(f"{quality} rectification notice(s) to provider departments, {where}: sharehub notices list")
    out.print(f"{conflicts} conflict notice(s) to departments whose copies disagree: sharehub conflicts list")
    if result and result[-1] is None:
        raise typer.Exit(code=1)
    _serving_tour(hub)
    if serve_after:
        serve()


def _serving_tour(hub: Hub) -> None:
    """The demo's last part: applications, grants and the three serving modes over HTTP, audited."""
    from sharehub.demo.serving import tour

    with err.status("serving: consumers apply, verify, query and pull a bulk extract over HTTP…"):
        done = tour(hub)
    t = Table("serving call (as 民政局's low-income check system)", "outcome", title="serving, under grants")
    for step, outcome in done.steps:
        t.add_row(step, outcome)
    out.print(t)
    state = "intact" if done.audit_intact else "[red]BROKEN[/red]"
    out.print(
        f"audit chain: {done.audit_entries:,} entries, {state} (sharehub audit verify; who called what: "
        "sharehub audit list, or GET /audit)"
    )
    out.print(
        "try the API yourself: sharehub serve, then with the consumer key (shown this once)\n"
        f"  curl -H 'Authorization: Bearer {done.consumer_key}' http://127.0.0.1:8000/catalogue"
    )
    t = Table(
        "who", "username", "password (shown this once)", title=f"web console: {served_url('127.0.0.1', 8000)}/console"
    )
    for who, username, password in done.sign_ins:
        t.add_row(who, username, password)
    out.print(t)
    out.print("the console runs with the API: sharehub serve (or sharehub demo --serve)")


@app.command("load-demo-data")
def load_demo_data(
    url: Annotated[str, typer.Option(help="SQLAlchemy URL of a PostgreSQL or MariaDB database to fill.")],
    persons: int = 10_000,
    entities: int = 2_000,
) -> None:
    """Fill an external department database (PostgreSQL, MariaDB) with the demo generator's tables."""
    from sharehub.demo.build import build_sources

    hub = _hub()
    cat = hub.catalogue
    conns = {r.source.connection: url for r in cat.resources.values() if r.source.connection}
    sources = build_sources(hub.settings, cat, persons, entities, url_for=conns)
    for rid, n in sorted(sources.rows.items()):
        out.print(f"{rid}: {n:,} rows")


def entrypoint() -> None:
    """Console entry point; errors the hub raises on purpose never show a stack trace."""
    from pydantic import ValidationError

    try:
        app()
    except SharehubError as exc:
        err.print(f"[red]error:[/red] {exc}")
        sys.exit(1)
    except ValidationError as exc:
        if exc.title != "Settings":
            raise
        for problem in exc.errors():  # each names its SHAREHUB_ setting; no traceback, no secret value
            where = ".".join(str(part) for part in problem["loc"])
            msg = str(problem["msg"]).removeprefix("Value error, ")
            err.print(f"[red]configuration:[/red] {f'SHAREHUB_{where.upper()}: ' if where else ''}{msg}")
        sys.exit(2)
