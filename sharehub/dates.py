"""Dates as departments write them: 1990-01-02, 1990/1/2, 1990.01.02, 19900102, 1990年1月2日.

One reader serves the gate (a text column declared `date`), verification (a claimed date) and the
consistency check (a date compared with a text copy of it), so the three agree on what a date is.
A trailing midnight time (`1990-01-02 00:00:00`, as a DATETIME column exported as text reads) is
accepted; any other time, an impossible day such as 2023-02-30, or any other form is not a date.
"""

from __future__ import annotations

import re
from datetime import date, datetime

import pyarrow as pa
import pyarrow.compute as pc

_FULL_WIDTH_DIGITS = str.maketrans("０１２３４５６７８９－／．：", "0123456789-/.:")
_MIDNIGHT = r"(?:T?00:00(?::00(?:\.0+)?)?)?"
_SEPARATED = re.compile(r"(\d{4})[-/.年](\d{1,2})[-/.月](\d{1,2})日?" + _MIDNIGHT)
_COMPACT = re.compile(r"(\d{4})(\d{2})(\d{2})" + _MIDNIGHT)


def date_from_text(text: object) -> date | None:
    """The date a text means, or None when it is no date in any accepted form."""
    if isinstance(text, datetime):
        return text.date()
    if isinstance(text, date):
        return text
    if text is None:
        return None
    if type(text) is str and len(text) == 10 and text[4] == text[7] == "-":  # ISO, the usual case: fast
        try:
            return date.fromisoformat(text)
        except ValueError:
            pass
    plain = "".join(str(text).translate(_FULL_WIDTH_DIGITS).split())
    m = _SEPARATED.fullmatch(plain) or _COMPACT.fullmatch(plain)
    if m is None:
        return None
    try:
        return date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
    except ValueError:
        return None


def dates_from_texts(arr: pa.Array) -> pa.Array:
    """A text column as date32, each distinct text read once; a text that is no date becomes null."""
    encoded = pc.dictionary_encode(arr.combine_chunks() if isinstance(arr, pa.ChunkedArray) else arr)
    read = [date_from_text(t) for t in encoded.dictionary.to_pylist()]
    return pc.take(pa.array(read, pa.date32()), encoded.indices)
