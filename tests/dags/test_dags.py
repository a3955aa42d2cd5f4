"""Airflow: every generated DAG loads cleanly, and a resource DAG runs end to end with dag.test()."""

from __future__ import annotations

import subprocess
import sys

import pytest
from deltalake import DeltaTable

from sharehub.catalogue import load_catalogue
from sharehub.demo.build import build_sources
from sharehub.settings import REPO_ROOT

pytestmark = pytest.mark.slow  # a real Airflow: parses every DAG and runs one

DAGS = REPO_ROOT / "dags"


@pytest.fixture(scope="module")
def dagbag():
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(DAGS))


def test_every_resource_has_a_clean_dag(dagbag) -> None:
    assert dagbag.import_errors == {}
    cat = load_catalogue(REPO_ROOT / "catalogue")
    themes = {"sharehub.theme.social_security.person_insurance", "sharehub.theme.market_credit.company_credit"}
    scheduled = {"sharehub.notices_daily", "sharehub.consistency", "sharehub.bulletin_monthly", "sharehub.open_data"}
    scheduled |= {"sharehub.upstream_sync", "sharehub.audit_checkpoint"}
    assert set(dagbag.dags) == set(cat.resources) | scheduled | themes
    assert dagbag.dags["sharehub.notices_daily"].tasks[0].retries >= 1
    assert [t.task_id for t in dagbag.dags["sharehub.bulletin_monthly"].tasks] == ["publish"]
    # Following applications at the upper level is scheduled only where there is a level above.
    assert [t.task_id for t in dagbag.dags["sharehub.upstream_sync"].tasks] == ["sync"]
    assert type(dagbag.dags["sharehub.upstream_sync"].timetable).__name__ == "NullTimetable"
    assert [t.task_id for t in dagbag.dags["sharehub.audit_checkpoint"].tasks] == ["checkpoint"]
    # Open datasets are republished when the store of an unconditionally open resource moves.
    opened = {a.name for a in dagbag.dags["sharehub.open_data"].timetable.asset_condition.objects}
    assert opened == {f"sharehub.store.{r.id}" for r in cat.resources.values() if r.open == "unconditional"} != set()
    # The consistency check runs when a store it reads is updated, not on a guessed schedule.
    watched = {a.name for a in dagbag.dags["sharehub.consistency"].timetable.asset_condition.objects}
    assert {"sharehub.store.gongan.population", "sharehub.store.rsj.insurance_enrolment"} <= watched
    compared = {
        f"sharehub.store.{r.id}"
        for r in cat.resources.values()
        if r.authoritative_for or any(f.corresponds_to for f in r.fields)
    }
    assert watched == compared and "sharehub.store.xzsp.e_licence" in watched  # licence holders' names too
    # A thematic store is rebuilt when any store its model reads is updated, and is itself an Asset.
    credit = dagbag.dags["sharehub.theme.market_credit.company_credit"]
    assert {a.name for a in credit.timetable.asset_condition.objects} == {
        "sharehub.store.scjg.legal_entity",
        "sharehub.store.swj.tax_registration",
        "sharehub.store.rsj.insurance_enrolment",
        "sharehub.store.fgw.credit_record",
    }
    assert [a.name for a in credit.tasks[0].outlets] == ["sharehub.theme.market_credit.company_credit"]
    for dag_id, dag in dagbag.dags.items():
        if dag_id in scheduled or dag_id in themes:
            continue
        assert "sharehub" in dag.tags and f"dept:{cat.resources[dag_id].provider}" in dag.tags
        assert [t.task_id for t in dag.topological_sort()] == ["extract", "gate", "promote", "notify"]
        for t in dag.tasks:
            assert t.retries >= 1, (dag_id, t.task_id)
        assert dag.max_active_runs == 1


def test_dag_file_parses_without_heavy_imports() -> None:
    code = (
        "import sys, runpy; runpy.run_path(sys.argv[1]);"
        "heavy = [m for m in ('great_expectations', 'deltalake', 'duckdb', 'connectorx') if m in sys.modules];"
        "print('HEAVY:' + ','.join(heavy))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(DAGS / "sharehub_resources.py")], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip().splitlines()[-1] == "HEAVY:"


@pytest.fixture(scope="module")
def airflow_db() -> None:
    from airflow.utils import db

    db.resetdb()


@pytest.mark.airflow
def test_resource_dag_runs_end_to_end_against_postgresql(airflow_db, dagbag, make_hub, use_env, pg_url: str) -> None:
    hub = make_hub(connections={"gongan_front": pg_url})
    build_sources(hub.settings, hub.catalogue, 800, 160)
    use_env(hub)
    dag = dagbag.dags["gongan.population"]
    for t in dag.tasks:  # a failure should fail the test now, not wait out retry delays
        t.retries = 0
    run = dag.test()
    assert run.state == "success"
    res = hub.catalogue.resource("gongan.population")
    stored = DeltaTable(hub.store.uri(res.store_path)).to_pyarrow_table()
    from sharehub.pipeline.runs import last_runs

    recorded = last_runs(hub, "gongan.population", 1)[0]
    assert recorded.trigger == "airflow" and recorded.status == "succeeded"
    assert recorded.id.startswith("gongan.population__manual")
    assert stored.num_rows == recorded.rows_passed > 0
