"""The upper-level platform as a source (Zhejiang 14: the province pushes shared data down to city and
county platforms). The lower platform holds a standing bulk grant upstairs; each read asks the upper hub
for a fresh extract of the granted columns over its API, downloads it, checks its SHA-256, and streams its
rows from a temporary file. The lower platform then lands them through its own gate, like any
department's data."""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Iterator, Sequence
from typing import IO

import httpx
import pyarrow as pa
import pyarrow.parquet as pq

from connectors.base import SourceColumn
from connectors.errors import SchemaDrift, SourceMissing, SourceUnreachable


def _family(t: pa.DataType) -> str:
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t):
        return "string"
    if pa.types.is_integer(t):
        return "integer"
    if pa.types.is_decimal(t):
        return "decimal"
    if pa.types.is_floating(t):
        return "float"
    if pa.types.is_boolean(t):
        return "boolean"
    if pa.types.is_date(t):
        return "date"
    if pa.types.is_timestamp(t):
        return "timestamp"
    return str(t)


class UpstreamSource:
    """One upper-level resource, read as a full extract under the lower platform's bulk grant."""

    def __init__(
        self, url: str, key: str, resource_id: str, *, timeout: float = 60.0, batch_rows: int = 100_000, label: str = ""
    ) -> None:
        self.url = url.rstrip("/")
        self._headers = {"Authorization": f"Bearer {key}"}
        self.resource_id = resource_id
        self.timeout = timeout
        self.batch_rows = batch_rows
        self.description = label or f"upper-level resource {resource_id}"
        self.overlap_writes = False
        self._spool: IO[bytes] | None = None
        self._file: pq.ParquetFile | None = None

    def _fetch(self) -> pq.ParquetFile:
        """The extract, made and downloaded once per source (one run) into a temporary file, its SHA-256
        checked on the way: a large extract streams through, never whole in memory."""
        if self._file is not None:
            return self._file
        where = f"{self.url}/bulk/{self.resource_id}"
        digest = hashlib.sha256()
        spool = tempfile.TemporaryFile(prefix="sharehub-upstream-")
        try:
            with httpx.Client(timeout=self.timeout, follow_redirects=True) as client:
                made = client.post(where, json={}, headers=self._headers)
                if made.status_code in (401, 403, 404):
                    raise SourceMissing(f"{self.description}: the upper level refuses the extract: {_detail(made)}")
                if made.status_code >= 400:
                    raise SourceUnreachable(f"{self.description}: the upper level answered {_detail(made)}")
                extract = made.json()
                with client.stream("GET", extract["url"]) as download:
                    download.raise_for_status()
                    for chunk in download.iter_bytes(1 << 20):
                        digest.update(chunk)
                        spool.write(chunk)
        except httpx.HTTPError as exc:
            spool.close()
            raise SourceUnreachable(f"{self.description}: {self.url} did not answer: {type(exc).__name__}") from None
        except BaseException:
            spool.close()
            raise
        if digest.hexdigest() != extract["sha256"]:
            spool.close()
            raise SourceUnreachable(f"{self.description}: extract {extract['id']} arrived damaged (SHA-256 differs)")
        spool.seek(0)
        self._spool, self._file = spool, pq.ParquetFile(spool)
        return self._file

    def columns(self) -> dict[str, SourceColumn]:
        schema = self._fetch().schema_arrow
        return {f.name: SourceColumn(f.name, _family(f.type), str(f.type)) for f in schema}

    def read(
        self, columns: Sequence[str], incremental_column: str | None = None, since: object = None
    ) -> Iterator[pa.RecordBatch]:
        if incremental_column is not None:
            raise SchemaDrift(f"{self.description}: an upper-level resource is pushed whole: declare mode snapshot")
        yield from self._fetch().iter_batches(batch_size=self.batch_rows, columns=list(columns))

    def read_keys(self, key: Sequence[str]) -> Iterator[pa.RecordBatch]:
        yield from self._fetch().iter_batches(batch_size=self.batch_rows, columns=list(key))

    def close(self) -> None:
        """Let the downloaded extract go (it is a temporary file: the system removes it once closed)."""
        if self._spool is not None:
            self._spool.close()
        self._spool, self._file = None, None


def _detail(response: httpx.Response) -> str:
    try:
        return f"HTTP {response.status_code}: {response.json().get('detail')}"
    except ValueError:
        return f"HTTP {response.status_code}"
