"""DuckDB extensions shipped as wheels (no download at run time)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import duckdb


@lru_cache(maxsize=1)
def postgres_scanner_path() -> str:
    """The postgres_scanner extension file for the installed DuckDB version."""
    import duckdb_extension_postgres_scanner as pkg

    folder = Path(pkg.__file__).parent / "extensions" / f"v{duckdb.__version__}"
    found = sorted(folder.glob("postgres_scanner.duckdb_extension"))
    if not found:
        raise RuntimeError(
            f"duckdb-extension-postgres-scanner has no build for DuckDB {duckdb.__version__}; "
            "pin both to the same version"
        )
    return str(found[0])


def connect(path: str = ":memory:") -> duckdb.DuckDBPyConnection:
    """A DuckDB connection (in memory unless a file is named) that never draws a progress bar on stdout."""
    con = duckdb.connect(path)
    con.execute("SET enable_progress_bar = false")
    return con
