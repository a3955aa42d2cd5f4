"""The quality gate: conform types, run the resource's Great Expectations suite, split pass and quarantine.

The landing file is validated in chunks of `gate_chunk_rows`, so memory stays bounded. Key
uniqueness spans chunks, so it is computed once over the key columns of the whole batch.
"""

from __future__ import annotations

import logging
import os
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")

import great_expectations as gx
import pyarrow as pa
import pyarrow.compute as pc
from great_expectations.data_context.types.base import ProgressBarsConfig

from connectors import duck
from expectations.rules import build_suite, raised
from sharehub.catalogue.models import Resource
from sharehub.hub import Hub
from sharehub.metadata.models import QualityResult, QuarantinedRow
from sharehub.pipeline import paths
from sharehub.pipeline.conform import conform_column
from sharehub.pipeline.runs import fail_run, get_run, update_run
from sharehub.report import write_report

log = logging.getLogger(__name__)
ROW = "_row"
UNIQUE_RULE = "expect_compound_columns_to_be_unique"


@dataclass
class RuleTally:
    """How one rule fared over all chunks of a batch."""

    column: str | None
    elements: int = 0
    unexpected: int = 0


@dataclass
class GateResult:
    """What the gate decided for one run."""

    passed: int = 0
    quarantined: int = 0
    rules: dict[str, RuleTally] = field(default_factory=dict)


@lru_cache(maxsize=1)
def _batch_definition() -> Any:
    ctx = gx.get_context(mode="ephemeral")
    ctx.variables.progress_bars = ProgressBarsConfig(globally=False)
    asset = ctx.data_sources.add_pandas("sharehub_gate").add_dataframe_asset("landing_chunk")
    return asset.add_batch_definition_whole_dataframe("chunk")


def validate_chunk(
    resource: Resource, suite: gx.ExpectationSuite, table: pa.Table
) -> tuple[dict[int, list[str]], dict[str, RuleTally]]:
    """Run the suite over one typed chunk; return the reasons per failing row number, and per-rule tallies."""
    frame = table.to_pandas()
    batch = _batch_definition().get_batch(batch_parameters={"dataframe": frame})
    result = batch.validate(suite, result_format={"result_format": "COMPLETE", "unexpected_index_column_names": [ROW]})
    reasons: dict[int, list[str]] = defaultdict(list)
    tallies: dict[str, RuleTally] = {}
    for r in result.results:
        cfg = r.expectation_config
        # Pair rules are named after the column they judge (column_B), so notices can show and mask it.
        column = cfg.kwargs.get("column") or cfg.kwargs.get("column_B")
        name = f"{cfg.type}({column})" if column else cfg.type
        failure = raised(r.exception_info)
        if failure:
            # An expectation that cannot run must stop the run: its rows would otherwise pass unchecked.
            raise RuntimeError(f"{resource.id}: expectation {name} could not run: {failure}")
        tally = tallies.setdefault(name, RuleTally(column))
        tally.elements += int(r.result.get("element_count", len(frame)) or 0)
        tally.unexpected += int(r.result.get("unexpected_count", 0) or 0)
        for idx in r.result.get("unexpected_index_list") or []:
            reasons[int(idx[ROW])].append(name)
    return reasons, tallies


def _duplicate_keys(hub: Hub, resource: Resource, run_id: str) -> set[tuple]:
    """Keys that occur more than once in the whole landed batch (as landed text)."""
    cols = [resource.field(k).column for k in resource.source.key]
    pf = hub.store.parquet_file(paths.landing(resource.id, run_id))
    keys = pf.read(columns=cols)
    con = duck.connect()
    con.register("k", keys)
    select = ", ".join(f'CAST("{c}" AS VARCHAR)' for c in cols)
    rows = con.execute(f"SELECT {select} FROM k GROUP BY ALL HAVING count(*) > 1").fetchall()
    con.close()
    return {tuple(r) for r in rows}


def key_strings(table: pa.Table, cols: list[str]) -> list[tuple]:
    arrays = [pc.cast(table.column(c), pa.string()).to_pylist() for c in cols]
    return list(zip(*arrays, strict=True))


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


def _row_hash(table: pa.Table, resource: Resource) -> pa.Array:
    con = duck.connect()
    con.register("t", table)
    parts = ", ".join(f"coalesce(CAST(\"{f.name}\" AS VARCHAR), '\\N')" for f in resource.fields)
    out = con.sql(f"SELECT md5(concat_ws(chr(31), {parts})) FROM t").to_arrow_table()
    con.close()
    return out.column(0).combine_chunks()


def gate(hub: Hub, run_id: str) -> GateResult:
    """Validate a run's landed rows; write passing rows to staging and failing rows to quarantine."""
    run = get_run(hub, run_id)
    resource = hub.catalogue.resource(run.resource_id)
    update_run(hub, run_id, status="running", step="gate")
    try:
        result = _gate(hub, resource, run_id)
    except Exception as exc:
        hub.store.delete_dir(paths.staging_dir(resource.id, run_id))
        fail_run(hub, run_id, "gate", exc)
        raise
    update_run(hub, run_id, status="validated", rows_passed=result.passed, rows_quarantined=result.quarantined)
    return result


def _chunks(hub: Hub, resource: Resource, run_id: str) -> Iterator[pa.RecordBatch]:
    pf = hub.store.parquet_file(paths.landing(resource.id, run_id))
    yield from pf.iter_batches(batch_size=hub.settings.gate_chunk_rows)


def _gate(hub: Hub, resource: Resource, run_id: str) -> GateResult:
    suite = build_suite(resource)
    key_cols = [resource.field(k).column for k in resource.source.key]
    dupes = _duplicate_keys(hub, resource, run_id)
    unique_name = f"{UNIQUE_RULE}({','.join(resource.source.key)})"
    res = GateResult(rules={unique_name: RuleTally(None)})
    store_schema = pa.schema(
        [*list(resource.arrow_schema), pa.field("_run_id", pa.string()), pa.field("_row_hash", pa.string())]
    )
    stage = hub.store.parquet_writer(paths.staging(resource.id, run_id), store_schema)
    quarantine = None
    offset = 0
    with hub.db() as s:
        s.query(QuarantinedRow).filter(QuarantinedRow.run_id == run_id).delete()
        s.query(QualityResult).filter(QualityResult.run_id == run_id).delete()
    try:
        for landed in _chunks(hub, resource, run_id):
            typed, reasons = _typed_chunk(resource, landed, offset)
            found, tallies = validate_chunk(resource, suite, typed)
            for row, why in found.items():
                reasons[row].extend(why)
            for name, t in tallies.items():
                agg = res.rules.setdefault(name, RuleTally(t.column))
                agg.elements += t.elements
                agg.unexpected += t.unexpected
            landed_table = pa.Table.from_batches([landed])
            keys = key_strings(landed_table, key_cols)
            res.rules[unique_name].elements += landed.num_rows
            for i, k in enumerate(keys):
                if k in dupes:
                    reasons[offset + i].append(unique_name)
                    res.rules[unique_name].unexpected += 1
            bad = sorted(reasons)
            mask = pa.array([False] * landed.num_rows)
            if bad:
                flags = [False] * landed.num_rows
                for r in bad:
                    flags[r - offset] = True
                mask = pa.array(flags)
            good = typed.filter(pc.invert(mask)).drop_columns([ROW])
            if good.num_rows:
                good = good.append_column("_run_id", pa.array([run_id] * good.num_rows, pa.string()))
                good = good.append_column("_row_hash", _row_hash(good, resource))
                stage.write_table(good.select(store_schema.names).cast(store_schema))
            if bad:
                qt = landed_table.filter(mask)
                qt = qt.append_column(ROW, pa.array(bad, pa.int64()))
                qt = qt.append_column("_reasons", pa.array([reasons[r] for r in bad], pa.list_(pa.string())))
                qt = qt.append_column("_run_id", pa.array([run_id] * len(bad), pa.string()))
                if quarantine is None:
                    quarantine = hub.store.parquet_writer(paths.quarantine(resource.id, run_id), qt.schema)
                quarantine.write_table(qt)
                _record_quarantine(hub, resource, run_id, bad, reasons, keys, offset)
            res.passed += good.num_rows
            res.quarantined += len(bad)
            offset += landed.num_rows
    finally:
        stage.close()
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
    log.info("run %s gate: %d passed, %d quarantined", run_id, res.passed, res.quarantined)
    return res


def _record_quarantine(
    hub: Hub,
    resource: Resource,
    run_id: str,
    bad: list[int],
    reasons: dict[int, list[str]],
    keys: list[tuple],
    offset: int,
) -> None:
    with hub.db() as s:
        s.add_all(
            QuarantinedRow(
                run_id=run_id,
                resource_id=resource.id,
                row_number=r,
                row_key="|".join("" if v is None else str(v) for v in keys[r - offset])[:400],
                reasons=reasons[r],
            )
            for r in bad
        )
