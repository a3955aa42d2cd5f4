"""Extract: read a resource from its department into immutable Parquet in the landing zone."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pyarrow as pa
import pyarrow.compute as pc

from connectors.base import TYPE_FAMILIES, Source
from connectors.files import FileDropSource
from connectors.hub import UpstreamSource
from connectors.sql import SqlSource
from sharehub.catalogue.models import DECIMAL_TYPE, Resource
from sharehub.errors import SchemaDrift, SourceUnreachable
from sharehub.hub import Hub
from sharehub.metadata.models import Run
from sharehub.pipeline import paths
from sharehub.pipeline.conform import conform_column
from sharehub.pipeline.landing import LandingWriter
from sharehub.pipeline.liveness import reap, working
from sharehub.pipeline.runs import current_watermark, fail_run, new_run_id, update_run

log = logging.getLogger(__name__)
Progress = Callable[[int], None]


def open_source(hub: Hub, resource: Resource) -> Source:
    """The connector for a resource's declared source."""
    src = resource.source
    label = f"{resource.id} source"
    if src.file_pattern:
        return FileDropSource(
            hub.settings.filedrop_dir,
            src.file_pattern,
            encoding=src.encoding,
            batch_rows=hub.settings.extract_batch_rows,
            label=label,
        )
    if src.upstream:
        settings = hub.settings
        if not settings.upstream_url:
            raise SourceUnreachable(f"{label}: no upper-level platform configured (SHAREHUB_UPSTREAM_URL)")
        return UpstreamSource(
            settings.upstream_url,
            settings.upstream_key.get_secret_value(),
            src.upstream,
            timeout=max(60.0, settings.upstream_timeout_seconds),
            batch_rows=hub.settings.extract_batch_rows,
            label=label,
        )
    assert src.connection
    return SqlSource(
        hub.settings.connection_url(src.connection),
        table=src.table,
        query=src.query,
        timezone=src.timezone,
        batch_rows=hub.settings.extract_batch_rows,
        label=label,
    )


def check_schema(resource: Resource, source: Source) -> None:
    """Raise SchemaDrift naming the resource and every declared column that vanished or changed type."""
    found = source.columns()
    problems = []
    for f in resource.fields:
        col = found.get(f.column)
        if col is None:
            problems.append(f"column {f.column!r} (field {f.name}) is missing")
            continue
        declared = "decimal" if DECIMAL_TYPE.match(f.type) else f.type
        if col.family == "unknown" or isinstance(source, FileDropSource):
            continue  # a query's or a text file's columns carry no type to compare
        if col.family not in TYPE_FAMILIES[declared]:
            problems.append(f"column {f.column!r} is {col.native} at the source, but the catalogue declares {f.type}")
        elif f.name == resource.source.incremental_column and col.family == "string":
            # Text compares as text on the server: '2024-9-1' > '2024-10-1'. A watermark needs real order.
            problems.append(
                f"column {f.column!r} is the incremental column but is {col.native} (text) at the source; "
                "it must be a timestamp or an integer there"
            )
    if problems:
        raise SchemaDrift(f"{resource.id}: schema drift at {source.description}: " + "; ".join(problems))


def _since(resource: Resource, watermark: str | None) -> object:
    if watermark is None or resource.source.mode != "incremental":
        return None
    inc = resource.field(resource.source.incremental_column or "")
    if inc.type == "integer":
        return int(watermark)
    return datetime.fromisoformat(watermark) - timedelta(minutes=resource.source.lag_minutes)


def extract(
    hub: Hub,
    resource_id: str,
    *,
    run_id: str | None = None,
    external_run_id: str | None = None,
    trigger: str = "cli",
    on_rows: Progress | None = None,
) -> str:
    """Read the resource's new rows (or its snapshot) into the landing zone; return the run id."""
    resource = hub.catalogue.resource(resource_id)
    reap(hub, resource_id)  # earlier runs whose process died are marked abandoned, not left running
    run_id = run_id or new_run_id(resource_id, external_run_id)
    with hub.db() as s:
        if s.get(Run, run_id) is None:
            s.add(
                Run(
                    id=run_id,
                    resource_id=resource_id,
                    trigger=trigger,
                    mode=resource.source.mode,
                    status="queued",
                    step="extract",
                )
            )
    # Only the process that holds the run's liveness lock touches it: a retry of a run another live process
    # still works on is refused (RunBusy) before it changes anything.
    with working(hub, run_id, "extract"):
        watermark = current_watermark(hub, resource_id)
        update_run(hub, run_id, catalogue_version_id=hub.catalogue_version, watermark_from=watermark)
        try:
            _extract(hub, resource, run_id, watermark, on_rows)
        except BaseException as exc:  # whatever stops it (a driver's panic, an interrupt), the run says so
            hub.store.delete_dir(paths.landing_dir(resource_id, run_id))
            fail_run(hub, run_id, "extract", exc)
            raise
    return run_id


def _extract(hub: Hub, resource: Resource, run_id: str, watermark: str | None, on_rows: Progress | None) -> None:
    source = open_source(hub, resource)
    try:
        _extract_from(hub, resource, run_id, watermark, on_rows, source)
    finally:
        close = getattr(source, "close", None)  # a source holding a download lets it go
        if close is not None:
            close()


def _extract_from(
    hub: Hub, resource: Resource, run_id: str, watermark: str | None, on_rows: Progress | None, source: Source
) -> None:
    check_schema(resource, source)
    hub.store.delete_dir(paths.landing_dir(resource.id, run_id))  # a retried extract starts clean
    columns = [f.column for f in resource.fields]
    inc_field = resource.field(resource.source.incremental_column) if resource.source.incremental_column else None
    since = _since(resource, watermark)
    # The watermark is an instant: a zone-less value is read in the source's declared zone.
    inc_instant = inc_field
    if inc_field is not None and inc_field.type == "timestamp":
        inc_instant = inc_field.model_copy(update={"type": "timestamptz"})
    newest: object = None
    writer = LandingWriter(hub.store, paths.landing(resource.id, run_id), background=source.overlap_writes)
    try:
        for batch in source.read(columns, inc_field.column if inc_field else None, since):
            writer.write(batch)
            if inc_instant is not None:
                typed, _ = conform_column(batch.column(inc_instant.column), inc_instant, resource.source.timezone)
                top = pc.max(typed).as_py()
                if top is not None and (newest is None or top > newest):
                    newest = top
            if on_rows:
                on_rows(batch.num_rows)
    except BaseException:
        writer.abort()
        raise
    landed = writer.close(pa.schema([pa.field(c, pa.string()) for c in columns]))
    keys_read = 0
    if resource.source.deletes_detected:
        key_cols = resource.key_columns
        keys = LandingWriter(hub.store, paths.landing_keys(resource.id, run_id), background=source.overlap_writes)
        try:
            for batch in source.read_keys(key_cols):
                keys.write(batch)
        except BaseException:
            keys.abort()
            raise
        keys_read = keys.close(pa.schema([pa.field(c, pa.string()) for c in key_cols]))
    watermark_to = watermark
    if newest is not None:
        value = newest.astimezone(UTC).isoformat() if isinstance(newest, datetime) else str(newest)
        watermark_to = value if watermark is None or _later(value, watermark) else watermark
    log.info("run %s extracted %d rows (%d keys) from %s", run_id, landed, keys_read, resource.id)
    update_run(
        hub, run_id, status="extracted", step="extract", rows_read=landed, rows_landed=landed, watermark_to=watermark_to
    )


def _later(a: str, b: str) -> bool:
    try:
        return datetime.fromisoformat(a) > datetime.fromisoformat(b)
    except ValueError:
        return int(a) > int(b)
