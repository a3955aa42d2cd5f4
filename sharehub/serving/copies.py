"""Key-indexed serving copies of the stores, for verification and query lookups.

DuckDB is built for scans: a point lookup costs about half a millisecond with an ART index and tens
of milliseconds without, where a SQLite B-tree answers in microseconds. So each served resource has
a SQLite copy (`<home>/serving/<resource>.sqlite`): one row per store row, the key as primary key and
the fields as JSON, and the Delta table id and version it holds. It is refreshed when the store's Delta
version moves (rebuilt when the store is another table, deleted and written anew), by applying the Delta
change data between the two versions (or, without it, by rebuilding into a new file that replaces the
old one atomically). Lookups of a past version (`as_of`) read the Delta table at that version.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import threading
import time
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
from deltalake import DeltaTable
from deltalake.exceptions import DeltaError

from sharehub.catalogue.models import SEP, Resource
from warehouse.delta import open_table, table_id, where_equal

if TYPE_CHECKING:
    from sharehub.hub import Hub  # the hub builds its serving copies: this module does not import it back

log = logging.getLogger(__name__)


def key_of(resource: Resource, values: dict[str, Any]) -> str:
    """The serving key of a row: its source-key values in key order."""
    return SEP.join(str(values[k]) for k in resource.source.key)


def _plain(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return value


def _doc(resource: Resource, row: dict[str, Any]) -> tuple[str, str]:
    return key_of(resource, row), json.dumps({k: _plain(v) for k, v in row.items()}, ensure_ascii=False)


def _docs(resource: Resource, table: pa.Table) -> list[tuple[str, str]]:
    return [_doc(resource, r) for r in table.select([f.name for f in resource.fields]).to_pylist()]


class ServingCopies:
    """The SQLite copies of one hub, with one connection per thread and a refresh at most every few seconds."""

    def __init__(self, hub: Hub, refresh_seconds: float = 5.0) -> None:
        self.hub = hub
        self.root = hub.settings.home / "serving"
        self.refresh_seconds = refresh_seconds
        self._local = threading.local()
        self._checked: dict[str, float] = {}
        self._state_lock = threading.Lock()
        self._refreshing: set[str] = set()
        self._work_lock = threading.Lock()  # one refresh at a time

    def path(self, resource_id: str) -> Path:
        """The copy's file."""
        return self.root / f"{resource_id}.sqlite"

    def _con(self, resource_id: str) -> sqlite3.Connection | None:
        """This thread's connection to the copy. Whether a rebuild replaced the file is checked at most
        every `refresh_seconds` (a stat per call costs as much as the lookup itself)."""
        cons: dict[str, tuple[sqlite3.Connection, int, float]] = self._local.__dict__.setdefault("cons", {})
        found = cons.get(resource_id)
        now = time.monotonic()
        if found is not None and now - found[2] < self.refresh_seconds:
            return found[0]
        try:
            inode = os.stat(self.path(resource_id)).st_ino
        except FileNotFoundError:
            return None
        if found is not None and found[1] == inode:
            con = found[0]
        else:  # first use, or a rebuild replaced the file: reopen
            if found is not None:
                found[0].close()
            con = sqlite3.connect(f"file:{self.path(resource_id)}?mode=ro", uri=True, check_same_thread=False)
            con.execute("PRAGMA mmap_size = 17179869184")  # pages straight from the OS cache, no read() per lookup
        cons[resource_id] = (con, inode, now)
        return con

    def lookup(self, resource: Resource, key: dict[str, Any]) -> dict[str, Any] | None:
        """The current row with this key, or None."""
        self.ensure_fresh(resource)
        con = self._con(resource.id)
        if con is None:
            return None
        row = con.execute("SELECT doc FROM rows WHERE k = ?", (key_of(resource, key),)).fetchone()
        return None if row is None else json.loads(row[0])

    def ensure_fresh(self, resource: Resource) -> None:
        """Refresh the copy if its store moved, checking the store at most every `refresh_seconds`.

        Once a copy exists, the check runs in a background thread: a lookup never waits for Delta,
        and serves the copy it has (at most one interval plus one refresh behind the store).
        """
        now = time.monotonic()
        if now - self._checked.get(resource.id, -1e9) < self.refresh_seconds:
            return
        if self.refresh_seconds > 0 and self.path(resource.id).exists():
            with self._state_lock:
                if resource.id in self._refreshing:
                    return
                self._refreshing.add(resource.id)
                self._checked[resource.id] = now
            threading.Thread(
                target=self._refresh, args=(resource,), name=f"serving-refresh-{resource.id}", daemon=True
            ).start()
            return
        with self._work_lock:
            refresh(self.hub, resource)
        self._checked[resource.id] = time.monotonic()

    def _refresh(self, resource: Resource) -> None:
        try:
            with self._work_lock:
                refresh(self.hub, resource)
        except Exception:  # a failed refresh keeps serving the copy it has, and says so
            log.exception("refreshing the serving copy of %s failed; still serving the previous copy", resource.id)
        finally:
            with self._state_lock:
                self._refreshing.discard(resource.id)
                self._checked[resource.id] = time.monotonic()

    def version(self, resource_id: str) -> int | None:
        """The store version the copy holds."""
        con = self._con(resource_id)
        if con is None:
            return None
        row = con.execute("SELECT version FROM meta").fetchone()
        return None if row is None else int(row[0])


def refresh(hub: Hub, resource: Resource) -> int | None:
    """Bring one resource's copy to its store's current version; the version it holds afterwards."""
    table = open_table(hub.store.uri(resource.store_path), hub.store.delta_options())
    if table is None:
        return None
    path = hub.settings.home / "serving" / f"{resource.id}.sqlite"
    path.parent.mkdir(parents=True, exist_ok=True)
    current = table.version()
    held = None
    if path.exists():
        with sqlite3.connect(path) as con:
            try:
                row = con.execute("SELECT version, table_id FROM meta").fetchone()
            except sqlite3.OperationalError:  # a copy from before table ids: rebuilt
                row = None
        # A store deleted and written anew is another table, whose versions restart at 0: rebuilt.
        held = None if row is None or row[1] != table_id(table) else int(row[0])
    if held == current:
        return current
    if held is not None and _apply_changes(path, resource, table, held + 1, current):
        return current
    _rebuild(path, resource, table)
    return current


def _apply_changes(path: Path, resource: Resource, table: DeltaTable, start: int, end: int) -> bool:
    names = [f.name for f in resource.fields]
    try:
        changes = pa.table(
            table.load_cdf(
                starting_version=start, ending_version=end, columns=[*names, "_change_type", "_commit_version"]
            ).read_all()
        )
    except (DeltaError, OSError, ValueError):
        return False
    rows = sorted(changes.to_pylist(), key=lambda r: r["_commit_version"])  # change data is small
    with sqlite3.connect(path) as con:
        for r in rows:
            kind = r.pop("_change_type")
            r.pop("_commit_version")
            if kind == "delete":
                con.execute("DELETE FROM rows WHERE k = ?", (key_of(resource, r),))
            elif kind != "update_preimage":
                con.execute("INSERT OR REPLACE INTO rows VALUES (?, ?)", _doc(resource, r))
        con.execute("UPDATE meta SET version = ?", (end,))
    log.info("serving copy %s: versions %d..%d applied (%d changes)", resource.id, start, end, len(rows))
    return True


def _rebuild(path: Path, resource: Resource, table: DeltaTable) -> None:
    tmp = path.with_suffix(".building")
    tmp.unlink(missing_ok=True)
    with sqlite3.connect(tmp) as con:
        con.execute("PRAGMA journal_mode = OFF")
        con.execute("PRAGMA synchronous = OFF")
        con.execute("CREATE TABLE rows (k TEXT PRIMARY KEY, doc TEXT NOT NULL) WITHOUT ROWID")
        con.execute("CREATE TABLE meta (version INTEGER NOT NULL, table_id TEXT NOT NULL)")
        names = [f.name for f in resource.fields]
        for batch in table.to_pyarrow_dataset().to_batches(columns=names, batch_size=100_000):
            con.executemany(
                "INSERT OR REPLACE INTO rows VALUES (?, ?)", _docs(resource, pa.Table.from_batches([batch]))
            )
        con.execute("INSERT INTO meta VALUES (?, ?)", (table.version(), table_id(table)))
    os.replace(tmp, path)
    log.info("serving copy %s rebuilt at version %d", resource.id, table.version())


def _first_commit(hub: Hub, resource: Resource) -> datetime:
    """When the store's oldest kept version was committed. Read on a table at its newest version: on one
    loaded at an older version, deltalake 1.6 numbers its history wrongly."""
    table = open_table(hub.store.uri(resource.store_path), hub.store.delta_options())
    history = [] if table is None else table.history()
    return datetime.fromtimestamp(history[-1]["timestamp"] / 1000, UTC) if history else datetime.min.replace(tzinfo=UTC)


def lookup_as_of(hub: Hub, resource: Resource, key: dict[str, Any], as_of: datetime) -> tuple[int, dict | None]:
    """The row with this key as the store held it at `as_of`: (version read, row or None)."""
    table = open_table(hub.store.uri(resource.store_path), hub.store.delta_options())
    if table is None:
        raise LookupError(f"{resource.id} has no store yet")
    try:
        table.load_as_version(as_of)
    except (DeltaError, ValueError) as exc:
        raise LookupError(f"{resource.id} held no version at {as_of.isoformat()}") from exc
    if table.version() == 0 and _first_commit(hub, resource) > as_of:
        # Before the first commit, deltalake loads version 0 all the same: data the store did not hold yet.
        raise LookupError(f"{resource.id} held no version at {as_of.isoformat()}: its first version is later")
    condition = where_equal({k: pa.scalar(str(key[k])).cast(resource.field(k).arrow_type) for k in resource.source.key})
    rows = table.to_pyarrow_dataset().to_table(columns=[f.name for f in resource.fields], filter=condition)
    found = rows.to_pylist()
    return table.version(), ({k: _plain(v) for k, v in found[0].items()} if found else None)
