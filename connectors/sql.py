"""SQL front-end databases: PostgreSQL through DuckDB's postgres scanner, MySQL/MariaDB through ConnectorX,
SQLite through sqlite3.

Rows stream as Arrow record batches of a fixed size, so memory stays flat whatever the table's size.

Time zones. A watermark is an instant; a source column may be zone-less (wall time of the resource's
declared `timezone`) or an instant. The incremental filter must mean the same on every server whatever
its session TimeZone:
- PostgreSQL gets an untyped literal in the declared zone's wall time with its offset
  (`'2024-01-01 08:00:00+08:00'`): against `timestamptz` the offset is honoured, against `timestamp`
  PostgreSQL ignores it and compares the wall time, which is what the column holds.
- MySQL/MariaDB sessions are set to UTC (`SET time_zone = '+00:00'`), so a `TIMESTAMP` column is read
  and compared in UTC; a `DATETIME` column is compared with the declared zone's wall time.
- MySQL/MariaDB DATE, DATETIME and TIMESTAMP columns are read as text: a zero or impossible date
  (`0000-00-00`, `2024-00-10`) then lands as written and the gate quarantines it naming the field,
  instead of crashing the driver. `TIMESTAMP` text carries `+00:00`, so it stays an instant.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterator, Sequence
from datetime import datetime
from zoneinfo import ZoneInfo

import connectorx as cx
import duckdb
import pyarrow as pa
import sqlalchemy as sa

from connectors import duck
from connectors.base import SourceColumn
from connectors.errors import ConnectorFailure, SchemaDrift, SourceMissing, SourceUnreachable

log = logging.getLogger(__name__)


def _family(t: sa.types.TypeEngine) -> str:
    if isinstance(t, sa.Boolean):
        return "boolean"
    if isinstance(t, sa.Integer):
        return "integer"
    if isinstance(t, sa.Float):
        return "float"
    if isinstance(t, sa.Numeric):
        return "decimal"
    if isinstance(t, sa.DateTime):
        return "timestamp"
    if isinstance(t, sa.Date):
        return "date"
    if isinstance(t, sa.String | sa.Text):
        return "string"
    return "other"


# pymysql's field type codes for the temporal types a query's columns may have.
_MYSQL_TEMPORAL_CODES = {7: "TIMESTAMP", 10: "DATE", 12: "DATETIME", 14: "DATE"}
_MYSQL_UTC_SESSION = "SET time_zone = '+00:00'"


def _quote(sql: str) -> str:
    return "'" + sql.replace("'", "''") + "'"


class SqlSource:
    """A table or query in a department's SQL front-end database."""

    def __init__(
        self,
        url: str,
        *,
        table: str | None = None,
        query: str | None = None,
        timezone: str = "Asia/Shanghai",
        batch_rows: int = 100_000,
        label: str = "",
    ) -> None:
        self.url = sa.engine.make_url(url)
        self.table = table
        self.query = query
        self.tz = ZoneInfo(timezone)
        self.batch_rows = batch_rows
        self.dialect = self.url.get_backend_name()
        self.rows_read = 0
        self.description = label or f"{self.dialect} {table or 'query'}"
        self.overlap_writes = self.dialect == "postgresql"  # DuckDB scans without the GIL
        self._natives: dict[str, str] | None = None

    @property
    def is_mysql(self) -> bool:
        """Whether the source speaks MySQL's dialect (MySQL or MariaDB)."""
        return self.dialect in ("mysql", "mariadb")

    def _native(self, column: str) -> str:
        """The source's own type name of a column, upper case ('' when unknown); looked up once."""
        if self._natives is None:
            self.columns()
        return (self._natives or {}).get(column, "")

    # -- discovery -------------------------------------------------------------------------------
    def _engine(self) -> sa.Engine:
        return sa.create_engine(self.url, pool_pre_ping=True)

    def columns(self) -> dict[str, SourceColumn]:
        """The columns the table or query has now; raises SourceUnreachable or SourceMissing."""
        found = self._discover()
        self._natives = {name: c.native.upper() for name, c in found.items()}
        return found

    def _discover(self) -> dict[str, SourceColumn]:
        engine = self._engine()
        try:
            with engine.connect() as conn:
                if self.table:
                    insp = sa.inspect(conn)
                    if not insp.has_table(self.table):
                        raise SourceMissing(
                            f"{self.description}: table {self.table!r} does not exist in {self._where()}"
                        )
                    return {
                        c["name"]: SourceColumn(c["name"], _family(c["type"]), str(c["type"]))
                        for c in insp.get_columns(self.table)
                    }
                res = conn.execute(sa.text(f"SELECT * FROM ({self.query}) q WHERE 1 = 0"))
                natives: dict[str, str] = {}
                if self.is_mysql and res.cursor is not None:
                    natives = {d[0]: _MYSQL_TEMPORAL_CODES.get(d[1], "query") for d in res.cursor.description}  # type: ignore[call-overload]
                return {k: SourceColumn(k, "unknown", natives.get(k, "query")) for k in res.keys()}
        except sa.exc.OperationalError as exc:
            raise SourceUnreachable(
                f"{self.description}: cannot reach {self._where()}: {self._clean(str(exc.orig))}"
            ) from exc
        except sa.exc.ProgrammingError as exc:
            raise SourceMissing(
                f"{self.description}: the declared query fails in {self._where()}: {self._clean(str(exc.orig))}"
            ) from exc
        finally:
            engine.dispose()

    def _clean(self, message: str) -> str:
        first = message.strip().splitlines()[0][:300] if message.strip() else ""
        return first.replace(self.url.password, "***") if self.url.password else first

    def _where(self) -> str:
        # Never print the password.
        return self.url.render_as_string(hide_password=True)

    # -- reading ---------------------------------------------------------------------------------
    def _relation(self) -> str:
        return self.table if self.table else f"({self.query}) q"

    def _literal(self, since: object, column: str) -> str:
        if not isinstance(since, datetime):
            return str(int(str(since)))  # integer watermarks
        if self.dialect == "postgresql":
            # Untyped on purpose: see the module docstring. Never `::timestamptz`, which would make
            # PostgreSQL read a zone-less column in the session's TimeZone.
            return f"'{since.astimezone(self.tz).isoformat(sep=' ')}'"
        if self.dialect == "sqlite":
            return f"julianday('{since.astimezone(ZoneInfo('UTC')).isoformat(sep=' ')}')"
        if self.is_mysql and self._native(column).startswith("TIMESTAMP"):
            return f"'{since.astimezone(ZoneInfo('UTC')).replace(tzinfo=None).isoformat(sep=' ')}'"
        return f"'{since.astimezone(self.tz).replace(tzinfo=None).isoformat(sep=' ')}'"

    def _select_list(self, columns: Sequence[str]) -> str:
        if not self.is_mysql:
            return ", ".join(columns)
        out = []
        for c in columns:
            native = self._native(c)
            if native.startswith("TIMESTAMP"):
                out.append(f"CONCAT(CAST({c} AS CHAR), '+00:00') AS {c}")
            elif native.startswith(("DATE", "DATETIME")):
                out.append(f"CAST({c} AS CHAR) AS {c}")
            else:
                out.append(c)
        return ", ".join(out)

    def select_sql(self, columns: Sequence[str], incremental_column: str | None = None, since: object = None) -> str:
        """The SELECT that reads these columns, after the watermark when one is given."""
        sql = f"SELECT {self._select_list(columns)} FROM {self._relation()}"
        if incremental_column and since is not None:
            col = (
                f"julianday({incremental_column})"
                if self.dialect == "sqlite" and isinstance(since, datetime)
                else incremental_column
            )
            sql += f" WHERE {col} > {self._literal(since, incremental_column)}"
        return sql

    def read(
        self, columns: Sequence[str], incremental_column: str | None = None, since: object = None
    ) -> Iterator[pa.RecordBatch]:
        """Stream rows as Arrow batches of at most `batch_rows` rows."""
        full = bool(self.table) and (incremental_column is None or since is None)
        yield from self._stream(self.select_sql(columns, incremental_column, since), columns, full)

    def read_keys(self, key: Sequence[str]) -> Iterator[pa.RecordBatch]:
        """Stream only the key columns of every row."""
        yield from self._stream(f"SELECT {self._select_list(key)} FROM {self._relation()}", key, bool(self.table))

    def _stream_postgres(self, sql: str, columns: Sequence[str], full_table: bool) -> Iterator[pa.RecordBatch]:
        # DuckDB's postgres scanner reads a whole table over binary COPY in parallel ctid ranges; a
        # filtered read runs as-is on the server (postgres_query), so an incremental read stays small.
        u = self.url
        dsn = " ".join(
            f"{k}={v}"
            for k, v in (
                ("host", u.host or "localhost"),
                ("port", u.port or 5432),
                ("user", u.username),
                ("password", u.password),
                ("dbname", u.database),
            )
            if v
        )
        con = duck.connect()
        try:
            con.execute(f"LOAD '{duck.postgres_scanner_path()}'")
            con.execute(f"ATTACH {_quote(dsn)} AS src (TYPE postgres, READ_ONLY)")
            if full_table:
                schema, _, table = (self.table or "").rpartition(".")
                query = f"SELECT {', '.join(columns)} FROM src.{schema or 'public'}.{table}"
            else:
                query = "SELECT * FROM postgres_query('src', " + _quote(sql) + ")"
            reader = con.sql(query).to_arrow_reader(self.batch_rows)
            for batch in reader:
                if batch.num_rows:
                    self.rows_read += batch.num_rows
                    yield batch
        except duckdb.CatalogException as exc:
            raise SourceMissing(
                f"{self.description}: {self._where()} no longer has what the catalogue names: {self._clean(str(exc))}"
            ) from exc
        except duckdb.Error as exc:
            msg = str(exc)
            if "does not exist" in msg:
                raise SourceMissing(f"{self.description}: {self._clean(msg)}") from exc
            raise SourceUnreachable(
                f"{self.description}: cannot read from {self._where()}: {self._clean(msg)}"
            ) from exc
        finally:
            con.close()

    def _stream(self, sql: str, columns: Sequence[str], full_table: bool = False) -> Iterator[pa.RecordBatch]:
        if self.dialect == "sqlite":
            yield from self._stream_sqlite(sql, columns)
            return
        if self.dialect == "postgresql":
            yield from self._stream_postgres(sql, columns, full_table)
            return
        scheme = {"mysql": "mysql", "mariadb": "mysql"}.get(self.dialect)
        if scheme is None:
            raise SourceMissing(f"no connector for {self.dialect!r} sources")
        # ConnectorX takes a plain URL: no SQLAlchemy driver suffix and no driver query options.
        url = self.url.set(drivername=scheme, query={}).render_as_string(hide_password=False)
        try:
            reader = cx.read_sql(
                url, sql, return_type="arrow_stream", batch_size=self.batch_rows, pre_execution_query=_MYSQL_UTC_SESSION
            )
            for batch in reader:
                if batch.num_rows:
                    self.rows_read += batch.num_rows
                    yield batch
        except RuntimeError as exc:
            msg = str(exc)
            if "does not exist" in msg or "doesn't exist" in msg:
                raise SourceMissing(
                    f"{self.description}: {self._where()} no longer has what the catalogue names"
                ) from exc
            raise SourceUnreachable(
                f"{self.description}: cannot read from {self._where()}: {self._clean(msg)}"
            ) from exc
        except BaseException as exc:
            # A Rust panic inside ConnectorX surfaces as pyo3's PanicException, which is not an Exception:
            # turn it into one, so the run records it as failed instead of dying half-way.
            if type(exc).__name__ != "PanicException":
                raise
            raise ConnectorFailure(
                f"{self.description}: the MySQL driver could not convert a value read from {self._where()}: "
                f"{self._clean(str(exc))}"
            ) from exc

    def _stream_sqlite(self, sql: str, columns: Sequence[str]) -> Iterator[pa.RecordBatch]:
        # SQLite is untyped: land its values as text; the gate casts them and names the cells that fail.
        path = self.url.database or ""
        try:
            conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        except sqlite3.OperationalError as exc:
            raise SourceUnreachable(f"cannot open {path}") from exc
        schema = pa.schema([pa.field(c, pa.string()) for c in columns])
        try:
            cur = conn.execute(sql)
            while rows := cur.fetchmany(self.batch_rows):
                cols = list(zip(*rows, strict=True))
                arrays = [pa.array([None if v is None else str(v) for v in col], pa.string()) for col in cols]
                self.rows_read += len(rows)
                yield pa.RecordBatch.from_arrays(arrays, schema=schema)
        except sqlite3.OperationalError as exc:
            if "no such" in str(exc):
                raise SchemaDrift(f"{self.description}: {exc}") from exc
            raise SourceUnreachable(f"{self.description}: {exc}") from exc
        finally:
            conn.close()
