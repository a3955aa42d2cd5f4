"""The unchanged `delta-sharing` client reads a granted extract over the open protocol; another token cannot."""

from __future__ import annotations

import json
import socket
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import delta_sharing
import httpx
import pytest
import sqlalchemy as sa
import uvicorn
from fastapi.testclient import TestClient

from api.app import create_app
from sharehub.access.consumers import add_consumer
from sharehub.demo.build import build_sources
from sharehub.pipeline.run import run_resource


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _profile(path: Path, endpoint: str, token: str) -> str:
    path.write_text(json.dumps({"shareCredentialsVersion": 1, "endpoint": endpoint, "bearerToken": token}))
    return str(path)


@pytest.mark.slow  # a uvicorn server and the delta-sharing client
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

        # The table as it was: a version, or the version of a moment, after the store has moved on.
        company = frame.iloc[0]
        uscc = company["uscc"]
        before = datetime.now(UTC)
        engine = sa.create_engine(hub.settings.connection_url("scjg_front"))
        with engine.begin() as c:
            c.execute(
                sa.text("UPDATE legal_entity_register SET status = :s, updated_at = :t WHERE uscc = :k"),
                {"s": "吊销" if company["status"] != "吊销" else "存续", "t": "2026-11-30 10:00:00", "k": uscc},
            )
        engine.dispose()
        assert run_resource(hub, "scjg.legal_entity").store_version == 1
        url = f"{mine}#{grant_share}.scjg.legal_entity"
        status_of = {
            name: dict(zip(f["uscc"], f["status"], strict=True))[company["uscc"]]
            for name, f in (
                ("now", delta_sharing.load_as_pandas(url)),
                ("v0", delta_sharing.load_as_pandas(url, version=0)),
                ("then", delta_sharing.load_as_pandas(url, timestamp=before.isoformat())),
            )
        }
        assert status_of["v0"] == status_of["then"] == company["status"] != status_of["now"]
        headers = {"Authorization": f"Bearer {owner}"}
        path = f"{base}/delta-sharing/shares/{grant_share}/schemas/scjg/tables/legal_entity/query"
        answered = httpx.post(path, json={"version": 0}, headers=headers, timeout=30)
        assert answered.headers["Delta-Table-Version"] == "0"
        meta = json.loads(answered.text.splitlines()[1])["metaData"]
        file = json.loads(answered.text.splitlines()[2])["file"]
        assert meta["size"] == file["size"] > 0 and json.loads(file["stats"])["numRecords"] == len(frame)
        for refused in ({"version": 9}, {"startingVersion": 0}, {"timestamp": "2020-01-01T00:00:00Z"}):
            error = httpx.post(path, json=refused, headers=headers, timeout=30)
            assert error.status_code == 400, (refused, error.text)
            assert error.json()["errorCode"] == "INVALID_PARAMETER_VALUE" and error.json()["message"], error.text

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
