"""The shape every access workflow shares, declared once.

Applications, grants, objections, open-data requests, upstream requests and extracts are rows that a
consumer, a providing department and the platform office see by one rule: a consumer its own, a
department those on its resources, the platform office every one; a role that takes no part in a
workflow sees none and is refused. Each has its states, its list (newest first, a page below an id,
filtered by state) and a key that the notices asking something of a row carry. A `Workflow` holds
that shape; the modules keep only what their steps do.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy import ColumnElement, Select, select

from sharehub.access.callers import Caller
from sharehub.errors import Forbidden
from sharehub.hub import Hub
from sharehub.paging import Page, newest_first

RowT = TypeVar("RowT")


@dataclass(frozen=True)
class Workflow(Generic[RowT]):
    """One workflow's rows and who sees which. `consumer` is the column naming the consumer a row is of
    (None: consumers take no part); `provider` the column naming the providing department, or `resource`
    the resource id its department is read from (neither: departments take no part)."""

    name: str
    model: type[RowT]
    states: tuple[str, ...]
    consumer: Any = None
    provider: Any = None
    resource: Any = None

    def _parties(self) -> str:
        who = ["the platform office's"]
        if self.provider is not None or self.resource is not None:
            who.append("the providing departments'")
        if self.consumer is not None:
            who.append("the consumers'")
        return " and ".join(who)

    def _refuse_outsiders(self, caller: Caller) -> None:
        departments_take_part = self.provider is not None or self.resource is not None
        if (caller.role == "consumer" and self.consumer is None) or (
            caller.role == "provider" and not departments_take_part
        ):
            raise Forbidden(f"{self.name}s are {self._parties()} business")

    def visible(self, hub: Hub, caller: Caller, query: Select[Any] | None = None) -> Select[Any]:
        """`query` (all rows by default) narrowed to the rows the caller's list shows; Forbidden for a role
        that takes no part."""
        self._refuse_outsiders(caller)
        query = select(self.model) if query is None else query
        if caller.role == "consumer":
            return query.where(self.consumer == caller.id)
        if caller.role == "provider":
            if self.provider is not None:
                return query.where(self.provider == caller.department)
            owned = [r.id for r in hub.catalogue.resources.values() if r.provider == caller.department]
            return query.where(self.resource.in_(owned))
        return query

    def sees(self, caller: Caller, row: RowT, hub: Hub | None = None) -> bool:
        """Whether the caller's list shows this row: what an id the caller may not see answers (404) hangs on.
        A workflow that reads departments from the resource needs the hub (its catalogue)."""
        if caller.role == "consumer":
            return self.consumer is not None and getattr(row, self.consumer.key) == caller.id
        if caller.role == "provider":
            if self.provider is not None:
                return bool(getattr(row, self.provider.key) == caller.department)
            if self.resource is not None:
                assert hub is not None, f"{self.name}s are seen by their resource's department: pass the hub"
                resource = hub.catalogue.resources.get(getattr(row, self.resource.key))
                return resource is not None and resource.provider == caller.department
            return False
        return True

    def listed(
        self,
        hub: Hub,
        caller: Caller,
        limit: int | None = None,
        before: int | None = None,
        *,
        only: int | None = None,
        status: str | None = None,
        where: Iterable[ColumnElement[bool]] = (),
    ) -> Page[RowT]:
        """The rows the caller may see, newest first: a page of `limit` below the id `before`; with
        `status`, only those in that state; `where`, further conditions of the caller's filters."""
        query = self.visible(hub, caller)
        if status is not None:
            query = query.where(self.model.status == status)  # type: ignore[attr-defined]
        for condition in where:
            query = query.where(condition)
        with hub.db() as s:
            return newest_first(s, query, self.model.id, limit, before, only)  # type: ignore[attr-defined]

    def asked(self, row_id: int) -> str:
        """The key a notice asking something of the row carries."""
        return f"{self.name} {row_id}"
