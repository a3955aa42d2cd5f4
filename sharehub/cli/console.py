"""What every CLI module shares: the two consoles and the hub of this process."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich.console import Console

if TYPE_CHECKING:
    from sharehub.access.consumers import Caller
    from sharehub.hub import Hub
    from sharehub.paging import Page

_T = TypeVar("_T")
# Piped output gets a wide, fixed width (COLUMNS, or 160) so the summary tables stay readable in logs and CI.
_PIPED = int(os.environ.get("COLUMNS", "160")) if os.environ.get("COLUMNS", "").isdigit() else 160
out = Console(width=None if sys.stdout.isatty() else _PIPED)
err = Console(stderr=True, width=None if sys.stderr.isatty() else _PIPED)


def hub() -> Hub:
    """The hub configured by the environment (imported lazily so --help stays fast)."""
    from sharehub.hub import Hub

    return Hub.from_env()


# The paging options of every list command, and the line under the list that names the next page.
Limit = Annotated[int, typer.Option(min=1, help="Show the newest this many.")]
Before = Annotated[
    int | None, typer.Option(min=1, help="Only ids below this one: the next page, as the line under a list names it.")
]

# What an application for data names, here and upstairs (`applications apply`, `upstream request`).
Fields = Annotated[str, typer.Option(help="Comma-separated fields.")]
Modes = Annotated[str, typer.Option(help="Comma-separated: verification, query, bulk.")]
Purpose = Annotated[str, typer.Option(help="What the data is for (用途).")]
ValidUntil = Annotated[datetime, typer.Option(help="Last day of use, e.g. 2027-12-31.")]


def page_line(page: Page[Any]) -> None:
    """How many of how many the list showed, and the option that shows the next page."""
    line = f"{len(page):,} of {page.total:,}, newest first"
    out.print(line + (f"; the next page: --before {page.next_before}" if page.next_before is not None else ""))


def one_of(option: str, value: str | None, allowed: tuple[str, ...]) -> None:
    """Refuse (exit 2, as for any bad option) a value the option does not take."""
    if value is not None and value not in allowed:
        err.print(f"[red]{option} is one of {', '.join(allowed)}[/red]")
        raise typer.Exit(code=2)


def run_step(action: Callable[[], _T]) -> _T:
    """Run an application, grant or request step; its refusal (a GrantError) is printed, exit 1."""
    from sharehub.access.grants import GrantError

    try:
        return action()
    except GrantError as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(code=1) from None


def consumer_caller(consumer_id: int) -> Caller:
    """A registered, active consumer acting through the command line (`--consumer ID`), or exit 1."""
    from sharehub.access.consumers import Caller
    from sharehub.metadata.models import Consumer

    with hub().db() as s:
        c = s.get(Consumer, consumer_id)
    if c is None or c.role != "consumer" or c.revoked_at is not None:
        err.print(f"no active consumer {consumer_id}")
        raise typer.Exit(code=1)
    return Caller(c.id, c.name, c.department, "consumer")


def comma_list(text: str) -> list[str]:
    """The items of a comma-separated option, trimmed, empty ones dropped."""
    return [item.strip() for item in text.split(",") if item.strip()]


def last_moment(day: datetime) -> datetime:
    """A `--valid-until` as given, or a date without a time zone as 23:59 of that day, China time."""
    from sharehub.workdays import CHINA

    return day if day.tzinfo else day.replace(hour=23, minute=59, tzinfo=CHINA)
