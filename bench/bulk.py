"""Bulk copy (批量复制): a full masked extract of N persons, against the raw copy of the same columns.

    python -m bench.bulk [--persons 5000000]

It writes a gongan.population store of N persons (Delta, with change data, as promote leaves it) and
registers a consumer with a bulk grant on id_number, name, sex, birth_date, address and phone (all but
sex masked: id_number, name, phone and address partly, birth_date redacted). Then, in one process, each
measured twice, best of two:
  - the raw baseline: the same columns read from the Delta table with pyarrow and written to one zstd
    Parquet file in memory, with its sha256 (no masking, no manifest, nothing stored);
  - sharehub: `sharehub.serving.bulk.create`, a full extract: the read, every value masked by its field's rule,
    the zstd Parquet file and its sha256, the sealed manifest, both written to the object store (local),
    the extract recorded and audited, and a download URL issued.
It prints rows/s for both and their ratio, checks the extract's rows and that no masked column holds a
value in the clear, and prints the peak RSS of the process.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import resource
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow.parquet as pq
from deltalake import DeltaTable

from bench.serving import _store
from sharehub.access.consumers import Caller, add_consumer
from sharehub.access.grants import active_grant, apply
from sharehub.hub import Hub
from sharehub.serving.bulk import create
from sharehub.settings import REPO_ROOT, Settings

FIELDS = ["id_number", "name", "sex", "birth_date", "address", "phone"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--persons", type=int, default=5_000_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="sharehub-bench-bulk-") as tmp:
        hub = Hub(Settings(home=Path(tmp) / "home", catalogue_dir=REPO_ROOT / "catalogue"))
        print(f"writing a gongan.population store of {args.persons:,} persons …")
        sample = _store(hub, args.persons)
        made, _ = add_consumer(hub, "bench", "rsj", "consumer")
        consumer = Caller(made.id, made.name, made.department, "consumer")
        until = datetime.now(UTC) + timedelta(days=30)
        apply(hub, consumer, "gongan.population", FIELDS, ["bulk"], "批量复制压力测试", until)
        access = active_grant(hub, consumer, "gongan.population", "bulk")
        uri = hub.store.uri(hub.catalogue.resource("gongan.population").store_path)

        def raw() -> int:
            table = DeltaTable(uri).to_pyarrow_dataset().to_table(columns=FIELDS)
            buffer = io.BytesIO()
            pq.write_table(table, buffer, compression="zstd")
            hashlib.sha256(buffer.getvalue()).hexdigest()
            return table.num_rows

        def sharehub() -> int:
            return create(hub, consumer, access, "gongan.population", incremental=False).extract.rows

        timings = {}
        for label, fn in (("raw pyarrow copy (no masking)", raw), ("sharehub full extract", sharehub)):
            best, rows = float("inf"), 0
            for _ in range(2):
                started = time.perf_counter()
                rows = fn()
                best = min(best, time.perf_counter() - started)
            if rows != args.persons:
                raise SystemExit(f"{label}: {rows:,} rows, not {args.persons:,}")
            timings[label] = best
            print(f"  {label:<34} {best:8.2f} s   {rows / best:12,.0f} rows/s")
        issued = create(hub, consumer, access, "gongan.population", incremental=False)
        served = pq.read_table(hub.store.path(issued.extract.path), filesystem=hub.store.fs)
        clear = {p["id_number"] for p in sample[:100]} & set(served.column("id_number").to_pylist())
        if clear or set(served.column("birth_date").to_pylist()) != {"***"}:
            raise SystemExit("the extract holds values in the clear")
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    ratio = timings["sharehub full extract"] / timings["raw pyarrow copy (no masking)"]
    print()
    print(f"sharehub full extract / raw copy: {ratio:5.2f}×   (masked: id_number, name, birth_date, address, phone)")
    print(f"peak RSS {peak:,.0f} MB")


if __name__ == "__main__":
    main()
