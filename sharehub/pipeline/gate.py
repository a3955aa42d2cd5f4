"""The quality gate: conform types, run the resource's Great Expectations suite, split pass and quarantine.

The landing file is validated in chunks of `gate_chunk_rows`, so memory stays bounded. Key
uniqueness spans chunks, so it is computed once over the key columns of the whole batch.

With `gate_engine=duckdb` (the default), every rule that `expectations.sql` compiles runs as one
DuckDB pass per chunk, and only the rest go through Great Expectations' pandas engine. The suite
stays a GX suite and the outcome is written as a GX validation result (`validation.json` beside
the HTML report), whichever engine ran each rule.
"""

from __future__ import annotations

import logging
import os
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from functools import lru_cache
from typing import Any

os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")

import duckdb
import great_expectations as gx
import great_expectations.expectations as gxe
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from great_expectations.core import ExpectationSuiteValidationResult, ExpectationValidationResult
from great_expectations.data_context.types.base import ProgressBarsConfig
from sqlalchemy import insert, select

from connectors import duck
from expectations import sql
from expectations.gbt2260 import codes_table
from expectations.rules import build_suite, raised
from sharehub.catalogue.models import Resource
from sharehub.hub import Hub
from sharehub.metadata.models import QualityResult, QuarantinedRow, RowDispute
from sharehub.pipeline import paths
from sharehub.pipeline.conform import conform_column
from sharehub.pipeline.landing import LandingWriter, prefetch
from sharehub.pipeline.liveness import working
from sharehub.pipeline.reasons import explain, key_text
from sharehub.pipeline.report import write_report, write_validation
from sharehub.pipeline.rowkeys import ROW, UNIQUE_RULE, key_strings
from sharehub.pipeline.runs import fail_run, get_run, update_run

log = logging.getLogger(__name__)
SLICE_ROWS = 32_768  # rows per Arrow batch handed to DuckDB; one batch is scanned by one thread


@dataclass
class RuleTally:
    """How one rule fared over all chunks of a batch."""

    column: str | None
    elements: int = 0
    unexpected: int = 0
    sample: list[str] = field(default_factory=list)


@dataclass
class GateResult:
    """What the gate decided for one run."""

    passed: int = 0
    quarantined: int = 0
    rules: dict[str, RuleTally] = field(default_factory=dict)


@dataclass
class CompiledSuite:
    """A resource's suite split by engine: rules compiled to DuckDB SQL, and the rest for GX."""

    suite: gx.ExpectationSuite
    sql: list[tuple[str, str | None, str]]  # (rule name, column, unexpected predicate)
    gx_rest: gx.ExpectationSuite | None


def rule_name(config: Any) -> tuple[str, str | None]:
    """A rule's name and the column it judges; pair rules are named after column_B, the one they judge."""
    column = config.kwargs.get("column") or config.kwargs.get("column_B")
    return (f"{config.type}({column})" if column else config.type), column


def compile_suite(resource: Resource, engine: str, today: date | None = None) -> CompiledSuite:
    """The resource's suite, with each rule that compiles to SQL taken out of GX's hands (engine duckdb)."""
    today = today or date.today()
    suite = build_suite(resource, today)
    types = {f.name: str(f.type) for f in resource.fields}
    compiled: list[tuple[str, str | None, str]] = []
    rest: list[Any] = []
    for exp in suite.expectations:
        predicate = sql.unexpected(exp, types, today) if engine == "duckdb" else None
        if predicate is None:
            rest.append(exp)
        else:
            compiled.append((*rule_name(exp.configuration), predicate))
    gx_rest = gx.ExpectationSuite(name=suite.name, expectations=rest) if rest else None
    return CompiledSuite(suite, compiled, gx_rest)


@lru_cache(maxsize=1)
def _batch_definition() -> Any:
    ctx = gx.get_context(mode="ephemeral")
    ctx.variables.progress_bars = ProgressBarsConfig(globally=False)
    asset = ctx.data_sources.add_pandas("sharehub_gate").add_dataframe_asset("landing_chunk")
    return asset.add_batch_definition_whole_dataframe("chunk")


def sliced(table: pa.Table) -> pa.Table:
    """The table in batches of SLICE_ROWS: DuckDB scans one Arrow batch per thread, so one big batch is serial."""
    return pa.Table.from_batches(table.to_batches(max_chunksize=SLICE_ROWS), schema=table.schema)


def gate_connection() -> duckdb.DuckDBPyConnection:
    """A DuckDB connection holding the GB/T 2260 codes that compiled rules join against."""
    con = duck.connect()
    con.register(sql.CODES_TABLE, codes_table())
    return con


@dataclass
class ChunkCheck:
    """What one pass over a typed chunk found."""

    reasons: dict[int, list[str]]
    tallies: dict[str, RuleTally]
    row_hash: pa.ChunkedArray | None = None


def validate_chunk(
    resource: Resource,
    compiled: CompiledSuite,
    table: pa.Table,
    con: duckdb.DuckDBPyConnection,
    *,
    extra: list[tuple[str, str | None, str]] | None = None,
    with_row_hash: bool = False,
) -> ChunkCheck:
    """Run the suite over one typed chunk: the reasons per failing row number, per-rule tallies and row hashes.

    The compiled rules and any `extra` predicates (key uniqueness) are one DuckDB query that
    returns only the failing rows; the row hash (for change detection at promote) is a second.
    The chunk is handed over in slices so that DuckDB scans it on every core. The row hash is
    DuckDB's 64-bit `hash()` of the typed values: a DuckDB upgrade that changed it would make the
    next run rewrite unchanged rows once, and nothing worse.
    """
    check = ChunkCheck(defaultdict(list), {})
    rules = [*compiled.sql, *(extra or [])]
    for name, column, _ in rules:
        check.tallies[name] = RuleTally(column, elements=table.num_rows)
    if rules or with_row_hash:
        _validate_with_duckdb(resource, rules, table, con, check, with_row_hash)
    if compiled.gx_rest is not None:
        _validate_with_gx(resource, compiled.gx_rest, table, check)
    return check


def _validate_with_duckdb(
    resource: Resource,
    rules: list[tuple[str, str | None, str]],
    table: pa.Table,
    con: duckdb.DuckDBPyConnection,
    check: ChunkCheck,
    with_row_hash: bool,
) -> None:
    con.register("chunk", sliced(table))
    try:
        if rules:
            cases = ", ".join(f"CASE WHEN {p} THEN {sql.literal(n)} END" for n, _, p in rules)
            any_failed = " OR ".join(p for _, _, p in rules)
            query = f"SELECT {ROW}, list_filter([{cases}], x -> x IS NOT NULL) FROM chunk WHERE {any_failed}"
            try:
                found = con.execute(query).fetchall()
            except duckdb.Error as exc:
                raise RuntimeError(f"{resource.id}: expectation {_culprit(rules, con)} could not run: {exc}") from exc
            for row, names in found:
                check.reasons[row].extend(names)
                for n in names:
                    check.tallies[n].unexpected += 1
        if with_row_hash:
            # Insertion order is preserved (DuckDB's default), so output row i is input row i.
            columns = ", ".join(sql.ident(f.name) for f in resource.fields)
            check.row_hash = con.execute(f"SELECT hex(hash({columns})) FROM chunk").to_arrow_table().column(0)
    finally:
        con.unregister("chunk")


def _culprit(rules: list[tuple[str, str | None, str]], con: duckdb.DuckDBPyConnection) -> str:
    """The first compiled rule that DuckDB cannot evaluate on the registered chunk."""
    for name, _, predicate in rules:
        try:
            con.execute(f"SELECT count(*) FROM chunk WHERE {predicate}").fetchall()
        except duckdb.Error:
            return name
    return ", ".join(n for n, _, _ in rules)


def _validate_with_gx(resource: Resource, suite: gx.ExpectationSuite, table: pa.Table, check: ChunkCheck) -> None:
    frame = table.to_pandas()
    batch = _batch_definition().get_batch(batch_parameters={"dataframe": frame})
    result = batch.validate(suite, result_format={"result_format": "COMPLETE", "unexpected_index_column_names": [ROW]})
    for r in result.results:
        name, column = rule_name(r.expectation_config)
        failure = raised(r.exception_info)
        if failure:
            # An expectation that cannot run must stop the run: its rows would otherwise pass unchecked.
            raise RuntimeError(f"{resource.id}: expectation {name} could not run: {failure}")
        tally = check.tallies.setdefault(name, RuleTally(column))
        tally.elements += int(r.result.get("element_count", len(frame)) or 0)
        tally.unexpected += int(r.result.get("unexpected_count", 0) or 0)
        for idx in r.result.get("unexpected_index_list") or []:
            check.reasons[int(idx[ROW])].append(name)


def _key_text(columns: list[str]) -> str:
    """One text value per key, NULL parts included, for comparing compound keys."""
    return "concat_ws(chr(31), " + ", ".join(f"coalesce(CAST({c} AS VARCHAR), '\\N')" for c in columns) + ")"


def _duplicate_keys(hub: Hub, resource: Resource, run_id: str, con: duckdb.DuckDBPyConnection) -> int:
    """Create the table `dupes` of keys (as landed text) that occur more than once in the whole batch."""
    cols = [sql.ident(c) for c in resource.key_columns]
    keys = hub.store.parquet_file(paths.landing(resource.id, run_id)).read(columns=resource.key_columns)
    con.register("k", sliced(keys))
    con.execute(f"CREATE TEMP TABLE dupes AS SELECT {_key_text(cols)} AS key FROM k GROUP BY ALL HAVING count(*) > 1")
    con.unregister("k")
    count = con.execute("SELECT count(*) FROM dupes").fetchone()
    return int(count[0]) if count else 0


def _landed_key(i: int) -> str:
    return f"_key{i}"


def _typed_chunk(resource: Resource, landed: pa.RecordBatch, offset: int) -> tuple[pa.Table, dict[int, list[str]]]:
    arrays, names = [], []
    reasons: dict[int, list[str]] = defaultdict(list)
    for f in resource.fields:
        typed, failure = conform_column(landed.column(f.column), f, resource.source.timezone)
        if failure:
            for i in failure.rows:
                reasons[offset + i].append(failure.reason)
        arrays.append(typed)
        names.append(f.name)
    arrays.append(pa.array(range(offset, offset + landed.num_rows), pa.int64()))
    names.append(ROW)
    return pa.Table.from_arrays(arrays, names=names), reasons


def gate(hub: Hub, run_id: str) -> GateResult:
    """Validate a run's landed rows; write passing rows to staging and failing rows to quarantine."""
    run = get_run(hub, run_id)
    resource = hub.catalogue.resource(run.resource_id)
    with working(hub, run_id, "gate"):
        try:
            result = _gate(hub, resource, run_id)
        except BaseException as exc:
            hub.store.delete_dir(paths.staging_dir(resource.id, run_id))
            fail_run(hub, run_id, "gate", exc)
            raise
        update_run(hub, run_id, status="validated", rows_passed=result.passed, rows_quarantined=result.quarantined)
    return result


def _chunks(hub: Hub, resource: Resource, run_id: str) -> Iterator[pa.RecordBatch]:
    """The landed batch in chunks, decoded one chunk ahead on a background thread."""
    pf = hub.store.parquet_file(paths.landing(resource.id, run_id))
    yield from prefetch(pf.iter_batches(batch_size=hub.settings.gate_chunk_rows))


def _gate(hub: Hub, resource: Resource, run_id: str) -> GateResult:
    compiled = compile_suite(resource, hub.settings.gate_engine)
    waived = waivers(hub, resource.id)
    key_cols = resource.key_columns
    con = gate_connection()
    has_dupes = _duplicate_keys(hub, resource, run_id, con) > 0
    unique_name = f"{UNIQUE_RULE}({','.join(resource.source.key)})"
    res = GateResult(rules={unique_name: RuleTally(None)})
    store_schema = pa.schema(
        [*list(resource.arrow_schema), pa.field("_run_id", pa.string()), pa.field("_row_hash", pa.string())]
    )
    # Staging Parquet is encoded on a background thread while DuckDB checks the next chunk. It is
    # read once, by promote, so it takes the cheaper lz4.
    stage = LandingWriter(hub.store, paths.staging(resource.id, run_id), background=True, compression="lz4")
    quarantine = None
    offset = 0
    with hub.db() as s:
        s.query(QuarantinedRow).filter(QuarantinedRow.run_id == run_id).delete()
        s.query(QualityResult).filter(QualityResult.run_id == run_id).delete()
    # Uniqueness is judged on the landed text of the key, so each chunk carries that text along.
    landed_keys = _key_text([_landed_key(i) for i in range(len(key_cols))])
    dupes_rule: list[tuple[str, str | None, str]] = [(unique_name, None, f"{landed_keys} IN (SELECT key FROM dupes)")]
    try:
        for landed in _chunks(hub, resource, run_id):
            typed, reasons = _typed_chunk(resource, landed, offset)
            if has_dupes:
                for i, c in enumerate(key_cols):
                    typed = typed.append_column(_landed_key(i), pc.cast(landed.column(c), pa.string()))
            check = validate_chunk(
                resource, compiled, typed, con, extra=dupes_rule if has_dupes else None, with_row_hash=True
            )
            for row, why in check.reasons.items():
                reasons[row].extend(why)
            for name, t in check.tallies.items():
                agg = res.rules.setdefault(name, RuleTally(t.column))
                agg.elements += t.elements
                agg.unexpected += t.unexpected
            if not has_dupes:
                res.rules[unique_name].elements += landed.num_rows
            if waived and reasons:
                _apply_waivers(reasons, waived, landed, key_cols, offset)
            bad = sorted(reasons)
            flags = np.zeros(landed.num_rows, dtype=bool)
            flags[np.array(bad, dtype=np.int64) - offset] = True
            mask, keep = pa.array(flags), pa.array(~flags)
            good = typed.select([f.name for f in resource.fields]).filter(keep)
            if good.num_rows:
                assert check.row_hash is not None
                good = good.append_column("_run_id", pa.array([run_id] * good.num_rows, pa.string()))
                good = good.append_column("_row_hash", check.row_hash.filter(keep))
                stage.write(good.cast(store_schema))
            if bad:
                landed_table = pa.Table.from_batches([landed]).append_column(ROW, typed.column(ROW))
                qt = landed_table.filter(mask)
                keys = key_strings(qt, key_cols)
                _sample(res, reasons, bad, keys)
                why = pa.array([reasons[r] for r in bad], pa.list_(pa.string()))
                qt = qt.append_column("_reasons", why).append_column("_reasons_zh", _explained(why, resource))
                qt = qt.append_column("_run_id", pa.array([run_id] * len(bad), pa.string()))
                if quarantine is None:
                    quarantine = hub.store.parquet_writer(paths.quarantine(resource.id, run_id), qt.schema)
                quarantine.write_table(qt)
                _record_quarantine(hub, resource, run_id, bad, reasons, keys)
            res.passed += good.num_rows
            res.quarantined += len(bad)
            offset += landed.num_rows
        stage.close(store_schema)
    except BaseException:
        stage.abort()
        raise
    finally:
        con.close()
        if quarantine is not None:
            quarantine.close()
    with hub.db() as s:
        for name, t in res.rules.items():
            s.add(
                QualityResult(
                    run_id=run_id,
                    rule=name,
                    column=t.column,
                    success=t.unexpected == 0,
                    element_count=t.elements,
                    unexpected_count=t.unexpected,
                )
            )
    landed = res.passed + res.quarantined
    write_report(
        hub, resource, run_id, landed, res.passed, {n: (t.elements, t.unexpected) for n, t in res.rules.items()}
    )
    write_validation(hub, resource, run_id, validation_result(compiled.suite, res, unique_name))
    log.info("run %s gate: %d passed, %d quarantined", run_id, res.passed, res.quarantined)
    return res


SAMPLE = 20


def waivers(hub: Hub, resource_id: str) -> dict[str, set[str]]:
    """Row key → rules the platform office accepted as wrong for that row (accepted disputes)."""
    with hub.db() as s:
        rows = s.execute(
            select(RowDispute.row_key, RowDispute.rules).where(
                RowDispute.resource_id == resource_id, RowDispute.review == "accepted"
            )
        ).all()
    out: dict[str, set[str]] = {}
    for key, rules in rows:
        out.setdefault(key, set()).update(rules or [])
    return out


def _apply_waivers(
    reasons: dict[int, list[str]], waived: dict[str, set[str]], landed: pa.RecordBatch, key_cols: list[str], offset: int
) -> None:
    """Drop waived rules from the failing rows' reasons; a row with no reason left passes."""
    rows = sorted(reasons)
    picked = pa.Table.from_batches([landed]).take(pa.array([r - offset for r in rows], pa.int64()))
    for r, key in zip(rows, key_strings(picked, key_cols), strict=True):
        rules = waived.get("|".join("" if v is None else str(v) for v in key))
        if rules:
            left = [x for x in reasons[r] if x not in rules]
            if left:
                reasons[r] = left
            else:
                del reasons[r]


def _explained(why: pa.ListArray, resource: Resource) -> pa.ListArray:
    """Each row's reasons as sentences for a clerk: the few distinct rules explained once, then mapped."""
    flat = why.flatten()
    rules = pc.unique(flat)
    sentences = pa.array([explain(rule, resource) for rule in rules.to_pylist()], pa.string())
    return pa.ListArray.from_arrays(why.offsets, sentences.take(pc.index_in(flat, rules)))


def _sample(res: GateResult, reasons: dict[int, list[str]], bad: list[int], keys: list[tuple]) -> None:
    """Keep the first keys that failed each rule, for the GX result's partial_unexpected_index_list."""
    for r, key in zip(bad, keys, strict=True):
        for name in reasons[r]:
            tally = res.rules.get(name)
            if tally is not None and len(tally.sample) < SAMPLE:
                tally.sample.append(key_text(key, r))


def validation_result(suite: gx.ExpectationSuite, res: GateResult, unique_name: str) -> dict[str, Any]:
    """The gate's outcome as a Great Expectations suite validation result (JSON), whichever engine ran it."""
    results = []
    key = unique_name[len(UNIQUE_RULE) + 1 : -1].split(",")
    unique: gxe.Expectation = (
        gxe.ExpectCompoundColumnsToBeUnique(column_list=key)
        if len(key) > 1
        else gxe.ExpectColumnValuesToBeUnique(column=key[0])
    )
    for exp in [*suite.expectations, unique]:
        name = rule_name(exp.configuration)[0] if exp is not unique else unique_name
        tally = res.rules.get(name, RuleTally(None))
        results.append(
            ExpectationValidationResult(
                success=tally.unexpected == 0,
                expectation_config=exp.configuration,
                result={
                    "element_count": tally.elements,
                    "unexpected_count": tally.unexpected,
                    "unexpected_percent": 100.0 * tally.unexpected / tally.elements if tally.elements else 0.0,
                    "partial_unexpected_index_list": [{"key": k} for k in tally.sample],
                },
            )
        )
    ok = sum(bool(r.success) for r in results)
    outcome = ExpectationSuiteValidationResult(
        success=ok == len(results),
        results=results,
        suite_name=suite.name,
        statistics={
            "evaluated_expectations": len(results),
            "successful_expectations": ok,
            "unsuccessful_expectations": len(results) - ok,
            "success_percent": 100.0 * ok / len(results) if results else 100.0,
        },
    )
    return outcome.to_json_dict()


def _record_quarantine(
    hub: Hub,
    resource: Resource,
    run_id: str,
    bad: list[int],
    reasons: dict[int, list[str]],
    keys: list[tuple],
) -> None:
    rows = [
        {
            "run_id": run_id,
            "resource_id": resource.id,
            "row_number": r,
            "row_key": key_text(key, r),
            "reasons": reasons[r],
        }
        for r, key in zip(bad, keys, strict=True)
    ]
    with hub.db() as s:
        s.execute(insert(QuarantinedRow.__table__), rows)  # type: ignore[arg-type]
