"""The audit chain: appends, its canonical hash, tracing it, and keys rotated under it."""

from __future__ import annotations

import random
import re
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from sharehub.audit import verify as verify_chain
from sharehub.cli import app as cli
from sharehub.workdays import CHINA
from tests.support.audit import audit_rows
from tests.support.served import apply as _apply
from tests.support.served import auth as _auth
from tests.support.served import source_row as _row


def test_audit_appends_leave_checkpoints_to_a_background_thread(make_hub, monkeypatch: pytest.MonkeyPatch) -> None:
    """On SQLite the hot path's commits never copy the write-ahead log back (that stalled every call in
    flight for ~10 ms); a background thread does, so the database file itself catches up."""
    from sharehub import audit
    from sharehub.metadata import dbapi

    monkeypatch.setattr(dbapi, "CHECKPOINT_SECONDS", 0.05)
    hub = make_hub()
    for i in range(50):
        audit.record(hub, "verification", None, "gongan.population", result="match", record_key=f"k{i}")
    hot = dbapi.raw(hub.settings.metadata_url).connection().driver_connection
    assert hot.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 0
    # immutable=1 reads the database file alone, ignoring the log: only checkpointed entries are there.
    # It also ignores locks, so a read while the checkpointer is writing pages may find the file torn:
    # that read is retried.
    path = hub.settings.metadata_url.removeprefix("sqlite:///")
    file_only = sa.create_engine(f"sqlite:///file:{path}?immutable=1&uri=true", poolclass=sa.pool.NullPool)
    deadline, seen = datetime.now(UTC) + timedelta(seconds=10), 0
    while seen < 50 and datetime.now(UTC) < deadline:
        with file_only.connect() as c:
            try:
                seen = c.execute(sa.text("SELECT count(*) FROM audit_log")).scalar_one()
            except sa.exc.DatabaseError:
                continue
    file_only.dispose()
    assert seen == 50


def test_the_audit_hash_reads_entries_exactly_as_canonical_json() -> None:
    """The chain's hashes are over canonical JSON; the fast writer must match the encoder byte for byte,
    or an entry written by one would not verify against the other."""
    from sharehub.audit import _CANONICAL, _CANONICAL_KEYS, canonical

    texts = [
        "",
        "压力测试",
        'quote " and \\ backslash',
        "line\nbreak\ttab\x00\x1f",
        "emoji 🙂",
        "\u2028\u2029",
        "\ud800",
    ]
    numbers = [0, 1, -7, 2**62, 10**30]
    rng = random.Random(3)
    for _ in range(3000):
        body = {k: rng.choice([None, rng.choice(texts), rng.choice(numbers)]) for k in _CANONICAL_KEYS}
        assert canonical(body) == _CANONICAL.encode(body)
    odd = dict.fromkeys(_CANONICAL_KEYS, "x") | {"response_bytes": True, "grant_id": 1.5}
    assert canonical(odd) == _CANONICAL.encode(odd)  # other shapes: the encoder itself


def test_the_audit_trail_can_be_traced_by_whoever_it_concerns_and_no_further(served) -> None:
    """GET /audit: the platform office traces every entry with whole keys; a provider department the calls
    on its resources, a consumer its own, both with the ID numbers masked. Filters page like every list,
    and reading the trail is itself audited with the key that was looked for."""
    hub, client, keys = served
    person = _row(hub, "gongan_front:population_register", "length(name) = 3")["id_number"]
    for who in ("rsj", "mzj"):
        assert _apply(client, keys[who], "gongan.population", ["name"], ["verification"]).json()["status"] == "granted"
        call = {"key": {"id_number": person}, "claims": {"name": "张三"}}
        assert client.post("/verify/gongan.population", json=call, headers=_auth(keys[who])).status_code == 200
    platform = client.get(f"/audit?action=verification&record_key={person}", headers=_auth(keys["platform"]))
    assert platform.status_code == 200 and platform.headers["X-Total-Count"] == "2"
    assert [(e["department"], e["record_key"], e["result"]) for e in platform.json()] == [
        ("mzj", person, "no_match"),
        ("rsj", person, "no_match"),
    ]
    mine = client.get("/audit", headers=_auth(keys["rsj"])).json()
    assert mine and {e["department"] for e in mine} == {"rsj"}  # its own calls, and nobody else's
    (verified,) = [e for e in mine if e["action"] == "verification"]
    assert verified["record_key"] == person[:4] + "*" * 10 + person[-4:]  # masked: L3
    owner = client.get("/audit?action=verification", headers=_auth(keys["gongan"])).json()
    assert {e["department"] for e in owner} == {"rsj", "mzj"} and person not in str(owner)
    other = client.get("/audit", headers=_auth(keys["swj"])).json()  # another provider: nothing of gongan's
    assert not [e for e in other if e["resource_id"] == "gongan.population" or e["action"] == "verification"]
    assert client.get("/audit?since=2026-01-01T00:00:00", headers=_auth(keys["platform"])).status_code == 422
    later = client.get("/audit?since=2999-01-01T00:00:00Z", headers=_auth(keys["platform"]))
    assert later.json() == [] and later.headers["X-Total-Count"] == "0"
    hour_ago = (datetime.now(UTC) - timedelta(hours=1)).astimezone(CHINA).isoformat()  # any offset will do
    within = client.get("/audit", params={"since": hour_ago, "action": "verification"}, headers=_auth(keys["platform"]))
    assert within.headers["X-Total-Count"] == "2"
    before = client.get("/audit", params={"until": hour_ago}, headers=_auth(keys["platform"]))
    assert before.headers["X-Total-Count"] == "0"
    # The refusals, where probing shows: a query without a grant is found by its result.
    assert client.get(f"/query/gongan.population?id_number={person}", headers=_auth(keys["rsj"])).status_code == 403
    refused = client.get("/audit?result=denied", headers=_auth(keys["platform"])).json()
    assert [(e["action"], e["department"]) for e in refused] == [("query", "rsj")]
    shown = CliRunner().invoke(cli, ["audit", "list", "--result", "denied"])
    assert shown.exit_code == 0 and "1 of 1, newest first" in shown.output

    reads = audit_rows(hub, "department, record_key", "audit_read")
    assert tuple(reads[0]) == ("platform", person)  # who looked for whom
    shown = CliRunner().invoke(cli, ["audit", "list", "--action", "verification", "--limit", "1"])
    assert shown.exit_code == 0, shown.output
    assert "1 of 2, newest first; the next page: --before" in shown.output and person not in shown.output
    assert verify_chain(hub).ok


def test_a_key_is_rotated_without_losing_the_grants_behind_it(served) -> None:
    """A consumer replaces its own key, or the platform office replaces one (a revoked caller is reinstated):
    the old key stops working at once, the new one serves under the same grants, and each step is audited
    under who took it."""
    hub, client, keys = served
    person = _row(hub, "gongan_front:population_register", "length(name) = 3")["id_number"]
    call = {"key": {"id_number": person}, "claims": {"name": "张三"}}
    assert _apply(client, keys["rsj"], "gongan.population", ["name"], ["verification"]).json()["status"] == "granted"
    rotated = client.post("/consumers/me/rotate", headers=_auth(keys["rsj"]))
    assert rotated.status_code == 200, rotated.text
    new, mine = rotated.json()["api_key"], rotated.json()["id"]
    assert new != keys["rsj"] and rotated.json()["department"] == "rsj" and rotated.json()["previous_until"] is None
    gone = client.post("/verify/gongan.population", json=call, headers=_auth(keys["rsj"]))
    assert gone.status_code == 401 and gone.json()["detail"] == "unknown API key"
    assert client.post("/verify/gongan.population", json=call, headers=_auth(new)).status_code == 200  # same grant

    platform = _auth(keys["platform"])
    mzj = next(c for c in client.get("/consumers", headers=platform).json() if c["department"] == "mzj")
    assert client.post(f"/consumers/{mzj['id']}/revoke", headers=platform).status_code == 200
    assert client.post(f"/consumers/{mzj['id']}/rotate", headers=_auth(new)).status_code == 403  # not the platform
    assert client.post("/consumers/999999/rotate", headers=platform).status_code == 404
    revived = client.post(f"/consumers/{mzj['id']}/rotate?overlap_minutes=5", headers=platform)
    assert revived.status_code == 422 and "revoked" in revived.json()["detail"]  # the revoked key stays dead
    back = client.post(f"/consumers/{mzj['id']}/rotate", headers=platform)
    assert back.status_code == 200 and back.json()["revoked_at"] is None  # reinstated
    assert client.get("/catalogue", headers=_auth(back.json()["api_key"])).status_code == 200
    assert client.get("/catalogue", headers=_auth(keys["mzj"])).status_code == 401

    # With an overlap the replaced key keeps working for a while, so the new one can be deployed without a gap.
    rolled = client.post("/consumers/me/rotate?overlap_minutes=60", headers=_auth(new))
    assert rolled.status_code == 200 and rolled.json()["previous_until"] is not None
    newer = rolled.json()["api_key"]
    for key in (new, newer):
        assert client.post("/verify/gongan.population", json=call, headers=_auth(key)).status_code == 200
    with hub.db() as s:  # the hour passes
        s.execute(sa.text("UPDATE consumers SET previous_until = '2000-01-01 00:00:00' WHERE id = :i"), {"i": mine})
    over = client.post("/verify/gongan.population", json=call, headers=_auth(new))
    assert over.status_code == 401 and "overlap with the new one is over" in over.json()["detail"]
    assert client.post("/verify/gongan.population", json=call, headers=_auth(newer)).status_code == 200
    new = newer
    assert client.post("/consumers/me/rotate?overlap_minutes=20000", headers=_auth(new)).status_code == 422

    shown = CliRunner().invoke(cli, ["consumers", "rotate", str(rotated.json()["id"])])
    assert shown.exit_code == 0, shown.output
    (latest,) = re.findall(r"API key \(shown once\): (\S+)", shown.output)
    assert client.post("/verify/gongan.population", json=call, headers=_auth(latest)).status_code == 200
    assert client.post("/verify/gongan.population", json=call, headers=_auth(new)).status_code == 401
    steps = audit_rows(hub, "consumer_id, department, result, detail", "key_rotate")
    assert tuple(steps[2][:3]) == (mine, "rsj", "rotated")  # the rotation with an overlap says until when
    assert steps[2][3].startswith(f"consumer {mine}; the replaced key works until ")
    assert [tuple(r) for r in steps[:2] + steps[3:]] == [
        (rotated.json()["id"], "rsj", "rotated", f"consumer {rotated.json()['id']}"),
        (client.get("/consumers", headers=platform).json()[0]["id"], "platform", "reinstated", f"consumer {mzj['id']}"),
        (0, "platform", "rotated", f"consumer {rotated.json()['id']}"),
    ]
