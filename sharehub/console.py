"""What every CLI module shares: the two consoles and the hub of this process."""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING

from rich.console import Console

if TYPE_CHECKING:
    from sharehub.hub import Hub

# Piped output gets a wide, fixed width (COLUMNS, or 160) so the summary tables stay readable in logs and CI.
_PIPED = int(os.environ.get("COLUMNS", "160")) if os.environ.get("COLUMNS", "").isdigit() else 160
out = Console(width=None if sys.stdout.isatty() else _PIPED)
err = Console(stderr=True, width=None if sys.stderr.isatty() else _PIPED)


def hub() -> Hub:
    """The hub configured by the environment (imported lazily so --help stays fast)."""
    from sharehub.hub import Hub

    return Hub.from_env()
