"""How the gate names a landed row and a row's key, for the gate and for the notices that cite them.

Kept apart from `gate` so that what reads quarantine (notices, the API) does not import Great
Expectations, which takes seconds and hundreds of megabytes.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

ROW = "_row"  # the row's position in the landing file
UNIQUE_RULE = "expect_compound_columns_to_be_unique"


def key_strings(table: pa.Table, cols: list[str]) -> list[tuple]:
    """Each row's key columns as text."""
    arrays = [pc.cast(table.column(c), pa.string()).to_pylist() for c in cols]
    return list(zip(*arrays, strict=True))
