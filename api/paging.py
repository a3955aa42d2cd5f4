"""Paging of the API's lists: `?limit=&before=` in, `X-Total-Count` and an RFC 8288 `Link` out."""

from __future__ import annotations

from typing import Annotated, Any, NamedTuple

from fastapi import Depends, Query, Request, Response

from sharehub.paging import Page


class PageAsk(NamedTuple):
    """Which page of a list the caller asks for."""

    limit: int
    before: int | None


BeforeQuery = Annotated[
    int | None,
    Query(ge=1, le=2**62, description="Only ids below this: the next page, as the previous page's `Link` names it."),
]


def list_page(
    limit: Annotated[int, Query(ge=1, le=1000, description="At most this many, newest first.")] = 100,
    before: BeforeQuery = None,
) -> PageAsk:
    """The paging parameters of a list route."""
    return PageAsk(limit, before)


def conflict_page(
    limit: Annotated[int, Query(ge=1, le=10_000, description="At most this many, newest first.")] = 1000,
    before: BeforeQuery = None,
) -> PageAsk:
    """The paging parameters of the conflict list, with larger pages: a department works through thousands."""
    return PageAsk(limit, before)


ListPage = Annotated[PageAsk, Depends(list_page)]
ConflictPage = Annotated[PageAsk, Depends(conflict_page)]


PAGED: dict[int | str, dict[str, Any]] = {
    200: {
        "headers": {
            "X-Total-Count": {
                "description": "How many match the filters, on every page.",
                "schema": {"type": "integer"},
            },
            "Link": {
                "description": 'The next page, `<…&before=ID>; rel="next"`; absent on the last page.',
                "schema": {"type": "string"},
            },
        }
    }
}


def paged(request: Request, response: Response, page: Page[Any]) -> None:
    """Say how many match in all, and where the next page is (RFC 8288, as a path: no host to get wrong
    behind a proxy)."""
    response.headers["X-Total-Count"] = str(page.total)
    if page.next_before is not None:
        nxt = request.url.include_query_params(before=page.next_before)
        response.headers["Link"] = f'<{nxt.path}?{nxt.query}>; rel="next"'
