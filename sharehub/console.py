"""What every CLI module shares: the two consoles and the hub of this process."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from rich.console import Console

if TYPE_CHECKING:
    from sharehub.hub import Hub

# Piped output gets a wide, fixed width so the summary tables stay readable in logs and CI.
out = Console(width=None if sys.stdout.isatty() else 160)
err = Console(stderr=True, width=None if sys.stderr.isatty() else 160)


def hub() -> Hub:
    """The hub configured by the environment (imported lazily so --help stays fast)."""
    from sharehub.hub import Hub

    return Hub.from_env()
