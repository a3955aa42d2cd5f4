"""The same run with the object store on a real S3 server (SeaweedFS)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pyarrow.fs as pafs
import pytest
from deltalake import DeltaTable

from sharehub.demo.build import build_sources
from sharehub.pipeline import paths
from sharehub.pipeline.run import run_resource
from tests.support.seaweed import S3Server, seaweed


@pytest.fixture(scope="module")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    with seaweed(tmp_path_factory.mktemp("seaweed") / "data") as server:
        yield server


def test_run_writes_landing_quarantine_and_delta_to_s3(s3: S3Server, make_hub, tmp_path: Path) -> None:
    hub = make_hub(
        storage_url="s3://sharehub-lake/city",
        s3_endpoint=s3.endpoint,
        s3_access_key=s3.access_key,
        s3_secret_key=s3.secret_key,
    )
    hub.store.ensure_bucket()
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
