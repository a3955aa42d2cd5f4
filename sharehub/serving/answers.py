"""What the serving modes answer: per-field verification and masked query results.

Verification compares claimed values with the stored ones after the consistency check's
normalization (width, whitespace, case, traditional forms where the field declares them) and, for
dates, any of the usual ways of writing them. It answers booleans only; a missing record answers
false for every field, exactly like a record whose values all differ.
"""

from __future__ import annotations

from typing import Any

from sharehub.catalogue.models import FieldSpec, Resource
from sharehub.consistency.normalize import date_value, normalize_value
from sharehub.errors import Invalid
from sharehub.serving.masking import mask_field, shown_in_clear


class BadRequest(Invalid):
    """A request that names fields wrongly; the message names the resource and the field."""


def request_key(resource: Resource, given: dict[str, Any]) -> dict[str, str]:
    """The full source key from a request, or BadRequest naming the missing or unknown field."""
    unknown = sorted(set(given) - set(resource.source.key))  # first: a misspelt key field is also missing
    if unknown:
        raise BadRequest(f"{resource.id}: {unknown[0]} is not a key field ({', '.join(resource.source.key)})")
    missing = [k for k in resource.source.key if given.get(k) in (None, "")]
    if missing:
        raise BadRequest(f"{resource.id}: the key needs {', '.join(resource.source.key)}; missing {missing[0]}")
    repeated = [k for k in resource.source.key if isinstance(given.get(k), list)]
    if repeated:
        raise BadRequest(f"{resource.id}: key field {repeated[0]} is given more than once")
    return {k: _key_value(resource.field(k), given[k]) for k in resource.source.key}


def _key_value(spec: FieldSpec, value: Any) -> str:
    """A key value as the stores hold it. An identifier (ID number, credit code) passed the gate in its
    one canonical form (half-width, no spaces, upper case, as GB 11643 and GB 32100 write it), so a
    caller's `…555x` or full-width digits mean the same record; other key values are only trimmed."""
    if spec.identifier is None:
        return str(value).strip()
    return (normalize_value(value, False) or "").upper()


def _comparable(spec: FieldSpec, value: Any) -> str | None:
    if value is None:
        return None
    if spec.type == "date":
        return date_value(value)
    return normalize_value(value, "traditional" in spec.normalize)


def verify(resource: Resource, stored: dict[str, Any] | None, claims: dict[str, Any]) -> dict[str, bool]:
    """Per claimed field: does the claim match the stored value? All false when there is no record."""
    if stored is None:
        return dict.fromkeys(claims, False)
    out = {}
    for name, claimed in claims.items():
        spec = resource.field(name)
        have = _comparable(spec, stored.get(name))
        out[name] = have is not None and have == _comparable(spec, claimed)
    return out


def masked(resource: Resource, row: dict[str, Any], fields: frozenset[str]) -> dict[str, Any]:
    """The granted fields of a row, each masked by its classification (L3/L4 never in the clear)."""
    out: dict[str, Any] = {}
    for spec in resource.fields:
        if spec.name not in fields:
            continue
        value = row.get(spec.name)
        out[spec.name] = None if value is None else (value if shown_in_clear(spec) else mask_field(value, spec))
    return out
