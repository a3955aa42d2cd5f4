"""What a caller can learn and keep once access ends: no existence from its own trail, no link or token
after its revocation, and no answer that tells an id it may not see from one that does not exist."""

from __future__ import annotations

import json
import os
import time

import httpx
import pytest
import sqlalchemy as sa

from expectations.identifiers import resident_id_check_digit
from sharehub.notices import list_notices
from tests.support.serve import sharehub_serve
from tests.support.served import apply, auth, source_row


def _absent_person(hub) -> str:
    """A valid ID number that the population register does not hold."""
    engine = sa.create_engine(hub.settings.connection_url("gongan_front"))
    with engine.connect() as c:
        held = set(c.execute(sa.text("SELECT id_number FROM population_register")).scalars())
    engine.dispose()
    for serial in range(100, 999):
        body = f"42280219700101{serial:03d}"
        candidate = body + resident_id_check_digit(body)
        if candidate not in held:
            return candidate
    raise AssertionError("every candidate is held")


def test_a_verifying_consumer_cannot_learn_existence_from_its_own_audit_trail(served) -> None:
    hub, client, keys = served
    held = source_row(hub, "gongan_front:population_register", "length(name) = 3")["id_number"]
    absent = _absent_person(hub)
    assert apply(client, keys["mzj"], "gongan.population", ["name"], ["verification"]).json()["status"] == "granted"
    for person in (held, absent):
        call = {"key": {"id_number": person}, "claims": {"name": "张三"}}  # a wrong name for the held one
        answered = client.post("/verify/gongan.population", json=call, headers=auth(keys["mzj"]))
        assert answered.status_code == 200 and answered.json() == {"match": False, "fields": {"name": False}}

    mine = client.get("/audit?action=verification", headers=auth(keys["mzj"])).json()
    assert [e["result"] for e in mine] == ["no_match", "no_match"]  # one outcome, whether the person exists or not
    for outcome in ("not_found", "no_match"):
        for person in (held, absent):
            found = client.get(
                "/audit", params={"result": outcome, "record_key": person}, headers=auth(keys["mzj"])
            ).json()
            assert [e["result"] for e in found] == ["no_match"], (outcome, person)
    platform = client.get("/audit?action=verification", headers=auth(keys["platform"])).json()
    assert {e["record_key"]: e["result"] for e in platform} == {absent: "not_found", held: "no_match"}


def test_revoking_a_consumer_ends_its_grants_links_and_sharing_token_at_once(served) -> None:
    hub, client, keys = served
    fields = ["uscc", "name", "status"]
    assert apply(client, keys["rsj"], "scjg.legal_entity", fields, ["bulk"]).json()["status"] == "granted"
    made = client.post("/bulk/scjg.legal_entity", json={}, headers=auth(keys["rsj"])).json()
    link = made["url"].removeprefix(hub.settings.public_url)
    manifest = f"extracts/rsj/scjg.legal_entity/{made['id']}/manifest.json"
    assert client.get(link).status_code == 200 and hub.store.exists(manifest)
    assert client.get("/delta-sharing/shares", headers=auth(keys["rsj"])).status_code == 200
    rsj = next(c for c in client.get("/consumers", headers=auth(keys["platform"])).json() if c["department"] == "rsj")

    revoked = client.post(
        f"/consumers/{rsj['id']}/revoke", params={"reason": "系统已下线"}, headers=auth(keys["platform"])
    )

    assert revoked.status_code == 200 and revoked.json()["revoked_at"]
    assert client.get(link).status_code == 403  # the link it was given no longer serves
    assert not hub.store.exists(manifest)  # the files are gone: a presigned S3 link cannot serve them either
    assert client.get("/delta-sharing/shares", headers=auth(keys["rsj"])).status_code == 401
    grants = client.get("/grants", headers=auth(keys["platform"])).json()
    (grant,) = [g for g in grants if g["consumer_id"] == rsj["id"]]
    assert grant["revoked_at"] and grant["revoke_reason"] == "系统已下线"


def test_an_id_the_caller_may_not_see_answers_exactly_as_one_that_does_not_exist(served) -> None:
    hub, client, keys = served
    person = source_row(hub, "gongan_front:population_register")["id_number"]
    pending = apply(client, keys["rsj"], "swj.tax_registration", ["name"], ["query"]).json()  # under review
    assert apply(client, keys["rsj"], "gongan.population", ["name", "sex"], ["query"]).json()["status"] == "granted"
    (grant,) = client.get("/grants", headers=auth(keys["rsj"])).json()
    objected = {"resource_id": "gongan.population", "key": {"id_number": person}, "fields": ["name"]}
    objection = client.post("/objections", json=objected | {"reason": "姓名有误"}, headers=auth(keys["rsj"])).json()
    notice = next(n for n in list_notices(hub, department="gongan") if n.kind == "quality")
    decision = {"approve": True, "reason": "同意共享"}
    probes = [  # (method, path with {id}, real id, body, a caller whose list does not show it)
        ("post", "/applications/{id}/decision", pending["id"], decision, "scjg"),
        ("post", "/applications/{id}/withdraw", pending["id"], {"reason": "不再需要"}, "mzj"),
        ("get", "/applications/{id}", pending["id"], None, "gongan"),
        ("post", "/grants/{id}/revoke", grant["id"], {"reason": "不再需要"}, "swj"),
        ("post", "/grants/{id}/revoke", grant["id"], {"reason": "不再需要"}, "mzj"),
        ("post", "/objections/{id}/answer", objection["id"], {"outcome": "confirmed", "reason": "核实无误"}, "scjg"),
        ("get", "/notices/{id}", notice.id, None, "scjg"),
        ("post", "/notices/{id}/ack", notice.id, None, "scjg"),
    ]
    for method, template, real, body, who in probes:
        kwargs = {"headers": auth(keys[who])} | ({"json": body} if body is not None else {})
        seen = getattr(client, method)(template.format(id=real), **kwargs)
        absent = getattr(client, method)(template.format(id=999999), **kwargs)
        assert seen.status_code == absent.status_code == 404, (template, who, seen.status_code, seen.text)
        assert seen.json()["detail"] == absent.json()["detail"].replace("999999", str(real)), (template, who)


def test_request_bodies_are_limited_to_what_the_route_needs(served) -> None:
    hub, client, keys = served
    person = source_row(hub, "gongan_front:population_register")["id_number"]
    assert apply(client, keys["mzj"], "gongan.population", ["name"], ["verification"]).json()["status"] == "granted"
    headers = auth(keys["mzj"]) | {"Content-Type": "application/json"}
    padded = json.dumps({"key": {"id_number": person}, "claims": {"name": "张" * (5 * 1024 * 1024)}})
    huge = client.post("/verify/gongan.population", content=padded.encode(), headers=headers)
    assert huge.status_code == 413 and "16,384 bytes" in huge.json()["detail"]

    def chunks():  # no Content-Length: the bytes received are counted
        yield b'{"key": {"id_number": "' + person.encode() + b'"}, "claims": {"name": "'
        for _ in range(64):
            yield b"x" * 1024
        yield b'"}}'

    streamed = client.post("/verify/gongan.population", content=chunks(), headers=headers)
    assert streamed.status_code == 413
    form = {"resource_id": "gongan.population", "fields": ["name"] * 40_000, "modes": ["query"], "purpose": "x"}
    assert client.post("/applications", json=form, headers=auth(keys["mzj"])).status_code == 413
    fits = {"key": {"id_number": person}, "claims": {"name": "张三"}}
    assert client.post("/verify/gongan.population", json=fits, headers=auth(keys["mzj"])).status_code == 200


@pytest.mark.slow  # two sharehub serve processes
def test_the_verification_rate_limit_holds_across_two_server_processes(served) -> None:
    hub, client, keys = served
    person = source_row(hub, "gongan_front:population_register")["id_number"]
    assert apply(client, keys["mzj"], "gongan.population", ["name"], ["verification"]).json()["status"] == "granted"
    s = hub.settings
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHAREHUB_")} | {
        "SHAREHUB_HOME": str(s.home),
        "SHAREHUB_METADATA_URL": s.metadata_url,
        "SHAREHUB_STORAGE_URL": s.storage_url,
        "SHAREHUB_CONNECTIONS": json.dumps(s.connections),
        "SHAREHUB_VERIFY_RATE_PER_MINUTE": "20",
    }
    call = {"key": {"id_number": person}, "claims": {"name": "张三"}}
    with sharehub_serve(env) as one, sharehub_serve(env) as two:
        began = time.monotonic()
        answers = [
            httpx.post(f"{server.url}/verify/gongan.population", json=call, headers=auth(keys["mzj"]), timeout=30)
            for _ in range(20)
            for server in (one, two)
        ]
        refilled = int((time.monotonic() - began) * 20 / 60) + 1  # 20 a minute: a token every 3 seconds
    codes = [a.status_code for a in answers]
    assert set(codes) == {200, 429}
    assert 20 <= codes.count(200) <= 20 + refilled, codes  # one bucket for both processes, not one each
