"""Smoke test of a real Airflow 3 deployment: api-server, dag-processor and scheduler (LocalExecutor).

The scheduler picks up a resource DAG once it is unpaused, runs extract → gate → promote in its workers,
and the run lands in sharehub's metadata database as an Airflow-triggered, succeeded run.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from sharehub.demo.build import build_sources
from sharehub.settings import REPO_ROOT
from tests.support.seaweed import free_port

pytestmark = pytest.mark.slow  # a real Airflow scheduler

AIRFLOW = str(Path(sys.executable).with_name("airflow"))
DAG_ID = "scjg.legal_entity"


def _airflow_env(home: Path, hub_home: Path, port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "SHAREHUB_"))}
    env.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_FOLDER": str(REPO_ROOT / "dags"),
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__PARALLELISM": "2",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
            "AIRFLOW__API_AUTH__JWT_SECRET": "smoke-test-only",
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
            "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "1",
            "SHAREHUB_HOME": str(hub_home),
        }
    )
    return env


@pytest.fixture
def airflow_stack(tmp_path: Path) -> Iterator[tuple[dict[str, str], Path]]:
    home = tmp_path / "airflow"
    home.mkdir()
    port = free_port()
    env = _airflow_env(home, tmp_path / "hub", port)
    subprocess.run([AIRFLOW, "db", "migrate"], env=env, check=True, capture_output=True, timeout=180)
    procs, logs = [], []
    for args in (["api-server", "--port", str(port)], ["dag-processor"], ["scheduler"]):
        log = (home / f"{args[0]}.log").open("wb")
        logs.append(log)
        procs.append(
            subprocess.Popen([AIRFLOW, *args], env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        )
    try:
        yield env, home
    finally:
        for p in procs:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait(timeout=30)
        for log in logs:
            log.close()


def _dag_runs(home: Path) -> list[tuple[str, str]]:
    with sqlite3.connect(home / "airflow.db") as db:
        try:
            return list(db.execute("SELECT run_id, state FROM dag_run WHERE dag_id = ?", [DAG_ID]))
        except sqlite3.OperationalError:
            return []


def _wait(predicate, seconds: float, what: str, home: Path) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        if time.monotonic() > deadline:
            logs = "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-2000:]}" for p in home.glob("*.log"))
            pytest.fail(f"timed out waiting for {what}\n{logs}")
        time.sleep(1)


@pytest.mark.airflow
def test_scheduler_runs_an_unpaused_resource_dag(airflow_stack, make_hub) -> None:
    env, home = airflow_stack
    hub = make_hub(home=Path(env["SHAREHUB_HOME"]))
    build_sources(hub.settings, hub.catalogue, 400, 80)

    def parsed() -> bool:
        with sqlite3.connect(home / "airflow.db") as db:
            return bool(db.execute("SELECT 1 FROM dag WHERE dag_id = ?", [DAG_ID]).fetchone())

    _wait(parsed, 120, "the dag-processor to parse the DAGs", home)
    subprocess.run([AIRFLOW, "dags", "unpause", DAG_ID], env=env, check=True, capture_output=True, timeout=120)
    _wait(
        lambda: any(state in ("success", "failed") for _, state in _dag_runs(home)),
        240,
        "the scheduled run to finish",
        home,
    )
    assert [state for _, state in _dag_runs(home)] == ["success"]
    from sharehub.pipeline.runs import last_runs

    runs = last_runs(hub, DAG_ID, 5)
    assert len(runs) == 1 and runs[0].trigger == "airflow" and runs[0].status == "succeeded"
    assert runs[0].rows_passed > 0 and runs[0].store_version == 0
