"""A store deleted and written anew is another table, whose Delta versions restart at 0. Whatever keeps a
store's version (the consistency cache, the serving copies, incremental extracts, open datasets) must
not take the new table's version 0 for the old one's and go on serving or comparing stale data."""

from __future__ import annotations

import io
import json
import shutil
from datetime import UTC, datetime, timedelta

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from deltalake import DeltaTable, write_deltalake

from sharehub.consistency.check import check, list_conflicts
from sharehub.demo.build import build_sources, reset_embedded_state
from sharehub.hub import Hub
from sharehub.pipeline.run import run_resource
from sharehub.pipeline.themes import build
from warehouse.delta import CHANGE_DATA


def _recreate(hub: Hub, resource_id: str, key: str, field: str, value: str) -> str:
    """Delete the store and write it anew (version 0 again) with one row's `field` changed; that row's key."""
    res = hub.catalogue.resource(resource_id)
    uri = hub.store.uri(res.store_path)
    table = DeltaTable(uri).to_pyarrow_table()
    target = str(table.column(key)[0])
    column = pc.if_else(pc.equal(table.column(key), target), pa.scalar(value), table.column(field))
    table = table.set_column(table.schema.get_field_index(field), field, column.cast(table.schema.field(field).type))
    shutil.rmtree(uri.removeprefix("file://"))
    write_deltalake(uri, table, configuration=CHANGE_DATA)
    assert DeltaTable(uri).version() == 0
    return target


def test_a_store_written_anew_is_compared_and_served_afresh(make_hub) -> None:
    from sharehub.access.consumers import Caller, add_consumer
    from sharehub.access.grants import active_grant, apply
    from sharehub.opendata import publish
    from sharehub.serving.bulk import create
    from sharehub.serving.copies import ServingCopies, refresh

    hub = make_hub()
    build_sources(hub.settings, hub.catalogue, 300, 100)
    stores = ("gongan.population", "rsj.insurance_enrolment", "scjg.legal_entity", "swj.tax_registration")
    for rid in (*stores, "fgw.credit_record"):
        run_resource(hub, rid)
    check(hub, full=True)
    before = {(c.entity_key, c.item) for c in list_conflicts(hub, status="open")}
    consumer, _ = add_consumer(hub, "民政局 低保核对", "mzj", "consumer")
    caller = Caller(consumer.id, consumer.name, consumer.department, "consumer")
    until = datetime.now(UTC) + timedelta(days=30)
    apply(hub, caller, "gongan.population", ["id_number", "name"], ["query", "bulk"], "低保身份核对", until)
    access = active_grant(hub, caller, "gongan.population", "bulk")
    full = create(hub, caller, access, "gongan.population", False).extract
    copies = ServingCopies(hub, refresh_seconds=0)
    population = hub.catalogue.resource("gongan.population")
    assert refresh(hub, population) == 0  # the serving copy holds version 0 of the old table
    publish(hub)

    # 公安's store is deleted and written anew, with one person renamed: version 0 again.
    person = _recreate(hub, "gongan.population", "id_number", "name", "改名者")

    # The consistency check sees the new table (its cache held version 0 of the old one).
    check(hub)
    now = {(c.entity_key, c.item) for c in list_conflicts(hub, status="open")}
    assert (person, "population.name") in now - before

    # The serving copy is rebuilt from the new table.
    record = copies.lookup(population, {"id_number": person})
    assert record is not None and record["name"] == "改名者"

    # An incremental extract cannot count changes from a version of the old table: it is a full one.
    again = create(hub, caller, access, "gongan.population", True).extract
    assert full.since_version is None and again.since_version is None and again.rows == full.rows
    names = pq.read_table(io.BytesIO(hub.store.read_bytes(again.path)))
    assert "改*者" in names.column("name").to_pylist()

    # The open dataset of a recreated store is published again, though its version number is the same,
    # and a thematic store built from it is rebuilt.
    assert {b.model: b.status for b in build(hub)}["market_credit.company_credit"] == "built"
    assert {b.model: b.status for b in build(hub)}["market_credit.company_credit"] == "unchanged"
    entity = _recreate(hub, "scjg.legal_entity", "uscc", "name", "新设公司")
    rebuilt = {b.model: b.status for b in build(hub)}
    assert rebuilt["market_credit.company_credit"] == "built", rebuilt
    (published,) = publish(hub)
    assert (published.status, published.store_version) == ("published", 0)
    manifest = json.loads(hub.store.read_bytes("open/scjg.legal_entity/manifest.json"))
    rows = pq.read_table(io.BytesIO(hub.store.read_bytes(f"open/scjg.legal_entity/{manifest['data']}")))
    assert {"uscc": entity, "name": "新设公司"} in rows.select(["uscc", "name"]).to_pylist()


def test_the_demo_starts_fresh_without_the_previous_run_s_derived_state(make_hub) -> None:
    hub = make_hub()
    build_sources(hub.settings, hub.catalogue, 200, 60)
    run_resource(hub, "gongan.population")
    check(hub, full=True)
    home = hub.settings.home
    (home / "serving").mkdir(exist_ok=True)
    (home / "serving" / "gongan.population.sqlite").write_bytes(b"stale")
    assert (home / "consistency.duckdb").exists()
    reset_embedded_state(hub.settings)
    left = sorted(p.name for p in home.iterdir())
    assert not {"consistency.duckdb", "consistency.duckdb.wal", "serving", "metadata.sqlite", "frontdb"} & set(left)
    assert not any(name.startswith("metadata.sqlite") for name in left), left
