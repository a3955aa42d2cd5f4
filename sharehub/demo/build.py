"""Build the embedded demo: department databases and file drops from the synthetic world."""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass
from pathlib import Path

from sharehub.catalogue import Catalogue
from sharehub.demo.load import load_table, write_file_drop
from sharehub.demo.world import World, build_world
from sharehub.settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DemoSources:
    """What the demo wrote, per resource."""

    rows: dict[str, int]
    world: World


def reset_embedded_state(settings: Settings) -> None:
    """Remove the demo's own state under the hub's home: front-end DBs, drops, the local lake, the SQLite
    metadata (with its write-ahead log) and what is derived from the stores (the consistency cache, the
    serving copies). The seal and URL-signing keys stay."""
    home = settings.home
    targets = [home / "frontdb", settings.filedrop_dir, home / "serving"]
    if settings.storage_url.startswith("file://"):
        targets.append(Path(settings.storage_url.removeprefix("file://")))
    for t in targets:
        if t.is_dir() and home in t.parents:
            shutil.rmtree(t)
    files = [home / "consistency.duckdb", home / "consistency.duckdb.wal"]
    meta = settings.metadata_url.removeprefix("sqlite:///")
    if settings.metadata_url.startswith("sqlite:///") and home in Path(meta).parents:
        files += [Path(meta + suffix) for suffix in ("", "-wal", "-shm", "-journal")]
    for f in files:
        f.unlink(missing_ok=True)


def build_sources(
    settings: Settings, catalogue: Catalogue, persons: int, entities: int, url_for: dict[str, str] | None = None
) -> DemoSources:
    """Generate the world and write every table resource to its connection (or `url_for[connection]`)."""
    world = build_world(persons=persons, entities=entities)
    counts: dict[str, int] = {}
    for res in catalogue.resources.values():
        if res.source.table and res.id in world.tables:
            conn = res.source.connection or ""
            url = (url_for or {}).get(conn) or settings.connection_url(conn)
            if url.startswith("sqlite:///"):
                Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
            counts[res.id] = load_table(url, res, world)
            log.info("demo wrote %d rows for %s", counts[res.id], res.id)
        elif res.source.file_pattern and res.id == "mzj.subsistence_allowance":
            folder = settings.filedrop_dir
            name = res.source.file_pattern.replace("*", "202611")
            write_file_drop(folder, res, world.csv_rows, name)
            counts[res.id] = len(world.csv_rows)
    return DemoSources(counts, world)
