"""A landing writer that can encode Parquet on a background thread while the source keeps reading.

Overlapping pays off when the reader releases the GIL while it works (DuckDB's scanners); ConnectorX
produces its batches under the GIL, so for it the writer runs inline. The queue is short, so memory
stays bounded to a few batches whatever the table's size.
"""

from __future__ import annotations

import queue
import threading

import pyarrow as pa
import pyarrow.parquet as pq

from sharehub.objectstore import ObjectStore

_DONE = object()


class LandingWriter:
    """Write record batches to one Parquet file in the object store, overlapping I/O with extraction."""

    def __init__(self, store: ObjectStore, relative: str, *, background: bool, depth: int = 3) -> None:
        self.store = store
        self.relative = relative
        self.rows = 0
        self._writer: pq.ParquetWriter | None = None
        self._error: BaseException | None = None
        self._queue: queue.Queue[object] = queue.Queue(maxsize=depth)
        self._thread: threading.Thread | None = None
        if background:
            self._thread = threading.Thread(target=self._drain, name=f"landing:{relative}", daemon=True)
            self._thread.start()

    def _put(self, item: pa.RecordBatch | pa.Schema) -> None:
        batch = item if isinstance(item, pa.RecordBatch) else None
        if self._writer is None:
            self._writer = self.store.parquet_writer(self.relative, batch.schema if batch is not None else item)
        if batch is not None:
            self._writer.write_batch(batch)

    def _drain(self) -> None:
        while (item := self._queue.get()) is not _DONE:
            if self._error is not None:
                continue  # keep draining so the producer never blocks
            try:
                self._put(item)  # type: ignore[arg-type]
            except BaseException as exc:  # noqa: BLE001 - handed to the producer in close()
                self._error = exc

    def write(self, batch: pa.RecordBatch) -> None:
        """Write (or queue) a batch; raises at once if the writer thread has already failed."""
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
