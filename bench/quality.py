"""The quality gate on millions of rows, against one hand-written DuckDB SQL pass in the same run.

    python -m bench.quality [--rows 5000000] [--gx-rows 200000]

It writes a landing Parquet file shaped like gongan.population (as the PostgreSQL connector lands
it), with about 1% of the rows broken in seven different ways, and then measures:
  - sharehub: `sharehub.pipeline.gate.gate()` with the default engine, in a child process whose
    peak RSS (VmHWM) is reported. That is the gongan.population suite (13 expectations) plus key
    uniqueness, typed chunks, quarantine with reasons and keys, staging Parquet with row hashes,
    the metadata rows and the reports;
  - the raw baseline: the same 14 checks written by hand as one DuckDB SQL pass over the file,
    counting the failures of each rule;
  - sharehub with `gate_engine=gx` (every rule in Great Expectations' pandas engine) on the first
    --gx-rows rows, for scale.
Both full passes must find the same number of failures per rule, or the bench stops.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb

from expectations.identifiers import ID_WEIGHTS

DIVISIONS = ["422801", "422802", "422822", "422823", "422825", "422826", "422827", "422828", "210402", "430405"]
TODAY = "2026-11-22"


def _digit_sum(col: str) -> str:
    return " + ".join(f"(ascii(substr({col}, {i + 1}, 1)) - 48) * {w}" for i, w in enumerate(ID_WEIGHTS))


def write_landing(path: Path, rows: int) -> None:
    """The landing file: valid people, then seven kinds of defect spread over about 1% of the rows."""
    divisions = "[" + ", ".join(f"'{d}'" for d in DIVISIONS) + "]"
    con = duckdb.connect()
    con.execute("SET enable_progress_bar = false")
    con.execute(f"""
        COPY (
          WITH base AS (
            SELECT i,
                   {divisions}[1 + CAST(hash(i) % {len(DIVISIONS)} AS INT)] AS div,
                   DATE '1935-01-01' + CAST((i // 1000) % 32000 AS INT) AS born,
                   lpad(CAST(i % 1000 AS VARCHAR), 3, '0') AS seq
            FROM range({rows}) t(i)
          ), bodies AS (
            SELECT *, div || strftime(born, '%Y%m%d') || seq AS body FROM base
          ), people AS (
            SELECT i, body || substr('10X98765432', ({_digit_sum("body")}) % 11 + 1, 1) AS id_number,
                   '张' || chr(CAST(20000 + hash(i * 17) % 8000 AS INT)) AS name,
                   CASE WHEN CAST(substr(seq, 3, 1) AS INT) % 2 = 1 THEN '男' ELSE '女' END AS sex,
                   born, div,
                   '湖北省利川市人民路' || CAST(i % 300 AS VARCHAR) || '号' AS address,
                   '13' || lpad(CAST(hash(i * 19) % 1000000000 AS VARCHAR), 9, '0') AS phone,
                   TIMESTAMPTZ '2026-11-01 00:00:00+00' + INTERVAL (i % 100000) SECOND AS updated_at
            FROM bodies
          )
          SELECT
            CASE WHEN i % 997 = 1 THEN substr(id_number, 1, 17) || CASE WHEN right(id_number, 1) = '0' THEN '1' ELSE '0' END
                 WHEN i % 1009 = 8 THEN lag(id_number) OVER (ORDER BY i)
                 ELSE id_number END AS id_number,
            CASE WHEN i % 991 = 2 THEN NULL ELSE name END AS name,
            CASE WHEN i % 983 = 3 THEN (CASE sex WHEN '男' THEN '女' ELSE '男' END) ELSE sex END AS sex,
            CASE WHEN i % 977 = 4 THEN born + 1 WHEN i % 953 = 7 THEN DATE '2030-01-01' ELSE born END AS birth_date,
            '汉族' AS ethnicity,
            CASE WHEN i % 971 = 5 THEN '429999' ELSE div END AS division_code,
            address,
            CASE WHEN i % 967 = 6 THEN '1380013800' ELSE phone END AS phone,
            updated_at
          FROM people ORDER BY i
        ) TO '{path}' (FORMAT parquet, COMPRESSION zstd)
    """)
    con.close()


def raw_duckdb(path: Path) -> tuple[float, dict[str, int]]:
    """The same checks, written by hand as one DuckDB pass; returns seconds and failures per rule."""
    con = duckdb.connect()
    con.execute("SET enable_progress_bar = false")
    con.execute("CREATE TABLE codes AS SELECT * FROM read_csv('expectations/data/gbt2260.csv', all_varchar=true)")
    id_ok = f"""(regexp_full_match(id_number, '[0-9]{{17}}[0-9X]')
        AND substr(id_number, 1, 6) IN (SELECT code FROM codes)
        AND CAST(try_strptime(substr(id_number, 7, 8), '%Y%m%d') AS DATE) BETWEEN DATE '1860-01-01' AND DATE '{TODAY}'
        AND substr('10X98765432', ({_digit_sum("id_number")}) % 11 + 1, 1) = right(id_number, 1))"""
    id_birth = "CAST(try_strptime(substr(id_number, 7, 8), '%Y%m%d') AS DATE)"
    id_sex = "CASE WHEN (ascii(substr(id_number, 17, 1)) - 48) % 2 = 1 THEN '男' ELSE '女' END"
    checks = {
        "id_number not null": "id_number IS NULL",
        "id_number valid": f"id_number IS NOT NULL AND NOT coalesce({id_ok}, false)",
        "name not null": "name IS NULL",
        "sex not null": "sex IS NULL",
        "sex in set": "sex NOT IN ('男', '女')",
        "sex agrees with id": f"length(id_number) = 18 AND sex <> {id_sex}",
        "birth_date not null": "birth_date IS NULL",
        "birth_date agrees with id": f"length(id_number) = 18 AND birth_date <> {id_birth}",
        "birth_date not future": f"birth_date > DATE '{TODAY}'",
        "division not null": "division_code IS NULL",
        "division valid": "division_code NOT IN (SELECT code FROM codes WHERE to_year IS NULL)",
        "phone format": "NOT regexp_matches(phone, '^(?:1[3-9]\\d{9}|0\\d{2,3}-?\\d{7,8})$')",
        "updated_at not null": "updated_at IS NULL",
        "key unique": "count(*) OVER (PARTITION BY id_number) > 1",
    }
    flags = ", ".join(f"coalesce({sql}, false) AS c{i}" for i, sql in enumerate(checks.values()))
    sums = ", ".join(f"sum(c{i}::INT)" for i in range(len(checks)))
    t = time.perf_counter()
    counts = con.execute(f"SELECT {sums} FROM (SELECT {flags} FROM read_parquet('{path}'))").fetchone()
    seconds = time.perf_counter() - t
    con.close()
    assert counts is not None
    return seconds, dict(zip(checks, (int(c) for c in counts), strict=True))


def sharehub_gate(path: Path, home: Path, engine: str, rows: int | None = None) -> dict:
    """Gate the landing file as a run of gongan.population in a child process; rows/s and peak RSS."""
    code = f"""
import json, shutil, time
import pyarrow as pa
import pyarrow.parquet as pq
from sharehub.hub import Hub
from sharehub.settings import Settings
from sharehub.metadata.models import Run
from sharehub.pipeline import paths
from sharehub.pipeline.gate import gate
hub = Hub(Settings(home={str(home)!r}, gate_engine={engine!r}))
run_id = "gongan.population__bench_{engine}"
target = hub.store.path(paths.landing("gongan.population", run_id))
hub.store.fs.create_dir(target.rsplit("/", 1)[0], recursive=True)
limit = {rows!r}
if limit:
    pq.write_table(pa.Table.from_batches([next(pq.ParquetFile({str(path)!r}).iter_batches(batch_size=limit))]), target)
else:
    shutil.copy({str(path)!r}, target)
with hub.db() as s:
    s.add(Run(id=run_id, resource_id="gongan.population", trigger="bench", mode="incremental",
              status="extracted", step="extract", catalogue_version_id=hub.catalogue_version))
t = time.perf_counter()
result = gate(hub, run_id)
seconds = time.perf_counter() - t
hwm = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM:"))
print(json.dumps({{"rows": result.passed + result.quarantined, "seconds": seconds, "rss": hwm / 1024,
                  "quarantined": result.quarantined,
                  "rules": {{n: t.unexpected for n, t in result.rules.items()}}}}))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    if out.returncode:
        raise SystemExit(f"sharehub gate ({engine}) failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--gx-rows", type=int, default=200_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="sharehub-bench-quality-") as tmp:
        landing = Path(tmp) / "landing.parquet"
        t = time.perf_counter()
        write_landing(landing, args.rows)
        print(f"landing file: {args.rows:,} rows in {time.perf_counter() - t:.1f} s", flush=True)
        raw_s, raw = raw_duckdb(landing)
        fast = sharehub_gate(landing, Path(tmp) / "fast", "duckdb")
        slow = sharehub_gate(landing, Path(tmp) / "gx", "gx", rows=args.gx_rows)
    found = sorted(v for k, v in fast["rules"].items() if v)
    expected = sorted(v for v in raw.values() if v)
    if found != expected:
        raise SystemExit(f"the gate and the raw pass disagree:\n gate {fast['rules']}\n raw  {raw}")
    raw_rate = args.rows / raw_s
    print(f"\n{len(raw)} checks over {args.rows:,} rows; {fast['quarantined']:,} rows quarantined")
    print(f"{'':42} {'rows/s':>12} {'vs raw':>8} {'peak RSS':>10}")
    print(f"{'raw DuckDB SQL pass (hand-written)':42} {raw_rate:>12,.0f} {1:>7.2f}× {'':>10}")
    for label, r in (
        ("sharehub gate (duckdb engine)", fast),
        (f"sharehub gate (gx engine, {args.gx_rows:,} rows)", slow),
    ):
        rate = r["rows"] / r["seconds"]
        print(f"{label:42} {rate:>12,.0f} {rate / raw_rate:>7.2f}× {r['rss']:>8,.0f} MB")
    print("\nfailures per rule (gate):")
    for name, n in sorted(fast["rules"].items()):
        print(f"  {n:>8,}  {name}")


if __name__ == "__main__":
    main()
