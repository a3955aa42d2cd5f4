"""The metadata database on PostgreSQL: Alembic migrates it, runs and watermarks are recorded in it."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy import select

from sharehub.demo.build import build_sources
from sharehub.metadata.models import CatalogueVersion, Run, Watermark
from sharehub.pipeline.run import run_resource


def _fresh_database(admin_url: str, name: str) -> str:
    engine = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as c:
        c.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        c.exec_driver_sql(f"CREATE DATABASE {name}")
    engine.dispose()
    return sa.engine.make_url(admin_url).set(database=name).render_as_string(hide_password=False)


def test_runs_are_recorded_in_postgresql_metadata(make_hub, pg_url: str) -> None:
    meta = _fresh_database(pg_url, "sharehub_meta_test")
    hub = make_hub(metadata_url=meta)
    build_sources(hub.settings, hub.catalogue, 600, 120)
    summary = run_resource(hub, "scjg.legal_entity")
    engine = sa.create_engine(meta)
    with engine.connect() as c:
        assert c.exec_driver_sql("SELECT version_num FROM alembic_version").scalar_one() == "0009"
    engine.dispose()
    with hub.db() as s:
        run = s.get(Run, summary.run_id)
        assert run is not None and run.status == "succeeded" and run.rows_passed == summary.passed
        assert s.get(Watermark, "scjg.legal_entity").value == run.watermark_to
        assert s.scalars(select(CatalogueVersion)).one().resource_ids == sorted(hub.catalogue.resources)
