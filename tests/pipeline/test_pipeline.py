"""The spine end to end on real department databases: land, gate, quarantine, merge, watermark, failures."""

from __future__ import annotations

import json
import re
import threading
from datetime import UTC, date, datetime

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa
from deltalake import DeltaTable
from sqlalchemy import select
from typer.testing import CliRunner

from sharehub.cli import app as cli
from sharehub.demo.build import build_sources
from sharehub.errors import FatalError, SchemaDrift
from sharehub.hub import Hub
from sharehub.metadata.models import QuarantinedRow, Run, Watermark
from sharehub.pipeline import paths
from sharehub.pipeline.extract import extract
from sharehub.pipeline.gate import gate
from sharehub.pipeline.locks import store_lock
from sharehub.pipeline.promote import promote
from sharehub.pipeline.report import report_path
from sharehub.pipeline.run import run_resource
from sharehub.pipeline.runs import last_runs
from sharehub.reporting.stats import department_stats
from tests.support.databases import fresh_database
from warehouse.delta import merge_run

PERSONS, ENTITIES = 1_500, 300
CONNECTIONS = ("gongan_front", "scjg_front", "rsj_front", "swj_front", "wjw_front")


def _hub_on(make_hub, url: str) -> tuple[Hub, object]:
    hub = make_hub(connections={c: url for c in CONNECTIONS})
    sources = build_sources(hub.settings, hub.catalogue, PERSONS, ENTITIES)
    return hub, sources


@pytest.fixture(params=["postgresql", "mariadb"])
def db_hub(request: pytest.FixtureRequest, make_hub):
    url = request.getfixturevalue("pg_url" if request.param == "postgresql" else "mariadb_url")
    hub, sources = _hub_on(make_hub, url)
    return hub, sources, url


@pytest.fixture
def pg_hub(make_hub, pg_url: str):
    hub, sources = _hub_on(make_hub, pg_url)
    return hub, sources, pg_url


def _table(hub: Hub, rid: str) -> DeltaTable:
    return DeltaTable(hub.store.uri(hub.catalogue.resource(rid).store_path))


def _exec(url: str, sql: str, *params: object) -> None:
    engine = sa.create_engine(url)
    with engine.begin() as c:
        c.exec_driver_sql(sql, params if params else ())
    engine.dispose()


def test_run_lands_gates_and_stores(db_hub) -> None:
    hub, sources, _ = db_hub
    s = run_resource(hub, "gongan.population")
    planted = sources.world.planted["gongan.population"]
    assert s.status == "succeeded"
    assert s.landed == sources.rows["gongan.population"]
    assert s.passed + s.quarantined == s.landed
    assert s.quarantined >= planted["bad_check_digit"] + planted["duplicate_key_rows"]
    assert _table(hub, "gongan.population").to_pyarrow_table().num_rows == s.passed == s.inserted
    quarantine = pq.read_table(hub.store.path(paths.quarantine("gongan.population", s.run_id)), filesystem=hub.store.fs)
    assert quarantine.num_rows == s.quarantined
    reasons = {r for rs in quarantine.column("_reasons").to_pylist() for r in rs}
    for rule in (
        "expect_column_values_to_be_valid_resident_id(id_number)",
        "expect_column_values_to_not_be_null(name)",
        "expect_compound_columns_to_be_unique(id_number)",
        "expect_column_values_to_be_between(birth_date)",
        "expect_column_pair_values_to_agree_with_resident_id(birth_date)",
    ):
        assert rule in reasons, reasons
    with hub.db() as db:
        rows = list(db.scalars(select(QuarantinedRow).where(QuarantinedRow.run_id == s.run_id)))
    assert len(rows) == s.quarantined
    assert all(r.row_key for r in rows if "expect_column_values_to_not_be_null(id_number)" not in r.reasons)
    report = hub.store.fs.open_input_stream(hub.store.path(report_path("gongan.population", s.run_id))).read().decode()
    assert "expect_column_values_to_be_valid_resident_id(id_number)" in report
    assert f"{s.quarantined:,} quarantined" in report
    # The same outcome as a Great Expectations suite validation result, with sample keys per failed rule.
    path = report_path("gongan.population", s.run_id).replace("index.html", "validation.json")
    result = json.loads(hub.store.fs.open_input_stream(hub.store.path(path)).read())
    assert result["suite_name"] == "gongan.population" and result["success"] is False
    by_type = {(r["expectation_config"]["type"], r["success"]) for r in result["results"]}
    assert ("expect_column_values_to_be_valid_resident_id", False) in by_type
    assert ("expect_column_values_to_be_unique", False) in by_type
    failed = next(
        r for r in result["results"] if r["expectation_config"]["type"] == "expect_column_values_to_be_unique"
    )
    assert failed["result"]["unexpected_count"] == planted["duplicate_key_rows"]
    assert failed["result"]["partial_unexpected_index_list"][0]["key"]


def test_rerun_is_idempotent_and_incremental_reads_only_changes(db_hub) -> None:
    hub, _sources, url = db_hub
    first = run_resource(hub, "scjg.legal_entity")
    before = _table(hub, "scjg.legal_entity").to_pyarrow_table().sort_by("uscc")
    again = run_resource(hub, "scjg.legal_entity")
    assert (again.inserted, again.updated, again.deleted) == (0, 0, 0)
    assert again.landed < first.landed / 10  # only the lag window is read again
    assert (
        _table(hub, "scjg.legal_entity")
        .to_pyarrow_table()
        .sort_by("uscc")
        .drop_columns(["_run_id"])
        .equals(before.drop_columns(["_run_id"]))
    )
    good = [r["uscc"] for r in before.slice(0, 7).to_pylist()]
    now = datetime.now(UTC).replace(microsecond=0)
    stamp = (
        now.astimezone(__import__("zoneinfo").ZoneInfo("Asia/Shanghai")).replace(tzinfo=None) if "mysql" in url else now
    )
    for code in good:
        _exec(
            url,
            "UPDATE legal_entity_register SET name = %s, updated_at = %s WHERE uscc = %s",
            "更名后的企业有限公司",
            stamp,
            code,
        )
    changed = run_resource(hub, "scjg.legal_entity")
    assert changed.updated == 7 and changed.inserted == 0
    assert changed.landed < 7 + again.landed + 5
    names = {r["uscc"]: r["name"] for r in _table(hub, "scjg.legal_entity").to_pyarrow_table().to_pylist()}
    assert all(names[c] == "更名后的企业有限公司" for c in good)
    # Every write into the store is in the audit chain, with its run, version and counts; no row data.
    from sharehub.audit import verify as verify_chain
    from sharehub.metadata.models import AuditEntry

    with hub.db() as db:
        stored = [(e.result, e.detail) for e in db.scalars(select(AuditEntry).where(AuditEntry.action == "store"))]
    assert [r for r, _ in stored] == ["stored", "unchanged", "stored"]
    assert stored[2][1] == f"run {changed.run_id}; store v{changed.store_version}; +0 ~7 -0"
    assert not any("更名后" in str(d) for _, d in stored) and verify_chain(hub).ok


def test_fixed_rows_pass_on_the_next_run(pg_hub) -> None:
    hub, _sources, url = pg_hub
    s = run_resource(hub, "gongan.population")
    with hub.db() as db:
        missing = [
            q.row_key
            for q in db.scalars(select(QuarantinedRow).where(QuarantinedRow.run_id == s.run_id))
            if q.reasons == ["expect_column_values_to_not_be_null(name)"]
        ]
    assert missing
    for key in missing:
        _exec(url, "UPDATE population_register SET name = '补录姓名', updated_at = now() WHERE id_number = %s", key)
    fixed = run_resource(hub, "gongan.population")
    stored = {r["id_number"]: r["name"] for r in _table(hub, "gongan.population").to_pyarrow_table().to_pylist()}
    assert all(stored.get(k) == "补录姓名" for k in missing)
    assert fixed.inserted >= len(missing)


def test_snapshot_detects_deletes_and_history_keeps_them(pg_hub) -> None:
    hub, _, url = pg_hub
    first = run_resource(hub, "swj.tax_registration")
    gone = [r["uscc"] for r in _table(hub, "swj.tax_registration").to_pyarrow_table().slice(0, 5).to_pylist()]
    for code in gone:
        _exec(url, "DELETE FROM tax_registration WHERE uscc = %s", code)
    second = run_resource(hub, "swj.tax_registration")
    assert second.deleted == 5 and second.inserted == 0 and second.updated == 0
    now_codes = set(_table(hub, "swj.tax_registration").to_pyarrow_table().column("uscc").to_pylist())
    assert not now_codes & set(gone)
    old = DeltaTable(
        hub.store.uri(hub.catalogue.resource("swj.tax_registration").store_path), version=first.store_version
    )
    assert set(gone) <= set(old.to_pyarrow_table().column("uscc").to_pylist())


def test_schema_drift_fails_the_run_and_changes_nothing(pg_hub, use_env) -> None:
    hub, _, url = pg_hub
    ok = run_resource(hub, "scjg.legal_entity")
    with hub.db() as db:
        wm = db.get(Watermark, "scjg.legal_entity").value
    _exec(url, "ALTER TABLE legal_entity_register DROP COLUMN status")
    with pytest.raises(SchemaDrift, match=r"scjg.legal_entity: schema drift .*column 'status'"):
        run_resource(hub, "scjg.legal_entity")
    with hub.db() as db:
        failed = db.scalars(select(Run).where(Run.status == "failed")).one()
        assert failed.error_kind == "SchemaDrift" and "status" in failed.error
        assert db.get(Watermark, "scjg.legal_entity").value == wm
    assert _table(hub, "scjg.legal_entity").version() == ok.store_version
    # The department changed what it publishes without updating its catalogue entry: it must rectify that.
    (scjg,) = department_stats(hub, "scjg")
    assert scjg["catalogue_drift"] == 1 and "catalogue_not_updated" in scjg["rectify"]
    # The engineer finds it among the failed runs, sees how many runs there are in all, and pages back.
    assert [r.id for r in last_runs(hub, status="failed")] == [failed.id]
    assert last_runs(hub, "scjg.legal_entity").total == 2 and last_runs(hub, status="succeeded").total == 1
    newest = last_runs(hub, "scjg.legal_entity", limit=1)
    assert [r.id for r in newest] == [failed.id] and newest.next_before == failed.id
    older = last_runs(hub, "scjg.legal_entity", limit=1, before=newest.next_before)
    assert [r.id for r in older] == [ok.run_id] and older.next_before is None
    with pytest.raises(LookupError, match="no run nosuch in this list"):
        last_runs(hub, before="nosuch")
    use_env(hub)
    shown = CliRunner().invoke(cli, ["runs", "list", "--resource", "scjg.legal_entity", "--before", failed.id])
    assert shown.exit_code == 0 and "1 of 2, newest first" in shown.output and "next page" not in shown.output
    # The source matches its catalogue again: the next run goes through, and nothing is left to rectify for it.
    _exec(url, "ALTER TABLE legal_entity_register ADD COLUMN status VARCHAR(10) DEFAULT '存续'")
    run_resource(hub, "scjg.legal_entity")
    assert department_stats(hub, "scjg")[0]["catalogue_drift"] == 0


def test_failed_promote_leaves_store_and_watermark(pg_hub, monkeypatch: pytest.MonkeyPatch) -> None:
    hub, _, url = pg_hub
    run_resource(hub, "gongan.population")
    version = _table(hub, "gongan.population").version()
    _exec(
        url,
        "UPDATE population_register SET address = '新地址', updated_at = now() WHERE ctid IN "
        "(SELECT ctid FROM population_register LIMIT 3)",
    )
    with hub.db() as db:
        wm = db.get(Watermark, "gongan.population").value

    def broken(*args: object, **kwargs: object) -> None:
        raise OSError("object store went away")

    monkeypatch.setattr("sharehub.pipeline.promote.merge_run", broken)
    run_id = extract(hub, "gongan.population")
    gate(hub, run_id)
    with pytest.raises(OSError):
        promote(hub, run_id)
    with hub.db() as db:
        assert db.get(Run, run_id).status == "failed"
        assert db.get(Watermark, "gongan.population").value == wm
    assert _table(hub, "gongan.population").version() == version
    monkeypatch.undo()
    retry = run_resource(hub, "gongan.population")
    assert retry.updated == 3


def test_killed_after_commit_is_not_applied_twice(pg_hub) -> None:
    hub, _, url = pg_hub
    run_resource(hub, "gongan.population")
    _exec(
        url,
        "UPDATE population_register SET address = '再次搬家', updated_at = now() WHERE ctid IN "
        "(SELECT ctid FROM population_register LIMIT 4)",
    )
    run_id = extract(hub, "gongan.population")
    gate(hub, run_id)
    res = hub.catalogue.resource("gongan.population")
    staged = hub.store.parquet_file(paths.staging(res.id, run_id)).read()
    # The commit lands, then the process dies before the metadata database hears of it.
    committed = merge_run(hub.store.uri(res.store_path), {}, staged, res.source.key, None, run_id)
    assert committed.updated == 4
    out = promote(hub, run_id)
    assert out.already_committed and out.version == committed.version
    assert _table(hub, res.id).version() == committed.version
    with hub.db() as db:
        assert db.get(Run, run_id).status == "succeeded"
        assert db.get(Watermark, res.id).run_id == run_id


def _written_date(text: str) -> date:
    """The test's own reading of the demo's date forms: 2024-03-01, 2024/03/01, 2024年3月1日, 20240301."""
    parts = re.findall(r"\d+", text)
    if len(parts) == 1:
        parts = [parts[0][:4], parts[0][4:6], parts[0][6:]]
    return date(*(int(p) for p in parts))


def test_a_file_drop_with_dates_written_every_usual_way_stores_them_as_dates(make_hub) -> None:
    """Offline files carry dates however their clerk typed them; each usual form is the same date, and an
    impossible day is quarantined under the field's name, not read as another day."""
    hub = make_hub()
    sources = build_sources(hub.settings, hub.catalogue, PERSONS, ENTITIES)
    rid = "mzj.subsistence_allowance"
    (drop,) = hub.settings.filedrop_dir.glob("mzj/dibao_*.csv")
    lines = drop.read_text(encoding="gbk").splitlines()  # commas only separate fields here
    header = lines[0].split(",")
    at, key_at = header.index("起始日期"), header.index("身份证号")
    impossible = lines[1].split(",")
    impossible[at] = "2023年2月30日"
    lines[1] = ",".join(impossible)
    drop.write_text("\n".join(lines) + "\n", encoding="gbk")
    written = {r["身份证号"]: r["起始日期"] for r in sources.world.csv_rows}
    assert len({("-" in t, "/" in t, "年" in t, t.isdigit()) for t in written.values()}) == 4  # every form
    s = run_resource(hub, rid)
    planted = sum(sources.world.planted[rid].values())
    assert s.status == "succeeded" and s.quarantined == planted + 1, (s.quarantined, planted)
    stored = _table(hub, rid).to_pyarrow_table(columns=["id_number", "start_date"])
    assert stored.schema.field("start_date").type == pa.date32()
    got = dict(zip(stored.column("id_number").to_pylist(), stored.column("start_date").to_pylist(), strict=True))
    assert impossible[key_at] not in got and len(got) == s.passed
    assert all(got[k] == _written_date(written[k]) for k in got)
    with hub.db() as db:
        row = db.scalars(select(QuarantinedRow).where(QuarantinedRow.row_key.contains(impossible[key_at][-4:]))).first()
    assert row is not None and "start_date: value is not a valid date" in row.reasons


@pytest.mark.parametrize("metadata", ["sqlite", "postgresql"])
@pytest.mark.slow  # promotes racing in processes
def test_promotes_of_one_store_queue_and_an_overtaken_run_is_refused(metadata: str, make_hub, pg_url: str) -> None:
    """Two promotes of one resource never merge at once (file lock / PostgreSQL advisory lock), and a run
    extracted before one already stored is refused instead of turning the store back."""
    overrides: dict[str, object] = {"connections": {c: pg_url for c in CONNECTIONS}}
    if metadata == "postgresql":
        overrides["metadata_url"] = fresh_database(pg_url, "sharehub_lock_test")
    hub = make_hub(**overrides)
    build_sources(hub.settings, hub.catalogue, PERSONS, ENTITIES)
    rid = "gongan.population"
    older = extract(hub, rid)
    gate(hub, older)
    _exec(
        pg_url,
        "UPDATE population_register SET address = '后来的地址', updated_at = now() WHERE ctid IN "
        "(SELECT ctid FROM population_register LIMIT 2)",
    )
    newer = extract(hub, rid)
    gate(hub, newer)
    done = threading.Event()
    worker = threading.Thread(target=lambda: (promote(hub, newer), done.set()))
    with store_lock(hub, rid):
        worker.start()
        assert not done.wait(3), "promote merged while another held the store"
    worker.join(120)
    assert done.is_set()
    with pytest.raises(FatalError, match=f"run {older} was extracted before run {newer}"):
        promote(hub, older)
    with hub.db() as db:
        assert db.get(Run, older).status == "failed"
        assert db.get(Watermark, rid).run_id == newer
    stored = _table(hub, rid).to_pyarrow_table(columns=["address"]).column("address").to_pylist()
    assert stored.count("后来的地址") == 2
