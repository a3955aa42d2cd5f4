"""The one small interface every connector implements."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

import pyarrow as pa

# Which source type families may feed a declared catalogue type without changing its meaning. Text may
# feed a date or a timestamp: the gate reads the usual ways of writing them and quarantines the rest.
TYPE_FAMILIES: dict[str, set[str]] = {
    "string": {"string"},
    "integer": {"integer"},
    "decimal": {"decimal", "integer"},
    "float": {"float", "decimal", "integer"},
    "boolean": {"boolean", "integer"},
    "date": {"date", "string"},
    "timestamp": {"timestamp", "string"},
    "timestamptz": {"timestamp", "string"},
}


@dataclass(frozen=True)
class SourceColumn:
    """A column as the source reports it: its name, its type family and the source's own type name."""

    name: str
    family: str
    native: str


class Source(Protocol):
    """A place rows come from. Implementations raise SourceUnreachable, SourceMissing or SchemaDrift."""

    description: str
    overlap_writes: bool  # whether its reads release the GIL, so landing can encode on another thread

    def columns(self) -> dict[str, SourceColumn]:
        """The columns the source has now, by name."""
        ...

    def read(
        self, columns: Sequence[str], incremental_column: str | None = None, since: object = None
    ) -> Iterator[pa.RecordBatch]:
        """Stream the rows, all of them or those whose incremental column is after `since`."""
        ...

    def read_keys(self, key: Sequence[str]) -> Iterator[pa.RecordBatch]:
        """Stream only the key columns of every row, for delete detection."""
        ...
