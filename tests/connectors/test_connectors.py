"""One generated suite applied to every connector: schema, records, keys, faithful types, bounded batches."""

from __future__ import annotations

import csv
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import openpyxl
import pyarrow as pa
import pytest
import sqlalchemy as sa

from connectors.files import FileDropSource
from connectors.sql import SqlSource
from sharehub.catalogue.models import Resource
from sharehub.demo.load import create_table, insert_rows
from sharehub.errors import SchemaDrift, SourceMissing, SourceUnreachable
from sharehub.pipeline.conform import conform_column
from sharehub.pipeline.extract import check_schema

N = 2_500
BATCH = 1_000
T0 = datetime(2026, 3, 1, 0, 0, tzinfo=UTC)


def probe_resource(table: str = "conn_probe") -> Resource:
    """A resource declaring every type family, used to build and read the probe table."""
    return Resource.model_validate(
        {
            "id": "probe.items",
            "version": 1,
            "title": "probe",
            "provider": "probe",
            "store": {"kind": "business"},
            "source": {
                "connection": "probe",
                "table": table,
                "key": ["id"],
                "mode": "incremental",
                "incremental_column": "updated_at",
            },
            "fields": [
                {"name": "id", "title": "id", "type": "integer", "classification": "L1"},
                {"name": "name", "title": "name", "type": "string", "classification": "L1"},
                {"name": "amount", "title": "amount", "type": "decimal(12,2)", "classification": "L1"},
                {"name": "born", "title": "born", "type": "date", "classification": "L1"},
                {"name": "updated_at", "title": "t", "type": "timestamptz", "classification": "L1"},
            ],
            "share": {"type": "unconditional"},
            "open": "not_open",
            "serving_modes": ["query"],
            "update": {"frequency": "daily", "deadline_working_days": 1},
            "suite": "probe.items",
        }
    )


def probe_rows() -> list[dict]:
    return [
        {
            "id": i,
            "name": f"张三丰{i}号·测试",
            "amount": Decimal(i) / 100 + Decimal("1000.05"),
            "born": date(1980, 1, 1) + timedelta(days=i),
            "updated_at": T0 + timedelta(minutes=i),
        }
        for i in range(N)
    ]


def _sql(url: str) -> SqlSource:
    res = probe_resource()
    engine = sa.create_engine(url)
    create_table(engine, res)
    insert_rows(engine, res, probe_rows())
    engine.dispose()
    return SqlSource(url, table="conn_probe", batch_rows=BATCH)


def _csv(tmp_path: Path, encoding: str) -> FileDropSource:
    path = tmp_path / "drop" / "probe_20260301.csv"
    path.parent.mkdir(parents=True)
    with path.open("w", encoding=encoding, newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["id", "name", "amount", "born", "updated_at"])
        for r in probe_rows():
            w.writerow([r["id"], r["name"], r["amount"], r["born"].isoformat(), r["updated_at"].isoformat()])
    return FileDropSource(tmp_path / "drop", "probe_*.csv", encoding=encoding, batch_rows=BATCH)


def _xlsx(tmp_path: Path) -> FileDropSource:
    path = tmp_path / "drop" / "probe_20260301.xlsx"
    path.parent.mkdir(parents=True)
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["id", "name", "amount", "born", "updated_at"])
    for r in probe_rows():
        ws.append([r["id"], r["name"], str(r["amount"]), r["born"], r["updated_at"].isoformat()])
    wb.save(path)
    return FileDropSource(tmp_path / "drop", "probe_*.xlsx", batch_rows=BATCH)


@pytest.fixture(params=["postgresql", "mariadb", "sqlite", "csv-utf8", "csv-gbk", "xlsx"])
def source(request: pytest.FixtureRequest, tmp_path: Path):
    kind = request.param
    if kind == "postgresql":
        return _sql(request.getfixturevalue("pg_url"))
    if kind == "mariadb":
        return _sql(request.getfixturevalue("mariadb_url"))
    if kind == "sqlite":
        return _sql(f"sqlite:///{tmp_path / 'probe.sqlite'}")
    if kind == "csv-utf8":
        return _csv(tmp_path, "utf-8")
    if kind == "csv-gbk":
        return _csv(tmp_path, "gbk")
    return _xlsx(tmp_path)


def test_schema_lists_every_declared_column(source) -> None:
    assert set(source.columns()) == {"id", "name", "amount", "born", "updated_at"}
    check_schema(probe_resource(), source)


def test_returns_every_record_with_its_key_in_bounded_batches(source) -> None:
    batches = list(source.read(["id", "name", "amount", "born", "updated_at"]))
    assert all(b.num_rows <= BATCH for b in batches) or isinstance(source, FileDropSource)
    table = pa.Table.from_batches(batches)
    assert table.num_rows == N == source.rows_read
    ids = [int(v) for v in table.column("id").to_pylist()]
    assert sorted(ids) == list(range(N))


def test_types_map_faithfully_after_conforming(source) -> None:
    res = probe_resource()
    table = pa.Table.from_batches(list(source.read([f.name for f in res.fields])))
    typed = {}
    for f in res.fields:
        arr, failure = conform_column(table.column(f.name).combine_chunks(), f, "Asia/Shanghai")
        assert failure is None, (f.name, failure)
        assert arr.type == f.arrow_type
        typed[f.name] = arr.to_pylist()
    by_id = {i: n for n, i in enumerate(typed["id"])}
    want = probe_rows()[1234]
    at = by_id[1234]
    assert typed["name"][at] == "张三丰1234号·测试"
    assert typed["amount"][at] == Decimal("1012.39")
    assert typed["born"][at] == want["born"]
    assert typed["updated_at"][at] == want["updated_at"]


@pytest.mark.parametrize("kind", ["postgresql", "mariadb", "sqlite"])
def test_incremental_reads_only_rows_after_the_watermark(
    kind: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    url = {
        "postgresql": lambda: request.getfixturevalue("pg_url"),
        "mariadb": lambda: request.getfixturevalue("mariadb_url"),
        "sqlite": lambda: f"sqlite:///{tmp_path / 'inc.sqlite'}",
    }[kind]()
    src = _sql(url)
    since = T0 + timedelta(minutes=N - 100)
    table = pa.Table.from_batches(list(src.read(["id"], "updated_at", since)))
    assert sorted(int(i) for i in table.column("id").to_pylist()) == list(range(N - 99, N))
    assert src.rows_read == 99


def test_unreachable_server_is_retryable() -> None:
    src = SqlSource("postgresql+psycopg://postgres@127.0.0.1:1/test?connect_timeout=2", table="x")
    with pytest.raises(SourceUnreachable, match="cannot reach") as err:
        src.columns()
    assert err.value.retryable


def test_vanished_table_is_fatal_and_named(pg_url: str) -> None:
    with pytest.raises(SourceMissing, match="'no_such_table' does not exist"):
        SqlSource(pg_url, table="no_such_table").columns()


@pytest.mark.parametrize(
    "ddl",
    [
        "ALTER TABLE conn_probe DROP COLUMN amount",
        "ALTER TABLE conn_probe ALTER COLUMN born TYPE integer USING 0",
        "ALTER TABLE conn_probe ALTER COLUMN updated_at TYPE text",
    ],
)
def test_schema_drift_names_resource_and_column(pg_url: str, ddl: str) -> None:
    src = _sql(pg_url)
    engine = sa.create_engine(pg_url)
    with engine.begin() as c:
        c.exec_driver_sql(ddl)
    engine.dispose()
    column = next(c for c in ("amount", "born", "updated_at") if c in ddl)
    with pytest.raises(SchemaDrift, match=rf"probe.items: schema drift .*column '{column}'"):
        check_schema(probe_resource(), src)


def test_text_dates_in_a_sql_table_are_not_drift(pg_url: str) -> None:
    # The gate reads text dates in the usual forms and quarantines the rest; only the watermark needs real order.
    src = _sql(pg_url)
    engine = sa.create_engine(pg_url)
    with engine.begin() as c:
        c.exec_driver_sql("ALTER TABLE conn_probe ALTER COLUMN born TYPE text")
    engine.dispose()
    check_schema(probe_resource(), src)


def test_file_drop_without_files_is_missing(tmp_path: Path) -> None:
    (tmp_path / "drop").mkdir()
    with pytest.raises(SourceMissing, match="no file matches"):
        FileDropSource(tmp_path / "drop", "x_*.csv").columns()


def test_file_in_wrong_encoding_is_named(tmp_path: Path) -> None:
    src = _csv(tmp_path, "gbk")
    utf8 = FileDropSource(src.root, src.pattern, encoding="utf-8")
    with pytest.raises(SchemaDrift, match="is not utf-8"):
        utf8.columns()
