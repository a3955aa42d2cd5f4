"""What every CLI module shares: the two consoles and the hub of this process."""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

if TYPE_CHECKING:
    from sharehub.hub import Hub
    from sharehub.paging import Page

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


def page_line(page: Page[Any]) -> None:
    """How many of how many the list showed, and the option that shows the next page."""
    line = f"{len(page):,} of {page.total:,}, newest first"
    out.print(line + (f"; the next page: --before {page.next_before}" if page.next_before is not None else ""))
