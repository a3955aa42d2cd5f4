"""Zhejiang 14: the province pushes shared data down. The county platform holds a standing bulk grant
upstairs, and a catalogue entry whose source is the province's resource; each run asks the province's
`sharehub serve` over real HTTP for a fresh extract and lands it through the county's own gate."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from sharehub.access.consumers import add_consumer
from sharehub.cli import app as cli
from sharehub.errors import SourceMissing
from sharehub.hub import Hub
from sharehub.metadata.models import Run
from sharehub.pipeline.run import run_resource
from sharehub.settings import REPO_ROOT
from tests.support.audit import audit_rows
from tests.support.levels import served_province
from warehouse.delta import open_table

pytestmark = pytest.mark.slow  # two hubs, the upper one in a sharehub serve process

PUSHED = """id: sheng.legal_entity
version: 1
title: 省级法人库（省平台下发）
description: The province's legal entities, pushed down to this platform (Zhejiang 14).
provider: sheng
store: {kind: business}
source: {upstream: scjg.legal_entity, key: [uscc], mode: snapshot}
fields:
  - {name: uscc, title: 统一社会信用代码, type: string, classification: L1, required: true, identifier: uscc}
  - {name: name, title: 企业名称, type: string, classification: L1, required: true}
  - {name: status, title: 登记状态, type: string, classification: L1, required: true}
  - {name: established_date, title: 成立日期, type: date, classification: L1, required: true}
share: {type: unconditional}
open: not_open
serving_modes: [verification, query]
update: {frequency: daily, deadline_working_days: 1}
usage: 省平台下发的法人基础信息。
suite: sheng.legal_entity
"""


def _latest(hub: Hub) -> Run:
    with hub.db() as s:
        return s.scalars(select(Run).order_by(Run.started_at.desc())).first()


def store_rows(hub: Hub, resource_id: str):
    """The resource's store as a table, or None before anything landed."""
    res = hub.catalogue.resource(resource_id)
    table = open_table(hub.store.uri(res.store_path), hub.store.delta_options())
    return None if table is None else table.to_pyarrow_table()


@pytest.fixture
def province(make_hub, tmp_path: Path) -> Iterator[tuple[Hub, str, dict[str, str]]]:
    with served_province(make_hub, tmp_path, ["scjg.legal_entity"], entities=80) as (hub, url):
        keys = {
            "county": add_consumer(hub, "利川市共享平台", "lichuan", "consumer")[1],
            "platform": add_consumer(hub, "省平台办", "platform", "platform")[1],
        }
        yield hub, url, keys


def test_the_province_pushes_a_resource_down_and_the_county_lands_it_through_its_gate(
    province, make_hub, use_env, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    up_hub, url, up_keys = province
    catalogue = tmp_path / "county-catalogue"
    shutil.copytree(REPO_ROOT / "catalogue", catalogue)
    (catalogue / "departments" / "sheng.yaml").write_text(
        "id: sheng\nname: 省政务数据共享平台\nname_en: Province platform\nlevel: province\n"
        "contact_email: data@sheng.example.gov.cn\n",
        encoding="utf-8",
    )
    (catalogue / "resources" / "sheng.legal_entity.yaml").write_text(PUSHED, encoding="utf-8")
    county = make_hub(
        home=tmp_path / "county", catalogue_dir=catalogue, upstream_url=url, upstream_key=up_keys["county"]
    )
    use_env(county)
    monkeypatch.setenv("SHAREHUB_UPSTREAM_URL", url)
    monkeypatch.setenv("SHAREHUB_UPSTREAM_KEY", up_keys["county"])

    # No standing grant yet: the run fails, saying the province refuses, and the store stays empty.
    with pytest.raises(SourceMissing, match="refuses the extract: HTTP 403"):
        run_resource(county, "sheng.legal_entity")
    assert _latest(county).status == "failed" and store_rows(county, "sheng.legal_entity") is None

    until = (datetime.now(UTC) + timedelta(days=365)).date().isoformat()
    subscribed = CliRunner().invoke(
        cli,
        [
            "upstream",
            "subscribe",
            "scjg.legal_entity",
            "--fields",
            "uscc,name,status,established_date",
            "--purpose",
            "省级法人信息下发至县级平台",
            "--valid-until",
            until,
        ],
    )
    assert subscribed.exit_code == 0, subscribed.output
    assert "granted" in subscribed.output

    landed = run_resource(county, "sheng.legal_entity")
    assert landed.status == "succeeded", landed.error
    upstairs = store_rows(up_hub, "scjg.legal_entity")
    here = store_rows(county, "sheng.legal_entity")
    assert here is not None and upstairs is not None
    assert here.num_rows == landed.passed > 0
    assert landed.passed + landed.quarantined == upstairs.num_rows
    assert set(here.column("uscc").to_pylist()) <= set(upstairs.column("uscc").to_pylist())
    assert audit_rows(up_hub, "result", "extract")  # the province audited the extract it made for the county

    # The province revokes the standing grant: the next push fails and the county's store stays as it was.
    with httpx.Client(base_url=url, timeout=30) as up:
        (grant,) = up.get("/grants", headers={"Authorization": f"Bearer {up_keys['platform']}"}).json()
        revoked = up.post(
            f"/grants/{grant['id']}/revoke",
            json={"reason": "下发范围调整"},
            headers={"Authorization": f"Bearer {up_keys['platform']}"},
        )
        assert revoked.status_code == 200, revoked.text
    with pytest.raises(SourceMissing, match="revoked"):
        run_resource(county, "sheng.legal_entity")
    assert _latest(county).status == "failed"
    assert store_rows(county, "sheng.legal_entity").num_rows == here.num_rows
