"""What department tables really hold: zero and impossible dates, dates kept as text. Such rows land and
are quarantined naming the field and the key; nothing crashes the driver or leaves a run half-done."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa
import yaml
from deltalake import DeltaTable
from sqlalchemy import select

from sharehub.metadata.models import QuarantinedRow, Run
from sharehub.pipeline import paths
from sharehub.pipeline.run import run_resource
from sharehub.settings import REPO_ROOT
from tests.support.probe import PROBE_ID, probe_hub, probe_resource

FIELDS = [
    {"name": "id", "title": "编号", "type": "integer", "classification": "L1", "required": True},
    {"name": "born", "title": "出生日期", "type": "date", "classification": "L1"},
    {"name": "seen", "title": "核验时间", "type": "timestamptz", "classification": "L1"},
    {"name": "kept_on", "title": "登记日期", "type": "date", "classification": "L1"},
    {"name": "updated_at", "title": "更新时间", "type": "timestamptz", "classification": "L1"},
]


def _quarantined(hub) -> dict[str, list[str]]:
    with hub.db() as s:
        rows = s.scalars(select(QuarantinedRow).where(QuarantinedRow.resource_id == PROBE_ID))
        return {q.row_key: q.reasons for q in rows}


def _stored_ids(hub) -> set[int]:
    table = DeltaTable(hub.store.uri(hub.catalogue.resource(PROBE_ID).store_path)).to_pyarrow_table()
    return set(table.column("id").to_pylist())


def test_mariadb_zero_and_impossible_dates_land_and_are_quarantined(make_hub, tmp_path: Path, mariadb_url: str) -> None:
    engine = sa.create_engine(mariadb_url)
    with engine.begin() as c:
        c.exec_driver_sql("SET SESSION sql_mode = ''")  # how old department systems run: zero dates allowed
        c.exec_driver_sql("DROP TABLE IF EXISTS zero_dates")
        c.exec_driver_sql(
            "CREATE TABLE zero_dates (id int PRIMARY KEY, born DATE, seen DATETIME, kept_on VARCHAR(20), "
            "updated_at TIMESTAMP NULL)"
        )
        c.exec_driver_sql(
            "INSERT INTO zero_dates VALUES "
            "(1, '1980-01-02', '2024-01-02 03:04:05', '2024-03-01', '2024-01-02 03:04:05'),"
            "(2, '0000-00-00', '2024-01-02 03:04:05', '2024/03/01', '2024-01-02 03:04:05'),"
            "(3, '1980-01-02', '2024-00-10 00:00:00', '2024年3月1日', '2024-01-02 03:04:05'),"
            "(4, '1980-01-02', '2024-01-02 03:04:05', '去年春天', '2024-01-02 03:04:05'),"
            "(5, '1980-01-02', '2024-01-02 03:04:05', '20240301', 0)"
        )
    engine.dispose()
    hub = probe_hub(make_hub, tmp_path, probe_resource("zero_dates", FIELDS), mariadb_url)

    summary = run_resource(hub, PROBE_ID)

    assert summary.status == "succeeded"
    assert (summary.landed, summary.passed, summary.quarantined) == (5, 1, 4)
    assert _stored_ids(hub) == {1}
    reasons = _quarantined(hub)
    assert set(reasons) == {"2", "3", "4", "5"}
    assert any("born" in r or "出生日期" in r for r in reasons["2"])
    assert any("seen" in r or "核验时间" in r for r in reasons["3"])
    assert any("kept_on" in r or "登记日期" in r for r in reasons["4"])
    assert any("updated_at" in r or "更新时间" in r for r in reasons["5"])


def test_text_dates_in_a_postgresql_table_are_read_and_bad_ones_quarantined(
    make_hub, tmp_path: Path, pg_url: str
) -> None:
    engine = sa.create_engine(pg_url)
    with engine.begin() as c:
        c.exec_driver_sql("DROP TABLE IF EXISTS text_dates")
        c.exec_driver_sql(
            "CREATE TABLE text_dates (id int PRIMARY KEY, born text, seen timestamptz, kept_on varchar(20), "
            "updated_at text)"
        )
        c.exec_driver_sql(
            "INSERT INTO text_dates VALUES "
            "(1, '1980-01-02', now(), '2024-03-01', '2024-01-02 03:04:05'),"
            "(2, '1980/1/2', now(), '2024年3月1日', '2024-01-02T03:04:05+08:00'),"
            "(3, '1980-02-30', now(), '20240301', '2024-01-02 03:04:05'),"
            "(4, '1980-01-02', now(), '2024-03-01', 'yesterday')"
        )
    engine.dispose()
    hub = probe_hub(make_hub, tmp_path, probe_resource("text_dates", FIELDS), pg_url)

    summary = run_resource(hub, PROBE_ID)

    assert summary.status == "succeeded"
    assert _stored_ids(hub) == {1, 2}
    reasons = _quarantined(hub)
    assert set(reasons) == {"3", "4"}
    assert any("born" in r or "出生日期" in r for r in reasons["3"])
    assert any("updated_at" in r or "更新时间" in r for r in reasons["4"])


def _cli(hub, *args: str, wait: bool = True) -> subprocess.Popen[str] | subprocess.CompletedProcess[str]:
    s = hub.settings
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHAREHUB_")} | {
        "SHAREHUB_HOME": str(s.home),
        "SHAREHUB_METADATA_URL": s.metadata_url,
        "SHAREHUB_STORAGE_URL": s.storage_url,
        "SHAREHUB_CATALOGUE_DIR": str(s.catalogue_dir),
        "SHAREHUB_CONNECTIONS": json.dumps(s.connections),
        "COLUMNS": "400",
    }
    cmd = [sys.executable, "-m", "sharehub", *args]
    if wait:
        return subprocess.run(cmd, env=env, cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    return subprocess.Popen(
        cmd, env=env, cwd=REPO_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True
    )


def _status(hub, run_id: str | None = None) -> Run | None:
    with hub.db() as s:
        q = select(Run).where(Run.resource_id == PROBE_ID).order_by(Run.started_at)
        runs = list(s.scalars(q))
        s.expunge_all()
    return next((r for r in runs if r.id == run_id), None) if run_id else (runs[0] if runs else None)


@pytest.mark.slow  # a sharehub run process, killed
def test_a_killed_run_is_marked_abandoned_and_a_live_one_is_not(make_hub, tmp_path: Path, pg_url: str) -> None:
    engine = sa.create_engine(pg_url)
    with engine.begin() as c:
        c.exec_driver_sql("DROP TABLE IF EXISTS slow_rows")
        c.exec_driver_sql("CREATE TABLE slow_rows (id int PRIMARY KEY)")
        c.exec_driver_sql("INSERT INTO slow_rows SELECT generate_series(1, 10)")
    engine.dispose()
    fields = [{"name": "id", "title": "编号", "type": "integer", "classification": "L1", "required": True}]
    # The source answers after a minute: the run is killed while it waits in extract.
    slow = probe_resource(None, fields, query="SELECT id FROM slow_rows CROSS JOIN pg_sleep(60) AS z")
    hub = probe_hub(make_hub, tmp_path, slow, pg_url)

    worker = _cli(hub, "run", PROBE_ID, wait=False)
    assert isinstance(worker, subprocess.Popen)
    try:
        for _ in range(300):
            run = _status(hub)
            if run is not None and run.status == "running" and run.holder:
                break
            time.sleep(0.1)
        else:
            pytest.fail("the run never started")
        assert run.holder.endswith(f"pid {worker.pid}")
        listed = _cli(hub, "runs", "list")
        assert listed.returncode == 0, listed.stderr
        assert _status(hub, run.id).status == "running", "a live run is not abandoned"
        assert f"pid {worker.pid}" in listed.stdout, "the list shows who works on a running run"
    finally:
        worker.send_signal(signal.SIGKILL)
        worker.wait()
        engine = sa.create_engine(pg_url)
        with engine.begin() as c:  # the server would sleep on for the dead client and hold the table
            c.exec_driver_sql(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE query LIKE '%%pg_sleep(60)%%' AND pid <> pg_backend_pid()"
            )
        engine.dispose()

    listed = _cli(hub, "runs", "list")
    after = _status(hub, run.id)
    assert after.status == "abandoned"
    assert "abandoned in step extract" in (after.error or "") and f"pid {worker.pid}" in (after.error or "")
    assert after.finished_at is not None
    assert "abandoned" in listed.stdout

    # The next run of the resource finds such a run too, without anyone listing runs.
    with hub.db() as s:
        s.get(Run, run.id).status = "running"
    fast = probe_resource("slow_rows", fields)
    (hub.settings.catalogue_dir / "resources" / f"{PROBE_ID}.yaml").write_text(
        yaml.safe_dump(fast, allow_unicode=True), encoding="utf-8"
    )
    hub = make_hub(catalogue_dir=hub.settings.catalogue_dir, connections=hub.settings.connections)
    assert run_resource(hub, PROBE_ID).status == "succeeded"
    assert _status(hub, run.id).status == "abandoned"


@pytest.mark.slow  # a sharehub process for runs show
def test_reasons_are_sentences_for_a_clerk_and_a_missing_key_is_named_missing(
    make_hub, tmp_path: Path, pg_url: str
) -> None:
    engine = sa.create_engine(pg_url)
    with engine.begin() as c:
        c.exec_driver_sql("DROP TABLE IF EXISTS null_keys")
        c.exec_driver_sql("CREATE TABLE null_keys (id int, born text)")
        c.exec_driver_sql("INSERT INTO null_keys VALUES (1, '1980-01-02'), (NULL, '1980-01-02'), (3, '1980-02-30')")
    engine.dispose()
    fields = [
        {"name": "id", "title": "编号", "type": "integer", "classification": "L1", "required": True},
        {"name": "born", "title": "出生日期", "type": "date", "classification": "L1"},
    ]
    hub = probe_hub(make_hub, tmp_path, probe_resource("null_keys", fields), pg_url)

    summary = run_resource(hub, PROBE_ID)

    reasons = _quarantined(hub)
    missing = next(k for k in reasons if k != "3")
    assert missing.startswith("〈缺失〉") and "无主键" in missing, missing
    assert reasons["3"] == ["born: value is not a valid date"]  # the rule's name, which disputes match on
    quarantine = pq.read_table(hub.store.path(paths.quarantine(PROBE_ID, summary.run_id)), filesystem=hub.store.fs)
    said = {s for ss in quarantine.column("_reasons_zh").to_pylist() for s in ss}
    sentence = "「出生日期」（born）的值无法识别：应为有效的日期（如 2024-03-01）。"
    assert f"{sentence}〔规则 born: value is not a valid date〕" in said
    assert any(s.startswith("「编号」（id）为空：此项必填。") for s in said), said
    shown = _cli(hub, "runs", "show", summary.run_id)
    assert "「出生日期」（born）的值无法识别" in shown.stdout, shown.stdout
