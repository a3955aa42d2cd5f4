"""Offline file drops (CSV or XLSX, UTF-8 or GBK) for departments that have no front-end database link."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from datetime import date, datetime, time
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv

from connectors.base import SourceColumn
from connectors.errors import SchemaDrift, SourceMissing, SourceUnreachable

log = logging.getLogger(__name__)


def _cell_text(v: object) -> str | None:
    """A spreadsheet cell as the text a CSV would hold: dates as ISO dates, midnight datetimes as dates."""
    if v is None or v == "":
        return None
    if isinstance(v, datetime):
        return v.date().isoformat() if v.time() == time(0) and v.tzinfo is None else v.isoformat(sep=" ")
    if isinstance(v, date):
        return v.isoformat()
    return str(v)


class FileDropSource:
    """The newest file matching a glob in the drop folder, read as text columns in bounded batches."""

    def __init__(
        self, root: Path, pattern: str, *, encoding: str = "utf-8", batch_rows: int = 100_000, label: str = ""
    ) -> None:
        self.root = Path(root)
        self.pattern = pattern
        self.encoding = encoding
        self.batch_rows = batch_rows
        self.rows_read = 0
        self.description = label or f"file drop {pattern}"
        self.overlap_writes = False

    def current_file(self) -> Path:
        """The delivery to read: the last file in name order (deliveries carry their date in the name)."""
        if not self.root.is_dir():
            raise SourceUnreachable(f"{self.description}: drop folder {self.root} does not exist")
        files = sorted(p for p in self.root.glob(self.pattern) if p.is_file())
        if not files:
            raise SourceMissing(f"{self.description}: no file matches {self.pattern!r} in {self.root}")
        return files[-1]

    def columns(self) -> dict[str, SourceColumn]:
        """The header of the current delivery."""
        header = self._header(self.current_file())
        return {c: SourceColumn(c, "string", "text") for c in header}

    def _header(self, path: Path) -> list[str]:
        if path.suffix.lower() == ".xlsx":
            return [str(c) for c in next(self._xlsx_rows(path), [])]
        with path.open(encoding=self.encoding, newline="") as fh:
            try:
                first = fh.readline()
            except UnicodeDecodeError as exc:
                raise SchemaDrift(f"{self.description}: {path.name} is not {self.encoding}: {exc.reason}") from exc
        return [c.strip().lstrip("\ufeff") for c in first.rstrip("\r\n").split(",")]

    def read(
        self, columns: Sequence[str], incremental_column: str | None = None, since: object = None
    ) -> Iterator[pa.RecordBatch]:
        """Stream the chosen columns of the current delivery as text."""
        path = self.current_file()
        if path.suffix.lower() == ".xlsx":
            yield from self._read_xlsx(path, columns)
        else:
            yield from self._read_csv(path, columns)

    def read_keys(self, key: Sequence[str]) -> Iterator[pa.RecordBatch]:
        """Stream the key columns of the current delivery."""
        yield from self.read(key)

    def _read_csv(self, path: Path, columns: Sequence[str]) -> Iterator[pa.RecordBatch]:
        header = self._header(path)
        reader = pacsv.open_csv(
            path,
            read_options=pacsv.ReadOptions(
                encoding=self.encoding, block_size=8 << 20, column_names=header, skip_rows=1
            ),
            convert_options=pacsv.ConvertOptions(
                include_columns=list(columns),
                column_types={c: pa.string() for c in header},
                strings_can_be_null=True,
                quoted_strings_can_be_null=False,
            ),
        )
        try:
            for batch in reader:
                if batch.num_rows:
                    self.rows_read += batch.num_rows
                    yield batch
        except pa.ArrowInvalid as exc:
            raise SchemaDrift(f"{self.description}: {path.name} cannot be parsed: {exc}") from exc

    def _xlsx_rows(self, path: Path) -> Iterator[tuple]:
        import openpyxl

        wb = openpyxl.load_workbook(path, read_only=True, data_only=True)
        try:
            yield from wb.worksheets[0].iter_rows(values_only=True)
        finally:
            wb.close()

    def _read_xlsx(self, path: Path, columns: Sequence[str]) -> Iterator[pa.RecordBatch]:
        rows = self._xlsx_rows(path)
        header = [str(c) for c in next(rows, [])]
        idx = [header.index(c) for c in columns]
        schema = pa.schema([pa.field(c, pa.string()) for c in columns])
        buf: list[list[str | None]] = [[] for _ in columns]

        def flush() -> pa.RecordBatch:
            batch = pa.RecordBatch.from_arrays([pa.array(b, pa.string()) for b in buf], schema=schema)
            for b in buf:
                b.clear()
            self.rows_read += batch.num_rows
            return batch

        for row in rows:
            for out, i in zip(buf, idx, strict=True):
                v = row[i] if i < len(row) else None
                out.append(_cell_text(v))
            if len(buf[0]) >= self.batch_rows:
                yield flush()
        if buf[0]:
            yield flush()
