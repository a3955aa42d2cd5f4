"""The same run with the object store on a real S3 server (SeaweedFS)."""

from __future__ import annotations

import hashlib
import io
import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import pyarrow.fs as pafs
import pyarrow.parquet as pq
import pytest
from deltalake import DeltaTable

from sharehub.access.consumers import Caller, add_consumer
from sharehub.access.grants import active_grant, apply
from sharehub.demo.build import build_sources
from sharehub.pipeline import paths
from sharehub.pipeline.run import run_resource
from sharehub.serving.bulk import create, prune
from tests.support.seaweed import S3Server, seaweed

pytestmark = pytest.mark.slow  # a SeaweedFS server


@pytest.fixture(scope="module")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    with seaweed(tmp_path_factory.mktemp("seaweed") / "data") as server:
        yield server


def _hub_on(s3: S3Server, make_hub, bucket: str, **settings: object):  # type: ignore[no-untyped-def]
    """A hub whose object store is `s3://<bucket>/city` on the test server, its bucket made."""
    hub = make_hub(
        storage_url=f"s3://{bucket}/city",
        s3_endpoint=s3.endpoint,
        s3_access_key=s3.access_key,
        s3_secret_key=s3.secret_key,
        **settings,
    )
    hub.store.ensure_bucket()
    return hub


def test_run_writes_landing_quarantine_and_delta_to_s3(s3: S3Server, make_hub, tmp_path: Path) -> None:
    hub = _hub_on(s3, make_hub, "sharehub-lake")
    build_sources(hub.settings, hub.catalogue, 1_000, 200)
    first = run_resource(hub, "gongan.population")
    assert first.status == "succeeded" and first.quarantined > 0
    for rel in (paths.landing("gongan.population", first.run_id), paths.quarantine("gongan.population", first.run_id)):
        assert hub.store.fs.get_file_info(hub.store.path(rel)).type == pafs.FileType.File, rel
    res = hub.catalogue.resource("gongan.population")
    table = DeltaTable(hub.store.uri(res.store_path), storage_options=hub.store.delta_options())
    assert table.to_pyarrow_table().num_rows == first.passed
    assert hub.store.uri(res.store_path).startswith("s3://sharehub-lake/city/stores/base/population/")
    again = run_resource(hub, "gongan.population")
    assert (again.inserted, again.updated) == (0, 0)
    # Staging is transient: nothing is left of it once the run has committed.
    assert hub.store.list(f"staging/{res.id}") == []


def test_bulk_extract_on_s3_is_a_presigned_link_to_the_public_endpoint(s3: S3Server, make_hub) -> None:
    """A bulk extract lands in S3 with its manifest; the presigned link names the public address and works."""
    public = s3.endpoint.replace("127.0.0.1", "localhost")
    hub = _hub_on(s3, make_hub, "sharehub-bulk", s3_public_endpoint=public)
    build_sources(hub.settings, hub.catalogue, 600, 120)
    run_resource(hub, "scjg.legal_entity")
    made = add_consumer(hub, "招投标核验", "swj", "consumer")[0]
    caller = Caller(made.id, made.name, made.department, "consumer")
    until = datetime.now(UTC) + timedelta(days=30)
    apply(hub, caller, "scjg.legal_entity", ["uscc", "name", "status"], ["bulk"], "招投标资格核验", until)
    issued = create(hub, caller, active_grant(hub, caller, "scjg.legal_entity", "bulk"), "scjg.legal_entity", False)
    assert urlsplit(issued.url).netloc == urlsplit(public).netloc and "X-Amz-Signature" in issued.url
    with urllib.request.urlopen(issued.url, timeout=30) as response:
        data = response.read()
    assert hashlib.sha256(data).hexdigest() == issued.extract.sha256
    table = pq.read_table(io.BytesIO(data))
    assert table.num_rows == issued.extract.rows > 0 and set(table.column_names) == {"uscc", "name", "status"}

    # The open dataset of the same store, written to S3 for the open-data portal, under the seal.
    from sharehub.opendata import publish
    from sharehub.seal import public_pem, verify

    (opened,) = publish(hub)
    folder = "open/scjg.legal_entity"
    assert opened.status == "published" and hub.store.list(folder) == [
        f"{folder}/manifest.json",
        f"{folder}/v0.parquet",
    ]
    manifest = json.loads(hub.store.read_bytes(f"{folder}/manifest.json"))
    assert (
        verify(manifest, public_pem(hub)) is None and hub.store.sha256(f"{folder}/v0.parquet")[0] == manifest["sha256"]
    )
    manifest_path = issued.extract.path.rsplit("/", 1)[0] + "/manifest.json"
    with hub.store.fs.open_input_stream(hub.store.path(manifest_path)) as stream:
        manifest = json.loads(stream.read())
    assert manifest["rows"] == table.num_rows and manifest["sha256"] == issued.extract.sha256

    # Kept past its days, the extract leaves S3 with its manifest, and its presigned link stops working.
    later = datetime.now(UTC) + timedelta(days=hub.settings.extract_keep_days + 1)
    assert prune(hub, later) == {"grant_ended": 0, "aged": 1}
    assert not hub.store.exists(issued.extract.path) and not hub.store.exists(manifest_path)
    with pytest.raises(urllib.error.HTTPError):
        urllib.request.urlopen(issued.url, timeout=30)


def test_a_bulletin_is_published_to_and_read_back_from_s3(s3: S3Server, make_hub) -> None:
    from sharehub.reporting import bulletin
    from sharehub.workdays import CHINA

    hub = _hub_on(s3, make_hub, "sharehub-reports")
    assert bulletin.published(hub) == []
    with pytest.raises(LookupError, match="no bulletin published for 2026-10"):
        bulletin.read(hub, "2026-10")
    path, made = bulletin.publish(hub, bulletin.month_of("2026-10"), now=datetime(2026, 11, 1, 9, tzinfo=CHINA))
    assert path == "bulletins/2026-10.json" and made["complete"]
    assert bulletin.published(hub) == ["2026-10"] and bulletin.read(hub, "2026-10") == made


@pytest.mark.parametrize("where", ["local", "s3"])
def test_a_file_is_read_back_in_spans_of_bounded_size(where: str, s3: S3Server, make_hub) -> None:
    """How the download route serves an extract: any byte range, read in chunks, never the whole file."""
    hub = (
        make_hub() if where == "local" else _hub_on(s3, make_hub, "sharehub-reports")
    )  # a new bucket costs SeaweedFS volumes
    data = bytes(range(256)) * 40 + b"tail"
    hub.store.write_bytes("extracts/t/data.bin", data)
    assert hub.store.size("extracts/t/data.bin") == len(data)
    for start, end in [(0, len(data) - 1), (5, 5), (100, 9000), (len(data) - 4, len(data) - 1)]:
        pieces = list(hub.store.read_span("extracts/t/data.bin", start, end, chunk=1000))
        assert b"".join(pieces) == data[start : end + 1]
        assert max(len(p) for p in pieces) <= 1000
