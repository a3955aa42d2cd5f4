"""One DAG per catalogue resource: extract → gate → promote. This file only wires.

Parsing reads the catalogue YAML and nothing else; every task body is one call into `sharehub`.
A fatal error (schema drift, a vanished table) fails the task without retries; anything else is retried.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pendulum
from airflow.sdk import Asset, AssetAny, dag, get_current_context, task
from airflow.sdk.exceptions import AirflowFailException

from sharehub.catalogue import Resource, load_catalogue
from sharehub.consistency.pairs import pairings
from sharehub.settings import get_settings
from warehouse.declared import Model, load_models

DEFAULT_ARGS = {
    "owner": "sharehub",
    "retries": 3,
    "retry_delay": timedelta(minutes=2),
    "retry_exponential_backoff": True,
}


def _fatal_is_final(fn: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from sharehub.errors import FatalError

        try:
            return fn(*args, **kwargs)
        except FatalError as exc:
            raise AirflowFailException(str(exc)) from exc

    return wrapper


def store_asset(resource: Resource) -> Asset:
    """The Airflow Asset a resource's store is; consistency and thematic DAGs schedule on it."""
    return Asset(name=f"sharehub.store.{resource.id}", uri=f"sharehub://{resource.store_path}")


def build_dag(resource: Resource) -> Any:
    """The pipeline DAG of one resource, scheduled by its update frequency."""

    @dag(
        dag_id=resource.id,
        description=resource.title,
        schedule=resource.update.schedule,
        start_date=pendulum.datetime(2026, 1, 1, tz="Asia/Shanghai"),
        catchup=False,
        max_active_runs=1,
        default_args=DEFAULT_ARGS,
        tags=["sharehub", f"dept:{resource.provider}", f"store:{resource.store.kind}"],
        doc_md=f"**{resource.title}** ({resource.id}) from `{resource.provider}`; {resource.source.mode} source.",
    )
    def pipeline() -> None:
        @task(task_id="extract")
        @_fatal_is_final
        def extract_(resource_id: str) -> str:
            from sharehub.pipeline.tasks import extract_task

            return extract_task(resource_id, get_current_context()["run_id"])

        @task(task_id="gate")
        @_fatal_is_final
        def gate_(landed_run: str) -> dict[str, int]:
            from sharehub.pipeline.tasks import gate_task

            return gate_task(landed_run)

        @task(task_id="promote", outlets=[store_asset(resource)])
        @_fatal_is_final
        def promote_(landed_run: str, gated: dict[str, int]) -> dict[str, int]:
            from sharehub.pipeline.tasks import promote_task

            return promote_task(landed_run)

        @task(task_id="notify")
        @_fatal_is_final
        def notify_(landed_run: str, promoted: dict[str, int]) -> dict[str, int]:
            from sharehub.pipeline.tasks import notify_task

            return notify_task(landed_run)

        landed = extract_(resource.id)
        notify_(landed, promote_(landed, gate_(landed)))

    return pipeline()


@dag(
    dag_id="sharehub.notices_daily",
    description="Mark notices past their working-day deadline overdue and send the outbox.",
    schedule="0 8 * * *",
    start_date=pendulum.datetime(2026, 1, 1, tz="Asia/Shanghai"),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=["sharehub", "notices"],
)
def notices_daily() -> None:
    @task(task_id="check")
    def check() -> dict[str, int]:
        from sharehub.pipeline.tasks import daily_notice_check

        return daily_notice_check()

    check()


notices_daily()


@dag(
    dag_id="sharehub.bulletin_monthly",
    description="Publish the statistics bulletin of the month just ended (Lichuan 26): authorizations, calls, "
    "availability and each department's score.",
    schedule="0 9 1 * *",  # 09:00 on the 1st, China time
    start_date=pendulum.datetime(2026, 1, 1, tz="Asia/Shanghai"),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=["sharehub", "stats"],
)
def bulletin_monthly() -> None:
    @task(task_id="publish")
    def publish() -> dict[str, str | int]:
        from sharehub.pipeline.tasks import bulletin_task

        return bulletin_task()

    publish()


bulletin_monthly()


@dag(
    dag_id="sharehub.upstream_sync",
    description="Follow this platform's applications at the upper-level platform (MISSION 14) and tell the "
    "departments that asked; unscheduled on a platform with no level above (SHAREHUB_UPSTREAM_URL).",
    schedule="*/30 * * * *" if get_settings().upstream_url else None,
    start_date=pendulum.datetime(2026, 1, 1, tz="Asia/Shanghai"),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=["sharehub", "levels"],
)
def upstream_sync() -> None:
    @task(task_id="sync")
    def sync() -> dict[str, int]:
        from sharehub.pipeline.tasks import upstream_sync_task

        return upstream_sync_task()

    sync()


upstream_sync()


@dag(
    dag_id="sharehub.audit_checkpoint",
    description="Seal the audit chain's head into the object store: an anchor a rewritten database cannot match.",
    schedule="@hourly",
    start_date=pendulum.datetime(2026, 1, 1, tz="Asia/Shanghai"),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=["sharehub", "audit"],
)
def audit_checkpoint() -> None:
    @task(task_id="checkpoint")
    def anchor() -> dict[str, int]:
        from sharehub.pipeline.tasks import audit_checkpoint_task

        return audit_checkpoint_task()

    anchor()


audit_checkpoint()

_catalogue = load_catalogue(get_settings().catalogue_dir)
for _resource in _catalogue.resources.values():
    globals()[_resource.id.replace(".", "__")] = build_dag(_resource)

# The stores the consistency check reads, by the check's own rule: each copy of a base item and its authority.
_compared = sorted({r.id for p in pairings(_catalogue) for r in (p.authority, p.other)})


@dag(
    dag_id="sharehub.consistency",
    description="Compare departments' copies of base items with the authoritative source, when a store changes.",
    schedule=AssetAny(*(store_asset(_catalogue.resources[rid]) for rid in _compared)),
    start_date=pendulum.datetime(2026, 1, 1, tz="Asia/Shanghai"),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=["sharehub", "consistency"],
)
def consistency() -> None:
    @task(task_id="check")
    def check() -> dict[str, int]:
        from sharehub.pipeline.tasks import consistency_task

        return consistency_task()

    check()


consistency()

# Open datasets for the open-data portal: republished when the store of an unconditionally open resource moves.
_open = sorted(r.id for r in _catalogue.resources.values() if r.open == "unconditional")


@dag(
    dag_id="sharehub.open_data",
    description="Publish the open (L1) datasets of unconditionally open resources for the open-data portal.",
    schedule=AssetAny(*(store_asset(_catalogue.resources[rid]) for rid in _open)) if _open else None,
    start_date=pendulum.datetime(2026, 1, 1, tz="Asia/Shanghai"),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=["sharehub", "open"],
)
def open_data() -> None:
    @task(task_id="publish")
    def publish() -> dict[str, str]:
        from sharehub.pipeline.tasks import open_data_task

        return open_data_task()

    publish()


open_data()


def build_theme_dag(model: Model) -> Any:
    """The DAG of one thematic model: rebuilt when any store it reads is updated."""

    @dag(
        dag_id=f"sharehub.theme.{model.id}",
        description=model.title,
        schedule=AssetAny(*(store_asset(_catalogue.resources[rid]) for rid in model.sources)),
        start_date=pendulum.datetime(2026, 1, 1, tz="Asia/Shanghai"),
        catchup=False,
        max_active_runs=1,
        default_args=DEFAULT_ARGS,
        tags=["sharehub", "theme", f"theme:{model.theme}"],
        doc_md=f"**{model.title}** from {', '.join(model.sources)}; SQL in `{model.path.name}`.",
    )
    def theme() -> None:
        @task(task_id="build", outlets=[Asset(name=f"sharehub.theme.{model.id}", uri=f"sharehub://{model.store_path}")])
        @_fatal_is_final
        def build_(model_id: str) -> dict[str, int | str | None]:
            from sharehub.pipeline.tasks import theme_task

            return theme_task(model_id)

        build_(model.id)

    return theme()


for _model in load_models(get_settings().models_dir, _catalogue.resources).values():
    globals()["theme__" + _model.id.replace(".", "__")] = build_theme_dag(_model)
