"""The catalogue: the shipped one validates, broken ones are rejected with file, key and reason."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from sharehub.catalogue import load_catalogue
from sharehub.cli import app
from sharehub.errors import CatalogueError
from sharehub.settings import REPO_ROOT

SHIPPED = REPO_ROOT / "catalogue"


def test_shipped_catalogue_is_valid_and_ids_name_everything() -> None:
    cat = load_catalogue(SHIPPED)
    assert len(cat.departments) >= 5
    assert {"gongan.population", "scjg.legal_entity"} <= set(cat.resources)
    for rid, res in cat.resources.items():
        assert (SHIPPED / "resources" / f"{rid}.yaml").exists()
        assert res.suite == rid
        assert res.store_path.endswith(rid)
    base = [r for r in cat.resources.values() if r.store.kind == "base"]
    assert base and all(r.share.type == "unconditional" for r in base)


def _copy(tmp_path: Path) -> Path:
    root = tmp_path / "catalogue"
    shutil.copytree(SHIPPED, root)
    return root


def _edit(root: Path, rid: str, change) -> None:
    path = root / "resources" / f"{rid}.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    change(data)
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")


@pytest.mark.parametrize(
    ("rid", "change", "key", "reason"),
    [
        ("gongan.population", lambda d: d.update(colour="blue"), "colour", "Extra inputs are not permitted"),
        ("wjw.health_record", lambda d: d["share"].pop("legal_basis"), "share", "legal_basis"),
        (
            "gongan.population",
            lambda d: d.update(share={"type": "conditional", "conditions": "x"}),
            "-",
            "shared unconditionally",
        ),
        ("gongan.population", lambda d: d["fields"][0].update(type="varchar"), "fields.0.type", "unknown type"),
        ("gongan.population", lambda d: d["source"].update(key=["nope"]), "-", "source.key names unknown fields"),
        ("gongan.population", lambda d: d.update(suite="other"), "-", "suite must be named after the resource"),
        ("scjg.legal_entity", lambda d: d["source"].pop("incremental_column"), "source", "incremental_column"),
        ("gongan.population", lambda d: d.update(provider="scjg"), "-", "provider"),
        (
            "rsj.insurance_enrolment",
            lambda d: d["fields"][2].update(corresponds_to="population.shoe_size"),
            "fields.name.corresponds_to",
            "no base resource is authoritative for population.shoe_size",
        ),
        (
            "swj.tax_registration",
            lambda d: d["fields"][2].pop("vocabulary"),
            "fields.taxpayer_status.corresponds_to",
            "must both declare a vocabulary",
        ),
        (
            "swj.tax_registration",
            lambda d: d["fields"][2]["vocabulary"].update({"注销": "dissolved"}),
            "fields.taxpayer_status.corresponds_to",
            "meanings ['dissolved'] are not in legal_entity.status's vocabulary",
        ),
        (
            "swj.tax_registration",
            lambda d: d["fields"][2]["vocabulary"].pop("非正常"),
            "-",
            "vocabulary must give a meaning to each of its values",
        ),
        ("wjw.health_record", lambda d: d.update(open="on_application"), "-", "cannot be open to the public"),
        (
            "rsj.insurance_enrolment",
            lambda d: (
                [f.update(classification="L2") for f in d["fields"] if f["classification"] == "L1"]
                and d.update(open="unconditional")
            ),
            "-",
            "only L1 fields are opened",
        ),
    ],
)
def test_broken_catalogue_names_file_key_and_reason(tmp_path: Path, rid: str, change, key: str, reason: str) -> None:
    root = _copy(tmp_path)
    _edit(root, rid, change)
    with pytest.raises(CatalogueError) as err:
        load_catalogue(root)
    lines = [ln.strip() for ln in str(err.value).splitlines()[1:]]
    assert any(ln.startswith(f"{rid}.yaml: ") and reason in ln and (key == "-" or f": {key}" in ln) for ln in lines), (
        lines
    )


def test_two_authoritative_sources_for_one_item_are_refused(tmp_path: Path) -> None:
    root = _copy(tmp_path)
    src = yaml.safe_load((root / "resources" / "gongan.population.yaml").read_text(encoding="utf-8"))
    src["id"], src["provider"], src["suite"] = "wjw.population_copy", "wjw", "wjw.population_copy"
    (root / "resources" / "wjw.population_copy.yaml").write_text(
        yaml.safe_dump(src, allow_unicode=True), encoding="utf-8"
    )
    with pytest.raises(CatalogueError, match=r"wjw.population_copy.yaml: authoritative_for: population.name already"):
        load_catalogue(root)


def test_file_must_be_named_after_the_id(tmp_path: Path) -> None:
    root = _copy(tmp_path)
    (root / "resources" / "gongan.population.yaml").rename(root / "resources" / "gongan.people.yaml")
    with pytest.raises(CatalogueError, match=r"gongan.people.yaml: id: resource 'gongan.population' must live in"):
        load_catalogue(root)


def test_cli_validate_reports_problems_and_records_versions(tmp_path: Path, make_hub, use_env) -> None:
    hub = make_hub()
    use_env(hub)
    root = _copy(tmp_path)
    runner = CliRunner()
    ok = runner.invoke(app, ["catalogue", "validate", "--dir", str(root)])
    assert ok.exit_code == 0, ok.output
    assert "version 1" in ok.output
    _edit(root, "scjg.legal_entity", lambda d: d.update(title="法人基础信息（修订）", version=2))
    ok2 = runner.invoke(app, ["catalogue", "validate", "--dir", str(root)])
    assert "version 2" in ok2.output
    _edit(root, "wjw.health_record", lambda d: d["share"].pop("legal_basis"))
    bad = runner.invoke(app, ["catalogue", "validate", "--dir", str(root)])
    assert bad.exit_code == 1
    assert "wjw.health_record.yaml: share" in bad.output and "legal_basis" in bad.output
    assert "Traceback" not in bad.output
