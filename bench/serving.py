"""Verification and query under load, against a no-op route of the same app, with a real HTTP load generator.

    python -m bench.serving [--persons 1000000] [--seconds 60] [--connections 16] [--metadata-url URL]

It writes a gongan.population store of N persons (Delta, with change data, as promote leaves it),
registers a consumer with a grant for verification and query, builds the key-indexed serving copy,
and starts the API (`uvicorn api.app:create_app`, one worker) in a child process with audit on.
Then `wrk` (Debian package `wrk`; the bench installs nothing itself) drives, for --seconds each:
  - `GET /health/noop`: the baseline, a route of the same app that does nothing (no key, no audit);
  - `POST /verify/gongan.population`: a random person out of 10,000 known ones or an unknown ID,
    claiming name, sex and birth date (some claims wrong); caller and grant resolved, normalized
    comparison, one audit entry per call;
  - `GET /query/gongan.population?id_number=…`: the granted fields, masked, one audit entry per call.
It prints requests/s, p50 and p99 latency, non-2xx answers and socket errors, and the ratio of each to
the no-op. It fails (exit 1) when any call was not a 2xx or met a socket error, when the audit chain did
not grow by one entry per served call of each route (a call still in flight when wrk stops is served
and audited but not counted by wrk: at most one per connection), or when the chain does not verify.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
from deltalake import write_deltalake
from sqlalchemy import func, select

from sharehub.access.consumers import Caller, add_consumer
from sharehub.access.grants import apply
from sharehub.audit import verify as verify_chain
from sharehub.hub import Hub
from sharehub.metadata.models import AuditEntry
from sharehub.serving.copies import refresh
from sharehub.settings import REPO_ROOT, Settings
from warehouse.delta import CHANGE_DATA

PEOPLE = """
    SELECT '42280119' || lpad(CAST(i AS VARCHAR), 10, '0') AS id_number,
           '张' || chr(CAST(19968 + hash(i) % 20000 AS INT)) || chr(CAST(19968 + hash(i * 7) % 20000 AS INT)) AS name,
           CASE WHEN i % 2 = 0 THEN '男' ELSE '女' END AS sex,
           DATE '1940-01-01' + CAST(hash(i * 13) % 25000 AS INT) AS birth_date,
           '汉族' AS ethnicity, '422802' AS division_code, '湖北省利川市人民路' || CAST(i % 300 AS VARCHAR) || '号' AS address,
           '138' || lpad(CAST(i % 100000000 AS VARCHAR), 8, '0') AS phone,
           TIMESTAMPTZ '2026-11-01 00:00:00+00' AS updated_at,
           'bench_0' AS _run_id, CAST(hash(i) AS VARCHAR) AS _row_hash
    FROM range({n}) t(i)
"""
VERIFY_LUA = """
local keys = {}
for line in io.lines("%(keys)s") do keys[#keys + 1] = line end
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer %(token)s"
request = function()
  local line = keys[math.random(#keys)]
  return wrk.format(nil, "/verify/gongan.population", nil, line)
end
"""
QUERY_LUA = """
local keys = {}
for line in io.lines("%(keys)s") do keys[#keys + 1] = line end
wrk.headers["Authorization"] = "Bearer %(token)s"
request = function()
  return wrk.format("GET", "/query/gongan.population?id_number=" .. keys[math.random(#keys)])
end
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _store(hub: Hub, n: int) -> list[dict]:
    con = duckdb.connect()
    con.execute("SET enable_progress_bar = false")
    res = hub.catalogue.resource("gongan.population")
    reader = con.execute(PEOPLE.format(n=n)).to_arrow_reader(500_000)
    write_deltalake(hub.store.uri(res.store_path), reader, configuration=CHANGE_DATA)
    step = max(n // 10_000, 1)
    sample = con.execute(
        f"SELECT id_number, name, sex, birth_date FROM ({PEOPLE.format(n=n)}) WHERE CAST(substr(id_number, 9) AS BIGINT) % {step} = 0 LIMIT 10000"
    ).fetchall()
    return [{"id_number": a, "name": b, "sex": c, "birth_date": str(d)} for a, b, c, d in sample]


def _wrk(url: str, seconds: int, connections: int, script: Path | None) -> dict[str, float]:
    cmd = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", "--timeout", "5s"]
    if script is not None:
        cmd += ["-s", str(script)]
    text = subprocess.run([*cmd, url], capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))  # type: ignore[union-attr]
    total = int(re.search(r"(\d+) requests in", text).group(1))  # type: ignore[union-attr]
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    sockets = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)

    def pct(p: str) -> float:
        value, unit = re.search(rf"\s{p}%\s+([\d.]+)(us|ms|s)", text).groups()  # type: ignore[union-attr]
        return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]

    return {
        "rps": rps,
        "p50": pct("50"),
        "p99": pct("99"),
        "requests": total,
        "non2xx": int(bad.group(1)) if bad else 0,
        "errors": sum(int(n) for n in sockets.groups()) if sockets else 0,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--persons", type=int, default=1_000_000)
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument(
        "--metadata-url",
        default=None,
        help="an empty metadata database (e.g. PostgreSQL, as docker-compose runs it); default: SQLite",
    )
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("bench.serving needs wrk, a real HTTP load generator: apt-get install wrk")
    tmp = Path(tempfile.mkdtemp(prefix="sharehub-bench-serving-"))
    env = {
        **os.environ,
        "SHAREHUB_HOME": str(tmp / "home"),
        "SHAREHUB_CATALOGUE_DIR": str(REPO_ROOT / "catalogue"),
        "SHAREHUB_VERIFY_RATE_PER_MINUTE": "100000000",  # the bench measures serving, not the limiter
    }
    metadata = {}
    if args.metadata_url:  # the API child reads it from its environment, this process from Settings
        metadata["metadata_url"] = env["SHAREHUB_METADATA_URL"] = args.metadata_url
    hub = Hub(Settings(home=tmp / "home", catalogue_dir=REPO_ROOT / "catalogue", **metadata))
    print(f"writing a gongan.population store of {args.persons:,} persons …")
    sample = _store(hub, args.persons)
    made, token = add_consumer(hub, "bench", "rsj", "consumer")
    consumer = Caller(made.id, made.name, made.department, "consumer")
    until = datetime.now(UTC) + timedelta(days=30)
    apply(
        hub,
        consumer,
        "gongan.population",
        ["name", "sex", "birth_date", "phone"],
        ["verification", "query"],
        "压力测试",
        until,
    )
    started = time.perf_counter()
    refresh(hub, hub.catalogue.resource("gongan.population"))
    print(f"  serving copy built: {args.persons:,} rows in {time.perf_counter() - started:.1f} s")

    rng = random.Random(7)
    bodies, ids = [], []
    for p in sample:
        claims = {"name": p["name"], "sex": p["sex"], "birth_date": p["birth_date"]}
        if rng.random() < 0.2:
            claims["sex"] = "女" if p["sex"] == "男" else "男"
        key = p["id_number"] if rng.random() < 0.9 else "42280119" + str(rng.randrange(10**9, 10**10))
        bodies.append(json.dumps({"key": {"id_number": key}, "claims": claims}, ensure_ascii=False))
        ids.append(p["id_number"])
    (tmp / "verify.txt").write_text("\n".join(bodies) + "\n", encoding="utf-8")
    (tmp / "query.txt").write_text("\n".join(ids) + "\n")
    (tmp / "verify.lua").write_text(VERIFY_LUA % {"keys": tmp / "verify.txt", "token": token})
    (tmp / "query.lua").write_text(QUERY_LUA % {"keys": tmp / "query.txt", "token": token})

    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "api.app:create_app",
            "--factory",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "warning",
            "--no-access-log",
        ],
        env=env,
        cwd=REPO_ROOT,
    )
    try:
        for _ in range(200):
            try:
                urllib.request.urlopen(f"{base}/health/noop", timeout=1)
                break
            except OSError:
                time.sleep(0.1)
        with hub.db() as s:
            before = s.scalar(select(func.max(AuditEntry.id))) or 0
        print(f"wrk, 2 threads, {args.connections} connections, {args.seconds} s each; API: 1 uvicorn worker")
        runs = {
            "no-op (baseline)": _wrk(f"{base}/health/noop", args.seconds, args.connections, None),
            "verification": _wrk(base, args.seconds, args.connections, tmp / "verify.lua"),
            "query": _wrk(base, args.seconds, args.connections, tmp / "query.lua"),
        }
    finally:
        server.terminate()
        server.wait(timeout=30)
    with hub.db() as s:
        audited = dict(
            s.execute(
                select(AuditEntry.action, func.count()).where(AuditEntry.id > before).group_by(AuditEntry.action)
            ).all()
        )
    chain = verify_chain(hub)
    base_rps = runs["no-op (baseline)"]["rps"]
    print()
    print(f"{'':<18}{'requests/s':>12}{'p50 ms':>10}{'p99 ms':>10}{'vs no-op':>10}{'non-2xx':>10}{'errors':>8}")
    for name, r in runs.items():
        print(
            f"{name:<18}{r['rps']:>12,.0f}{r['p50']:>10.2f}{r['p99']:>10.2f}{r['rps'] / base_rps:>9.2f}×"
            f"{r['non2xx']:>10,}{r['errors']:>8,}"
        )
    print()
    problems = [f"{name}: {r['non2xx']:,} non-2xx answers" for name, r in runs.items() if r["non2xx"]]
    problems += [f"{name}: {r['errors']:,} socket errors" for name, r in runs.items() if r["errors"]]
    for action in ("verification", "query"):
        served, entries = runs[action]["requests"], audited.get(action, 0)
        print(f"audit entries ({action}): {entries:,} for {served:,} calls wrk counted")
        if not served <= entries <= served + args.connections:
            problems.append(f"{action}: {entries:,} audit entries for {served:,} served calls")
    others = {a: n for a, n in audited.items() if a not in ("verification", "query")}
    if others:
        problems.append(f"audit entries of other actions during the load: {others}")
    print(f"audit chain intact: {chain.ok} ({chain.entries:,} entries)")
    if not chain.ok:
        problems.append(f"the audit chain is broken at entry {chain.first_bad}: {chain.reason}")
    print(
        f"goal: verification ≥ 0.5× the no-op ({runs['verification']['rps'] / base_rps:.2f}×) with p99 < 20 ms "
        f"({runs['verification']['p99']:.1f} ms)"
    )
    if problems:
        shutil.rmtree(tmp, ignore_errors=True)
        raise SystemExit("bench.serving: the load was not served as it must be:\n  " + "\n  ".join(problems))
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
