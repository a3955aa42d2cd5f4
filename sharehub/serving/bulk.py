"""Bulk copy (批量复制): masked Parquet extracts of granted columns, a manifest, and short-lived URLs.

An extract holds the granted fields of the resource's store at one Delta version, each value masked
by its field's classification, and beside it `manifest.json`: rows, sha256, schema (with each field's
classification and masking), store version, grant and consumer. An incremental extract holds only
the rows changed since the consumer's previous extract of that resource under that grant, read from
the store's Delta change data, with `_change_type` `upsert` or `delete`.

Downloads go around the server, so each URL's issuance and expiry are written to the audit chain with
the grant. On S3 the URL is a presigned GET; on a local object store it is the API's own download
route, signed with an HMAC of the extract id and the expiry.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlencode, urlparse

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from deltalake import DeltaTable
from deltalake.exceptions import DeltaError
from sqlalchemy import or_, select

from sharehub import audit
from sharehub.access.consumers import Caller
from sharehub.access.grants import Access
from sharehub.access.workflow import Workflow
from sharehub.catalogue.models import Resource
from sharehub.errors import Forbidden, Gone, NotFound
from sharehub.errors import Refused as GrantError
from sharehub.hub import Hub
from sharehub.metadata.models import Extract, Grant, utcnow
from sharehub.paging import Page, latest_first
from sharehub.seal import seal
from sharehub.serving.masking import mask_array, shown_in_clear
from sharehub.workdays import china_time
from warehouse.delta import open_table, table_id


@dataclass(frozen=True)
class Issued:
    """An extract with a download URL just issued."""

    extract: Extract
    url: str
    expires_at: datetime


def _masked_table(resource: Resource, table: pa.Table, columns: list[str]) -> pa.Table:
    """The columns in their served form: values that a classification hides are masked strings."""
    out = {}
    for name in columns:
        spec = resource.field(name)
        col = table.column(name)
        if shown_in_clear(spec):
            out[name] = col.cast(spec.arrow_type) if pa.types.is_string_view(col.type) else col
        else:
            out[name] = mask_array(col, spec)
    if "_change_type" in table.column_names:
        out["_change_type"] = table.column("_change_type")
    return pa.table(out)


EXTRACT_BATCH_ROWS = 256_000  # rows read, masked and written at a time: memory follows this and the row groups


class _Hashed:
    """A write-only stream that hashes what passes through it on its way to the object store."""

    def __init__(self, sink: pa.NativeFile) -> None:
        self.sink, self.digest, self.size, self.closed = sink, hashlib.sha256(), 0, False

    def write(self, data: bytes) -> int:
        view = memoryview(data)
        self.digest.update(view)
        self.size += len(view)
        self.sink.write(view)
        return len(view)

    def tell(self) -> int:
        return self.size

    def flush(self) -> None:
        self.sink.flush()

    def close(self) -> None:
        if not self.closed:
            self.sink.close()
            self.closed = True


@dataclass(frozen=True)
class _Written:
    schema: pa.Schema
    rows: int
    sha256: str
    bytes: int


def _write_extract(
    hub: Hub,
    res: Resource,
    relative: str,
    batches: Iterable[pa.RecordBatch],
    source_schema: pa.Schema,
    columns: list[str],
) -> _Written:
    """Mask and write the batches as one zstd Parquet file, hashing it as it goes; one batch in memory."""
    schema = _masked_table(res, source_schema.empty_table(), columns).schema
    hub.store.fs.create_dir(hub.store.path(relative).rsplit("/", 1)[0], recursive=True)
    hashed = _Hashed(hub.store.fs.open_output_stream(hub.store.path(relative)))
    rows = 0
    with pa.PythonFile(hashed, mode="w") as sink, pq.ParquetWriter(sink, schema, compression="zstd") as writer:
        for batch in batches:
            if batch.num_rows:
                writer.write_table(_masked_table(res, pa.Table.from_batches([batch]), columns).cast(schema))
                rows += batch.num_rows
    hashed.close()
    return _Written(schema, rows, hashed.digest.hexdigest(), hashed.size)


def _record_extract(
    hub: Hub,
    caller: Caller,
    access: Access,
    res: Resource,
    folder: str,
    extract_id: str,
    store: DeltaTable,
    since: int | None,
    written: _Written,
    columns: list[str],
) -> Extract:
    """The manifest beside the data, under the platform's seal, and the extract's row."""
    resource_id = res.id
    served, digest, size = written.schema, written.sha256, written.bytes
    version = store.version()
    manifest = {
        "extract_id": extract_id,
        "resource_id": resource_id,
        "grant_id": access.grant_id,
        "consumer_id": caller.id,
        "purpose": access.purpose,
        "store_version": version,
        "since_version": since,
        "incremental": since is not None,
        "rows": written.rows,
        "sha256": digest,
        "bytes": size,
        "created_at": utcnow().isoformat(),
        "schema": [
            {
                "name": f.name,
                "type": str(served.field(f.name).type),
                "classification": f.classification,
                "masked": not shown_in_clear(f),
            }
            for f in res.fields
            if f.name in columns
        ],
    }
    sealed = seal(hub, manifest)  # the platform's seal over the manifest, and through its sha256 the data
    hub.store.write_bytes(f"{folder}/manifest.json", json.dumps(sealed, ensure_ascii=False, indent=2).encode())
    with hub.db() as s:
        extract = Extract(
            id=extract_id,
            consumer_id=caller.id,
            grant_id=access.grant_id,
            resource_id=resource_id,
            store_version=version,
            store_table_id=table_id(store),
            since_version=since,
            rows=written.rows,
            sha256=digest,
            path=f"{folder}/data.parquet",
            columns=columns,
        )
        s.add(extract)
    return extract


def create(
    hub: Hub, caller: Caller, access: Access, resource_id: str, incremental: bool, *, at_version: int | None = None
) -> Issued:
    """Write an extract (full, or the changes since this consumer's last one) and issue its URL. With
    `at_version`, a full extract of the store as that version held it (Delta time travel)."""
    res = hub.catalogue.resource(resource_id)
    store = open_table(hub.store.uri(res.store_path), hub.store.delta_options())
    if store is None:
        raise NotFound(f"{resource_id} has no store yet")
    if at_version is not None:
        if incremental:
            raise GrantError("an extract of a past version is a full one")
        if not 0 <= at_version <= store.version():
            raise NotFound(f"{resource_id} has no version {at_version} (its newest is {store.version()})")
        store.load_as_version(at_version)
    version = store.version()
    columns = [f.name for f in res.fields if f.name in access.fields]
    keys = [k for k in res.source.key if k not in columns]
    since = _last_version(hub, caller, access, resource_id, table_id(store)) if incremental else None
    table = None
    if since is not None:
        table = _changes(res, store, since, version, columns + keys)
    if table is None:
        since = None
    extract_id = str(uuid.uuid4())
    folder = f"extracts/{caller.department}/{resource_id}/{extract_id}"
    if table is not None:
        batches: Iterable[pa.RecordBatch] = table.to_batches()
        source_schema = table.schema
    else:
        dataset = store.to_pyarrow_dataset()
        batches = dataset.to_batches(
            columns=columns + keys, batch_size=EXTRACT_BATCH_ROWS, batch_readahead=1, fragment_readahead=1
        )
        source_schema = pa.schema([dataset.schema.field(c) for c in columns + keys])
    try:  # no half-written extract is left behind: its files go if anything fails before it is recorded
        written = _write_extract(hub, res, f"{folder}/data.parquet", batches, source_schema, columns)
        extract = _record_extract(hub, caller, access, res, folder, extract_id, store, since, written, columns)
    except BaseException:
        hub.store.delete_dir(folder)
        raise
    audit.record(
        hub,
        "extract",
        caller,
        resource_id,
        grant_id=access.grant_id,
        purpose=access.purpose,
        result="incremental" if since is not None else "full",
        response_bytes=written.bytes,
        detail=f"extract {extract_id}; {written.rows} rows; store v{version}",
    )
    return issue_url(hub, caller, extract)


def _last_version(hub: Hub, caller: Caller, access: Access, resource_id: str, identity: str) -> int | None:
    """The store version of this consumer's last extract under this grant, if it was of the same table: a
    store deleted and written anew restarts its versions, so counting changes from there would be wrong
    (the extract is then a full one)."""
    with hub.db() as s:
        last = s.execute(
            select(Extract.store_version, Extract.store_table_id)
            .where(
                Extract.consumer_id == caller.id,
                Extract.grant_id == access.grant_id,
                Extract.resource_id == resource_id,
            )
            .order_by(Extract.created_at.desc())
            .limit(1)
        ).first()
    if last is None or last[1] not in (None, identity):  # None: recorded before table ids were
        return None
    return int(last[0])


def _changes(res: Resource, store, since: int, version: int, columns: list[str]) -> pa.Table | None:  # type: ignore[no-untyped-def]
    """The latest state of each row changed after `since` (`_change_type` upsert or delete), in Arrow
    kernels however many rows changed; None when the change data cannot be read."""
    schema = pa.schema(
        [pa.field(c, res.field(c).arrow_type) for c in columns] + [pa.field("_change_type", pa.string())]
    )
    if since >= version:
        return schema.empty_table()
    try:
        raw = pa.table(
            store.load_cdf(
                starting_version=since + 1,
                ending_version=version,
                columns=[*columns, "_change_type", "_commit_version"],
            ).read_all()
        )
    except (DeltaError, OSError, ValueError):
        return None
    types = {f.name: f.type for f in schema} | {"_commit_version": pa.int64()}
    raw = raw.cast(pa.schema([pa.field(n, types[n]) for n in raw.column_names]))  # string views as plain strings
    raw = raw.filter(pc.not_equal(raw.column("_change_type"), "update_preimage"))
    raw = raw.append_column("_row", pa.array(range(raw.num_rows), pa.int64()))
    ordered = raw.sort_by([("_commit_version", "ascending"), ("_row", "ascending")])
    last = ordered.group_by(res.source.key, use_threads=False).aggregate([("_row", "last")])
    rows = last.column("_row_last")
    latest = raw.take(pc.take(rows, pc.sort_indices(rows)))  # each key's last change, in the order they came
    kind = pc.if_else(pc.equal(latest.column("_change_type"), "delete"), "delete", "upsert")
    return latest.select(columns).append_column("_change_type", kind)


def get(hub: Hub, caller: Caller, extract_id: str) -> Extract:
    """An extract of this consumer's (others' extracts look absent); Gone once its files were removed."""
    with hub.db() as s:
        extract = s.get(Extract, extract_id)
    if extract is None or extract.consumer_id != caller.id:
        raise NotFound(f"no extract {extract_id}")
    if extract.removed_at is not None:
        raise Gone(_removed(extract))
    return extract


EXTRACTS = Workflow("extract", Extract, (), consumer=Extract.consumer_id, resource=Extract.resource_id)


def list_extracts(
    hub: Hub,
    viewer: Caller,
    *,
    resource_id: str | None = None,
    consumer_id: int | None = None,
    limit: int | None = None,
    before: str | None = None,
) -> Page[Extract]:
    """The extracts the viewer may see, newest first: a consumer its own, a provider department those of its
    resources (who copied its data, and when), the platform office every one. Removed extracts stay listed
    with `removed_at`. A page is `limit` extracts made before the extract `before` (ids are random, so the
    order is by creation time, then id)."""
    q = EXTRACTS.visible(hub, viewer)
    if resource_id is not None:
        q = q.where(Extract.resource_id == resource_id)
    if consumer_id is not None:
        q = q.where(Extract.consumer_id == consumer_id)
    with hub.db() as s:
        try:
            return latest_first(s, q, Extract.created_at, Extract.id, limit, before, what="extract")
        except LookupError as exc:
            raise GrantError(str(exc)) from None


def _removed(extract: Extract) -> str:
    assert extract.removed_at is not None
    return (
        f"extract {extract.id} was removed on {china_time(extract.removed_at)} (China time): its grant ended or it "
        f"was older than the hub keeps extracts; POST /bulk/{extract.resource_id} makes a new one"
    )


def prune(hub: Hub, now: datetime | None = None) -> dict[str, int]:
    """Delete from the object store the files of every extract whose grant has ended (revoked or expired),
    and of every extract older than `extract_keep_days`: masked personal data is not kept longer than
    it serves. The rows stay (the audit trail names them, and an incremental extract counts from their
    versions). Each removal is audited; returns how many were removed, by reason."""
    now = now or utcnow()
    aged = now - timedelta(days=hub.settings.extract_keep_days)
    with hub.db() as s:
        candidates = s.execute(
            select(Extract, Grant)
            .join(Grant, Grant.id == Extract.grant_id)
            .where(
                Extract.removed_at.is_(None),
                or_(Grant.revoked_at.is_not(None), Grant.valid_until <= now, Extract.created_at < aged),
            )
        ).all()
    removed = {"grant_ended": 0, "aged": 0}
    for extract, grant in candidates:
        why = "grant_ended" if grant.revoked_at is not None or grant.valid_until <= now else "aged"
        hub.store.delete_dir(extract.path.rsplit("/", 1)[0])  # the data and its sealed manifest
        with hub.db() as s:
            row = s.get(Extract, extract.id)
            assert row is not None
            row.removed_at = now
        audit.record(
            hub,
            "extract_remove",
            None,
            extract.resource_id,
            grant_id=extract.grant_id,
            result=why,
            detail=f"extract {extract.id}; consumer {extract.consumer_id}",
        )
        removed[why] += 1
    return removed


def issue_url(hub: Hub, caller: Caller, extract: Extract, access: Access | None = None) -> Issued:
    """A short-lived download URL for an extract; its issuance and expiry go to the audit chain."""
    minutes = hub.settings.extract_url_minutes
    expires = utcnow() + timedelta(minutes=minutes)
    if hub.store.scheme == "s3":
        url = _presigned(hub, extract.path, timedelta(minutes=minutes))
    else:
        query = urlencode({"expires": int(expires.timestamp()), "sig": sign(hub, extract.id, int(expires.timestamp()))})
        url = f"{hub.settings.public_url.rstrip('/')}/bulk/extracts/{extract.id}/download?{query}"
    audit.record(
        hub,
        "download_url",
        caller,
        extract.resource_id,
        grant_id=extract.grant_id,
        result="issued",
        detail=f"extract {extract.id}; expires {expires.isoformat(timespec='seconds')}",
    )
    return Issued(extract, url, expires)


def _presigned(hub: Hub, relative: str, life: timedelta) -> str:
    from minio import Minio

    s = hub.settings
    # Signing is offline (the region is given): the link names the address consumers reach the store at.
    endpoint = urlparse(s.s3_public_endpoint or s.s3_endpoint or "https://s3.amazonaws.com")
    client = Minio(
        endpoint.netloc,
        access_key=s.s3_access_key.get_secret_value() or None,
        secret_key=s.s3_secret_key.get_secret_value() or None,
        secure=endpoint.scheme == "https",
        region=s.s3_region,
    )
    bucket, _, obj = hub.store.path(relative).partition("/")
    return client.presigned_get_object(bucket, obj, expires=life)


def _signing_key(hub: Hub) -> bytes:
    configured = hub.settings.url_signing_key.get_secret_value()
    if configured:
        return configured.encode()
    path = hub.settings.home / "url_signing.key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_hex(32))
        path.chmod(0o600)
    return path.read_text().strip().encode()


def sign(hub: Hub, extract_id: str, expires: int) -> str:
    """The HMAC of a local download link."""
    return hmac.new(_signing_key(hub), f"{extract_id}:{expires}".encode(), hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class Opened:
    """An extract a signed link opened: what to audit of it, and where its file is (read in spans by the
    download route, never whole into memory)."""

    extract_id: str
    resource_id: str
    grant_id: int
    path: str
    size: int


def open_signed(hub: Hub, extract_id: str, expires: int, sig: str, *, audit_refusal: bool = True) -> Opened:
    """The extract, if the link is genuine and unexpired and its grant lives; Forbidden otherwise.

    A refused link is audited here (`download`, `denied`: probing for extracts shows in the trail),
    unless the caller already recorded enough refusals from that address (`audit_refusal=False`);
    a served one is audited by the caller with `downloaded`, which knows how many bytes it sent."""
    with hub.db() as s:
        extract = s.get(Extract, extract_id)
        grant = None if extract is None else s.get(Grant, extract.grant_id)
    reason = None
    if not hmac.compare_digest(sign(hub, extract_id, expires).encode(), sig.encode("utf-8", "replace")):
        reason = "this download link is not valid"
    elif utcnow().timestamp() > expires:
        reason = f"this download link has expired; ask GET /bulk/extracts/{extract_id} for a new one"
    elif extract is None or grant is None:
        reason = "this download link is not valid"
    elif grant.revoked_at is not None or grant.valid_until < utcnow():
        reason = "the grant behind this extract has ended"
    elif extract.removed_at is not None:
        reason = _removed(extract)
    if reason is not None or extract is None:
        if audit_refusal:
            audit.record(
                hub,
                "download",
                None,
                None if extract is None else extract.resource_id,
                grant_id=None if extract is None else extract.grant_id,
                result="denied",
                detail=f"extract {extract_id[:64]}: {reason}",
            )
        raise Forbidden(reason or "this download link is not valid")
    return Opened(extract.id, extract.resource_id, extract.grant_id, extract.path, hub.store.size(extract.path))


def downloaded(hub: Hub, opened: Opened, sent: int, part: bool = False) -> None:
    """Audit a download a signed link served: `sent` bytes, the whole extract or a byte range of it."""
    audit.record(
        hub,
        "download",
        None,
        opened.resource_id,
        grant_id=opened.grant_id,
        result="partial" if part else "ok",
        response_bytes=sent,
        detail=f"extract {opened.extract_id}",
    )
