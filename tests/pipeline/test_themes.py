"""Thematic stores: SQL models over several departments' stores, with per-row lineage, rebuilt on change."""

from __future__ import annotations

import shutil
from pathlib import Path

import pyarrow.compute as pc
import pytest
import sqlalchemy as sa
from deltalake import DeltaTable

from sharehub.demo.build import build_sources
from sharehub.pipeline.run import run_resource
from sharehub.pipeline.themes import build
from sharehub.settings import REPO_ROOT
from warehouse.declared import ModelError

SOURCES = ["gongan.population", "rsj.insurance_enrolment", "scjg.legal_entity", "mzj.subsistence_allowance"]


def _store(hub, path: str) -> DeltaTable:
    return DeltaTable(hub.store.uri(path), storage_options=hub.store.delta_options())


def test_themes_join_departments_record_lineage_and_rebuild_only_on_change(make_hub, pg_url: str) -> None:
    hub = make_hub(connections={"rsj_front": pg_url})
    build_sources(hub.settings, hub.catalogue, 300, 60)
    runs = {rid: run_resource(hub, rid).run_id for rid in [*SOURCES, "swj.tax_registration", "fgw.credit_record"]}
    first = {b.model: b for b in build(hub)}
    assert {b.status for b in first.values()} == {"built"}

    people = _store(hub, "stores/themes/social_security/person_insurance").to_pyarrow_table().to_pylist()
    enrolments = _store(hub, "stores/thematic/social_security/rsj.insurance_enrolment").to_pyarrow_table()
    population = {
        r["id_number"]: r
        for r in _store(hub, "stores/base/population/gongan.population").to_pyarrow_table().to_pylist()
    }
    assert len(people) == enrolments.num_rows == first["social_security.person_insurance"].rows
    for row in people:
        person = population.get(row["id_number"])
        assert row["missing_in_population"] == (person is None)
        if person is not None:  # the authoritative name, sex and birth date
            assert (row["name"], row["sex"], row["birth_date"]) == (person["name"], person["sex"], person["birth_date"])
        used = {src["resource"]: src for src in row["_lineage"]}
        assert used["rsj.insurance_enrolment"] == {
            "resource": "rsj.insurance_enrolment",
            "version": 0,
            "run_id": runs["rsj.insurance_enrolment"],
        }
        assert ("gongan.population" in used) == (person is not None)
        assert ("scjg.legal_entity" in used) == (row["employer_name"] is not None)
    assert first["social_security.person_insurance"].sources == dict.fromkeys(SOURCES, 0)

    companies = _store(hub, "stores/themes/market_credit/company_credit").to_pyarrow_table()
    assert companies.num_rows == _store(hub, "stores/base/legal_entity/scjg.legal_entity").to_pyarrow_table().num_rows
    assert pc.sum(companies["insured_people"]).as_py() > 0
    # Violations (market credit): each company's penalties and dishonesty listing, from the credit office.
    records = _store(hub, "stores/base/credit/fgw.credit_record").to_pyarrow_table().to_pylist()
    penalties: dict[str, int] = {}
    for r in records:
        penalties[r["subject_uscc"]] = penalties.get(r["subject_uscc"], 0) + (r["record_type"] == "行政处罚")
    by_company = {r["uscc"]: r for r in companies.to_pylist()}
    assert records and all(by_company[k]["penalties"] == n for k, n in penalties.items() if k in by_company)
    assert all(r["penalties"] == 0 for k, r in by_company.items() if k not in penalties)

    # Nothing changed: nothing is rebuilt.
    assert {b.status for b in build(hub)} == {"unchanged"}
    # Each build is a write into a store, in the audit chain with the versions it read.
    with hub.db() as db:
        built = db.execute(
            sa.text("SELECT resource_id, detail FROM audit_log WHERE action = 'store' AND detail LIKE 'theme%'")
        ).all()
    assert sorted(rid for rid, _ in built) == sorted(first)
    social = next(d for rid, d in built if rid == "social_security.person_insurance")
    assert social == "theme v0; from " + ", ".join(f"{rid}@v0" for rid in sorted(SOURCES))

    # One enrolment changes at the source: the social-security theme is rebuilt from the new version,
    # and that row's lineage names the run that wrote it; the market-credit theme reads rsj too.
    engine = sa.create_engine(pg_url)
    with engine.begin() as c:
        person = c.execute(sa.text("SELECT MIN(id_number) FROM insurance_enrolment")).scalar_one()
        c.execute(
            sa.text(
                "UPDATE insurance_enrolment SET status = '暂停缴费', updated_at = '2026-11-21 10:00:00' "
                "WHERE id_number = :k"
            ),
            {"k": person},
        )
    engine.dispose()
    again = run_resource(hub, "rsj.insurance_enrolment")
    second = {b.model: b for b in build(hub)}
    assert second["social_security.person_insurance"].status == "built"
    assert second["social_security.person_insurance"].sources["rsj.insurance_enrolment"] == 1
    rows = _store(hub, "stores/themes/social_security/person_insurance").to_pyarrow_table().to_pylist()
    changed = [r for r in rows if r["id_number"] == person]
    assert changed and all(r["insurance_status"] == "暂停缴费" for r in changed)
    for r in changed:
        (src,) = [s for s in r["_lineage"] if s["resource"] == "rsj.insurance_enrolment"]
        assert src == {"resource": "rsj.insurance_enrolment", "version": 1, "run_id": again.run_id}


@pytest.mark.parametrize(
    ("sql", "reason"),
    [
        ('SELECT uscc, name FROM "scjg.legal_entity"', "does not select ['_lineage']"),
        ('SELECT uscc, [_src] AS _lineage FROM "scjg.legal_entity", range(2)', "is not unique"),
        ('SELECT uscc, [_src] AS _lineage FROM "nowhere"', "the SQL failed"),
    ],
)
def test_a_broken_model_is_named_and_leaves_its_store_as_it_was(
    make_hub, tmp_path: Path, sql: str, reason: str
) -> None:
    models = tmp_path / "models"
    models.mkdir()
    model = models / "market_credit.registry.sql"
    model.write_text(
        "/*\ntitle: t\nkey: [uscc]\nsources: [scjg.legal_entity]\n*/\n"
        'SELECT uscc, name, [_src] AS _lineage FROM "scjg.legal_entity"',
        encoding="utf-8",
    )
    hub = make_hub(models_dir=models)
    build_sources(hub.settings, hub.catalogue, 50, 40)
    run_resource(hub, "scjg.legal_entity")
    (ok,) = build(hub)
    model.write_text(f"/*\ntitle: t\nkey: [uscc]\nsources: [scjg.legal_entity]\n*/\n{sql}", encoding="utf-8")
    with pytest.raises(ModelError) as err:
        build(hub)
    assert "market_credit.registry.sql" in str(err.value) and reason in str(err.value)
    table = _store(hub, "stores/themes/market_credit/registry")
    assert table.version() == ok.version and table.to_pyarrow_table().num_rows == ok.rows


def test_a_model_header_is_checked(make_hub, tmp_path: Path) -> None:
    models = tmp_path / "models"
    shutil.copytree(REPO_ROOT / "warehouse" / "models", models)
    (models / "market_credit.x.sql").write_text("/*\ntitle: t\nkey: [uscc]\nsources: [swj.nothing]\n*/\nSELECT 1")
    hub = make_hub(models_dir=models)
    with pytest.raises(ModelError, match=r"market_credit.x.sql: sources \['swj.nothing'\] are not catalogue"):
        build(hub)
