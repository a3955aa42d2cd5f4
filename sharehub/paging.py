"""Pages of a list, newest first: how every list route and list command hands out notices, disputes,
conflicts, applications, grants, objections, extracts, runs and the audit trail.

A page is read by keyset, not by offset: `before` is the id the previous page ended on, so a page does
not shift when new rows arrive while a department works through its list. Every page also says how
many rows match the filters in all (`total`), and which `before` gives the next page.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import Select, and_, func, or_, select
from sqlalchemy.orm import InstrumentedAttribute, Session

_Row = TypeVar("_Row")


class Page(list[_Row]):
    """The rows of one page, newest first, with `total` (rows matching the filters, on every page) and
    `next_before` (the `before` of the next page; None on the last one)."""

    def __init__(self, rows: list[_Row], total: int, next_before: int | str | None) -> None:
        super().__init__(rows)
        self.total = total
        self.next_before = next_before


def _page(rows: list[Any], total: int, limit: int | None) -> Page[Any]:
    if limit is None or len(rows) <= limit:
        return Page(rows, total, None)
    rows = rows[:limit]
    return Page(rows, total, rows[-1].id)


def newest_first(
    s: Session,
    query: Select[Any],
    id_column: InstrumentedAttribute[int],
    limit: int | None = None,
    before: int | None = None,
    only: int | None = None,
) -> Page[Any]:
    """`query` (filters only, no order) ordered by id, newest first: the first `limit` rows below `before`;
    with `only`, the row of that id if the filters let it through (how a single item is read under the
    same visibility as its list)."""
    if only is not None:
        query = query.where(id_column == only)
    total = s.scalar(select(func.count()).select_from(query.order_by(None).subquery())) or 0
    ordered = query.order_by(id_column.desc())
    if before is not None:
        ordered = ordered.where(id_column < before)
    if limit is not None:
        ordered = ordered.limit(limit + 1)
    return _page(list(s.scalars(ordered)), total, limit)


def latest_first(
    s: Session,
    query: Select[Any],
    made: InstrumentedAttribute[datetime],
    id_column: InstrumentedAttribute[str],
    limit: int | None = None,
    before: str | None = None,
    what: str = "row",
) -> Page[Any]:
    """`newest_first` for rows whose ids do not follow time (extracts, runs): ordered by the moment each was
    made, then id, and `before` is the id of the row the previous page ended on. A `before` that the
    filters do not let through is a LookupError (it names no place in this list)."""
    total = s.scalar(select(func.count()).select_from(query.order_by(None).subquery())) or 0
    ordered = query.order_by(made.desc(), id_column.desc())
    if before is not None:
        mark = s.scalar(query.where(id_column == before))
        if mark is None:
            raise LookupError(f"before: no {what} {before} in this list to page from")
        at = getattr(mark, made.key)
        ordered = ordered.where(or_(made < at, and_(made == at, id_column < before)))
    if limit is not None:
        ordered = ordered.limit(limit + 1)
    return _page(list(s.scalars(ordered)), total, limit)
