"""Verification and query through the API: only what is granted, rate limits, revocations at once."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from api.app import create_app
from sharehub.access.consumers import add_consumer
from sharehub.audit import verify as verify_chain
from sharehub.cli import app as cli
from sharehub.demo.build import build_sources
from sharehub.pipeline.run import run_resource
from sharehub.settings import REPO_ROOT
from tests.support.served import UNTIL
from tests.support.served import apply as _apply
from tests.support.served import auth as _auth
from tests.support.served import source_row as _row


def test_verify_and_query_answer_only_what_is_granted_and_are_audited(served) -> None:
    hub, client, keys = served
    person = _row(hub, "gongan_front:population_register", "phone IS NOT NULL AND length(name) = 3")
    grant = _apply(
        client, keys["rsj"], "gongan.population", ["name", "sex", "birth_date", "phone"], ["verification", "query"]
    )
    assert grant.json()["status"] == "granted"
    key = {"id_number": person["id_number"]}

    # Verification: normalized, per field, booleans only.
    variant = person["name"][0] + "\u3000" + person["name"][1:]
    born = str(person["birth_date"]).replace("-", "/")
    wrong_sex = "女" if person["sex"] == "男" else "男"
    answer = client.post(
        "/verify/gongan.population",
        json={"key": key, "claims": {"name": variant, "birth_date": born, "sex": wrong_sex}},
        headers=_auth(keys["rsj"]),
    )
    assert answer.status_code == 200
    assert answer.json() == {
        "match": False,
        "fields": {"name": True, "birth_date": True, "sex": False},
        "found": True,  # rsj may query this resource too, so it may know the record exists
    }
    assert person["name"] not in answer.text
    # An ID number as people type it (full-width digits, a space, a small x) is the same key.
    typed = " ".join(person["id_number"].lower().translate({ord(c): ord(c) + 0xFEE0 for c in "0123456789"}))
    alike = client.post(
        "/verify/gongan.population",
        json={"key": {"id_number": typed}, "claims": {"name": person["name"]}},
        headers=_auth(keys["rsj"]),
    )
    assert alike.json() == {"match": True, "fields": {"name": True}, "found": True}, typed
    nobody_call = {"key": {"id_number": "11010519491231002X"}, "claims": {"name": "张三", "sex": "男"}}
    nobody = client.post("/verify/gongan.population", json=nobody_call, headers=_auth(keys["rsj"]))
    assert nobody.json() == {"match": False, "fields": {"name": False, "sex": False}, "found": False}
    # To a caller granted verification only, no record and wrong values look alike, byte for byte.
    checker = add_consumer(hub, "卫健 身份核验", "wjw", "consumer")[1]
    only = _apply(client, checker, "gongan.population", ["name", "sex"], ["verification"])
    assert only.json()["status"] == "granted"
    wrong = {"key": key, "claims": {"name": "张三" if person["name"] != "张三" else "李四", "sex": wrong_sex}}
    mismatch = client.post("/verify/gongan.population", json=wrong, headers=_auth(checker))
    missing = client.post("/verify/gongan.population", json=nobody_call, headers=_auth(checker))
    assert mismatch.status_code == missing.status_code == 200
    assert mismatch.content == missing.content == b'{"match":false,"fields":{"name":false,"sex":false}}'
    outside = client.post(
        "/verify/gongan.population", json={"key": key, "claims": {"address": "x"}}, headers=_auth(keys["rsj"])
    )
    assert outside.status_code == 403 and "address" in outside.json()["detail"]
    # A misspelt field or key field is named as such, not refused as if it were withheld.
    typo = {"key": key, "claims": {"nam": "x"}}
    misspelt = client.post("/verify/gongan.population", json=typo, headers=_auth(keys["rsj"]))
    assert misspelt.status_code == 422 and misspelt.json()["detail"].startswith(
        "gongan.population: nam is not a field of this resource"
    )
    typo = {"key": {"id_numbr": person["id_number"]}, "claims": {"name": "x"}}
    misnamed = client.post("/verify/gongan.population", json=typo, headers=_auth(keys["rsj"]))
    assert misnamed.json()["detail"] == "gongan.population: id_numbr is not a key field (id_number)"
    assert (
        client.post(
            "/verify/gongan.population", json={"key": {}, "claims": {"name": "x"}}, headers=_auth(keys["rsj"])
        ).status_code
        == 422
    )
    ungranted = client.post(
        "/verify/gongan.population", json={"key": key, "claims": {"name": "x"}}, headers=_auth(keys["mzj"])
    )
    assert ungranted.status_code == 403 and person["name"] not in ungranted.text

    # Query: granted fields only, masked by classification.
    record = client.get("/query/gongan.population", params=key, headers=_auth(keys["rsj"])).json()["record"]
    assert set(record) == {"name", "sex", "birth_date", "phone"}
    name = person["name"]
    assert record["name"] == name[0] + "*" + name[-1] and record["sex"] == person["sex"]
    assert record["phone"] == person["phone"][:3] + "****" + person["phone"][-4:]
    assert record["birth_date"] == "***"  # L3, redacted
    twice = client.get(
        "/query/gongan.population",
        params=[("id_number", person["id_number"]), ("id_number", "11010519491231002X")],
        headers=_auth(keys["rsj"]),
    )
    assert twice.status_code == 422 and "id_number is given more than once" in twice.json()["detail"]

    # History: after the source changes, the current answer moves and as_of still reads the past.
    before = datetime.now(UTC)
    engine = sa.create_engine(hub.settings.connection_url("gongan_front"))
    with engine.begin() as c:
        c.execute(
            sa.text(
                "UPDATE population_register SET name = :n, updated_at = '2026-11-21 10:00:00' WHERE id_number = :k"
            ),
            {"n": "欧阳" + name[-1], "k": person["id_number"]},
        )
    engine.dispose()
    run_resource(hub, "gongan.population")
    now = client.get("/query/gongan.population", params=key, headers=_auth(keys["rsj"])).json()["record"]
    assert now["name"] == "欧*" + name[-1]
    past = client.get(
        "/query/gongan.population", params={**key, "as_of": before.isoformat()}, headers=_auth(keys["rsj"])
    ).json()
    assert past["record"]["name"] == name[0] + "*" + name[-1] and past["version"] == 0
    # Before the store's first version it held nothing, not its first version.
    too_early = client.get(
        "/query/gongan.population", params={**key, "as_of": "2020-01-01T00:00:00+08:00"}, headers=_auth(keys["rsj"])
    )
    assert too_early.status_code == 404 and "no version" in too_early.json()["detail"], too_early.text

    # Revoked: refused at once.
    grant_id = client.get("/grants", headers=_auth(keys["rsj"])).json()[0]["id"]
    revoked = client.post(f"/grants/{grant_id}/revoke", json={"reason": "用途已结束"}, headers=_auth(keys["platform"]))
    assert revoked.status_code == 200
    again = client.post(
        "/verify/gongan.population", json={"key": key, "claims": {"name": name}}, headers=_auth(keys["rsj"])
    )
    assert again.status_code == 403 and "revoked" in again.json()["detail"]

    # The audit chain holds every call, with the record key and no other personal data.
    with hub.db() as s:
        rows = s.execute(sa.text("SELECT id, action, result, record_key, detail FROM audit_log ORDER BY id")).all()
    actions = [(a, r) for _, a, r, _, _ in rows]
    assert ("verification", "no_match") in actions and ("verification", "denied") in actions
    assert ("verification", "not_found") in actions  # the platform's trail tells them apart, the caller not
    assert (
        ("query", "ok") in actions and ("grant_revoke", "revoked") in actions and ("key_create", "created") in actions
    )
    assert all(name not in f"{k}{d}" and person["phone"] not in f"{k}{d}" for _, _, _, k, d in rows)
    assert verify_chain(hub).ok
    # Statistics: every call counts as made by its caller; a refused one is not answered by the provider.
    serving = [r for a, r in actions if a in ("verification", "query", "extract")]
    refused = sum(r in ("denied", "rate_limited", "bad_request") for r in serving)
    figures = {r["department"]: r for r in client.get("/stats", headers=_auth(keys["platform"])).json()}
    assert refused and figures["gongan"]["calls_answered"] == len(serving) - refused

    # One edited entry breaks the chain there, and the CLI names it.
    target = next(i for i, a, r, _, _ in rows if a == "verification" and r == "no_match")
    with hub.db() as s:
        s.execute(sa.text("UPDATE audit_log SET result = 'match' WHERE id = :i"), {"i": target})
    broken = verify_chain(hub)
    assert not broken.ok and broken.first_bad == target
    result = CliRunner().invoke(cli, ["audit", "verify"])
    assert result.exit_code == 1 and f"entry {target}" in result.output


def test_verification_is_rate_limited_per_consumer(make_hub, use_env, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHAREHUB_VERIFY_RATE_PER_MINUTE", "3")
    hub = make_hub(verify_rate_per_minute=3)
    build_sources(hub.settings, hub.catalogue, 50, 10)
    run_resource(hub, "scjg.legal_entity")
    use_env(hub)
    client = TestClient(create_app())
    keys = [add_consumer(hub, f"c{i}", "rsj", "consumer")[1] for i in range(2)]
    body = {"resource_id": "scjg.legal_entity", "fields": ["name"], "modes": ["verification"], "purpose": "招投标核验"}
    for key in keys:
        client.post("/applications", json={**body, "valid_until": UNTIL}, headers=_auth(key))
    call = {"key": {"uscc": "91350100M000100Y43"}, "claims": {"name": "x"}}
    codes = [client.post("/verify/scjg.legal_entity", json=call, headers=_auth(keys[0])).status_code for _ in range(5)]
    assert codes == [200, 200, 200, 429, 429]
    assert client.post("/verify/scjg.legal_entity", json=call, headers=_auth(keys[1])).status_code == 200


@pytest.mark.slow  # a sharehub process revokes
def test_revocations_made_elsewhere_take_effect_on_the_next_call(served) -> None:
    """The serving path remembers keys and grants between calls; a revocation committed by another
    process (the CLI) or another connection must still be seen by the very next call."""
    _, _, keys = served
    with TestClient(create_app()) as client:  # one event-loop thread for every call, as in a server
        grant = _apply(client, keys["rsj"], "gongan.population", ["name"], ["verification"]).json()
        call = {"key": {"id_number": "11010519491231002X"}, "claims": {"name": "张三"}}
        assert client.post("/verify/gongan.population", json=call, headers=_auth(keys["rsj"])).status_code == 200
        env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
        revoke = ["grants", "revoke", str(grant["id"]), "--by", "平台", "--reason", "用途已结束"]
        done = subprocess.run([sys.executable, "-m", "sharehub", *revoke], env=env, capture_output=True, check=False)
        assert done.returncode == 0, done.stderr
        refused = client.post("/verify/gongan.population", json=call, headers=_auth(keys["rsj"]))
        assert refused.status_code == 403 and "revoked" in refused.json()["detail"]

        _apply(client, keys["mzj"], "gongan.population", ["name"], ["verification"])
        assert client.post("/verify/gongan.population", json=call, headers=_auth(keys["mzj"])).status_code == 200
        listed = client.get("/consumers", headers=_auth(keys["platform"])).json()
        mzj = next(c for c in listed if c["department"] == "mzj")
        assert CliRunner().invoke(cli, ["consumers", "revoke", str(mzj["id"])]).exit_code == 0
        gone = client.post("/verify/gongan.population", json=call, headers=_auth(keys["mzj"]))
        assert gone.status_code == 401 and gone.json()["detail"] == "revoked API key"


def test_exactly_the_granted_combinations_succeed(served) -> None:
    """Every consumer × resource × mode × field of the demo catalogue: exactly the granted ones are answered.

    Verification of a field outside the grant is refused (403); a query returns the granted fields
    and never another; a resource or mode without a grant is refused (403).
    """
    hub, client, keys = served
    grants = {
        ("rsj", "gongan.population", "verification"): {"name", "sex", "birth_date"},
        ("rsj", "gongan.population", "query"): {"name", "division_code"},
        ("mzj", "scjg.legal_entity", "query"): {"name", "status", "legal_rep_name"},
    }
    for (who, rid, mode), fields in grants.items():
        assert _apply(client, keys[who], rid, sorted(fields), [mode]).json()["status"] == "granted"
    samples = {
        "gongan.population": _row(hub, "gongan_front:population_register"),
        "scjg.legal_entity": _row(hub, "scjg_front:legal_entity_register"),
    }
    cat = hub.catalogue
    combos = itertools.product(["rsj", "mzj"], sorted(cat.resources), ["verification", "query"])
    for who, rid, mode in combos:
        res = cat.resource(rid)
        sample = samples.get(rid, {})
        key = {k: str(sample.get(k, "x")) for k in res.source.key}
        for f in res.fields:
            allowed = f.name in grants.get((who, rid, mode), set())
            if mode == "verification":
                claim = {"key": key, "claims": {f.name: str(sample.get(f.name, "x"))}}
                r = client.post(f"/verify/{rid}", json=claim, headers=_auth(keys[who]))
                ok = r.status_code == 200 and set(r.json()["fields"]) == {f.name}
            else:
                r = client.get(f"/query/{rid}", params=key, headers=_auth(keys[who]))
                ok = r.status_code == 200 and f.name in r.json()["record"]
                if r.status_code == 200:
                    assert set(r.json()["record"]) == grants[(who, rid, mode)], (who, rid)
            assert ok == allowed, (who, rid, mode, f.name, r.status_code, r.text[:200])
            # A query answers with the granted fields only; without any grant in that mode it is refused.
            refused = (mode == "verification" and not ok) or (who, rid, mode) not in grants
            if refused:
                assert r.status_code == 403 and r.json()["detail"], (who, rid, mode, f.name)
                for value in sample.values():  # nothing of the record leaks through a refusal
                    if isinstance(value, str) and len(value) > 3:
                        assert value not in r.text
