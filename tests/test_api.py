"""The API answers its health check from the real metadata database and object store."""

from __future__ import annotations

from fastapi.testclient import TestClient

from api.app import create_app


def test_health_reports_catalogue_and_stores(make_hub, use_env) -> None:
    hub = make_hub()
    use_env(hub)
    client = TestClient(create_app())
    body = client.get("/health").json()
    assert body["status"] == "ok" and body["resources"] == len(hub.catalogue.resources)
    assert body["metadata"] == "sqlite" and body["object_store"] == "file"
    assert "/health" in client.get("/openapi.json").json()["paths"]
