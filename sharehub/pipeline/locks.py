"""One writer per store: promote holds its resource's lock while it merges and records the run.

Airflow runs one DAG run per resource at a time, but `sharehub run` from a shell, a cleared task or a
backfill can promote the same resource at once; two Delta commits racing on S3 (unsafe rename) could
lose one. With PostgreSQL metadata the lock is a session advisory lock, so it holds across the
machines that share that database; with the embedded SQLite metadata it is a file lock under the
hub's home (one machine). Either is released when its process dies.
"""

from __future__ import annotations

import fcntl
import logging
from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from sharehub.hub import Hub
from sharehub.pipeline.liveness import promoting

log = logging.getLogger(__name__)


@contextmanager
def store_lock(hub: Hub, resource_id: str, run_id: str | None = None) -> Iterator[None]:
    """Wait for, then hold, the resource's store lock (for run `run_id`); while waiting, say who holds it."""
    url = hub.settings.metadata_url
    name = f"sharehub.store:{resource_id}"
    if sa.engine.make_url(url).get_backend_name() == "postgresql":
        engine = sa.create_engine(url, poolclass=NullPool)
        try:
            with engine.connect() as c:  # a connection of its own: the lock belongs to its session
                if not c.execute(sa.text("SELECT pg_try_advisory_lock(hashtextextended(:n, 0))"), {"n": name}).scalar():
                    log.info("%s: its store is held by %s; waiting", resource_id, promoting(hub, resource_id, run_id))
                    c.execute(sa.text("SELECT pg_advisory_lock(hashtextextended(:n, 0))"), {"n": name})
                try:
                    yield
                finally:
                    c.execute(sa.text("SELECT pg_advisory_unlock(hashtextextended(:n, 0))"), {"n": name})
        finally:
            engine.dispose()
        return
    folder = hub.settings.home / "locks"
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / f"{resource_id}.lock").open("a") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log.info("%s: its store is held by %s; waiting", resource_id, promoting(hub, resource_id, run_id))
            fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
