"""Promote: merge a run's passing rows into the resource's Delta store, then move the watermark."""

from __future__ import annotations

import logging

import pyarrow as pa
from sqlalchemy import select

from connectors import duck
from sharehub import audit
from sharehub.catalogue.models import Resource
from sharehub.errors import FatalError
from sharehub.hub import Hub
from sharehub.metadata.models import Run, Watermark, utcnow
from sharehub.pipeline import paths
from sharehub.pipeline.liveness import working
from sharehub.pipeline.locks import store_lock
from sharehub.pipeline.runs import fail_run, get_run
from warehouse.delta import MergeOutcome, current_keys, merge_run

log = logging.getLogger(__name__)


def _deleted_keys(hub: Hub, resource: Resource, run_id: str) -> pa.Table | None:
    """Keys the store holds that the source no longer has (compared as text, after the gate's casts)."""
    if not resource.source.deletes_detected:
        return None
    key = resource.source.key
    stored = current_keys(hub.store.uri(resource.store_path), hub.store.delta_options(), key)
    if stored is None or stored.num_rows == 0:
        return None
    landed = hub.store.parquet_file(paths.landing_keys(resource.id, run_id)).read()
    landed = landed.rename_columns(key)
    con = duck.connect()
    con.register("stored", stored)
    con.register("landed", landed)
    on = " AND ".join(f"CAST(s.{k} AS VARCHAR) = CAST(l.{k} AS VARCHAR)" for k in key)
    gone = con.sql(f"SELECT s.* FROM stored s ANTI JOIN landed l ON {on}").to_arrow_table()
    con.close()
    return gone


def promote(hub: Hub, run_id: str) -> MergeOutcome:
    """Merge the run into its store in one commit; only then record success and move the watermark."""
    run = get_run(hub, run_id)
    if run.status == "succeeded":  # a cleared or retried task: the commit is already there
        return MergeOutcome(run.store_version or -1, run.rows_inserted, run.rows_updated, run.rows_deleted, True)
    resource = hub.catalogue.resource(run.resource_id)
    with working(hub, run_id, "promote"), store_lock(hub, resource.id, run_id):
        try:
            _refuse_if_overtaken(hub, run)
            outcome = _merge(hub, resource, run_id)
        except BaseException as exc:
            fail_run(hub, run_id, "promote", exc)
            raise
        _record(hub, resource, run_id, outcome)
    changed = outcome.inserted + outcome.updated + outcome.deleted
    version = f"store v{outcome.version}" if outcome.version >= 0 else "no store yet"
    audit.record(  # every write into a store is in the audit chain (Lichuan 27: 存储、访问、传输、下载)
        hub,
        "store",
        None,
        resource.id,
        result="stored" if changed else "unchanged",
        detail=f"run {run_id}; {version}; +{outcome.inserted} ~{outcome.updated} -{outcome.deleted}",
    )
    hub.store.delete_dir(paths.staging_dir(resource.id, run_id))
    log.info(
        "run %s promoted %s: v%s +%d ~%d -%d",
        run_id,
        resource.id,
        outcome.version,
        outcome.inserted,
        outcome.updated,
        outcome.deleted,
    )
    return outcome


def _refuse_if_overtaken(hub: Hub, run: Run) -> None:
    """A run extracted before another run of its resource that is already stored holds older rows than
    the store: merging them would turn the store back, and a snapshot would delete newer keys."""
    with hub.db() as s:
        newer = s.scalars(
            select(Run.id)
            .where(Run.resource_id == run.resource_id, Run.status == "succeeded", Run.started_at > run.started_at)
            .order_by(Run.started_at.desc())
            .limit(1)
        ).first()
    if newer is not None:
        raise FatalError(
            f"{run.resource_id}: run {run.id} was extracted before run {newer}, which is already stored; "
            "its rows are older than the store's, so it is not merged (run the resource again)"
        )


def _merge(hub: Hub, resource: Resource, run_id: str) -> MergeOutcome:
    staged = hub.store.parquet_file(paths.staging(resource.id, run_id)).read()
    gone = _deleted_keys(hub, resource, run_id)
    if staged.num_rows == 0 and (gone is None or gone.num_rows == 0) and not hub.store.exists(resource.store_path):
        return MergeOutcome(-1, 0, 0, 0)
    return merge_run(
        hub.store.uri(resource.store_path), hub.store.delta_options(), staged, resource.source.key, gone, run_id
    )


def _record(hub: Hub, resource: Resource, run_id: str, outcome: MergeOutcome) -> None:
    with hub.db() as s:
        r = s.get(Run, run_id)
        assert r is not None
        r.status, r.step, r.finished_at = "succeeded", "promote", utcnow()
        r.store_version = outcome.version if outcome.version >= 0 else None
        if not outcome.already_committed:
            r.rows_inserted, r.rows_updated, r.rows_deleted = outcome.inserted, outcome.updated, outcome.deleted
        if r.watermark_to and r.watermark_to != r.watermark_from:
            wm = s.get(Watermark, resource.id) or Watermark(resource_id=resource.id)
            wm.value, wm.run_id, wm.updated_at = r.watermark_to, run_id, utcnow()
            s.add(wm)
