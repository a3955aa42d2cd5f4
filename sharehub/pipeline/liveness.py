"""Which process works on a run, and whether it still lives.

A step (extract, gate, promote) holds its run's liveness lock while it works. With PostgreSQL metadata it
is a session advisory lock, which the server releases when the session dies, on whatever machine the
worker ran; with the embedded SQLite metadata it is a file lock under the hub's home (one machine), which
the kernel releases when the process dies. A run still `running` whose lock can be taken has lost its
process (kill -9, out of memory, a lost Airflow worker): `reap` marks it `abandoned`, naming the step it
stopped in, the process that held it and when that step began. A retried task may take an abandoned run
up again: its steps start clean and the merge is idempotent.
"""

from __future__ import annotations

import fcntl
import logging
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa
from sqlalchemy import select
from sqlalchemy.pool import NullPool

from sharehub.errors import RetryableError
from sharehub.hub import Hub
from sharehub.metadata.models import Run, utcnow
from sharehub.pipeline.runs import update_run

log = logging.getLogger(__name__)


class RunBusy(RetryableError):
    """Another live process is working on this run."""


def this_process() -> str:
    """How a run names the process that works on it."""
    return f"{socket.gethostname()} pid {os.getpid()}"


@contextmanager
def _run_lock(hub: Hub, run_id: str) -> Iterator[bool]:
    """Try to take the run's liveness lock without waiting; yields whether it was taken, holds it until exit."""
    url = hub.settings.metadata_url
    name = f"sharehub.run:{run_id}"
    if sa.engine.make_url(url).get_backend_name() == "postgresql":
        engine = sa.create_engine(url, poolclass=NullPool)
        try:
            with engine.connect() as c:  # a connection of its own: the lock lives as long as its session
                got = bool(
                    c.execute(sa.text("SELECT pg_try_advisory_lock(hashtextextended(:n, 0))"), {"n": name}).scalar()
                )
                try:
                    yield got
                finally:
                    if got:
                        c.execute(sa.text("SELECT pg_advisory_unlock(hashtextextended(:n, 0))"), {"n": name})
        finally:
            engine.dispose()
        return
    folder = hub.settings.home / "locks" / "runs"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{run_id.replace('/', '_')}.lock"
    with path.open("a") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


@contextmanager
def working(hub: Hub, run_id: str, step: str) -> Iterator[None]:
    """Mark the run `running` at `step` by this process, and hold its liveness lock while the step works."""
    with _run_lock(hub, run_id) as got:
        if not got:
            with hub.db() as s:
                run = s.get(Run, run_id)
                holder = run.holder if run and run.holder else "another process"
            raise RunBusy(f"run {run_id} is being worked on by {holder}; try again when it has finished")
        update_run(
            hub,
            run_id,
            status="running",
            step=step,
            holder=this_process(),
            step_started_at=utcnow(),
            finished_at=None,
            error=None,
            error_kind=None,
        )
        yield


def reap(hub: Hub, resource_id: str | None = None) -> list[str]:
    """Mark `abandoned` every `running` run (of one resource, or all) whose process is gone; their ids."""
    q = select(Run.id).where(Run.status.in_(("queued", "running")))
    if resource_id:
        q = q.where(Run.resource_id == resource_id)
    with hub.db() as s:
        candidates = list(s.scalars(q))
    gone = []
    for run_id in candidates:
        with _run_lock(hub, run_id) as got:
            if not got:
                continue  # alive
            with hub.db() as s:
                run = s.get(Run, run_id)
                if run is None or run.status not in ("queued", "running"):
                    continue  # finished between the look and the lock
                began, step = run.step_started_at or run.started_at, run.step
                run.status, run.finished_at, run.error_kind = "abandoned", utcnow(), "Abandoned"
                run.error = (
                    f"abandoned in step {run.step}: {run.holder or 'its process'} stopped working on it after the "
                    f"step began at {began:%Y-%m-%d %H:%M:%S} UTC; found gone by {this_process()}"
                )
            gone.append(run_id)
            log.warning("run %s was abandoned in step %s; marked", run_id, step)
    return gone


def promoting(hub: Hub, resource_id: str, besides: str | None = None) -> str:
    """Who is promoting the resource now, as the runs record it ('run R (host pid N)'), other than `besides`."""
    q = select(Run).where(Run.resource_id == resource_id, Run.status == "running", Run.step == "promote")
    with hub.db() as s:
        held = [f"run {r.id} ({r.holder or 'unknown process'})" for r in s.scalars(q) if r.id != besides]
    return ", ".join(held) or "a process that records no run"
