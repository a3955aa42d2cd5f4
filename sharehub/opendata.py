"""Open data (政务数据开放; Fushun 20–22; Hengyang 22): what sharehub hands the city's open-data portal.

The portal (开放平台), not this API, faces the public: every route here needs a department's key
(DESIGN). So for each resource the catalogue marks `open: unconditional`, sharehub publishes the open
dataset into the object store, `open/<resource>/v<store version>.parquet` with `manifest.json` beside
it (the data file, store version, rows, sha256, fields; under the platform's seal), for the portal to
serve as it is. Only L1
(public) fields are opened: personal and restricted data never leave through this door, whatever the
resource holds. The dataset
is rewritten when the store moves (a theme-like step after runs: `sharehub run`, `sharehub open
publish`, and the `sharehub.open_data` DAG on the stores' Assets). `open/catalogue.json` lists every
open resource: an unconditional one with its dataset, an on-application one (依申请开放, answered by its
department within the profile's `open_application` working days) with the department to apply to.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
from deltalake import DeltaTable
from sqlalchemy import select

from sharehub import audit
from sharehub.catalogue.models import Classification, Resource
from sharehub.hub import Hub
from sharehub.metadata.models import Application, ApplicationContest, utcnow
from sharehub.seal import key_id, public_pem, seal
from warehouse.delta import open_table, table_id

log = logging.getLogger(__name__)
PREFIX = "open"


def open_fields(resource: Resource) -> list[str]:
    """The fields a resource opens to the public: its L1 ones, in catalogue order."""
    return [f.name for f in resource.fields if f.classification == Classification.L1]


@dataclass(frozen=True)
class Published:
    """One open dataset after a publish step."""

    resource_id: str
    status: str  # published, unchanged, or no_store (nothing delivered yet)
    store_version: int | None = None
    rows: int = 0


def _manifest(hub: Hub, resource_id: str) -> dict[str, Any] | None:
    path = f"{PREFIX}/{resource_id}/manifest.json"
    return json.loads(hub.store.read_bytes(path)) if hub.store.exists(path) else None


def publish(hub: Hub, resource_ids: list[str] | None = None) -> list[Published]:
    """Write the open dataset of each unconditionally open resource (or of those named) whose store moved
    since it was last published, then the open catalogue. The manifest is written last: a reader that
    finds it finds the data it describes."""
    wanted = [r for r in hub.catalogue.resources.values() if r.open == "unconditional"]
    if resource_ids is not None:
        unknown = sorted(set(resource_ids) - {r.id for r in wanted})
        if unknown:
            raise ValueError(f"not open unconditionally (open: unconditional in the catalogue): {', '.join(unknown)}")
        wanted = [r for r in wanted if r.id in resource_ids]
    done = [_publish_one(hub, r) for r in wanted]
    publish_catalogue(hub)
    return done


def _publish_one(hub: Hub, resource: Resource) -> Published:
    store = open_table(hub.store.uri(resource.store_path), hub.store.delta_options())
    if store is None:
        return Published(resource.id, "no_store")
    version = store.version()
    before = _manifest(hub, resource.id)
    sealed_now = (before or {}).get("seal", {}).get("key_id") == key_id(public_pem(hub))  # not if the key changed
    same = (before or {}).get("store_table_id") == table_id(store)  # not a store deleted and written anew
    if before is not None and before.get("store_version") == version and same and sealed_now:
        return Published(resource.id, "unchanged", version, int(before["rows"]))
    columns = open_fields(resource)
    data = f"{PREFIX}/{resource.id}/v{version}.parquet"  # a new name per version: readers of the old one go on
    manifest = write_dataset(hub, resource, store, columns, data, {"update": resource.update.frequency})
    rows, size = int(manifest["rows"]), int(manifest["bytes"])
    # The manifest names the new file from now on; the one it named before stays one more version, for
    # whoever is still reading it, and anything older goes.
    keep = {data, f"{PREFIX}/{resource.id}/{(before or {}).get('data')}"}
    for older in hub.store.list(f"{PREFIX}/{resource.id}"):
        if older.endswith(".parquet") and older not in keep:
            hub.store.fs.delete_file(hub.store.path(older))
    audit.record(
        hub,
        "open_publish",
        None,
        resource.id,
        result="published",
        response_bytes=size,
        detail=f"{rows} rows; store v{version}; fields {','.join(columns)}",
    )
    log.info("open dataset %s published at store version %d: %d rows", resource.id, version, rows)
    return Published(resource.id, "published", version, rows)


def write_dataset(
    hub: Hub, resource: Resource, store: DeltaTable, columns: list[str], data: str, extra: dict[str, Any]
) -> dict[str, Any]:
    """Write `columns` of the store's current version to `data` (streamed: any size), then the sealed
    `manifest.json` beside it (the data file, store version, rows, sha256, fields, and `extra`), last: a
    reader that finds the manifest finds the data it describes. Returns the manifest."""
    dataset = store.to_pyarrow_dataset()
    rows = 0
    with hub.store.parquet_writer(data, pa.schema([dataset.schema.field(c) for c in columns])) as writer:
        for batch in dataset.to_batches(columns=columns, batch_size=100_000):
            writer.write_batch(batch)
            rows += batch.num_rows
    digest, size = hub.store.sha256(data)
    manifest = {
        "resource_id": resource.id,
        "title": resource.title,
        "provider": resource.provider,
        "store_version": store.version(),
        "store_table_id": table_id(store),
        "data": data.rsplit("/", 1)[1],
        "rows": rows,
        "sha256": digest,
        "bytes": size,
        "published_at": utcnow().isoformat(),
        "fields": [
            {"name": f.name, "title": f.title, "type": str(dataset.schema.field(f.name).type)}
            for f in resource.fields
            if f.name in columns
        ],
        **extra,
    }
    sealed = json.dumps(seal(hub, manifest), ensure_ascii=False).encode()
    hub.store.write_bytes(f"{data.rsplit('/', 1)[0]}/manifest.json", sealed)
    return manifest


def open_catalogue(hub: Hub) -> list[dict[str, Any]]:
    """Every resource open to the public, as the portal lists it; where the profile asks (Fushun 22), the
    resources not opened, and those opened on application only, with the basis for it."""
    rule = hub.profile.deadlines["open_application"]
    published_basis = hub.profile.workflow.open_basis_published
    out = []
    for r in hub.catalogue.resources.values():
        if r.open == "not_open":
            if published_basis:  # Fushun 22: why it is not opened, made public
                out.append(
                    {
                        "resource_id": r.id,
                        "title": r.title,
                        "provider": r.provider,
                        "open": r.open,
                        "not_open_basis": r.open_basis or "提供部门未说明依据",
                        "published_under": published_basis,
                    }
                )
            continue
        dept = hub.catalogue.departments[r.provider]
        entry: dict[str, Any] = {
            "resource_id": r.id,
            "title": r.title,
            "provider": r.provider,
            "open": r.open,
            "fields": [{"name": f.name, "title": f.title} for f in r.fields if f.name in open_fields(r)],
        }
        if r.open == "unconditional":
            manifest = _manifest(hub, r.id)
            entry["dataset"] = None if manifest is None else f"{PREFIX}/{r.id}/{manifest['data']}"
            entry["store_version"] = None if manifest is None else manifest["store_version"]
        else:
            entry["apply_to"] = {"department": dept.name, "contact": dept.contact_email}
            entry["answer_within_working_days"] = rule.working_days
            entry["basis"] = rule.basis
            if r.open_conditions:
                entry["conditions"] = r.open_conditions  # 有条件开放: what a requester accepts
            if published_basis:
                entry["restriction_basis"] = r.open_basis or "提供部门未说明依据"
        out.append(entry)
    return out


def publicized(hub: Hub) -> list[dict[str, object]]:
    """The not-shared classifications a review upheld, published with their basis (公示告知, Hengyang 16)."""
    with hub.db() as s:
        rows = s.execute(
            select(Application.resource_id, ApplicationContest.outcome_reason, ApplicationContest.settled_at)
            .join(ApplicationContest, ApplicationContest.application_id == Application.id)
            .where(ApplicationContest.status == "publicized")
            .order_by(ApplicationContest.settled_at)
        ).all()
    out: list[dict[str, object]] = []
    for rid, why, when in rows:
        res = hub.catalogue.resources.get(rid)
        out.append(
            {
                "resource_id": rid,
                "title": res.title if res else rid,
                "provider": res.provider if res else None,
                "legal_basis": res.share.legal_basis if res else None,
                "review": why,
                "decided_at": when.isoformat() if when else None,
            }
        )
    return out


def publish_catalogue(hub: Hub) -> None:
    """Write the open catalogue the portal reads; where the profile reviews contested not-shared data
    (Hengyang 16), with the classifications upheld and their basis (公示告知)."""
    body: dict[str, Any] = {"published_at": utcnow().isoformat(), "resources": open_catalogue(hub)}
    if hub.profile.workflow.not_shared_review:
        body["not_shared_publicized"] = publicized(hub)
    hub.store.write_bytes(f"{PREFIX}/catalogue.json", json.dumps(body, ensure_ascii=False, indent=2).encode())
