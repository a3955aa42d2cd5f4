"""Bulk extracts through the API: masked, manifested, incremental, streamed, audited, and removed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from sharehub.cli import app as cli
from sharehub.pipeline.run import run_resource
from tests.support.audit import audit_rows
from tests.support.served import apply as _apply
from tests.support.served import auth as _auth
from tests.support.served import source_row as _row


def test_bulk_extracts_are_masked_manifested_incremental_and_tied_to_the_grant(served) -> None:
    import hashlib
    import io
    import json

    import pyarrow.parquet as pq

    hub, client, keys = served
    fields = ["uscc", "name", "legal_rep_name", "status"]
    assert _apply(client, keys["rsj"], "scjg.legal_entity", fields, ["bulk"]).json()["status"] == "granted"
    made = client.post("/bulk/scjg.legal_entity", json={}, headers=_auth(keys["rsj"]))
    assert made.status_code == 201, made.text
    first = made.json()
    link = first["url"].removeprefix(hub.settings.public_url)
    data = client.get(link).content
    assert hashlib.sha256(data).hexdigest() == first["sha256"]
    table = pq.read_table(io.BytesIO(data))
    assert table.column_names == fields and table.num_rows == first["rows"] > 0
    company = _row(hub, "scjg_front:legal_entity_register", "legal_rep_name IS NOT NULL")
    rows = {r["uscc"]: r for r in table.to_pylist()}
    rep = company["legal_rep_name"]
    assert rows[company["uscc"]]["legal_rep_name"] == rep[0] + "*" * (len(rep) - 2) + rep[-1]  # L2, masked as a name
    manifest_path = f"extracts/rsj/scjg.legal_entity/{first['id']}/manifest.json"
    with hub.store.fs.open_input_stream(hub.store.path(manifest_path)) as f:
        manifest = json.loads(f.read())
    assert (manifest["rows"], manifest["sha256"], manifest["store_version"]) == (
        first["rows"],
        first["sha256"],
        first["store_version"],
    )
    assert manifest["grant_id"] == first["grant_id"] and [c["name"] for c in manifest["schema"]] == fields
    # Under the platform's seal, checked with the key the API publishes.
    from sharehub.seal import verify as verify_seal

    sealed_by = client.get("/seal", headers=_auth(keys["rsj"])).json()
    assert verify_seal(manifest, sealed_by["public_key"]) is None and manifest["seal"]["key_id"] == sealed_by["key_id"]

    # Only what changed since the last extract, from the store's change data.
    engine = sa.create_engine(hub.settings.connection_url("scjg_front"))
    with engine.begin() as c:
        c.execute(
            sa.text(
                "UPDATE legal_entity_register SET status = '注销', updated_at = '2026-11-21 10:00:00' WHERE uscc = :k"
            ),
            {"k": company["uscc"]},
        )
    engine.dispose()
    run_resource(hub, "scjg.legal_entity")
    delta = client.post("/bulk/scjg.legal_entity", json={"incremental": True}, headers=_auth(keys["rsj"])).json()
    assert delta["since_version"] == first["store_version"] and delta["store_version"] == first["store_version"] + 1
    delta_bytes = client.get(delta["url"].removeprefix(hub.settings.public_url)).content
    changed = pq.read_table(io.BytesIO(delta_bytes))
    assert changed.to_pylist() == [{**rows[company["uscc"]], "status": "注销", "_change_type": "upsert"}]

    # Links are the extract owner's, signed and short-lived, and die with the grant.
    assert client.get(f"/bulk/extracts/{first['id']}", headers=_auth(keys["mzj"])).status_code == 404
    again = client.get(f"/bulk/extracts/{first['id']}", headers=_auth(keys["rsj"])).json()
    assert (again["id"], again["sha256"], again["rows"]) == (first["id"], first["sha256"], first["rows"])
    forged = link[:-1] + ("0" if link[-1] != "0" else "1")
    assert client.get(forged).status_code == 403
    grant_id = first["grant_id"]
    client.post(f"/grants/{grant_id}/revoke", json={"reason": "用途已结束"}, headers=_auth(keys["scjg"]))
    assert client.get(link).status_code == 403
    with hub.db() as s:
        issued = s.execute(sa.text("SELECT count(*) FROM audit_log WHERE action = 'download_url'")).scalar_one()
        downloads = s.execute(
            sa.text("SELECT result, response_bytes, grant_id FROM audit_log WHERE action = 'download' ORDER BY id")
        ).all()
    assert issued == 3
    # Every download is audited with the bytes sent; a byte range as partial; a refused link as denied.
    assert [tuple(d) for d in downloads[:2]] == [("ok", len(data), grant_id), ("ok", len(delta_bytes), grant_id)]
    assert [(d.result, d.grant_id) for d in downloads[2:]] == [("denied", grant_id)] * 2


def test_an_extract_is_written_batch_by_batch_and_a_failure_leaves_nothing(served, monkeypatch) -> None:
    """An extract streams from the store through masking into its file, a batch at a time: in small batches it
    holds the same rows. A failure half-way leaves no file, no extract and no audit entry behind."""
    import io

    import pyarrow.parquet as pq

    import sharehub.serving.bulk as bulk
    from sharehub.access.consumers import Caller
    from sharehub.access.grants import active_grant
    from sharehub.metadata.models import Extract

    hub, client, keys = served
    fields = ["uscc", "name", "legal_rep_name", "status"]
    assert _apply(client, keys["rsj"], "scjg.legal_entity", fields, ["bulk"]).json()["status"] == "granted"

    def made() -> Any:
        answer = client.post("/bulk/scjg.legal_entity", json={}, headers=_auth(keys["rsj"]))
        assert answer.status_code == 201, answer.text
        return pq.read_table(io.BytesIO(client.get(answer.json()["url"].removeprefix(hub.settings.public_url)).content))

    whole = made()
    monkeypatch.setattr(bulk, "EXTRACT_BATCH_ROWS", 7)
    pieces = made()
    assert pieces.num_rows == whole.num_rows > 14 and pieces.to_pylist() == whole.to_pylist()

    masked, calls = bulk._masked_table, []

    def failing(res, table, columns):  # type: ignore[no-untyped-def]
        calls.append(table.num_rows)
        if len(calls) == 3:
            raise OSError("No space left on device")
        return masked(res, table, columns)

    monkeypatch.setattr(bulk, "_masked_table", failing)
    files = hub.store.list("extracts/rsj/scjg.legal_entity")
    with hub.db() as s:
        extracts = s.query(Extract).count()
    entries = len(audit_rows(hub, "id", "extract"))
    rsj = Caller(2, "人社 待遇资格认证", "rsj", "consumer")
    with pytest.raises(OSError, match="No space left"):
        bulk.create(hub, rsj, active_grant(hub, rsj, "scjg.legal_entity", "bulk"), "scjg.legal_entity", False)
    assert len(calls) == 3 and hub.store.list("extracts/rsj/scjg.legal_entity") == files
    with hub.db() as s:
        assert s.query(Extract).count() == extracts
    assert len(audit_rows(hub, "id", "extract")) == entries


def test_byte_ranges_of_an_extract_are_audited_as_partial_and_sizes_are_not(served, monkeypatch) -> None:
    hub, client, keys = served
    assert _apply(client, keys["rsj"], "scjg.legal_entity", ["uscc", "name"], ["bulk"]).json()["status"] == "granted"
    made = client.post("/bulk/scjg.legal_entity", json={}, headers=_auth(keys["rsj"])).json()
    link = made["url"].removeprefix(hub.settings.public_url)
    size = int(client.head(link).headers["content-length"])
    assert len(client.get(link).content) == size > 100
    part = client.get(link, headers={"Range": "bytes=0-99"})
    assert part.status_code == 206 and len(part.content) == 100
    with hub.db() as s:
        rows = s.execute(sa.text("SELECT result, response_bytes FROM audit_log WHERE action = 'download'")).all()
    assert [tuple(r) for r in rows] == [("ok", size), ("partial", 100)]  # the HEAD sent no data: no entry

    # A genuine link past its expiry says which extract to ask a fresh link for.
    from sharehub.serving.bulk import sign

    past = int(datetime.now(UTC).timestamp()) - 60
    expired = client.get(f"/bulk/extracts/{made['id']}/download?expires={past}&sig={sign(hub, made['id'], past)}")
    assert expired.status_code == 403 and f"ask GET /bulk/extracts/{made['id']} for a new one" in expired.text

    # Refused links are audited, but an address gets only so many a minute: then 429, and nothing written.
    import api.routes.serving

    monkeypatch.setattr(api.routes.serving, "REFUSED_LINKS_PER_MINUTE", 3)
    forged = link[:-1] + ("0" if link[-1] != "0" else "1")
    assert [client.get(forged).status_code for _ in range(5)] == [403, 403, 403, 429, 429]
    assert client.get(link).status_code == 200  # a good link is served whatever its address did before
    with hub.db() as s:
        denied = s.execute(sa.text("SELECT count(*) FROM audit_log WHERE result = 'denied'")).scalar_one()
    assert denied == 4  # the expired link and three forged ones; the 429s wrote nothing


def test_extracts_leave_the_object_store_when_their_grant_ends_or_they_age(served) -> None:
    """Masked personal data is not kept past its use: an extract's files go once its grant has ended or it is
    older than SHAREHUB_EXTRACT_KEEP_DAYS, each removal audited. Its id then answers 410 saying how to get
    a new one, its old link is refused, and an incremental extract still counts from it."""
    from sharehub.serving.bulk import prune

    hub, client, keys = served
    for who in ("rsj", "mzj"):
        assert _apply(client, keys[who], "scjg.legal_entity", ["uscc", "name"], ["bulk"]).json()["status"] == "granted"
    made = {w: client.post("/bulk/scjg.legal_entity", json={}, headers=_auth(keys[w])).json() for w in ("rsj", "mzj")}
    ended, kept = made["rsj"], made["mzj"]
    folder = {who: f"extracts/{who}/scjg.legal_entity/{made[who]['id']}" for who in ("rsj", "mzj")}
    assert prune(hub) == {"grant_ended": 0, "aged": 0}  # fresh, and their grants live
    revoked = client.post(
        f"/grants/{ended['grant_id']}/revoke", json={"reason": "用途已结束"}, headers=_auth(keys["scjg"])
    )
    assert revoked.status_code == 200
    assert prune(hub) == {"grant_ended": 1, "aged": 0}
    assert not hub.store.exists(folder["rsj"]) and hub.store.exists(f"{folder['mzj']}/data.parquet")

    later = datetime.now(UTC) + timedelta(days=hub.settings.extract_keep_days, hours=1)
    assert prune(hub, later) == {"grant_ended": 0, "aged": 1}
    assert not hub.store.exists(folder["mzj"])
    gone = client.get(f"/bulk/extracts/{kept['id']}", headers=_auth(keys["mzj"]))
    assert gone.status_code == 410 and "POST /bulk/scjg.legal_entity makes a new one" in gone.json()["detail"]
    refused = client.get(kept["url"].removeprefix(hub.settings.public_url))
    assert refused.status_code == 403 and "was removed" in refused.json()["detail"]
    assert client.get(f"/bulk/extracts/{kept['id']}", headers=_auth(keys["rsj"])).status_code == 404  # not its own
    made_by_mzj = client.get("/audit?action=extract", headers=_auth(keys["mzj"])).json()  # its extracts, by id
    assert [e["detail"].split(";")[0] for e in made_by_mzj] == [f"extract {kept['id']}"]
    again = client.post("/bulk/scjg.legal_entity", json={"incremental": True}, headers=_auth(keys["mzj"])).json()
    assert again["since_version"] == kept["store_version"] and again["rows"] == 0  # nothing changed since

    # Who copied what: a consumer lists its own extracts, removed ones with when; the provider every extract
    # of its data; another provider none. Pages follow the Link header, newest first.
    def listed(who: str, query: str = "") -> Any:
        answer = client.get(f"/bulk/extracts{query}", headers=_auth(keys[who]))
        assert answer.status_code == 200, answer.text
        return answer

    mine = listed("mzj").json()
    assert [e["id"] for e in mine] == [again["id"], kept["id"]] and "url" not in mine[0]
    assert mine[0]["removed_at"] is None and mine[1]["removed_at"] is not None
    by_provider = listed("scjg")
    assert by_provider.headers["x-total-count"] == "3" and "link" not in by_provider.headers
    assert [e["id"] for e in by_provider.json()] == [again["id"], kept["id"], ended["id"]]
    assert listed("swj").json() == [] and listed("rsj", "?consumer_id=3").json() == []
    first = listed("platform", "?limit=2&resource_id=scjg.legal_entity")
    second = client.get(first.headers["link"].split(";")[0].strip("<>"), headers=_auth(keys["platform"]))
    assert [e["id"] for e in first.json() + second.json()] == [e["id"] for e in by_provider.json()]
    assert "link" not in second.headers
    foreign = client.get(f"/bulk/extracts?before={ended['id']}", headers=_auth(keys["mzj"]))
    assert foreign.status_code == 422 and "no extract" in foreign.json()["detail"]  # not in its list
    shown = CliRunner().invoke(cli, ["extracts", "list", "--limit", "2", "--resource", "scjg.legal_entity"])
    assert shown.exit_code == 0 and "2 of 3, newest first; the next page: --before" in shown.output
    assert shown.output.rstrip().endswith(kept["id"])

    steps = audit_rows(hub, "result, grant_id", "extract_remove")
    assert [tuple(r) for r in steps] == [("grant_ended", ended["grant_id"]), ("aged", kept["grant_id"])]
    shown = CliRunner().invoke(cli, ["extracts", "prune"])
    assert shown.exit_code == 0 and "0 extract(s) removed: 0 of ended grants, 0 older than 7 day(s)" in shown.output
