"""Thematic stores (主题库): SQL models over several departments' stores, run in DuckDB, written as Delta.

A model is one file `<models_dir>/<theme>.<name>.sql`. It opens with a YAML block comment:

    /*
    title: 参保人员主题
    key: [id_number, insurance_type]
    sources: [gongan.population, rsj.insurance_enrolment, scjg.legal_entity]
    */
    SELECT ... FROM "rsj.insurance_enrolment" r LEFT JOIN "gongan.population" p ON ...

Each source is a table named by its resource id, holding the store's current rows plus `_src`, the
row's lineage: `{resource, version, run_id}`, i.e. the Delta version read and the run that wrote the
row. A model selects `_lineage`, a list of the `_src` of the rows it used (`[r._src, p._src]`);
nulls from outer joins are dropped. The table-level lineage, every source's version and the
model's SQL digest, is also kept in the Delta commit, so each version of a thematic store says
what it was built from. A model is rebuilt only when a source version (or table: a store deleted
and written anew restarts at version 0) or its SQL changed.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field

import duckdb
import pyarrow as pa
from deltalake import CommitProperties, DeltaTable, write_deltalake

from connectors import duck
from expectations.sql import ident, literal
from warehouse.declared import Model, ModelError
from warehouse.delta import open_table, table_id

log = logging.getLogger(__name__)
SOURCES_KEY = "sharehub.sources"
SQL_KEY = "sharehub.model_sha256"
TABLES_KEY = "sharehub.source_tables"  # each source's table id: a store written anew restarts at version 0


@dataclass
class Build:
    """What building one model did."""

    model: str
    status: str  # built, unchanged, waiting (a source has no store yet)
    version: int | None = None
    rows: int = 0
    sources: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    detail: str = ""


def build_model(
    model: Model, sources: dict[str, str], uri: str, options: dict[str, str], *, force: bool = False
) -> Build:
    """Build one model into the Delta table at `uri` from its sources' Delta tables (resource id → URI),
    unless neither a source nor the SQL changed since its last build (`force`: build anyway)."""
    started = time.perf_counter()
    tables: dict[str, DeltaTable] = {}
    for rid in model.sources:
        table = open_table(sources[rid], options)
        if table is None:
            return Build(model.id, "waiting", detail=f"{rid} has no store yet")
        tables[rid] = table
    versions = {rid: t.version() for rid, t in tables.items()}
    identities = {rid: table_id(t) for rid, t in tables.items()}
    last = last_build(uri, options)
    built_from = None if last is None else (last[SOURCES_KEY], last[TABLES_KEY], last[SQL_KEY])
    if not force and last and built_from == (versions, identities, model.digest):
        return Build(model.id, "unchanged", last.get("version"), sources=versions)
    con = duck.connect()
    try:
        for rid, table in tables.items():
            con.register("delta_scan", table.to_pyarrow_dataset())
            lineage = f"{{'resource': {literal(rid)}, 'version': {versions[rid]}::BIGINT, 'run_id': _run_id}}"
            con.execute(f"CREATE TEMP TABLE {ident(rid)} AS SELECT *, {lineage} AS _src FROM delta_scan")
            con.unregister("delta_scan")
        rows = _run(con, model)
    finally:
        con.close()
    props = CommitProperties(
        custom_metadata={
            SOURCES_KEY: json.dumps(versions),
            TABLES_KEY: json.dumps(identities),
            SQL_KEY: model.digest,
            "sharehub.model": model.id,
        }
    )
    write_deltalake(
        uri, rows, mode="overwrite", schema_mode="overwrite", storage_options=options, commit_properties=props
    )
    version = DeltaTable(uri, storage_options=options).version()
    seconds = time.perf_counter() - started
    log.info("theme %s: %d rows, version %d, %.1fs", model.id, rows.num_rows, version, seconds)
    return Build(model.id, "built", version, rows.num_rows, versions, seconds)


def _run(con: duckdb.DuckDBPyConnection, model: Model) -> pa.Table:
    """The model's rows with its lineage cleaned, refusing a missing `_lineage` or a duplicate key."""
    try:
        con.execute(f"CREATE TEMP TABLE model_out AS {model.sql}")
    except duckdb.Error as exc:
        raise ModelError(f"{model.path.name}: the SQL failed: {str(exc).splitlines()[0]}") from None
    columns = [r[0] for r in con.execute("DESCRIBE model_out").fetchall()]
    missing = [c for c in [*model.key, "_lineage"] if c not in columns]
    if missing:
        raise ModelError(f"{model.path.name}: the SQL does not select {missing} (key and _lineage are required)")
    keys = ", ".join(ident(k) for k in model.key)
    dupe = con.execute(f"SELECT {keys} FROM model_out GROUP BY ALL HAVING count(*) > 1 LIMIT 1").fetchone()
    if dupe is not None:
        shown = ", ".join(f"{k}={str(v)[:6]}…" for k, v in zip(model.key, dupe, strict=True))
        raise ModelError(f"{model.path.name}: key {model.key} is not unique, e.g. {shown}")
    return con.execute(
        "SELECT * EXCLUDE (_lineage), list_filter(_lineage, x -> x IS NOT NULL) AS _lineage FROM model_out"
    ).to_arrow_table()


def last_build(uri: str, options: dict[str, str]) -> dict | None:
    """The source versions and SQL digest the current version of a thematic store was built from."""
    table = open_table(uri, options)
    if table is None:
        return None
    entry = table.history(limit=1)[0]
    raw, tables = entry.get(SOURCES_KEY), entry.get(TABLES_KEY)
    return {
        "version": table.version(),
        SOURCES_KEY: json.loads(raw) if raw else None,
        TABLES_KEY: json.loads(tables) if tables else None,
        SQL_KEY: entry.get(SQL_KEY),
        "timestamp": entry.get("timestamp"),
    }
