"""The metadata database on PostgreSQL: Alembic migrates it, runs and watermarks are recorded in it."""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from alembic.script import ScriptDirectory
from sqlalchemy import select

from sharehub.demo.build import build_sources
from sharehub.hub import Hub
from sharehub.metadata.db import alembic_config
from sharehub.metadata.models import CatalogueVersion, Run, Watermark
from sharehub.pipeline.run import run_resource
from tests.support.databases import fresh_database


def _serving_on_postgresql(make_hub, use_env, pg_url: str, database: str) -> tuple[Hub, dict[str, str]]:
    """A hub whose metadata is a fresh PostgreSQL database, a population store, and 民政's consumer key."""
    from sharehub.access.consumers import add_consumer

    hub = make_hub(metadata_url=fresh_database(pg_url, database), serving_refresh_seconds=0)
    build_sources(hub.settings, hub.catalogue, 300, 60)
    run_resource(hub, "gongan.population")
    use_env(hub)
    return hub, {"Authorization": f"Bearer {add_consumer(hub, '低保核对', 'mzj', 'consumer')[1]}"}


def test_runs_are_recorded_in_postgresql_metadata(make_hub, pg_url: str) -> None:
    meta = fresh_database(pg_url, "sharehub_meta_test")
    hub = make_hub(metadata_url=meta)
    build_sources(hub.settings, hub.catalogue, 600, 120)
    summary = run_resource(hub, "scjg.legal_entity")
    engine = sa.create_engine(meta)
    with engine.connect() as c:
        head = ScriptDirectory.from_config(alembic_config(meta)).get_current_head()
        assert c.exec_driver_sql("SELECT version_num FROM alembic_version").scalar_one() == head
    engine.dispose()
    with hub.db() as s:
        run = s.get(Run, summary.run_id)
        assert run is not None and run.status == "succeeded" and run.rows_passed == summary.passed
        assert s.get(Watermark, "scjg.legal_entity").value == run.watermark_to
        assert s.scalars(select(CatalogueVersion)).one().resource_ids == sorted(hub.catalogue.resources)


@pytest.mark.slow  # PostgreSQL metadata: the quick subset runs on SQLite
def test_serving_on_postgresql_metadata_checks_grants_and_chains_the_audit(make_hub, use_env, pg_url: str) -> None:
    """The serving path's own statements (key, grant, audit append) on PostgreSQL, as docker-compose runs it."""
    from fastapi.testclient import TestClient

    from api.app import create_app
    from sharehub.access.consumers import add_consumer
    from sharehub.audit import verify as verify_chain

    hub, mzj = _serving_on_postgresql(make_hub, use_env, pg_url, "sharehub_serving_test")
    meta = hub.settings.metadata_url
    platform = {"Authorization": f"Bearer {add_consumer(hub, '平台', 'platform', 'platform')[1]}"}
    until = (datetime.now(UTC) + timedelta(days=200)).isoformat()
    with TestClient(create_app()) as client:
        app = {"resource_id": "gongan.population", "fields": ["name", "sex"], "modes": ["verification", "query"]}
        grant = client.post("/applications", json={**app, "purpose": "低保核对", "valid_until": until}, headers=mzj)
        assert grant.status_code == 201 and grant.json()["status"] == "granted"
        call = {"key": {"id_number": "11010519491231002X"}, "claims": {"name": "张三", "sex": "男"}}
        answers = [client.post("/verify/gongan.population", json=call, headers=mzj) for _ in range(5)]
        assert [a.json()["match"] for a in answers] == [False] * 5
        outside = client.post("/verify/gongan.population", json={**call, "claims": {"phone": "1"}}, headers=mzj)
        assert outside.status_code == 403
        (granted,) = client.get("/grants", headers=platform).json()
        revoked = client.post(f"/grants/{granted['id']}/revoke", json={"reason": "用途已结束"}, headers=platform)
        assert revoked.status_code == 200
        after = client.post("/verify/gongan.population", json=call, headers=mzj)
        assert after.status_code == 403 and "revoked" in after.json()["detail"]
        # On PostgreSQL too: a key rotated with an overlap works beside the new one, and the trail pages.
        rolled = client.post("/consumers/me/rotate?overlap_minutes=30", headers=mzj)
        assert rolled.status_code == 200, rolled.text
        newer = {"Authorization": f"Bearer {rolled.json()['api_key']}"}
        assert client.get("/catalogue", headers=mzj).status_code == client.get("/catalogue", headers=newer).status_code
        assert client.get("/catalogue", headers=newer).status_code == 200
        trail = client.get("/audit?action=verification&limit=2&since=2000-01-01T00:00:00Z", headers=platform)
        assert trail.headers["X-Total-Count"] == "7" and "before=" in trail.headers["Link"]
    walked: list[tuple[int, int]] = []
    chain = verify_chain(hub, batch=4, on_entries=lambda done, total: walked.append((done, total)))
    assert chain.ok and chain.entries >= 10
    assert walked[0] == (4, chain.entries) and walked[-1] == (chain.entries, chain.entries)  # for a progress bar
    engine = sa.create_engine(meta)
    with engine.begin() as c:
        rows = c.exec_driver_sql("SELECT action, result FROM audit_log ORDER BY id").all()
        assert [r for r in rows if r[0] == "verification"] == [("verification", "not_found")] * 5 + [
            ("verification", "denied"),
            ("verification", "denied"),
        ]
        target = c.exec_driver_sql("SELECT id FROM audit_log WHERE action = 'verification' ORDER BY id").first()[0]
        c.exec_driver_sql(f"UPDATE audit_log SET result = 'match' WHERE id = {target}")
    engine.dispose()
    assert verify_chain(hub).first_bad == target


APPENDER = """
import sys, time
from sharehub.audit import record
from sharehub.hub import Hub
from sharehub.metadata.db import alembic_config
from sharehub.settings import Settings
from sharehub.metadata import dbapi
hub = Hub(Settings(home=sys.argv[1], metadata_url=sys.argv[2]))
dbapi.raw(sys.argv[2]).connection()  # connected before the start, so the first appends meet
time.sleep(max(0.0, float(sys.argv[3]) - time.time()))
for _ in range(20):
    record(hub, "key_change", None, None, result="ok")
"""


@pytest.mark.slow  # several processes at once
def test_processes_appending_the_first_audit_entries_at_once_make_one_chain(make_hub, pg_url: str) -> None:
    """The head row does not exist before the first append: concurrent first appends must queue, not fail."""
    import subprocess
    import sys
    import time

    from sharehub.audit import verify as verify_chain

    meta = fresh_database(pg_url, "sharehub_audit_race_test")
    hub = make_hub(metadata_url=meta)
    with hub.db() as s:  # migrated, and no audit entry yet
        assert s.execute(sa.text("SELECT count(*) FROM audit_head")).scalar_one() == 0
    start = str(time.time() + 4)
    args = [sys.executable, "-c", APPENDER, str(hub.settings.home), meta, start]
    workers = [subprocess.Popen(args, stderr=subprocess.PIPE, text=True) for _ in range(4)]
    errors = [w.communicate(timeout=120)[1] for w in workers]
    assert [w.returncode for w in workers] == [0] * 4, "\n".join(errors)
    chain = verify_chain(hub)
    assert chain.ok and chain.entries == 80


# PostgreSQL sends a NOTIFY to its listeners right after the commit, not within it: a call that starts in
# that moment (well under a millisecond; CI once caught one) still sees the rows as they were. Wait it out.
NOTIFY_ARRIVES = 0.2


@pytest.mark.slow  # PostgreSQL metadata: the quick subset runs on SQLite
def test_serving_on_postgresql_remembers_keys_and_grants_until_any_writer_changes_them(
    make_hub, use_env, pg_url: str, monkeypatch
) -> None:
    """Key and grant rows are read once, then remembered; a change by anyone (here a DBA's own UPDATE,
    outside sharehub) is NOTIFYed by the tables' triggers, and the very next call reads afresh."""
    from fastapi.testclient import TestClient

    from api.app import create_app
    from sharehub.metadata import dbapi

    hub, mzj = _serving_on_postgresql(make_hub, use_env, pg_url, "sharehub_notify_test")
    meta = hub.settings.metadata_url
    reads: list[str] = []
    real_rows = dbapi.Raw.rows

    def counted(self, text, params):  # type: ignore[no-untyped-def]
        reads.append(text)
        return real_rows(self, text, params)

    monkeypatch.setattr(dbapi.Raw, "rows", counted)
    until = (datetime.now(UTC) + timedelta(days=200)).isoformat()
    call = {"key": {"id_number": "11010519491231002X"}, "claims": {"name": "张三"}}
    app = {"resource_id": "gongan.population", "fields": ["name"], "modes": ["verification"]}
    with TestClient(create_app()) as client:
        made = client.post("/applications", json={**app, "purpose": "低保核对", "valid_until": until}, headers=mzj)
        assert made.json()["status"] == "granted"
        reads.clear()
        assert [client.post("/verify/gongan.population", json=call, headers=mzj).status_code for _ in range(5)] == [
            200
        ] * 5
        assert sum("FROM consumers" in r for r in reads) <= 1 and sum("FROM grants" in r for r in reads) <= 1
        engine = sa.create_engine(meta)
        with engine.begin() as c:
            c.exec_driver_sql("UPDATE grants SET revoked_at = now()")
        time.sleep(NOTIFY_ARRIVES)
        refused = client.post("/verify/gongan.population", json=call, headers=mzj)
        assert refused.status_code == 403 and "revoked" in refused.json()["detail"]
        with engine.begin() as c:
            c.exec_driver_sql("UPDATE consumers SET revoked_at = now() WHERE department = 'mzj'")
        engine.dispose()
        time.sleep(NOTIFY_ARRIVES)
        assert client.post("/verify/gongan.population", json=call, headers=mzj).status_code == 401


@pytest.mark.parametrize("engine", ["sqlite", "postgresql"])
def test_the_migrations_build_exactly_the_models(engine: str, tmp_path, pg_url: str) -> None:
    """A column added to a model without its migration (or the reverse) shows up here, not in production."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from sharehub.metadata.db import upgrade
    from sharehub.metadata.models import Base

    url = f"sqlite:///{tmp_path / 'meta.sqlite'}"
    if engine == "postgresql":
        url = fresh_database(pg_url, "sharehub_meta_models")
    upgrade(url)
    made = sa.create_engine(url)
    try:
        with made.connect() as c:
            assert compare_metadata(MigrationContext.configure(c), Base.metadata) == []
    finally:
        made.dispose()


@pytest.mark.parametrize("engine", ["sqlite", pytest.param("postgresql", marks=pytest.mark.slow)])
def test_a_backup_restores_to_the_same_audit_chain_and_reports_a_broken_one(
    engine: str, make_hub, use_env, tmp_path, pg_url: str
) -> None:
    import subprocess

    from typer.testing import CliRunner

    from sharehub.access.consumers import add_consumer
    from sharehub.audit import verify
    from sharehub.cli import app as cli

    meta = {} if engine == "sqlite" else {"metadata_url": fresh_database(pg_url, "sharehub_meta_backup")}
    hub = make_hub(**meta)
    use_env(hub)
    for n in range(3):
        add_consumer(hub, f"备份测试 {n}", "mzj", "consumer")  # each key change is an audit entry
    out = tmp_path / "backup" / "meta.bak"
    made = CliRunner().invoke(cli, ["db", "backup", str(out)])
    assert made.exit_code == 0 and "intact, 3 entries" in made.output, made.output
    assert CliRunner().invoke(cli, ["db", "backup", str(out)]).exit_code == 1  # never over an old backup

    if engine == "sqlite":
        restored_url = f"sqlite:///{out}"
    else:
        restored_url = fresh_database(pg_url, "sharehub_meta_restored")
        target = sa.engine.make_url(restored_url)
        where = ["--host", target.host or "", "--port", str(target.port or 5432), "--username", target.username or ""]
        env = {**os.environ, "PGPASSWORD": target.password or ""}
        restore = ["pg_restore", "--no-owner", *where, "--dbname", target.database or "", str(out)]
        subprocess.run(restore, check=True, env=env)
    restored = make_hub(metadata_url=restored_url)
    assert verify(restored).ok and verify(restored).entries == 3

    # Someone edits an entry: the next backup is still written, as evidence, and says where the chain broke.
    editor = sa.create_engine(hub.settings.metadata_url)
    with editor.begin() as c:
        c.exec_driver_sql("UPDATE audit_log SET result = 'edited' WHERE id = 2")
    editor.dispose()
    again = CliRunner().invoke(cli, ["db", "backup", str(tmp_path / "after-edit.bak")])
    assert again.exit_code == 1 and "broken at entry 2" in again.output, again.output
    assert (tmp_path / "after-edit.bak").exists()
