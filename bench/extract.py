"""Extraction to landing Parquet from PostgreSQL and MariaDB, against raw baselines in the same run.

    python -m bench.extract [--rows 5000000] [--small 1000000] [--pandas-rows 1000000]

For each database it fills `population_register` (the gongan.population source table) in a
`sharehub_bench` database, first to --small rows and then to --rows rows, and measures:
  - sharehub: `sharehub.pipeline.extract.extract()` into a local landing zone, in a child process
    whose peak RSS is reported (at both sizes, to show memory stays flat as the table grows);
  - PostgreSQL: raw `COPY (SELECT …) TO STDOUT (FORMAT binary)` read into bytes by psycopg (one stream),
    and pandas fed by psycopg's COPY … (FORMAT csv) into `read_csv` (the fast psycopg-based pandas path);
  - MariaDB: the `mariadb --quick --batch` client piped to /dev/null, and ConnectorX into Arrow with 2
    partitions (two key ranges read at once), the engine sharehub itself reads MariaDB with;
  - both: SQLAlchemy + pandas `read_sql` (psycopg for PostgreSQL; pymysql, a pure-Python driver, for
    MariaDB), on --pandas-rows rows to keep the run short; rows/s is compared.
Every baseline's clock covers its read only: the row count it reports is taken after the clock stops.
Then it changes 1,000 rows and runs an incremental extraction, printing how many rows it read.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa

PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
PG = "postgresql+psycopg://postgres@127.0.0.1:5432/sharehub_bench"
MY_ADMIN = "mysql+pymysql://root@127.0.0.1:3306/test"
MY = "mysql+pymysql://root@127.0.0.1:3306/sharehub_bench?charset=utf8mb4"
COLUMNS = "id_number, name, sex, birth_date, ethnicity, division_code, address, phone, updated_at"


@dataclass
class Measure:
    """One timed read."""

    label: str
    rows: int
    seconds: float
    peak_rss_mb: float | None = None

    @property
    def rate(self) -> float:
        return self.rows / self.seconds


def _exec(url: str, *sql: str) -> None:
    engine = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    with engine.connect() as c:
        for s in sql:
            c.exec_driver_sql(s)
    engine.dispose()


def _count(url: str) -> int:
    engine = sa.create_engine(url)
    with engine.connect() as c:
        n = c.exec_driver_sql("SELECT count(*) FROM population_register").scalar_one()
    engine.dispose()
    return int(n)


def prepare_databases() -> None:
    """Create the bench databases and the empty source tables (from the catalogue's declaration)."""
    from sharehub.catalogue import load_catalogue
    from sharehub.demo.load import create_table
    from sharehub.settings import REPO_ROOT

    engine = sa.create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with engine.connect() as c:
        if not c.exec_driver_sql("SELECT 1 FROM pg_database WHERE datname = 'sharehub_bench'").first():
            c.exec_driver_sql("CREATE DATABASE sharehub_bench")
    engine.dispose()
    _exec(MY_ADMIN, "CREATE DATABASE IF NOT EXISTS sharehub_bench DEFAULT CHARSET utf8mb4")
    res = load_catalogue(REPO_ROOT / "catalogue").resource("gongan.population")
    for url in (PG, MY):
        create_table(sa.create_engine(url), res)


def grow_pg(to_rows: int) -> None:
    """Append synthetic residents up to `to_rows` rows, generated inside PostgreSQL."""
    start = _count(PG)
    if start >= to_rows:
        return
    _exec(
        PG,
        f"""
        INSERT INTO population_register ({COLUMNS})
        SELECT lpad(i::text, 17, '4') || 'X', '张' || chr(19968 + mod(i, 20000)) || chr(19968 + mod(i * 7, 20000)),
               CASE WHEN mod(i, 2) = 0 THEN '男' ELSE '女' END, DATE '1940-01-01' + mod(i, 30000),
               '汉族', '422802', '湖北省利川市解放路' || mod(i, 500) || '号', '138' || lpad(mod(i, 100000000)::text, 8, '0'),
               TIMESTAMPTZ '2025-11-20 00:00:00+08' + make_interval(secs => i * 6)
        FROM generate_series({start + 1}, {to_rows}) AS i""",
        "ANALYZE population_register",
    )


def grow_mariadb(to_rows: int) -> None:
    """Append synthetic residents up to `to_rows` rows, generated inside MariaDB (sequence engine)."""
    start = _count(MY)
    if start >= to_rows:
        return
    _exec(
        MY,
        f"""
        INSERT INTO population_register ({COLUMNS})
        SELECT CONCAT(LPAD(seq, 17, '4'), 'X'), CONCAT('张', CONVERT(CHAR(19968 + mod(seq, 20000) USING ucs2) USING utf8mb4)),
               IF(mod(seq, 2) = 0, '男', '女'), DATE_ADD('1940-01-01', INTERVAL mod(seq, 30000) DAY),
               '汉族', '422802', CONCAT('湖北省利川市解放路', mod(seq, 500), '号'), CONCAT('138', LPAD(mod(seq, 100000000), 8, '0')),
               DATE_ADD('2025-11-20 00:00:00', INTERVAL seq * 6 SECOND)
        FROM seq_{start + 1}_to_{to_rows}""",
    )


def sharehub_extract(url: str, home: Path, commit_watermark: bool = False) -> Measure:
    """Run sharehub's extract() in a child process; return rows, seconds and the child's peak RSS.

    Imports (pandas, pyarrow, DuckDB, ConnectorX) are loaded before the clock starts, as in a warm
    Airflow worker. With `commit_watermark`, the run's watermark is committed afterwards as promote
    would, so that the next extraction is incremental without gating 5 million rows first.
    """
    code = f"""
import json, time
import pandas, connectorx, duckdb
from sharehub.hub import Hub
from sharehub.settings import Settings
from sharehub.pipeline.extract import extract
from sharehub.pipeline.runs import get_run
from sharehub.metadata.models import Watermark
hub = Hub(Settings(home={str(home)!r}, connections={{"gongan_front": {url!r}}}))
hub.catalogue
t = time.perf_counter()
run_id = extract(hub, "gongan.population")
seconds = time.perf_counter() - t
run = get_run(hub, run_id)
if {commit_watermark!r}:
    with hub.db() as s:
        s.merge(Watermark(resource_id="gongan.population", value=run.watermark_to, run_id=run_id))
# VmHWM is this process's own peak; ru_maxrss would carry the parent's peak across exec.
hwm = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM:"))
print(json.dumps({{"rows": run.rows_read, "seconds": seconds, "rss": hwm / 1024}}))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    if out.returncode:
        raise SystemExit(f"sharehub extraction failed:\n{out.stderr[-3000:]}")
    r = json.loads(out.stdout.strip().splitlines()[-1])
    return Measure("sharehub extract → Parquet", r["rows"], r["seconds"], r["rss"])


def pg_copy() -> Measure:
    """Raw binary COPY of the same columns, read into bytes."""
    import psycopg

    with psycopg.connect("postgresql://postgres@127.0.0.1:5432/sharehub_bench") as conn:
        t = time.perf_counter()
        size = 0
        with conn.cursor().copy(f"COPY (SELECT {COLUMNS} FROM population_register) TO STDOUT (FORMAT binary)") as cp:
            for chunk in cp:
                size += len(chunk)
        seconds = time.perf_counter() - t
    return Measure(f"raw COPY binary, 1 stream ({size / 1e6:,.0f} MB)", _count(PG), seconds)


def pg_pandas_copy(rows: int) -> Measure:
    """pandas fed by psycopg: COPY … (FORMAT csv) of the first `rows` rows into read_csv."""
    import io

    import pandas as pd
    import psycopg

    with psycopg.connect("postgresql://postgres@127.0.0.1:5432/sharehub_bench") as conn:
        t = time.perf_counter()
        buffer = io.BytesIO()
        sql = f"COPY (SELECT {COLUMNS} FROM population_register LIMIT {rows}) TO STDOUT (FORMAT csv)"
        with conn.cursor().copy(sql) as cp:
            for chunk in cp:
                buffer.write(chunk)
        buffer.seek(0)
        frame = pd.read_csv(buffer, names=COLUMNS.split(", "), dtype=str, keep_default_na=False)
        seconds = time.perf_counter() - t
    return Measure(f"psycopg COPY csv → pandas read_csv ({rows:,} rows)", len(frame), seconds)


def mariadb_client() -> Measure:
    """The mariadb command-line client streaming the same columns to /dev/null."""
    t = time.perf_counter()
    with open(os.devnull, "wb") as devnull:
        subprocess.run(
            [
                "mariadb",
                "--quick",
                "--batch",
                "-h",
                "127.0.0.1",
                "-uroot",
                "sharehub_bench",
                "-e",
                f"SELECT {COLUMNS} FROM population_register",
            ],
            stdout=devnull,
            check=True,
        )
    seconds = time.perf_counter() - t
    return Measure("mariadb --quick --batch > /dev/null", _count(MY), seconds)


def mariadb_connectorx() -> Measure:
    """ConnectorX into Arrow, 2 partitions: the two halves of the key range read at once."""
    import connectorx as cx

    engine = sa.create_engine(MY)
    with engine.connect() as c:
        half = _count(MY) // 2
        middle = c.exec_driver_sql(
            f"SELECT id_number FROM population_register ORDER BY id_number LIMIT 1 OFFSET {half}"
        ).scalar_one()
    engine.dispose()
    url = "mysql://root@127.0.0.1:3306/sharehub_bench"
    halves = [
        f"SELECT {COLUMNS} FROM population_register WHERE id_number < '{middle}'",
        f"SELECT {COLUMNS} FROM population_register WHERE id_number >= '{middle}'",
    ]
    t = time.perf_counter()
    table = cx.read_sql(url, halves, return_type="arrow")
    seconds = time.perf_counter() - t
    return Measure("ConnectorX → Arrow, 2 partitions", table.num_rows, seconds)


def pandas_read(url: str, rows: int) -> Measure:
    """SQLAlchemy + pandas read_sql of the first `rows` rows."""
    import pandas as pd

    engine = sa.create_engine(url)
    t = time.perf_counter()
    frame = pd.read_sql(f"SELECT {COLUMNS} FROM population_register LIMIT {rows}", engine)
    seconds = time.perf_counter() - t
    engine.dispose()
    driver = "psycopg" if url.startswith("postgresql") else "pymysql, pure Python"
    return Measure(f"SQLAlchemy ({driver}) + pandas read_sql ({rows:,} rows)", len(frame), seconds)


def incremental(url: str, home: Path, changed: int = 1_000) -> Measure:
    """Change `changed` rows at the source, then extract incrementally after the first full extraction."""
    is_pg = url.startswith("postgresql")
    now = "now()" if is_pg else "CONVERT_TZ(UTC_TIMESTAMP(), '+00:00', '+08:00')"
    if is_pg:
        sql = (
            "UPDATE population_register SET address = '新地址', updated_at = now() WHERE id_number IN "
            f"(SELECT id_number FROM population_register ORDER BY id_number LIMIT {changed})"
        )
    else:  # MariaDB runs an IN (… LIMIT) subquery row by row; its UPDATE … ORDER BY … LIMIT does not
        sql = (
            f"UPDATE population_register SET address = '新地址', updated_at = {now} ORDER BY id_number LIMIT {changed}"
        )
    _exec(url, sql)
    m = sharehub_extract(url, home)
    m.label = f"incremental after {changed:,} changes"
    return m


def report(db: str, rows: dict[str, list[Measure]], baselines: list[Measure], inc: Measure) -> None:
    """Print rows/s, peak RSS and ratios for one database."""
    print(f"\n== {db} ==")
    for size, ms in rows.items():
        for m in ms:
            rss = f"   peak RSS {m.peak_rss_mb:,.0f} MB" if m.peak_rss_mb else ""
            print(f"  {m.label:<44} {m.rows:>10,} rows {m.seconds:7.2f} s {m.rate:>12,.0f} rows/s{rss}   [{size}]")
    for b in baselines:
        print(f"  {b.label:<44} {b.rows:>10,} rows {b.seconds:7.2f} s {b.rate:>12,.0f} rows/s")
    big = rows["large"][0]
    for b in baselines:
        print(f"  ratio sharehub / {b.label.split(' (')[0]}: {big.rate / b.rate:.2f}x")
    if db == "PostgreSQL":
        print(f"  goal: sharehub ≥ 0.8× the 1-stream COPY ({big.rate / baselines[0].rate:.2f}×)")
    small = rows["small"][0]
    print(
        f"  peak RSS: {small.peak_rss_mb:,.0f} MB at {small.rows:,} rows, {big.peak_rss_mb:,.0f} MB at {big.rows:,} rows"
    )
    print(f"  {inc.label}: read {inc.rows:,} rows (of {big.rows:,}) in {inc.seconds:.2f} s")


def main() -> None:
    """Run the benchmark and print its figures."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=5_000_000)
    ap.add_argument("--small", type=int, default=1_000_000)
    ap.add_argument("--pandas-rows", type=int, default=1_000_000)
    args = ap.parse_args()
    prepare_databases()
    peers = {
        "PostgreSQL": lambda: [pg_copy(), pg_pandas_copy(args.pandas_rows)],
        "MariaDB": lambda: [mariadb_client(), mariadb_connectorx()],
    }
    for db, url, grow in (("PostgreSQL", PG, grow_pg), ("MariaDB", MY, grow_mariadb)):
        sizes: dict[str, list[Measure]] = {}
        for label, n in (("small", args.small), ("large", args.rows)):
            t = time.perf_counter()
            grow(n)
            print(f"{db}: table holds {n:,} rows (filled in {time.perf_counter() - t:.0f} s)", flush=True)
            with tempfile.TemporaryDirectory() as home:
                sizes[label] = [sharehub_extract(url, Path(home))]
        with tempfile.TemporaryDirectory() as home:
            sharehub_extract(url, Path(home), commit_watermark=True)
            inc = incremental(url, Path(home))
        baselines = [*peers[db](), pandas_read(url, args.pandas_rows)]
        report(db, sizes, baselines, inc)


if __name__ == "__main__":
    main()
