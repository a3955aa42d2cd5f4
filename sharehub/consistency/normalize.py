"""How two departments' values are compared: full-width to half-width, no whitespace, lower case,
traditional to simplified characters where a field declares it, dates by their ISO form (`sharehub.dates`).
Used by the check, and by verification, which must judge a claimed value the same way."""

from __future__ import annotations

import functools
import logging
from functools import lru_cache
from importlib import resources
from typing import Any

import duckdb
import pyarrow as pa
from duckdb.func import PythonUDFType
from duckdb.sqltypes import VARCHAR

from expectations.sql import literal
from sharehub.catalogue.models import FieldSpec
from sharehub.consistency.pairs import Pairing
from sharehub.dates import date_from_text

log = logging.getLogger(__name__)


FULL_WIDTH = "".join(chr(c) for c in range(0xFF01, 0xFF5F))


HALF_WIDTH = "".join(chr(c) for c in range(0x21, 0x7F))


@lru_cache(maxsize=1)
def _traditional() -> tuple[str, str]:
    text = resources.files("sharehub.consistency").joinpath("data/t2s.tsv").read_text(encoding="utf-8")
    pairs = [line.split("\t") for line in text.splitlines() if line and not line.startswith("#")]
    return "".join(a for a, _ in pairs), "".join(b for _, b in pairs)


def _register_normalizers(con: duckdb.DuckDBPyConnection) -> None:
    """`sh_norm(v)` and `sh_norm_t(v)` (also traditional → simplified) in SQL: Python's str.translate,
    vectorized; `sh_date(v)`: the ISO form of a date however it is written (else `sh_norm`)."""
    for name, trad in (("sh_norm", False), ("sh_norm_t", True)):
        con.create_function(name, functools.partial(_normalize_array, trad), [VARCHAR], VARCHAR, **UDF)
    con.create_function("sh_date", _date_array, [VARCHAR], VARCHAR, **UDF)


UDF: dict[str, Any] = {"type": PythonUDFType.ARROW, "side_effects": False}


def _normalize_array(traditional: bool, values: pa.Array) -> pa.Array:
    return pa.array([normalize_value(v, traditional) for v in values.to_pylist()], pa.string())


def _date_array(values: pa.Array) -> pa.Array:
    return pa.array([date_value(v) for v in values.to_pylist()], pa.string())


def date_value(value: object) -> str | None:
    """What a date field's value means, however it is written: the ISO form of its date; a text that is
    no date, normalized like any other text (so it equals only itself)."""
    read = date_from_text(value)
    return normalize_value(value, False) if read is None else read.isoformat()


def _as_stored(o_val: str, a_val: str, p: Pairing) -> str:
    """SQL true where two values differ as stored (through their vocabularies): equal here means equal."""
    if not p.other_field.vocabulary and p.other_field.arrow_type == p.authority_field.arrow_type:
        return f"{o_val} IS DISTINCT FROM {a_val}"
    return f"{_stored_text(o_val, p.other_field)} IS DISTINCT FROM {_stored_text(a_val, p.authority_field)}"


def _stored_text(expr: str, spec: FieldSpec) -> str:
    text = f"CAST({expr} AS VARCHAR)"
    if not spec.vocabulary:
        return text
    whens = " ".join(f"WHEN {literal(w)} THEN {literal(m)}" for w, m in sorted(spec.vocabulary.items()))
    return f"(CASE {text} {whens} ELSE {text} END)"


def comparable(expr: str, spec: FieldSpec, traditional: bool, dated: bool = False) -> str:
    """SQL for what a field's value means: its normalized form (`dated`: the date it writes, in ISO form),
    mapped through its vocabulary if any."""
    normalizer = "sh_date" if dated else "sh_norm_t" if traditional else "sh_norm"
    norm = f"{normalizer}(CAST({expr} AS VARCHAR))"
    if not spec.vocabulary:
        return norm
    whens = " ".join(
        f"WHEN {literal(normalize_value(word, traditional) or '')} THEN {literal(meaning)}"
        for word, meaning in sorted(spec.vocabulary.items())
    )
    return f"(CASE {norm} {whens} ELSE {norm} END)"


@lru_cache(maxsize=2)
def _table(traditional: bool) -> dict[int, int]:
    table = str.maketrans(FULL_WIDTH + "\u3000", HALF_WIDTH + " ")
    if traditional:
        src, dst = _traditional()
        table.update(str.maketrans(src, dst))
    return table


def normalize_value(value: object, traditional: bool) -> str | None:
    """The comparable form of a value: half-width, no whitespace, lower case, simplified if `traditional`.

    Width and traditional forms map character by character and never produce upper case or
    whitespace, so one translation table does both before the rest.
    """
    if value is None:
        return None
    return "".join(str(value).translate(_table(traditional)).split()).lower()
