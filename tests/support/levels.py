"""The upper level of the levels tests: a province hub with the shipped catalogue plus the county platform
as one of its departments, some stores run, and its API in a `sharehub serve` process of its own."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from sharehub.demo.build import build_sources
from sharehub.hub import Hub
from sharehub.pipeline.run import run_resource
from sharehub.settings import REPO_ROOT
from tests.support.serve import sharehub_serve

COUNTY = (
    "id: lichuan\nname: 利川市政务数据管理局\nname_en: Lichuan data office\nlevel: county\n"
    "contact_email: data@lichuan.example.gov.cn\n"
)


@contextmanager
def served_province(
    make_hub: Callable[..., Hub], folder: Path, resources: list[str], entities: int = 60
) -> Iterator[tuple[Hub, str]]:
    """The province hub with `resources` run, served over HTTP: (hub, its URL)."""
    catalogue = folder / "province-catalogue"
    shutil.copytree(REPO_ROOT / "catalogue", catalogue)
    (catalogue / "departments" / "lichuan.yaml").write_text(COUNTY, encoding="utf-8")
    hub = make_hub(home=folder / "province", catalogue_dir=catalogue, serving_refresh_seconds=0)
    build_sources(hub.settings, hub.catalogue, 300, entities)
    for rid in resources:
        run_resource(hub, rid)
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHAREHUB_")}
    s = hub.settings
    env |= {
        "SHAREHUB_HOME": str(s.home),
        "SHAREHUB_METADATA_URL": s.metadata_url,
        "SHAREHUB_STORAGE_URL": s.storage_url,
        "SHAREHUB_CATALOGUE_DIR": str(catalogue),
        "SHAREHUB_CONNECTIONS": json.dumps(s.connections),
        "SHAREHUB_SERVING_REFRESH_SECONDS": "0",
    }
    with sharehub_serve(env) as served:
        yield hub, served.url
