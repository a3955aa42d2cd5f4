"""A backup of the metadata database, taken while the hub runs, with its audit chain checked.

The metadata database holds what exists nowhere else: runs and watermarks, quarantine keys, notices,
conflicts, consumers and key hashes, applications, grants, objections and the audit chain. (The stores,
landing and quarantine files live in the object store, which is backed up with its own tools; the
serving copies and the consistency cache are rebuilt from the stores.)

- SQLite (the embedded default): SQLite's online backup API, a consistent copy while writers go on.
  The copy's own audit chain is then verified, so a backup that reports an intact chain holds one.
- PostgreSQL: `pg_dump --format=custom` (one consistent snapshot), restored with `pg_restore`. The
  chain is verified on the live database at the time of the backup, and the archive's table of
  contents is read back with `pg_restore --list`.

A broken chain does not stop the backup (it is evidence too); the result says where it broke.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import make_url

from sharehub.audit import ChainCheck
from sharehub.audit import verify as verify_chain
from sharehub.errors import FatalError
from sharehub.hub import Hub
from sharehub.metadata.db import dispose


@dataclass(frozen=True)
class Backup:
    """What was written and what was checked."""

    path: Path
    bytes: int
    chain: ChainCheck
    checked: str  # what the chain check ran on: "the copy" or "the live database"


def backup(hub: Hub, out: Path) -> Backup:
    """Write a consistent backup of the metadata database to `out` (which must not exist yet)."""
    if out.exists():
        raise FatalError(f"backup: {out} exists already; name a new file")
    out.parent.mkdir(parents=True, exist_ok=True)
    url = make_url(hub.settings.metadata_url)
    if url.get_backend_name() == "sqlite":
        return _sqlite(hub, Path(url.database or ""), out)
    if url.get_backend_name() == "postgresql":
        return _postgresql(hub, out)
    raise FatalError(f"backup: no backup method for {url.get_backend_name()} metadata databases")


def _sqlite(hub: Hub, source: Path, out: Path) -> Backup:
    if not source.is_file():
        raise FatalError(f"backup: the metadata database {source} does not exist")
    partial = out.with_name(out.name + ".partial")
    src, dst = sqlite3.connect(f"file:{source}?mode=ro", uri=True), sqlite3.connect(partial)
    try:
        src.backup(dst, pages=4096)  # in steps: writers are held up only for a step at a time
    finally:
        dst.close()
        src.close()
    copy_url = f"sqlite:///{partial}"
    try:
        chain = verify_chain(Hub(hub.settings.model_copy(update={"metadata_url": copy_url})))
    finally:
        dispose(copy_url)  # the last connection closing folds its write-ahead log back into the file
    partial.replace(out)
    return Backup(out, out.stat().st_size, chain, "the copy")


def _postgresql(hub: Hub, out: Path) -> Backup:
    if shutil.which("pg_dump") is None or shutil.which("pg_restore") is None:
        raise FatalError("backup: PostgreSQL metadata needs pg_dump and pg_restore on the PATH")
    chain = verify_chain(hub)
    url = make_url(hub.settings.metadata_url)
    env = {**os.environ, "PGPASSWORD": url.password or ""}  # not on the command line, where ps shows it
    where = ["--host", url.host or "localhost", "--port", str(url.port or 5432), "--username", url.username or ""]
    partial = out.with_name(out.name + ".partial")
    dumped = subprocess.run(
        ["pg_dump", "--format=custom", "--file", str(partial), *where, "--dbname", url.database or ""],
        env=env,
        capture_output=True,
        text=True,
    )
    if dumped.returncode != 0:
        partial.unlink(missing_ok=True)
        raise FatalError(f"backup: pg_dump failed: {dumped.stderr.strip()}")
    listed = subprocess.run(["pg_restore", "--list", str(partial)], capture_output=True, text=True)
    if listed.returncode != 0 or "TABLE DATA" not in listed.stdout or " audit_log " not in listed.stdout:
        partial.unlink(missing_ok=True)
        raise FatalError(f"backup: the archive does not read back: {listed.stderr.strip()}")
    partial.replace(out)
    return Backup(out, out.stat().st_size, chain, "the live database")
