"""Connections to the metadata database, migrated to the newest schema on first use."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy.orm import Session, sessionmaker

log = logging.getLogger(__name__)
MIGRATIONS = Path(__file__).with_name("migrations")


def alembic_config(url: str) -> Config:
    """An Alembic config pointing at our migrations and at `url`."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(url: str) -> None:
    """Bring the metadata database at `url` to the newest migration."""
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    command.upgrade(alembic_config(url), "head")


_FACTORIES: dict[str, sessionmaker[Session]] = {}
_LOCK = threading.Lock()


def _factory(url: str) -> sessionmaker[Session]:
    """One migrated engine per URL for the life of the process."""
    with _LOCK:
        if url not in _FACTORIES:
            upgrade(url)
            engine = sa.create_engine(url, pool_pre_ping=not url.startswith("sqlite"))
            if engine.dialect.name == "sqlite":
                sa.event.listen(engine, "connect", sqlite_pragmas)
            _FACTORIES[url] = sessionmaker(engine, expire_on_commit=False)
        return _FACTORIES[url]


def sqlite_pragmas(con: Any, _record: Any) -> None:
    """Wait for a busy database instead of failing; write-ahead log with normal sync (the API appends
    an audit entry per call: a full fsync per commit would bound it; WAL survives a process crash)."""
    con.execute("PRAGMA busy_timeout = 30000")
    con.execute("PRAGMA journal_mode = WAL")
    con.execute("PRAGMA synchronous = NORMAL")
    con.execute("PRAGMA journal_size_limit = 67108864")  # the log shrinks back to 64 MB after a checkpoint


def engine(url: str) -> sa.Engine:
    """The migrated engine of the metadata database at `url`."""
    bind: sa.Engine = _factory(url).kw["bind"]
    return bind


def dispose(url: str) -> None:
    """Close the pooled connections of the metadata database at `url`, if it has any."""
    with _LOCK:
        factory = _FACTORIES.pop(url, None)
    if factory is not None:
        factory.kw["bind"].dispose()


_ON_DISPOSE: list[Callable[[], None]] = []  # what modules built on this one close too (`dbapi` registers)


def on_dispose(close: Callable[[], None]) -> None:
    """Have `dispose_all` call `close` as well."""
    _ON_DISPOSE.append(close)


def dispose_all() -> None:
    """Close every pooled metadata connection (at the end of a process or a test)."""
    for close in _ON_DISPOSE:
        close()
    with _LOCK:
        for factory in _FACTORIES.values():
            bind = factory.kw["bind"]
            bind.dispose()
        _FACTORIES.clear()


@contextmanager
def session(url: str) -> Iterator[Session]:
    """A session that commits on success and rolls back on error."""
    with _factory(url)() as s, s.begin():
        yield s
