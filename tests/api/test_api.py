"""The API answers its health check from the real metadata database and object store."""

from __future__ import annotations

import sqlalchemy as sa
from fastapi.testclient import TestClient

from api.app import create_app


def test_health_reports_catalogue_and_stores(make_hub, use_env) -> None:
    hub = make_hub()
    use_env(hub)
    client = TestClient(create_app())
    body = client.get("/health").json()
    assert body["status"] == "ok" and body["resources"] == len(hub.catalogue.resources)
    assert body["metadata"] == "sqlite" and body["object_store"] == "file"
    document = client.get("/openapi.json").json()
    assert "/health" in document["paths"]
    # The document says which operations take the bearer key: every one but health and a signed download.
    open_ones = {"/health", "/health/noop", "/bulk/extracts/{extract_id}/download"}
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            expected = [] if path in open_ones else [{"HTTPBearer": []}]
            assert operation.get("security", []) == expected, (method, path)
    assert document["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"


def test_callers_need_a_valid_key_and_see_only_their_own_notices(make_hub, use_env) -> None:
    from sharehub.access.consumers import add_consumer
    from sharehub.demo.build import build_sources
    from sharehub.pipeline.run import run_resource

    hub = make_hub()
    use_env(hub)
    build_sources(hub.settings, hub.catalogue, 300, 60)
    run_resource(hub, "gongan.population")
    run_resource(hub, "scjg.legal_entity")
    _, platform = add_consumer(hub, "平台办", "platform", "platform")
    _, gongan = add_consumer(hub, "公安局数据科", "gongan", "provider")
    _, reader = add_consumer(hub, "人社局待遇认证", "rsj", "consumer")
    client = TestClient(create_app())

    def get(path: str, key: str | None, **params: str):
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return client.get(path, headers=headers, params=params)

    assert get("/notices", None).status_code == 401
    assert get("/notices", "shk_nothing_here").json()["detail"] == "unknown API key"
    assert get("/notices", platform[:-1] + ("A" if platform[-1] != "A" else "B")).status_code == 401
    assert get("/notices", reader).status_code == 403
    own = get("/notices", gongan).json()
    assert own and {n["department"] for n in own} == {"gongan"} and own[0]["pending_rows"] > 0
    assert get("/notices", gongan, department="scjg").status_code == 403
    everyone = {n["department"] for n in get("/notices", platform).json()}
    assert {"gongan", "scjg"} <= everyone
    assert {n["department"] for n in get("/notices", platform, department="scjg").json()} == {"scjg"}
    all_ids = [n["id"] for n in get("/notices", platform).json()]
    assert len(all_ids) >= 2 and [n["id"] for n in get("/notices", platform, limit="1").json()] == all_ids[:1]
    assert get("/notices", platform, limit="0").status_code == 422

    # Keys are managed by the platform office over the API too; a revoked key stops at once.
    made = client.post(
        "/consumers",
        headers={"Authorization": f"Bearer {platform}"},
        json={"name": "市场监管局数据科", "department": "scjg", "role": "provider"},
    )
    assert made.status_code == 201 and made.json()["api_key"].startswith("shk_")
    scjg = made.json()["api_key"]
    assert {n["department"] for n in get("/notices", scjg).json()} == {"scjg"}
    assert "api_key" not in get("/consumers", platform).json()[0]
    assert get("/consumers", gongan).status_code == 403
    bad = client.post(
        "/consumers", headers={"Authorization": f"Bearer {platform}"}, json={"name": "x", "department": "nowhere"}
    )
    assert bad.status_code == 422 and "nowhere" in bad.json()["detail"]
    revoked = client.post(f"/consumers/{made.json()['id']}/revoke", headers={"Authorization": f"Bearer {platform}"})
    assert revoked.status_code == 200 and revoked.json()["revoked_at"]
    assert get("/notices", scjg).json()["detail"] == "revoked API key"
    with hub.db() as s:
        stored = s.execute(sa.text("SELECT key_hash FROM consumers")).scalars().all()
    assert all(platform not in h and len(h) == 64 for h in stored)
