"""Who acts: a caller resolved from an API key, or the hub's operator at the command line.

Its own module, below the audit chain and the access workflows that both name callers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Role = Literal["platform", "provider", "consumer"]
ROLES: tuple[Role, ...] = ("platform", "provider", "consumer")
PLATFORM = "platform"  # the department id of the platform office


@dataclass(frozen=True)
class Caller:
    """Who is calling, as resolved from a valid key."""

    id: int
    name: str
    department: str
    role: Role


def operator(by: str = "command line", department: str = PLATFORM) -> Caller:
    """Who acts through the command line, for the audit chain: the hub's operator for the platform office,
    or for a department (no key, so no caller id)."""
    return Caller(0, by, department, "platform" if department == PLATFORM else "provider")
