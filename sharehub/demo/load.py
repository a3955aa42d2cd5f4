"""Write the synthetic world into department front-end databases (SQLite, PostgreSQL, MariaDB) and file drops."""

from __future__ import annotations

import csv
import logging
import sqlite3
from collections.abc import Iterable
from datetime import date, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from sharehub.catalogue.models import DECIMAL_TYPE, Resource
from sharehub.demo.world import World

log = logging.getLogger(__name__)

_DDL = {
    "sqlite": {
        "string": "TEXT",
        "integer": "INTEGER",
        "float": "REAL",
        "boolean": "INTEGER",
        "date": "DATE",
        "timestamp": "TIMESTAMP",
        "timestamptz": "TIMESTAMP",
    },
    "postgresql": {
        "string": "text",
        "integer": "bigint",
        "float": "double precision",
        "boolean": "boolean",
        "date": "date",
        "timestamp": "timestamp",
        "timestamptz": "timestamptz",
    },
    "mysql": {
        "string": "varchar(255)",
        "integer": "bigint",
        "float": "double",
        "boolean": "tinyint(1)",
        "date": "date",
        "timestamp": "datetime(6)",
        "timestamptz": "datetime(6)",
    },
}


def column_ddl(dialect: str, field_type: str) -> str:
    """The source column type a department would use for a catalogue field type."""
    m = DECIMAL_TYPE.match(field_type)
    if m:
        return "NUMERIC" if dialect == "sqlite" else f"decimal({m.group(1)},{m.group(2)})"
    return _DDL[dialect][field_type]


def create_table(engine: sa.Engine, resource: Resource) -> None:
    """Drop and create the resource's source table, with an index on its incremental column."""
    dialect = "mysql" if engine.dialect.name in ("mysql", "mariadb") else engine.dialect.name
    table = resource.source.table
    assert table, f"{resource.id} is not a table source"
    cols = ", ".join(f"{f.column} {column_ddl(dialect, f.type)}" for f in resource.fields)
    suffix = " DEFAULT CHARSET=utf8mb4" if dialect == "mysql" else ""
    with engine.begin() as conn:
        conn.exec_driver_sql(f"DROP TABLE IF EXISTS {table}")
        conn.exec_driver_sql(f"CREATE TABLE {table} ({cols}){suffix}")
        inc = resource.source.incremental_column
        if inc:
            conn.exec_driver_sql(f"CREATE INDEX ix_{table}_{inc} ON {table} ({inc})")


def _sqlite_value(v: Any) -> Any:
    if isinstance(v, datetime):
        return v.isoformat(sep=" ")
    if isinstance(v, date):
        return v.isoformat()
    if v.__class__.__name__ == "Decimal":
        return str(v)
    return v


def _mysql_value(v: Any) -> Any:
    # MariaDB DATETIME has no zone: the front-end keeps local (Asia/Shanghai) time, as the catalogue declares.
    if isinstance(v, datetime) and v.tzinfo is not None:
        from zoneinfo import ZoneInfo

        return v.astimezone(ZoneInfo("Asia/Shanghai")).replace(tzinfo=None)
    return v


def insert_rows(engine: sa.Engine, resource: Resource, rows: Iterable[dict[str, Any]], chunk: int = 5_000) -> int:
    """Insert rows (keyed by field name) into the resource's source table; returns the count."""
    table = resource.source.table
    cols = [f.column for f in resource.fields]
    names = [f.name for f in resource.fields]
    dialect = engine.dialect.name
    mark = "?" if dialect == "sqlite" else "%s"
    sql = f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join([mark] * len(cols))})"
    convert = (
        _sqlite_value if dialect == "sqlite" else _mysql_value if dialect in ("mysql", "mariadb") else (lambda v: v)
    )
    total = 0
    batch: list[tuple] = []
    with engine.begin() as conn:
        raw = conn.connection.driver_connection
        assert raw is not None
        cur = raw.cursor()
        for row in rows:
            batch.append(tuple(convert(row.get(n)) for n in names))
            if len(batch) >= chunk:
                cur.executemany(sql, batch)
                total += len(batch)
                batch.clear()
        if batch:
            cur.executemany(sql, batch)
            total += len(batch)
    return total


def load_table(url: str, resource: Resource, world: World) -> int:
    """Create and fill one resource's table at `url` from the world."""
    engine = sa.create_engine(url)
    try:
        create_table(engine, resource)
        n = insert_rows(engine, resource, world.tables[resource.id])
        overrides = world.text_overrides.get(resource.id, [])
        if engine.dialect.name == "sqlite" and overrides:
            _apply_text_overrides(url, resource, world, overrides)
        return n
    finally:
        engine.dispose()


def _apply_text_overrides(url: str, resource: Resource, world: World, overrides: list[tuple[int, str, str]]) -> None:
    """Write impossible dates as text, which only an untyped front-end database can hold."""
    path = sa.engine.make_url(url).database
    key = resource.source.key
    with sqlite3.connect(str(path)) as conn:
        for index, column, text in overrides:
            row = world.tables[resource.id][index]
            where = " AND ".join(f"{k} = ?" for k in key)
            conn.execute(
                f"UPDATE {resource.source.table} SET {column} = ? WHERE {where}", [text, *[row[k] for k in key]]
            )


def write_file_drop(folder: Path, resource: Resource, rows: list[dict[str, Any]], name: str) -> Path:
    """Write an offline CSV delivery in the resource's declared encoding."""
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    cols = [f.column for f in resource.fields]
    with path.open("w", encoding=resource.source.encoding, newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=cols)
        writer.writeheader()
        writer.writerows(rows)
    return path
