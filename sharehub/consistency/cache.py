"""A local DuckDB copy of the columns the consistency check compares, kept in step with Delta change data.

Each compared store has a table here holding its key columns, its compared fields and `_run_id`, and
the Delta table (its id: a store deleted and written anew is another table, whose versions restart at
0) and version it reflects. Syncing applies the store's change data (inserts, updates, deletes)
between that version and the current one, and returns the entity keys that changed, so an incremental
check touches only those entities and never scans the stores. A store whose change data cannot be read
for that range (made before change data was kept, vacuumed, its columns changed, or another table) is
reloaded whole, and then every entity counts as changed. The file is a cache: deleting it only makes
the next check full.
"""

from __future__ import annotations

import logging
from pathlib import Path

import duckdb
import pyarrow as pa
from deltalake import DeltaTable
from deltalake.exceptions import DeltaError

from connectors import duck
from expectations.sql import ident
from sharehub.errors import RetryableError
from warehouse.delta import table_id

log = logging.getLogger(__name__)


class StoreCache:
    """The cache file, opened for one check; `commit()` keeps what was synced, closing without it does not."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.con = duck.connect(str(path))
        except duckdb.IOException as exc:
            raise RetryableError(f"consistency cache {path} is busy (another check is running): {exc}") from None
        # Small incremental syncs stay in the write-ahead log instead of rewriting the tables at every close.
        self.con.execute("SET checkpoint_threshold = '512MB'")
        self.con.execute("PRAGMA disable_checkpoint_on_shutdown")
        # A full reload writes every compared column: skipping compression halves that, for a larger file.
        self.con.execute("SET force_compression = 'uncompressed'")
        known = {
            c
            for (c,) in self.con.execute(
                "SELECT column_name FROM duckdb_columns() WHERE table_name = 'cache_state'"
            ).fetchall()
        }
        if known and "table_id" not in known:  # a cache from before table ids: forget it, every store reloads
            self.con.execute("DROP TABLE cache_state")
        self.con.execute(
            "CREATE TABLE IF NOT EXISTS cache_state"
            " (resource_id VARCHAR PRIMARY KEY, version BIGINT, columns VARCHAR, table_id VARCHAR)"
        )
        self.con.execute("BEGIN TRANSACTION")

    def commit(self) -> None:
        """Keep the synced state: call only after the check's results are recorded."""
        self.con.execute("COMMIT")

    def close(self) -> None:
        """Close; anything not committed is rolled back."""
        self.con.close()

    @staticmethod
    def table(resource_id: str) -> str:
        """The cache table of a resource's store."""
        return ident("store_" + resource_id.replace(".", "_"))

    def sync(
        self, resource_id: str, store: DeltaTable, columns: list[str], key: list[str], entity: str, reload: bool
    ) -> set[str] | None:
        """Bring the copy to the store's current version; the entity keys that changed, or None if reloaded."""
        wanted = ",".join(columns)
        state = self.con.execute(
            "SELECT version, columns, table_id FROM cache_state WHERE resource_id = ?", [resource_id]
        ).fetchone()
        current, identity = store.version(), table_id(store)
        # The same table (a store deleted and made anew restarts its versions at 0) with the same columns.
        if state is not None and state[1:] == (wanted, identity) and not reload:
            if state[0] == current:
                return set()
            changed = self._apply_changes(resource_id, store, columns, key, entity, state[0] + 1, current)
            if changed is not None:
                self._remember(resource_id, current, wanted, identity)
                return changed
        self.con.register("delta_scan", store.to_pyarrow_dataset())
        select_list = ", ".join(ident(c) for c in columns)
        self.con.execute(f"CREATE OR REPLACE TABLE {self.table(resource_id)} AS SELECT {select_list} FROM delta_scan")
        self.con.unregister("delta_scan")
        self._remember(resource_id, current, wanted, identity)
        log.info("consistency cache: %s reloaded at version %d", resource_id, current)
        return None

    def _apply_changes(
        self, resource_id: str, store: DeltaTable, columns: list[str], key: list[str], entity: str, start: int, end: int
    ) -> set[str] | None:
        try:
            reader = store.load_cdf(
                starting_version=start, ending_version=end, columns=[*columns, "_change_type", "_commit_version"]
            )
            changes = pa.table(reader.read_all())
        except (DeltaError, OSError, ValueError) as exc:
            log.info("consistency cache: %s has no change data for %d..%d (%s)", resource_id, start, end, exc)
            return None
        if changes.num_rows == 0:
            return set()
        target = self.table(resource_id)
        self.con.register("changes", changes)
        on = " AND ".join(f"{target}.{ident(k)} = c.{ident(k)}" for k in key)
        partition = ", ".join(ident(k) for k in key)
        self.con.execute(f"DELETE FROM {target} USING (SELECT DISTINCT {partition} FROM changes) c WHERE {on}")
        select_list = ", ".join(ident(c) for c in columns)
        self.con.execute(
            f"""INSERT INTO {target}
            SELECT {select_list} FROM changes
            WHERE _change_type <> 'update_preimage'
            QUALIFY row_number() OVER (PARTITION BY {partition} ORDER BY _commit_version DESC) = 1
                AND _change_type IN ('insert', 'update_postimage')"""
        )
        keys = self.con.execute(f"SELECT DISTINCT {ident(entity)} FROM changes WHERE {ident(entity)} IS NOT NULL")
        changed = {str(k) for (k,) in keys.fetchall()}
        self.con.unregister("changes")
        log.info("consistency cache: %s %d..%d, %d entities changed", resource_id, start, end, len(changed))
        return changed

    def _remember(self, resource_id: str, version: int, columns: str, identity: str) -> None:
        self.con.execute(
            "INSERT OR REPLACE INTO cache_state VALUES (?, ?, ?, ?)", [resource_id, version, columns, identity]
        )
