"""Reading the audit chain straight from the metadata database, as the tests check what was recorded."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from sharehub.hub import Hub


def audit_rows(hub: Hub, columns: str, *actions: str) -> list[tuple[Any, ...]]:
    """The entries of these actions, oldest first, as tuples of these columns (e.g. "result, grant_id")."""
    query = sa.text(f"SELECT {columns} FROM audit_log WHERE action IN :actions ORDER BY id").bindparams(
        sa.bindparam("actions", expanding=True)
    )
    with hub.db() as s:
        return [tuple(r) for r in s.execute(query, {"actions": list(actions)})]
