"""An incremental read sees exactly the rows changed after the watermark (plus the lag window), whatever the
server's session TimeZone, the column's kind (zone-less or instant) and the zone the catalogue declares.

MariaDB here has no time zone tables loaded, so its server zones are given as offsets (-05:00 stands for
New York in winter, which is when these rows are dated).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa

from sharehub.hub import Hub
from sharehub.metadata.models import Run, Watermark
from sharehub.pipeline import paths
from sharehub.pipeline.extract import extract
from tests.support.probe import PROBE_ID, probe_hub, probe_resource

SERVER_ZONES = {"UTC": "+00:00", "Asia/Shanghai": "+08:00", "America/New_York": "-05:00"}
LAG = timedelta(minutes=10)
B = datetime(2026, 1, 5, 0, 0, tzinfo=UTC)  # winter: New York is -05:00
FIRST = {i: B + timedelta(hours=i) for i in range(1, 11)}  # the watermark after the first read is row 10's
W = FIRST[10]
# Changed after the first read: minutes and hours after the watermark (what a zone error loses), and one
# late commit inside the lag window.
SECOND = {11: W + timedelta(minutes=1), 12: W + timedelta(minutes=30), 13: W + timedelta(hours=3),
          14: W + timedelta(hours=9), 15: W - timedelta(minutes=5)}  # fmt: skip
EXPECTED_SECOND = {10, 11, 12, 13, 14, 15}  # row 10 sits at the watermark: the lag window reads it again


def _fields(instant: bool) -> list[dict]:
    return [
        {"name": "id", "title": "编号", "type": "integer", "classification": "L1", "required": True},
        {"name": "updated_at", "title": "更新时间", "type": "timestamptz" if instant else "timestamp",
         "classification": "L1", "required": True},
    ]  # fmt: skip


class Department:
    """A front-end table on a server whose sessions run in a given zone."""

    def __init__(self, engine_name: str, base_url: str, server_zone: str, instant: bool) -> None:
        self.engine_name, self.instant = engine_name, instant
        self.table = f"tz_probe_{'i' if instant else 'n'}"
        admin = sa.create_engine(base_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as c:
            if engine_name == "postgresql":
                role = "tz_" + server_zone.replace("/", "_").lower()
                c.exec_driver_sql(f"DROP TABLE IF EXISTS {self.table}")
                if not c.exec_driver_sql(f"SELECT 1 FROM pg_roles WHERE rolname = '{role}'").first():
                    c.exec_driver_sql(f"CREATE ROLE {role} LOGIN SUPERUSER")
                c.exec_driver_sql(f"ALTER ROLE {role} SET timezone = '{server_zone}'")
                column = "timestamptz" if instant else "timestamp"
                c.exec_driver_sql(f"CREATE TABLE {self.table} (id integer PRIMARY KEY, updated_at {column} NOT NULL)")
                self.url = sa.engine.make_url(base_url).set(username=role).render_as_string(hide_password=False)
            else:
                c.exec_driver_sql(f"SET GLOBAL time_zone = '{SERVER_ZONES[server_zone]}'")
                c.exec_driver_sql(f"DROP TABLE IF EXISTS {self.table}")
                column = "TIMESTAMP(6) NULL" if instant else "DATETIME(6)"
                c.exec_driver_sql(f"CREATE TABLE {self.table} (id integer PRIMARY KEY, updated_at {column})")
                self.url = base_url
        admin.dispose()

    def upsert(self, rows: dict[int, datetime], declared_zone: str) -> None:
        """Write rows as the department's system does: instants as instants, wall time in the declared zone."""
        engine = sa.create_engine(self.url)
        with engine.begin() as c:
            if self.engine_name == "mariadb" and self.instant:
                c.exec_driver_sql("SET time_zone = '+00:00'")
            for i, t in rows.items():
                if not self.instant:
                    value = t.astimezone(ZoneInfo(declared_zone)).replace(tzinfo=None).isoformat(sep=" ")
                elif self.engine_name == "postgresql":
                    value = t.isoformat(sep=" ")
                else:
                    value = t.astimezone(UTC).replace(tzinfo=None).isoformat(sep=" ")
                c.exec_driver_sql(f"DELETE FROM {self.table} WHERE id = {i}")
                c.exec_driver_sql(f"INSERT INTO {self.table} (id, updated_at) VALUES ({i}, '{value}')")
        engine.dispose()


@pytest.fixture
def restore_mariadb_zone(mariadb_url: str):
    yield
    engine = sa.create_engine(mariadb_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as c:
        c.exec_driver_sql("SET GLOBAL time_zone = 'SYSTEM'")
    engine.dispose()


def _landed_ids(hub: Hub, run_id: str) -> set[int]:
    table = pq.read_table(hub.store.path(paths.landing(PROBE_ID, run_id)), filesystem=hub.store.fs)
    return {int(v) for v in table.column("id").to_pylist()}


def _matrix() -> list:
    """Every engine × server zone × column kind × declared zone; the quick subset keeps the case that lost
    rows (a zone-less column on a server east of its declared zone) on each engine, the rest are slow."""
    cases = []
    for engine_name in ("postgresql", "mariadb"):
        for server_zone in SERVER_ZONES:
            for instant in (False, True):
                for declared_zone in ("UTC", "Asia/Shanghai"):
                    lossy = server_zone == "Asia/Shanghai" and not instant and declared_zone == "UTC"
                    kind = "instant" if instant else "zoneless"
                    cases.append(
                        pytest.param(
                            engine_name,
                            server_zone,
                            instant,
                            declared_zone,
                            id=f"{engine_name}-{server_zone}-{kind}-{declared_zone}",
                            marks=() if lossy else pytest.mark.slow,
                        )
                    )
    return cases


@pytest.mark.parametrize(("engine_name", "server_zone", "instant", "declared_zone"), _matrix())
def test_incremental_reads_exactly_the_changed_rows(
    request: pytest.FixtureRequest,
    make_hub,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    engine_name: str,
    server_zone: str,
    instant: bool,
    declared_zone: str,
) -> None:
    if engine_name == "postgresql":
        base_url = request.getfixturevalue("pg_url")
    else:
        base_url = request.getfixturevalue("mariadb_url")
        request.getfixturevalue("restore_mariadb_zone")
    # The hub's own process zone must not matter either.
    monkeypatch.setenv("TZ", "Asia/Kolkata")
    time.tzset()
    request.addfinalizer(time.tzset)

    dept = Department(engine_name, base_url, server_zone, instant)
    resource = probe_resource(
        dept.table,
        _fields(instant),
        mode="incremental",
        incremental_column="updated_at",
        lag_minutes=int(LAG.total_seconds() // 60),
        timezone=declared_zone,
    )
    hub = probe_hub(make_hub, tmp_path, resource, dept.url)

    dept.upsert(FIRST, declared_zone)
    first = extract(hub, PROBE_ID)
    assert _landed_ids(hub, first) == set(FIRST)
    with hub.db() as s:
        run = s.get(Run, first)
        assert run is not None and run.watermark_to is not None
        assert datetime.fromisoformat(run.watermark_to) == W, "the watermark is row 10's instant"
        s.add(Watermark(resource_id=PROBE_ID, value=run.watermark_to, run_id=first))  # as promote does

    dept.upsert(SECOND, declared_zone)
    second = extract(hub, PROBE_ID)
    assert _landed_ids(hub, second) == EXPECTED_SECOND
