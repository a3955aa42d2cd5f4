"""The unchanged `delta-sharing` client reads a granted extract over the open protocol; another token cannot."""

from __future__ import annotations

import json
import socket
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import delta_sharing
import pytest
import sqlalchemy as sa
import uvicorn
from fastapi.testclient import TestClient

from api.app import create_app
from sharehub.consumers import add_consumer
from sharehub.demo.build import build_sources
from sharehub.pipeline.run import run_resource


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _profile(path: Path, endpoint: str, token: str) -> str:
    path.write_text(json.dumps({"shareCredentialsVersion": 1, "endpoint": endpoint, "bearerToken": token}))
    return str(path)


def test_delta_sharing_client_reads_a_granted_share_and_no_other(make_hub, use_env, monkeypatch, tmp_path) -> None:
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    monkeypatch.setenv("SHAREHUB_PUBLIC_URL", base)
    hub = make_hub(public_url=base)
    build_sources(hub.settings, hub.catalogue, 50, 80)
    run_resource(hub, "scjg.legal_entity")
    use_env(hub)
    app = create_app()
    owner = add_consumer(hub, "人社 招聘核验", "rsj", "consumer")[1]
    other_consumer, other = add_consumer(hub, "民政", "mzj", "consumer")
    other_id = other_consumer.id
    until = (datetime.now(UTC) + timedelta(days=30)).isoformat()
    body = {"resource_id": "scjg.legal_entity", "fields": ["uscc", "name", "legal_rep_name", "status"]}
    made = TestClient(app).post(
        "/applications",
        json={**body, "modes": ["bulk"], "purpose": "招聘单位资质核验", "valid_until": until},
        headers={"Authorization": f"Bearer {owner}"},
    )
    grant_share = (
        f"grant-{TestClient(app).get('/grants', headers={'Authorization': f'Bearer {owner}'}).json()[0]['id']}"
    )
    assert made.json()["status"] == "granted"

    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    for _ in range(100):
        if server.started:
            break
        time.sleep(0.05)
    try:
        mine = _profile(tmp_path / "rsj.share", f"{base}/delta-sharing", owner)
        client = delta_sharing.SharingClient(mine)
        tables = client.list_all_tables()
        assert [(t.share, t.schema, t.name) for t in tables] == [(grant_share, "scjg", "legal_entity")]
        frame = delta_sharing.load_as_pandas(f"{mine}#{grant_share}.scjg.legal_entity")
        assert list(frame.columns) == body["fields"]
        assert len(frame) > 0
        names = [n for n in frame["legal_rep_name"] if n]
        assert names and all("*" in n for n in names)  # masked as a name, as the grant serves it

        theirs = _profile(tmp_path / "mzj.share", f"{base}/delta-sharing", other)
        assert delta_sharing.SharingClient(theirs).list_all_tables() == []
        with pytest.raises(Exception, match="404"):
            delta_sharing.load_as_pandas(f"{theirs}#{grant_share}.scjg.legal_entity")
        with hub.db() as s:
            refused = s.execute(
                sa.text(
                    "SELECT consumer_id, detail FROM audit_log WHERE action = 'delta_sharing' AND result = 'denied'"
                )
            ).all()
        assert refused and {c for c, _ in refused} == {other_id} and all(grant_share in d for _, d in refused)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
