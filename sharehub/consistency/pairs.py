"""What is compared with what: each copy of a base item paired with its authoritative field, the entity
key, and how many keys are looked up at once."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ARRAY, any_, bindparam, func, literal_column, select
from sqlalchemy.orm import Session

from sharehub.catalogue import Catalogue
from sharehub.catalogue.models import FieldSpec, Resource


@dataclass(frozen=True)
class Pairing:
    """One copy of a base item: the authoritative field and a field of another resource."""

    item: str
    authority: Resource
    authority_field: FieldSpec
    authority_key: str
    other: Resource
    other_field: FieldSpec
    other_key: str


def pairings(catalogue: Catalogue) -> list[Pairing]:
    """Every (authoritative field, copy) pair the catalogue declares: what the check compares, and so
    also which stores' changes the `sharehub.consistency` DAG waits for."""
    owners: dict[str, Resource] = {}
    for res in catalogue.resources.values():
        if res.store.kind == "base":
            for item in res.authoritative_for:
                owners[f"{res.store.base}.{item}"] = res
    out = []
    for res in catalogue.resources.values():
        for f in res.fields:
            if not f.corresponds_to or f.corresponds_to not in owners:
                continue
            authority = owners[f.corresponds_to]
            if authority.id == res.id:
                continue
            key = authority.field(authority.source.key[0])
            other_key = _entity_key(res, key.identifier)
            if other_key is None:
                continue
            item = f.corresponds_to.split(".", 1)[1]
            out.append(Pairing(f.corresponds_to, authority, authority.field(item), key.name, res, f, other_key))
    return out


def _key_field(res: Resource) -> FieldSpec:
    """The field whose classification masks an entity key where a notice shows it: the resource's resident
    ID or credit code field, else its first key field."""
    return res.field(_entity_key(res, "resident_id") or _entity_key(res, "uscc") or res.source.key[0])


def _entity_key(res: Resource, identifier: object) -> str | None:
    """The field of `res` that holds the entity's identifier: a key field first, else any such field."""
    candidates = [f for f in res.fields if f.identifier == identifier]
    keyed = [f for f in candidates if f.name in res.source.key]
    chosen = keyed or candidates
    return chosen[0].name if chosen else None


def _among(s: Session, column: Any, values: Sequence[Any]) -> Any:
    """`column IN values` with all the values in one bound parameter, however many: a JSON array read
    by `json_each` on SQLite, an array on PostgreSQL. SQLAlchemy's IN writes a placeholder per value,
    and for the thousands of keys an incremental check touches, compiling those cost more than the
    statements themselves. Other databases get the plain IN."""
    dialect = s.get_bind().dialect.name
    if dialect == "postgresql":
        return column == any_(bindparam(None, list(values), type_=ARRAY(column.type)))
    if dialect == "sqlite":
        given = func.json_each(bindparam(None, json.dumps(list(values), ensure_ascii=False)))
        return column.in_(select(literal_column("value")).select_from(given))
    return column.in_(list(values))
