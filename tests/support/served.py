"""The served world of the API tests: four stores built from the demo's departments, and a key for the
platform office, three provider departments and three consumers. A pytest plugin (see conftest)."""

from __future__ import annotations

import os
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from api.app import create_app
from sharehub.access.consumers import add_consumer
from sharehub.demo.build import build_sources
from sharehub.hub import Hub
from sharehub.metadata.db import dispose_all
from sharehub.pipeline.run import run_resource
from sharehub.settings import Settings, get_settings

UNTIL = (datetime.now(UTC) + timedelta(days=200)).isoformat()
SERVED = ["gongan.population", "scjg.legal_entity", "swj.tax_registration", "wjw.health_record"]


def auth(key: str) -> dict[str, str]:
    """The header that presents an API key."""
    return {"Authorization": f"Bearer {key}"}


def source_row(hub, table: str, where: str = "1 = 1") -> dict:
    """One row of a department's front-end table, named `connection:table`."""
    engine = sa.create_engine(hub.settings.connection_url(table.split(":")[0]))
    with engine.connect() as c:
        row = c.execute(sa.text(f"SELECT * FROM {table.split(':')[1]} WHERE {where} LIMIT 1")).mappings().one()
    engine.dispose()
    return dict(row)


def apply(client, key, resource_id, fields, modes, purpose="社会保险待遇资格认证"):
    """POST /applications as the holder of `key`."""
    body = {"resource_id": resource_id, "fields": fields, "modes": modes, "purpose": purpose, "valid_until": UNTIL}
    return client.post("/applications", json=body, headers=auth(key))


@pytest.fixture(scope="session")
def served_world(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """The served stores and the keys, built once per test session in a home of their own."""
    home = tmp_path_factory.mktemp("served-world") / "home"
    with pytest.MonkeyPatch.context() as env:
        for name in [n for n in os.environ if n.startswith("SHAREHUB_")]:
            env.delenv(name)
        hub = Hub(Settings(home=home, serving_refresh_seconds=0))
        build_sources(hub.settings, hub.catalogue, 300, 60)
        for rid in SERVED:
            run_resource(hub, rid)
        keys = {
            "platform": add_consumer(hub, "平台", "platform", "platform")[1],
            "rsj": add_consumer(hub, "人社 待遇资格认证", "rsj", "consumer")[1],
            "mzj": add_consumer(hub, "民政 低保核对", "mzj", "consumer")[1],
            "swj": add_consumer(hub, "税务局", "swj", "provider")[1],
            "scjg": add_consumer(hub, "市场监管局", "scjg", "provider")[1],
            "gongan": add_consumer(hub, "公安局", "gongan", "provider")[1],
            "wjw_app": add_consumer(hub, "卫健 家医签约", "wjw", "consumer")[1],
        }
    dispose_all()  # nothing holds the world's databases open: each test copies them whole
    get_settings.cache_clear()
    return home, keys


@pytest.fixture
def served(served_world, make_hub, use_env, monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    """(hub, TestClient of the API, keys by role name) over a copy of the served world, this test's own."""
    world, keys = served_world
    home = tmp_path / "home"
    shutil.copytree(world, home)
    monkeypatch.setenv("SHAREHUB_SERVING_REFRESH_SECONDS", "0")  # see store changes at once
    hub = make_hub(home=home, serving_refresh_seconds=0)
    use_env(hub)
    return hub, TestClient(create_app()), keys
