"""Cast landed columns to the catalogue's declared types, naming every cell that does not fit."""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from sharehub.catalogue.models import FieldSpec
from sharehub.dates import dates_from_texts


@dataclass(frozen=True)
class CastFailure:
    """Rows (by position in the batch) whose value could not become the declared type."""

    field: str
    rows: list[int]
    reason: str


def _vectorised(arr: pa.Array, spec: FieldSpec, tz: str) -> pa.Array:
    target = spec.arrow_type
    if arr.type == target:
        return arr
    if pa.types.is_timestamp(target) and target.tz:
        if pa.types.is_timestamp(arr.type) and arr.type.tz is None:
            # A zone-less source timestamp is local time of the source's declared zone.
            return pc.assume_timezone(arr, tz, ambiguous="earliest", nonexistent="earliest").cast(target)
        if pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type):
            try:
                return pc.cast(arr, target)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                naive = pc.cast(arr, pa.timestamp("us"))
                return pc.assume_timezone(naive, tz, ambiguous="earliest", nonexistent="earliest").cast(target)
    if pa.types.is_date(target) and (pa.types.is_timestamp(arr.type)):
        return pc.cast(arr, target)
    if pa.types.is_string(target) and not pa.types.is_string(arr.type):
        return pc.cast(arr, target)
    return pc.cast(arr, target, safe=True)


def _is_text(t: pa.DataType) -> bool:
    return pa.types.is_string(t) or pa.types.is_large_string(t)


def conform_column(arr: pa.Array, spec: FieldSpec, tz: str) -> tuple[pa.Array, CastFailure | None]:
    """The column in its declared type; cells that cannot be cast become null and are reported."""
    if _is_text(arr.type) and not pa.types.is_string(spec.arrow_type):
        # Blank text in an untyped source means "no value", not a malformed one.
        arr = pc.if_else(pc.equal(pc.utf8_trim_whitespace(arr), ""), pa.scalar(None, arr.type), arr)
    reason = f"{spec.name}: value is not a valid {spec.type}"
    if pa.types.is_date(spec.arrow_type) and _is_text(arr.type):
        try:
            return pc.cast(arr, spec.arrow_type), None
        except pa.ArrowInvalid:  # not all ISO: the other ways departments write dates, or no date at all
            dates = dates_from_texts(arr)
        failed = pc.indices_nonzero(pc.and_(pc.is_null(dates), pc.is_valid(arr))).to_pylist()
        return dates, (CastFailure(spec.name, failed, reason) if failed else None)
    try:
        return _vectorised(arr, spec, tz), None
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
        pass
    values: list[object] = []
    bad: list[int] = []
    for i in range(len(arr)):
        cell = arr.slice(i, 1)
        if cell.null_count:
            values.append(None)
            continue
        try:
            values.append(_vectorised(cell, spec, tz)[0].as_py())
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
            values.append(None)
            bad.append(i)
    return pa.array(values, spec.arrow_type), (CastFailure(spec.name, bad, reason) if bad else None)
