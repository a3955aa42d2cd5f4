"""Open data: only L1 fields of unconditionally open resources are handed to the open-data portal, and
republished when their store moves."""

from __future__ import annotations

import hashlib
import io
import json

import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa
from deltalake import DeltaTable
from typer.testing import CliRunner

from sharehub.catalogue.models import Classification
from sharehub.cli import app as cli
from sharehub.demo.build import build_sources
from sharehub.opendata import open_fields, publish
from sharehub.pipeline.run import run_resource
from sharehub.seal import public_pem, verify


def _change_status(hub, uscc: str, status: str, at: str) -> None:  # type: ignore[no-untyped-def]
    """The market regulator changes a company's status in its front-end database, and the pipeline runs."""
    res = hub.catalogue.resource("scjg.legal_entity")
    engine = sa.create_engine(hub.settings.connection_url(res.source.connection))
    with engine.begin() as c:
        c.exec_driver_sql(
            "UPDATE legal_entity_register SET status = ?, updated_at = ? WHERE uscc = ?", (status, at, uscc)
        )
    engine.dispose()
    run_resource(hub, res.id)


def test_open_datasets_hold_only_public_fields_and_follow_the_store(make_hub, use_env) -> None:
    hub = make_hub()
    build_sources(hub.settings, hub.catalogue, 300, 200)
    res = hub.catalogue.resource("scjg.legal_entity")
    assert publish(hub)[0].status == "no_store"  # nothing delivered yet: nothing to open
    run_resource(hub, res.id)

    (first,) = publish(hub)
    assert (first.resource_id, first.status, first.store_version) == (res.id, "published", 0)
    manifest = json.loads(hub.store.read_bytes(f"open/{res.id}/manifest.json"))
    assert manifest["data"] == "v0.parquet"
    data = hub.store.read_bytes(f"open/{res.id}/v0.parquet")
    table = pq.read_table(io.BytesIO(data))
    public = [f.name for f in res.fields if f.classification == Classification.L1]
    assert table.column_names == open_fields(res) == public
    assert {"legal_rep_name", "legal_rep_id"}.isdisjoint(table.column_names)  # a person's data never opens
    stored = DeltaTable(hub.store.uri(res.store_path)).to_pyarrow_table(columns=public)
    assert table.num_rows == stored.num_rows == manifest["rows"] == first.rows
    assert manifest["sha256"] == hashlib.sha256(data).hexdigest() and manifest["store_version"] == 0
    assert verify(manifest, public_pem(hub)) is None  # under the platform's seal
    assert publish(hub)[0].status == "unchanged"

    # The department changes a company: the next publish carries the store's new version.
    uscc = stored.column("uscc")[0].as_py()
    _change_status(hub, uscc, "注销", "2026-11-21 10:00:00")
    (second,) = publish(hub)
    assert second.status == "published" and second.store_version == 1
    rows = pq.read_table(io.BytesIO(hub.store.read_bytes(f"open/{res.id}/v1.parquet"))).to_pylist()
    assert next(r for r in rows if r["uscc"] == uscc)["status"] == "注销"
    # The file of the version before stays for its readers until the next one; older ones go.
    assert hub.store.list(f"open/{res.id}") == [
        f"open/{res.id}/{n}" for n in ("manifest.json", "v0.parquet", "v1.parquet")
    ]
    _change_status(hub, uscc, "吊销", "2026-11-21 11:00:00")
    assert publish(hub)[0].store_version == 2
    assert hub.store.list(f"open/{res.id}") == [
        f"open/{res.id}/{n}" for n in ("manifest.json", "v1.parquet", "v2.parquet")
    ]

    # The open catalogue names the dataset, and for an on-application resource whom to apply to and how fast.
    listed = {e["resource_id"]: e for e in json.loads(hub.store.read_bytes("open/catalogue.json"))["resources"]}
    assert set(listed) == {r.id for r in hub.catalogue.resources.values() if r.open != "not_open"}
    assert listed[res.id]["dataset"] == f"open/{res.id}/v2.parquet" and listed[res.id]["store_version"] == 2
    tax = listed["swj.tax_registration"]
    rule = hub.profile.deadlines["open_application"]
    assert tax["apply_to"]["contact"] == hub.catalogue.departments["swj"].contact_email
    assert tax["answer_within_working_days"] == rule.working_days and "dataset" not in tax
    assert [f["name"] for f in tax["fields"]] == open_fields(hub.catalogue.resource("swj.tax_registration"))
    with hub.db() as s:
        published = s.execute(sa.text("SELECT count(*) FROM audit_log WHERE action = 'open_publish'")).scalar_one()
    assert published == 3  # each publication is in the audit chain; "unchanged" wrote nothing

    with pytest.raises(ValueError, match="not open unconditionally"):
        publish(hub, ["swj.tax_registration"])
    use_env(hub)
    shown = CliRunner().invoke(cli, ["open", "publish", res.id], env={"COLUMNS": "200"})
    assert shown.exit_code == 0 and "unchanged" in shown.output, shown.output
    refused = CliRunner().invoke(cli, ["open", "publish", "gongan.population"])
    assert refused.exit_code == 1 and "not open unconditionally" in refused.output
