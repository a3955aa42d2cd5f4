"""A hub whose catalogue is the shipped departments plus one resource a test declares, on a table it builds."""

from __future__ import annotations

import shutil
from pathlib import Path

import yaml

from sharehub.hub import Hub
from sharehub.settings import REPO_ROOT

PROBE_ID = "xzsp.probe"


def probe_resource(table: str | None, fields: list[dict], **source: object) -> dict:
    """A resource declaration of xzsp for `table` with these fields; `source` overrides its source keys."""
    declared = {"connection": "probe_front", "table": table, "key": ["id"], "mode": "snapshot"} | source
    return {
        "id": PROBE_ID,
        "version": 1,
        "title": "探针",
        "provider": "xzsp",
        "store": {"kind": "business"},
        "source": {k: v for k, v in declared.items() if v is not None},
        "fields": fields,
        "share": {"type": "unconditional"},
        "open": "not_open",
        "serving_modes": ["query"],
        "update": {"frequency": "daily", "deadline_working_days": 1},
        "suite": PROBE_ID,
    }


def probe_hub(make_hub, tmp_path: Path, resource: dict, url: str) -> Hub:
    """A hub in tmp_path with the shipped departments and `resource`, reading connection probe_front at `url`."""
    catalogue = tmp_path / "catalogue"
    shutil.copytree(REPO_ROOT / "catalogue" / "departments", catalogue / "departments")
    (catalogue / "resources").mkdir()
    (catalogue / "resources" / f"{PROBE_ID}.yaml").write_text(
        yaml.safe_dump(resource, allow_unicode=True), encoding="utf-8"
    )
    return make_hub(catalogue_dir=catalogue, connections={"probe_front": url})
