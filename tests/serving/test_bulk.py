"""Bulk copy internals: the change data an incremental extract holds."""

from __future__ import annotations

import pyarrow as pa


def test_an_incremental_extract_holds_each_changed_row_once_as_it_last_was(make_hub, tmp_path) -> None:
    """The change data since the last extract, read in Arrow kernels: a row updated twice appears once with its
    last values, a deleted row as a delete, a new row as an upsert, and the pre-images never."""
    from deltalake import DeltaTable, write_deltalake

    from sharehub.serving.bulk import _changes
    from warehouse.delta import CHANGE_DATA

    res = make_hub().catalogue.resource("scjg.legal_entity")
    uri = str(tmp_path / "store")
    first = pa.table({"uscc": ["A", "B", "D"], "name": ["甲", "乙", "丁"], "status": ["存续", "存续", "存续"]})
    write_deltalake(uri, first, configuration=CHANGE_DATA)
    store = DeltaTable(uri)
    store.update(updates={"name": "'甲一'"}, predicate="uscc = 'A'")  # v1
    store.update(updates={"name": "'甲二'", "status": "'注销'"}, predicate="uscc = 'A'")  # v2
    store.delete("uscc = 'B'")  # v3
    write_deltalake(uri, pa.table({"uscc": ["C"], "name": ["丙"], "status": ["存续"]}), mode="append")  # v4
    store = DeltaTable(uri)
    columns = ["uscc", "name", "status"]
    got = _changes(res, store, 0, store.version(), columns)
    assert got is not None and sorted(got.to_pylist(), key=lambda r: r["uscc"]) == [
        {"uscc": "A", "name": "甲二", "status": "注销", "_change_type": "upsert"},
        {"uscc": "B", "name": "乙", "status": "存续", "_change_type": "delete"},
        {"uscc": "C", "name": "丙", "status": "存续", "_change_type": "upsert"},
    ]
    since_last = _changes(res, store, 2, store.version(), columns)
    assert since_last is not None and sorted(r["uscc"] for r in since_last.to_pylist()) == ["B", "C"]
    nothing = _changes(res, store, store.version(), store.version(), columns)
    assert nothing is not None and nothing.num_rows == 0 and nothing.column_names == [*columns, "_change_type"]
