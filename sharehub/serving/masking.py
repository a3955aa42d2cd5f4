"""Masking of values by their field's rule, for anything shown outside the store (notices, query results,
bulk extracts). `mask` is the rule, value by value; `mask_array` applies it to a whole column in Arrow
compute kernels (a bulk extract of millions of rows spent most of its time masking value by value)."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from sharehub.catalogue.models import Classification, FieldSpec, Masking


def mask(value: object, rule: Masking) -> str:
    """The value as a person without clearance may see it: 张*三, 1101**********002X, 138****1234."""
    if value is None:
        return "∅"
    text = str(value)
    if rule == Masking.none:
        return text
    if not text and rule != Masking.redact:
        return text  # nothing to hide, and no first character to keep
    if rule == Masking.name:
        return text[0] + "*" if len(text) <= 2 else text[0] + "*" * (len(text) - 2) + text[-1]
    if rule == Masking.id_number:
        return text[:4] + "*" * max(len(text) - 8, 0) + text[-4:] if len(text) > 8 else "*" * len(text)
    if rule == Masking.phone:
        return text[:3] + "****" + text[-4:] if len(text) >= 11 else "*" * len(text)
    if rule in (Masking.address, Masking.partial):
        keep = max(len(text) // 3, 1)
        return text[:keep] + "*" * (len(text) - keep)
    return "***"


def shown_in_clear(field: FieldSpec) -> bool:
    """Whether the field's values are served as they are (no masking rule, classification below L3)."""
    return _rule(field) == Masking.none


def _rule(field: FieldSpec) -> Masking:
    if field.masking == Masking.none and field.classification in (Classification.L3, Classification.L4):
        return Masking.redact
    return field.masking


def mask_field(value: object, field: FieldSpec) -> str:
    """Mask by the field's rule; L3 and L4 data with no rule of its own is redacted, never shown."""
    return mask(value, _rule(field))


_STRING_TYPES = (pa.types.is_string, pa.types.is_large_string, pa.types.is_string_view)


def mask_array(values: pa.Array | pa.ChunkedArray, field: FieldSpec) -> pa.Array | pa.ChunkedArray:
    """A column masked by its field's rule, as `mask_field` masks each value, except that a null stays null.

    Text columns are masked in Arrow kernels (lengths and slices count characters, as Python does); a
    redacted column of any type is a constant. A column of another type under a rule that keeps part of
    the value (rare: such rules are for text) is masked value by value, so the output is `str()`'s form.
    """
    rule = _rule(field)
    if rule == Masking.none:
        return values
    if rule not in _PARTIAL:  # redact: the same mark for every value that is there
        return pc.if_else(pc.is_valid(values), pa.scalar("***"), pa.scalar(None, pa.string()))
    if not any(is_type(values.type) for is_type in _STRING_TYPES):
        return pa.array([None if v is None else mask(v, rule) for v in values.to_pylist()], pa.string())
    if isinstance(values, pa.ChunkedArray):
        return pa.chunked_array([_mask_text(chunk, rule) for chunk in values.chunks], pa.string())
    return _mask_text(values, rule)


_PARTIAL = (Masking.name, Masking.id_number, Masking.phone, Masking.address, Masking.partial)


def _kept(rule: Masking, length: int) -> tuple[int, int, str]:
    """`mask`'s rule for a text of `length` characters: how many it keeps at the start and at the end, and
    what replaces the rest."""
    if rule == Masking.name:
        return (1, 0, "*") if length <= 2 else (1, 1, "*" * (length - 2))
    if rule == Masking.id_number:
        return (4, 4, "*" * (length - 8)) if length > 8 else (0, 0, "*" * length)
    if rule == Masking.phone:
        return (3, 4, "****") if length >= 11 else (0, 0, "*" * length)
    keep = max(length // 3, 1)  # address, partial: the first third, at least one character
    return keep, 0, "*" * (length - keep)


def _mask_text(values: pa.Array, rule: Masking) -> pa.Array:
    """One slice replacement per distinct length (a column of ID numbers has one, of addresses a few
    dozen): cheaper than per-row arithmetic on strings. Empty text stays empty, a null stays null."""
    text = values.cast(pa.string())
    n = pc.utf8_length(text)
    lengths = [length for length in pc.unique(n).to_pylist() if length]
    if len(lengths) == 1 and pc.min(n).as_py() == lengths[0]:  # one length, nothing empty: no scatter needed
        start, end, middle = _kept(rule, lengths[0])
        return pc.utf8_replace_slice(text, start, lengths[0] - end, middle)
    out = text
    for length in lengths:
        start, end, middle = _kept(rule, length)
        # A scalar of the lengths' own type: an untyped one sent kernels down a slow cast path (1.4 s, not
        # 5 ms, on 5M values).
        chosen = pc.fill_null(pc.equal(n, pa.scalar(length, n.type)), False)
        part = pc.utf8_replace_slice(pc.filter(text, chosen), start, length - end, middle)
        out = pc.replace_with_mask(out, chosen, part)
    return out
