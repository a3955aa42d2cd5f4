"""An HTML quality report per run, written beside the landing data: each rule's result, as Data Docs would."""

from __future__ import annotations

import json
from html import escape
from typing import Any

from sharehub.catalogue.models import Resource
from sharehub.hub import Hub

STYLE = (
    "body{font-family:system-ui,'Noto Sans CJK SC',sans-serif;margin:2em;color:#222}"
    "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.3em .6em;text-align:left}"
    "td.n{text-align:right}.bad{color:#b00020;font-weight:600}.ok{color:#1b5e20}"
)


def report_path(resource_id: str, run_id: str) -> str:
    """Where a run's report lives in the object store."""
    return f"reports/{resource_id}/run={run_id}/index.html"


def write_report(
    hub: Hub, resource: Resource, run_id: str, landed: int, passed: int, rules: dict[str, tuple[int, int]]
) -> str:
    """Write the run's report (rule → (checked, failed)); return its path in the object store."""
    rows = "".join(
        f"<tr><td>{escape(name)}</td><td class=n>{checked:,}</td><td class=n>{failed:,}</td>"
        f"<td class={'ok' if failed == 0 else 'bad'}>{'passed' if failed == 0 else 'failed'}</td></tr>"
        for name, (checked, failed) in sorted(rules.items(), key=lambda kv: (-kv[1][1], kv[0]))
    )
    html = (
        f"<!doctype html><html lang=zh><meta charset=utf-8><title>{escape(resource.id)} · {escape(run_id)}</title>"
        f"<style>{STYLE}</style><h1>{escape(resource.title)} <small>{escape(resource.id)}</small></h1>"
        f"<p>Run <code>{escape(run_id)}</code>: {landed:,} rows landed, {passed:,} passed, "
        f"<span class={'bad' if landed - passed else 'ok'}>{landed - passed:,} quarantined</span>. "
        f"Suite <code>{escape(resource.suite)}</code>, generated from the catalogue.</p>"
        "<table><tr><th>rule</th><th>checked</th><th>failed</th><th>result</th></tr>"
        f"{rows}</table></html>"
    )
    path = report_path(resource.id, run_id)
    _write(hub, path, html.encode("utf-8"))
    return path


def write_validation(hub: Hub, resource: Resource, run_id: str, result: dict[str, Any]) -> str:
    """Write the run's Great Expectations validation result beside its report; return its path."""
    path = report_path(resource.id, run_id).replace("index.html", "validation.json")
    _write(hub, path, json.dumps(result, ensure_ascii=False, indent=1, default=str).encode("utf-8"))
    return path


def _write(hub: Hub, path: str, data: bytes) -> None:
    parent = hub.store.path(path).rsplit("/", 1)[0]
    hub.store.fs.create_dir(parent, recursive=True)
    with hub.store.fs.open_output_stream(hub.store.path(path)) as out:
        out.write(data)
