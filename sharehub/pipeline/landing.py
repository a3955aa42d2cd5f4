"""A landing writer that can encode Parquet on a background thread while the source keeps reading.

Overlapping pays off when the reader releases the GIL while it works (DuckDB's scanners); ConnectorX
produces its batches under the GIL, so for it the writer runs inline. The queue is short, so memory
stays bounded to a few batches whatever the table's size.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator
from typing import TypeVar

import pyarrow as pa
import pyarrow.parquet as pq

from sharehub.objectstore import ObjectStore

_DONE = object()
T = TypeVar("T")


class LandingWriter:
    """Write record batches (or tables) to one Parquet file in the object store, overlapping I/O with extraction."""

    def __init__(
        self, store: ObjectStore, relative: str, *, background: bool, depth: int = 3, compression: str = "zstd"
    ) -> None:
        self.store = store
        self.relative = relative
        self.compression = compression
        self.rows = 0
        self._writer: pq.ParquetWriter | None = None
        self._error: BaseException | None = None
        self._queue: queue.Queue[object] = queue.Queue(maxsize=depth)
        self._thread: threading.Thread | None = None
        if background:
            self._thread = threading.Thread(target=self._drain, name=f"landing:{relative}", daemon=True)
            self._thread.start()

    def _put(self, item: pa.RecordBatch | pa.Table | pa.Schema) -> None:
        data = None if isinstance(item, pa.Schema) else item
        if self._writer is None:
            schema = item if data is None else data.schema
            self._writer = self.store.parquet_writer(self.relative, schema, self.compression)
        if data is not None:
            self._writer.write(data)

    def _drain(self) -> None:
        while (item := self._queue.get()) is not _DONE:
            if self._error is not None:
                continue  # keep draining so the producer never blocks
            try:
                self._put(item)  # type: ignore[arg-type]
            except BaseException as exc:  # noqa: BLE001 - handed to the producer in close()
                self._error = exc

    def write(self, batch: pa.RecordBatch | pa.Table) -> None:
        """Write (or queue) a batch or table; raises at once if the writer thread has already failed."""
        if self._error is not None:
            raise self._error
        if self._thread is None:
            self._put(batch)
        else:
            self._queue.put(batch)
        self.rows += batch.num_rows

    def _finish(self) -> None:
        if self._thread is not None:
            self._queue.put(_DONE)
            self._thread.join()
        if self._writer is not None:
            self._writer.close()

    def close(self, empty_schema: pa.Schema) -> int:
        """Finish the file (an empty one with `empty_schema` if no batch came); return the rows written."""
        if self.rows == 0:
            if self._thread is None:
                self._put(empty_schema)
            else:
                self._queue.put(empty_schema)
        self._finish()
        if self._error is not None:
            raise self._error
        return self.rows

    def abort(self) -> None:
        """Stop after a failure elsewhere; the partial file is removed by the caller."""
        self._error = self._error or RuntimeError("aborted")
        self._finish()


def prefetch(items: Iterable[T], depth: int = 1) -> Iterator[T]:
    """Yield `items`, producing up to `depth` ahead on a background thread (for I/O that frees the GIL)."""
    q: queue.Queue[object] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in items:
                if stop.is_set():
                    return
                q.put(item)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the consumer
            q.put(_Failure(exc))
        q.put(_DONE)

    thread = threading.Thread(target=produce, name="prefetch", daemon=True)
    thread.start()
    try:
        while (item := q.get()) is not _DONE:
            if isinstance(item, _Failure):
                raise item.exc
            yield item  # type: ignore[misc]
    finally:
        stop.set()
        while thread.is_alive():  # unblock a producer waiting on a full queue
            try:
                q.get_nowait()
            except queue.Empty:
                thread.join(0.05)


class _Failure:
    def __init__(self, exc: BaseException) -> None:
        self.exc = exc
