"""Merge a run's rows into a Delta table in one atomic commit: upserts, changed rows only, and deletes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
from deltalake import CommitProperties, DeltaTable, write_deltalake
from deltalake.exceptions import TableNotFoundError

RUN_KEY = "sharehub.run_id"
OP = "_op"
# Stores keep Delta change data, so consumers of a store (the consistency check, incremental extracts)
# read only what changed between two versions instead of scanning the table.
CHANGE_DATA = {"delta.enableChangeDataFeed": "true"}


@dataclass(frozen=True)
class MergeOutcome:
    """What one commit did to the table."""

    version: int
    inserted: int
    updated: int
    deleted: int
    already_committed: bool = False


def open_table(uri: str, options: dict[str, str]) -> DeltaTable | None:
    """The Delta table at `uri`, or None if none exists yet."""
    try:
        return DeltaTable(uri, storage_options=options)
    except TableNotFoundError:
        return None


def table_id(table: DeltaTable) -> str:
    """The table's own id (its metaData id). A store deleted and written anew at the same path is another
    table, whose versions restart at 0: whatever remembers a store's version must remember this too."""
    return str(table.metadata().id)


def committed_version(table: DeltaTable, run_id: str, depth: int = 50) -> int | None:
    """The version a run already committed, found in the table's recent history (for idempotent retries)."""
    for entry in table.history(limit=depth):
        if entry.get(RUN_KEY) == run_id:
            return int(entry["version"])
    return None


def merge_run(
    uri: str,
    options: dict[str, str],
    rows: pa.RecordBatchReader | pa.Table,
    key: list[str],
    deleted_keys: pa.Table | None,
    run_id: str,
) -> MergeOutcome:
    """Upsert `rows` by `key` (updating only rows whose `_row_hash` changed) and delete `deleted_keys`.

    Everything happens in a single Delta commit tagged with the run id, so a failed run changes
    nothing and a retried run that already committed is recognised and not applied twice.
    """
    props = CommitProperties(custom_metadata={RUN_KEY: run_id})
    table = open_table(uri, options)
    if table is not None:
        done = committed_version(table, run_id)
        if done is not None:
            return MergeOutcome(done, 0, 0, 0, already_committed=True)
    source = rows.read_all() if isinstance(rows, pa.RecordBatchReader) else rows
    if table is None:
        write_deltalake(
            uri, source, mode="error", storage_options=options, commit_properties=props, configuration=CHANGE_DATA
        )
        table = DeltaTable(uri, storage_options=options)
        return MergeOutcome(table.version(), source.num_rows, 0, 0)
    if table.metadata().configuration.get("delta.enableChangeDataFeed") != "true":
        table.alter.set_table_properties(CHANGE_DATA)  # a store made before change data was kept
    target_cols = [f.name for f in table.schema().fields]
    source = source.append_column(OP, pa.array(["U"] * source.num_rows, pa.string()))
    if deleted_keys is not None and deleted_keys.num_rows:
        dels = {
            c: deleted_keys.column(c).cast(source.schema.field(c).type)
            if c in key
            else pa.nulls(deleted_keys.num_rows, source.schema.field(c).type)
            for c in source.schema.names
            if c != OP
        }
        dels[OP] = pa.array(["D"] * deleted_keys.num_rows, pa.string())
        source = pa.concat_tables([source, pa.table(dels, schema=source.schema)])
    if source.num_rows == 0:
        return MergeOutcome(table.version(), 0, 0, 0)
    predicate = " AND ".join(f"t.{k} = s.{k}" for k in key)
    assign = {c: f"s.{c}" for c in target_cols}
    metrics: dict[str, Any] = (
        table.merge(source, predicate=predicate, source_alias="s", target_alias="t", commit_properties=props)
        .when_matched_delete(predicate=f"s.{OP} = 'D'")
        .when_matched_update(updates=assign, predicate=f"s.{OP} = 'U' AND t._row_hash <> s._row_hash")
        .when_not_matched_insert(updates=assign, predicate=f"s.{OP} = 'U'")
        .execute()
    )
    table = DeltaTable(uri, storage_options=options)
    return MergeOutcome(
        table.version(),
        int(metrics.get("num_target_rows_inserted", 0)),
        int(metrics.get("num_target_rows_updated", 0)),
        int(metrics.get("num_target_rows_deleted", 0)),
    )


def current_keys(uri: str, options: dict[str, str], key: list[str]) -> pa.Table | None:
    """The key columns of every row the table holds now."""
    table = open_table(uri, options)
    if table is None:
        return None
    return table.to_pyarrow_dataset().to_table(columns=key)


def where_equal(values: dict[str, pa.Scalar]) -> ds.Expression:
    """A filter `column == value` for each of these, for a store's dataset.

    A store's files do not all carry the same physical types: the first version is written from
    pyarrow (`string`), while delta-rs's merge writes through DataFusion, which stores `string_view`.
    The dataset presents the table's one schema (`string`), but a filter is evaluated on each file's own
    batches before that, and pyarrow has no `string == string_view`. Casting the column to the value's
    type in the expression makes every file compare alike."""
    condition: ds.Expression | None = None
    for name, value in values.items():
        term = pc.field(name).cast(value.type) == value
        condition = term if condition is None else condition & term
    assert condition is not None, "a filter needs at least one column"
    return condition
