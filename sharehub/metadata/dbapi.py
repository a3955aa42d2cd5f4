"""Hot-path metadata access: one plain DBAPI connection per thread, no ORM, no pool checkout.

A serving call makes three metadata statements: its key, its grant and its audit entry. Through an
ORM session each one costs a pool checkout, a compile and a reset, about 0.3 ms; here a statement
costs what the driver costs. Statements are written with `?` placeholders and converted to the
driver's style. Connections are opened outside the engine's pool (a thread keeps its own for its
life), so they never starve the pool the ORM sessions use; a connection that fails is dropped and
the next call opens a new one.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Hashable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, TypeVar, cast

import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from sharehub.metadata import db
from sharehub.metadata.models import as_utc

log = logging.getLogger(__name__)
_T = TypeVar("_T")
CHECKPOINT_SECONDS = 1.0  # SQLite: how often the background thread checkpoints the write-ahead log
CHANGED_CHANNEL = "sharehub_auth"  # PostgreSQL: notified on every change to consumers or grants (0012)
_RAWS: dict[str, Raw] = {}
_OUTSIDE, _PENDING = object(), object()  # a thread's state outside `checked_once`, and before its check
_LOCK = threading.Lock()


def raw(url: str) -> Raw:
    """The hot-path access to the (migrated) metadata database at `url`, one per process."""
    found = _RAWS.get(url)
    if found is None:
        with _LOCK:
            found = _RAWS.get(url)
            if found is None:
                db.engine(url)  # migrates on first use
                found = _RAWS[url] = Raw(url)
    return found


def close_all() -> None:
    """Close this thread's hot-path connections and forget every database (end of a process or a test)."""
    with _LOCK:
        for found in _RAWS.values():
            found.close()
        _RAWS.clear()


db.on_dispose(close_all)


class Raw:
    """Plain statements on a per-thread DBAPI connection."""

    def __init__(self, url: str) -> None:
        self.engine = sa.create_engine(url, poolclass=NullPool)
        self.sqlite = self.engine.dialect.name == "sqlite"
        if self.sqlite:
            sa.event.listen(self.engine, "connect", db.sqlite_pragmas)
        self._qmark = self.engine.dialect.paramstyle == "qmark"
        self._errors: type[Exception] = self.engine.dialect.loaded_dbapi.Error
        self._local = threading.local()
        self._sql: dict[str, str] = {}
        self._closed = threading.Event()
        self._checkpointer: threading.Thread | None = None

    def sql(self, text: str) -> str:
        """`text` with the driver's placeholders."""
        found = self._sql.get(text)
        if found is None:
            found = self._sql[text] = text if self._qmark else text.replace("?", "%s")
        return found

    def connection(self) -> Any:
        """This thread's DBAPI connection, opened on first use."""
        con = getattr(self._local, "con", None)
        if con is None:
            con = self._local.con = self.engine.raw_connection()
            if self.sqlite:
                self._checkpoint_aside(con)
        return con

    def _checkpoint_aside(self, con: Any) -> None:
        """SQLite: move the write-ahead log's checkpoints off the hot path.

        By default the commit that fills the log past 1,000 pages copies it back into the database and
        syncs it, about 10 ms during which every request in flight waits (the audit appends filled it
        every second under load: most of bench/serving's p99). Here this process's hot-path connections
        never checkpoint; one thread does it every `CHECKPOINT_SECONDS` in the background (PASSIVE:
        it never blocks a writer or a reader). Other connections keep SQLite's default.
        """
        con.driver_connection.execute("PRAGMA wal_autocheckpoint = 0")
        with _LOCK:
            if self._checkpointer is None or not self._checkpointer.is_alive():
                self._checkpointer = threading.Thread(target=self._checkpoints, name="sqlite-checkpoint", daemon=True)
                self._checkpointer.start()

    def _checkpoints(self) -> None:
        con: Any = None
        while not self._closed.wait(CHECKPOINT_SECONDS):
            try:
                con = con or self.engine.raw_connection()
                con.driver_connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
            except self._errors as exc:  # a busy or broken connection: try afresh next time
                log.warning("metadata checkpoint failed: %s", exc)
                if con is not None:
                    con.invalidate()
                con = None
        if con is not None:
            con.close()

    def close(self) -> None:
        """Drop this thread's connection and stop the checkpoints."""
        self._closed.set()
        self.drop()

    def drop(self) -> None:
        """Forget this thread's connection after an error (it may be broken)."""
        con = getattr(self._local, "con", None)
        self._local.con = None
        self._local.version = None  # a new connection has its own data_version
        self._local.listening = None  # and must LISTEN afresh
        if con is not None:
            try:
                con.invalidate()
            except Exception:  # noqa: BLE001 -- a broken connection may fail to close; it is gone either way
                pass

    def rows(self, text: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        """The rows of one read, in its own short transaction (so it sees every commit before it)."""
        for attempt in (1, 2):
            con = self.connection()
            try:
                cur = con.cursor()
                cur.execute(self.sql(text), params)
                found = cur.fetchall()
                cur.close()
                con.commit()
                return [tuple(r) for r in found]
            except self._errors:
                self.drop()
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def remembered(self, key: Hashable, load: Callable[[], _T]) -> _T:
        """What `load()` (a read of consumers or grants) gives, remembered in this thread until they change.

        SQLite: `PRAGMA data_version` moves whenever another connection commits (a revocation by the
        API, the CLI or another process); the writes this connection makes itself (audit appends) do
        not move it. PostgreSQL: triggers on `consumers` and `grants` (migration 0012) NOTIFY
        `sharehub_auth` on every change, whoever makes it, and this connection LISTENs. Either way,
        everything remembered is forgotten on the signal, and the next call reads afresh.
        """
        changed = self._signal()
        if changed is None:
            return load()
        memory: dict[Hashable, Any] = self._local.__dict__.setdefault("memory", {})
        if changed or len(memory) > 10_000:
            memory.clear()
        if key in memory:
            found: _T = memory[key]
            return found
        found = memory[key] = load()
        return found

    @contextmanager
    def checked_once(self) -> Iterator[None]:
        """Reads in this block (no await inside) ask the database whether anything changed only once:
        a serving call's key and grant are read as of its start, and the check cost as much as a read."""
        self._local.signal = _PENDING
        try:
            yield
        finally:
            self._local.signal = _OUTSIDE

    def _signal(self) -> bool | None:
        state = getattr(self._local, "signal", _OUTSIDE)
        if state is _OUTSIDE:
            return self._changed()
        if state is _PENDING:
            changed = self._changed()
            self._local.signal = None if changed is None else False  # checked: the block's later reads
            return changed
        return cast("bool | None", state)

    def _changed(self) -> bool | None:
        """Whether what this thread remembers may be stale; None where the database gives no signal."""
        con = self.connection()
        try:
            if self.sqlite:
                cur = con.cursor()
                cur.execute("PRAGMA data_version")
                version = cur.fetchone()[0]
                cur.close()
                moved = getattr(self._local, "version", None) != version
                self._local.version = version
                return moved
            driver = con.driver_connection
            if not callable(getattr(driver, "notifies", None)):  # psycopg 3 only
                return None
            listening = getattr(self._local, "listening", None)
            if listening is False:
                return None
            if listening is None:
                cur = con.cursor()
                cur.execute(
                    "SELECT count(*) FROM pg_trigger WHERE tgname IN ('consumers_changed', 'grants_changed')"
                    " AND NOT tgisinternal"
                )
                signalled = cur.fetchone()[0] == 2
                if signalled:  # without the triggers nothing would say a row changed: never remember
                    cur.execute(f"LISTEN {CHANGED_CHANNEL}")
                cur.close()
                con.commit()  # listening from here on: every later change is signalled
                self._local.listening = signalled
                return True if signalled else None
            return sum(1 for _ in driver.notifies(timeout=0)) > 0  # drains what has arrived
        except self._errors:
            self.drop()
            return None

    @contextmanager
    def transaction(self) -> Iterator[Any]:
        """A cursor in a write transaction that commits on success. On SQLite the write lock is taken
        at the start (BEGIN IMMEDIATE), so what the transaction reads no other writer can change."""
        con = self.connection()
        try:
            cur = con.cursor()
            if self.sqlite:
                cur.execute("BEGIN IMMEDIATE")
            yield cur
            cur.close()
            con.commit()
        except BaseException:
            self.drop()  # rolls back: an invalidated connection is closed without committing
            raise

    def stamp(self, value: datetime) -> Any:
        """A datetime as this database stores it (SQLite: SQLAlchemy's text form, in UTC)."""
        if not self.sqlite:
            return value
        return as_utc(value).astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")


def read_time(value: Any) -> datetime:
    """A stored datetime back as an aware UTC datetime (SQLite hands back text)."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return as_utc(value)


def read_json(value: Any) -> Any:
    """A stored JSON value back as Python (SQLite hands back text; PostgreSQL, parsed)."""
    return json.loads(value) if isinstance(value, str | bytes) else value
