"""Levels (MISSION 14): a county platform's departments reach a province platform's data only through their
own platform office, each over real HTTP: two hubs, the upper one a `sharehub serve` process."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from api.app import create_app
from sharehub.access.consumers import add_consumer
from sharehub.audit import verify as verify_chain
from sharehub.cli import app as cli
from sharehub.hub import Hub
from sharehub.metadata.models import Notice, UpstreamRequest
from sharehub.notices import mark_overdue
from sharehub.pipeline.tasks import upstream_sync_task
from sharehub.reporting.bulletin import bulletin
from sharehub.reporting.stats import department_stats
from sharehub.workdays import CHINA
from tests.support.audit import audit_rows
from tests.support.levels import served_province
from tests.support.seaweed import free_port

pytestmark = pytest.mark.slow  # two hubs, the upper one in a sharehub serve process

UNTIL = (datetime.now(UTC) + timedelta(days=200)).isoformat()


def _auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture
def province(make_hub, tmp_path: Path) -> Iterator[tuple[Hub, str, dict[str, str]]]:
    """The upper level: the shipped catalogue plus the county platform as one of its departments, a
    population and an insurance store, and its API in a `sharehub serve` process of its own."""
    with served_province(make_hub, tmp_path, ["gongan.population", "rsj.insurance_enrolment"]) as (hub, url):
        keys = {
            "county": add_consumer(hub, "利川市共享平台", "lichuan", "consumer")[1],
            "platform": add_consumer(hub, "省平台办", "platform", "platform")[1],
            "rsj": add_consumer(hub, "省人社厅", "rsj", "provider")[1],
            "gongan": add_consumer(hub, "省公安厅", "gongan", "provider")[1],
        }
        yield hub, url, keys


@pytest.fixture
def county(make_hub, use_env, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, province):
    """This level: a hub whose upper level is the province, with two consumer departments."""
    _, url, up_keys = province
    hub = make_hub(home=tmp_path / "county", upstream_url=url, upstream_key=up_keys["county"], upstream_name="省平台")
    use_env(hub)
    monkeypatch.setenv("SHAREHUB_UPSTREAM_URL", url)
    monkeypatch.setenv("SHAREHUB_UPSTREAM_KEY", up_keys["county"])
    monkeypatch.setenv("SHAREHUB_UPSTREAM_NAME", "省平台")
    from sharehub.settings import get_settings

    get_settings.cache_clear()
    keys = {
        "platform": add_consumer(hub, "市平台办", "platform", "platform")[1],
        "mzj": add_consumer(hub, "民政 低保核对", "mzj", "consumer")[1],
        "wjw": add_consumer(hub, "卫健 家医签约", "wjw", "consumer")[1],
        "gongan": add_consumer(hub, "公安局", "gongan", "provider")[1],
    }
    return hub, TestClient(create_app()), keys


def _request(client, key, resource_id, fields, modes, purpose="低保对象身份核验"):
    body = {"resource_id": resource_id, "fields": fields, "modes": modes, "purpose": purpose, "valid_until": UNTIL}
    return client.post("/upstream/requests", json=body, headers=_auth(key))


def test_a_request_for_upper_level_data_goes_up_through_the_platform_of_its_own_level(
    province, county, monkeypatch: pytest.MonkeyPatch
) -> None:
    up_hub, up_url, up_keys = province
    hub, client, keys = county
    with httpx.Client(base_url=up_url, timeout=30) as up:
        _walk_through(up_hub, up, up_keys, hub, client, keys, monkeypatch)


def _walk_through(
    up_hub: Hub, up: httpx.Client, up_keys: dict[str, str], hub: Hub, client, keys, monkeypatch: pytest.MonkeyPatch
) -> None:
    person = _person(up_hub)

    # What the upper level publishes is what a department here may ask for, checked at once.
    listed = client.get("/upstream/catalogue", headers=_auth(keys["mzj"]))
    assert listed.status_code == 200 and "gongan.population" in {e["id"] for e in listed.json()}
    bad = _request(client, keys["mzj"], "gongan.population", ["name", "shoe_size"], ["verification"])
    assert bad.status_code == 422 and "shoe_size" in bad.json()["detail"]
    unknown = _request(client, keys["mzj"], "gongan.population", ["name"], ["telepathy"])
    assert unknown.status_code == 422 and "telepathy" in unknown.json()["detail"]
    secret = _request(client, keys["mzj"], "wjw.health_record", ["name"], ["query"])
    assert secret.status_code == 422 and "legal basis" in secret.json()["detail"]
    assert _request(client, keys["gongan"], "gongan.population", ["name"], ["query"]).status_code == 403

    # Collected here; the platform office owes a decision by a working-day deadline.
    asking = ["name", "sex", "birth_date"]
    made = _request(client, keys["mzj"], "gongan.population", asking, ["verification", "query", "bulk"])
    assert made.status_code == 201, made.text
    asked = made.json()
    assert asked["status"] == "collected" and asked["provider"] == "gongan"
    with hub.db() as s:
        owed = s.get(Notice, 1)
        assert owed is not None and owed.department == "platform" and owed.status == "open"
        assert owed.kind == "upstream_request" and owed.deadline == datetime.fromisoformat(asked["deadline"])
    # Left past its deadline, it shows as overdue (the office is not told of its own lateness).
    late = mark_overdue(hub, now=datetime.fromisoformat(asked["deadline"]) + timedelta(seconds=1))
    assert late == [1]
    with hub.db() as s:
        assert s.get(Notice, 1).status == "overdue"  # type: ignore[union-attr]
        assert s.query(Notice).filter_by(kind="escalation").count() == 0
    claim = {"key": {"id_number": "x"}, "claims": {"name": "张三"}}
    early = client.post("/upstream/verify/gongan.population", json=claim, headers=_auth(keys["mzj"]))
    assert early.status_code == 403 and "no upstream grant" in early.json()["detail"]
    assert client.post(f"/upstream/requests/{asked['id']}/forward", headers=_auth(keys["mzj"])).status_code == 403

    # Forwarded: the platform office applies upstairs as itself, naming who asked; unconditional, granted at once.
    # The first attempt reaches the upper level but fails to be recorded here; the second finds that
    # application again instead of making another.
    import sharehub.levels.requests as upstream_module  # where forward follows what it made

    def fails(*_: object) -> None:
        raise RuntimeError("the county's database went away")

    with monkeypatch.context() as patched, pytest.raises(RuntimeError):
        patched.setattr(upstream_module, "_follow", fails)
        client.post(f"/upstream/requests/{asked['id']}/forward", headers=_auth(keys["platform"]))
    assert client.get(f"/upstream/requests/{asked['id']}", headers=_auth(keys["mzj"])).json()["status"] == "collected"
    sent = client.post(f"/upstream/requests/{asked['id']}/forward", headers=_auth(keys["platform"]))
    assert sent.status_code == 200, sent.text
    forwarded = sent.json()
    assert forwarded["status"] == "granted" and forwarded["upstream_grant_id"] is not None
    upstairs = up.get(f"/applications/{forwarded['upstream_application_id']}", headers=_auth(up_keys["platform"]))
    assert upstairs.json()["department"] == "lichuan" and "民政局" in upstairs.json()["purpose"]
    assert len(up.get("/applications", headers=_auth(up_keys["county"])).json()) == 1  # made once
    with hub.db() as s:
        assert s.get(Notice, 1).status == "resolved"  # type: ignore[union-attr]

    # Relayed verification and query, cut back to what this department's request covers.
    key = {"id_number": person["id_number"]}
    right = client.post(
        "/upstream/verify/gongan.population",
        json={"key": key, "claims": {"name": person["name"], "sex": person["sex"]}},
        headers=_auth(keys["mzj"]),
    )
    assert right.status_code == 200, right.text
    assert right.json() == {"match": True, "fields": {"name": True, "sex": True}, "found": True}
    outside = client.post(
        "/upstream/verify/gongan.population",
        json={"key": key, "claims": {"phone": "13800000000"}},
        headers=_auth(keys["mzj"]),
    )
    assert outside.status_code == 403 and "phone" in outside.json()["detail"]

    # A second department asks for the phone number, by query and bulk: the platform now holds both
    # grants upstairs, and each department still sees only its own fields.
    wjw = _request(
        client, keys["wjw"], "gongan.population", ["name", "phone"], ["query", "bulk"], "家医签约随访"
    ).json()
    wjw = client.post(f"/upstream/requests/{wjw['id']}/forward", headers=_auth(keys["platform"])).json()
    assert wjw["status"] == "granted"
    mine = client.get("/upstream/query/gongan.population", params=key, headers=_auth(keys["mzj"]))
    assert mine.status_code == 200, mine.text
    assert set(mine.json()["record"]) == {"name", "sex", "birth_date"}
    theirs = client.get("/upstream/query/gongan.population", params=key, headers=_auth(keys["wjw"]))
    assert set(theirs.json()["record"]) == {"name", "phone"}
    assert "*" in theirs.json()["record"]["phone"]  # masked upstairs, as the province masks it
    # A bulk extract is made upstairs under the department's own grant: its columns, no one else's.
    extract = client.post("/upstream/bulk/gongan.population", json={}, headers=_auth(keys["wjw"]))
    assert extract.status_code == 201, extract.text
    assert extract.json()["columns"] == ["name", "phone"] and extract.json()["grant_id"] == wjw["upstream_grant_id"]
    data = pq.read_table(io.BytesIO(httpx.get(extract.json()["url"], timeout=30).content))
    assert data.column_names == ["name", "phone"] and data.num_rows == extract.json()["rows"] > 0
    assert all("*" in v for v in data.column("phone").to_pylist() if v)  # masked upstairs
    again = client.post("/upstream/bulk/gongan.population", json={"incremental": True}, headers=_auth(keys["wjw"]))
    assert again.status_code == 201 and again.json()["rows"] == 0  # nothing changed since its own last one
    only_query = client.post(
        "/upstream/verify/gongan.population",
        json={"key": key, "claims": {"name": "张三"}},
        headers=_auth(keys["wjw"]),
    )
    assert only_query.status_code == 403
    assert up.get("/upstream/catalogue", headers=_auth(up_keys["county"])).status_code == 404  # no level above
    # Granted verification only, a department cannot tell a missing record from a mismatch, though the
    # platform office, holding query upstairs for another department, is told which.
    checker = add_consumer(hub, "行政审批 身份核验", "xzsp", "consumer")[1]
    only = _request(client, checker, "gongan.population", ["name"], ["verification"], "办事人员身份核验").json()
    assert client.post(f"/upstream/requests/{only['id']}/forward", headers=_auth(keys["platform"])).is_success
    nobody = {"key": {"id_number": "11010519491231002X"}, "claims": {"name": "张三"}}
    wrong = {"key": key, "claims": {"name": "张三" if person["name"] != "张三" else "李四"}}
    missing = client.post("/upstream/verify/gongan.population", json=nobody, headers=_auth(checker))
    mismatch = client.post("/upstream/verify/gongan.population", json=wrong, headers=_auth(checker))
    assert missing.content == mismatch.content == b'{"match":false,"fields":{"name":false}}'
    told = client.post("/upstream/verify/gongan.population", json=nobody, headers=_auth(keys["mzj"]))
    assert told.json()["found"] is False

    # mzj objects to an upper-level record it uses: raised upstairs by the platform office, answered there by
    # the province's provider, and brought down by the next sync.
    doubt = {"resource_id": "gongan.population", "key": key, "fields": ["name"], "reason": "户籍姓名与本人证件不符"}
    beyond = client.post("/upstream/objections", json={**doubt, "fields": ["phone"]}, headers=_auth(keys["mzj"]))
    assert beyond.status_code == 422 and "phone" in beyond.json()["detail"]
    raised = client.post("/upstream/objections", json=doubt, headers=_auth(keys["mzj"]))
    assert raised.status_code == 201, raised.text
    objection = raised.json()
    assert objection["status"] == "open" and objection["record_key"] == person["id_number"]
    upstairs_objection = up.get(f"/objections/{objection['upstream_objection_id']}", headers=_auth(up_keys["gongan"]))
    assert upstairs_objection.json()["department"] == "lichuan" and "民政局" in upstairs_objection.json()["reason"]
    answered = up.post(
        f"/objections/{objection['upstream_objection_id']}/answer",
        json={"outcome": "confirmed", "reason": "经核对户籍档案无误"},
        headers=_auth(up_keys["gongan"]),
    )
    assert answered.is_success, answered.text
    assert client.get("/upstream/objections", headers=_auth(keys["wjw"])).json() == []

    # A conditional resource runs the upper level's own steps; sync brings the outcome down and tells the department.
    cond = _request(
        client, keys["mzj"], "rsj.insurance_enrolment", ["id_number", "status"], ["query"], "低保家庭参保核对"
    )
    sent = client.post(f"/upstream/requests/{cond.json()['id']}/forward", headers=_auth(keys["platform"])).json()
    assert sent["status"] == "forwarded" and sent["upstream_status"] == "review"
    application = sent["upstream_application_id"]
    step = {"approve": True, "reason": "符合共享条件"}
    assert up.post(f"/applications/{application}/review", json=step, headers=_auth(up_keys["platform"])).is_success
    assert up.post(f"/applications/{application}/decision", json=step, headers=_auth(up_keys["rsj"])).is_success
    synced = CliRunner().invoke(cli, ["upstream", "sync"])
    assert synced.exit_code == 0, synced.output
    assert "1 request(s) changed state upstairs; 1 objection(s) answered" in synced.output
    (mine_now,) = client.get("/upstream/objections", headers=_auth(keys["mzj"])).json()
    assert (mine_now["status"], mine_now["answer"]) == ("confirmed", "经核对户籍档案无误")
    with hub.db() as s:
        heard = s.query(Notice).filter_by(department="mzj", kind="upstream_objection").one()
        assert "经核实无误" in heard.subject and person["id_number"] not in heard.body
    now = client.get(f"/upstream/requests/{cond.json()['id']}", headers=_auth(keys["mzj"])).json()
    assert now["status"] == "granted" and now["upstream_grant_id"] is not None
    with hub.db() as s:
        told = [n for n in s.query(Notice).filter_by(department="mzj", kind="upstream_request")]
        assert any("已同意" in n.subject for n in told)

    # Declined here, with reasons (through the CLI); the department cannot see another's requests.
    third = _request(client, keys["wjw"], "scjg.legal_entity", ["uscc", "name"], ["query"], "签约机构资质核对").json()
    declined = CliRunner().invoke(cli, ["upstream", "decline", str(third["id"]), "--reason", "本市法人库已有该数据"])
    assert declined.exit_code == 0, declined.output
    assert client.get(f"/upstream/requests/{third['id']}", headers=_auth(keys["wjw"])).json()["status"] == "declined"
    assert client.get(f"/upstream/requests/{third['id']}", headers=_auth(keys["mzj"])).status_code == 404

    # The upper level revokes mzj's grant: the relayed call says so, and sync ends the request here.
    revoked = up.post(
        f"/grants/{forwarded['upstream_grant_id']}/revoke",
        json={"reason": "身份核查中"},
        headers=_auth(up_keys["platform"]),
    )
    assert revoked.is_success, revoked.text
    refused = client.post(
        "/upstream/verify/gongan.population", json={"key": key, "claims": {"name": "张三"}}, headers=_auth(keys["mzj"])
    )
    assert refused.status_code == 403 and "revoked" in refused.json()["detail"]
    assert upstream_sync_task()["changed"] == 1  # the upstream DAG's task
    ended = client.get(f"/upstream/requests/{asked['id']}", headers=_auth(keys["mzj"])).json()
    assert ended["status"] == "ended"
    after = client.post(
        "/upstream/verify/gongan.population", json={"key": key, "claims": {"name": "张三"}}, headers=_auth(keys["mzj"])
    )
    assert after.status_code == 403 and "ended at the upper level" in after.json()["detail"]

    synced_again = client.post("/upstream/sync", headers=_auth(keys["platform"]))
    assert synced_again.status_code == 200 and synced_again.json() == {"requests": [], "objections": []}
    assert client.post("/upstream/sync", headers=_auth(keys["mzj"])).status_code == 403

    # Upstairs, a named grant must be the caller's own, and a number.
    for named in (str(wjw["upstream_grant_id"] + 1000), "1 OR 1=1"):
        stray = up.post(
            "/verify/gongan.population",
            json={"key": key, "claims": {"name": "张三"}},
            headers={**_auth(up_keys["county"]), "X-Sharehub-Grant": named},
        )
        assert stray.status_code == 403, named

    # wjw gives its grant up: upstairs too.
    gone = client.post(
        f"/upstream/requests/{wjw['id']}/withdraw", json={"reason": "随访工作结束"}, headers=_auth(keys["wjw"])
    )
    assert gone.status_code == 200 and gone.json()["status"] == "withdrawn"
    grant = up.get(f"/grants/{wjw['upstream_grant_id']}", headers=_auth(up_keys["platform"])).json()
    assert grant["revoked_at"] is not None

    # Both chains hold every step and call; the person's name is in neither.
    for h in (hub, up_hub):
        assert verify_chain(h).ok
    steps = ("request", "forward", "verification", "query", "extract", "objection", "decline", "sync", "withdraw")
    here = audit_rows(hub, "action, result, record_key, consumer_id, detail", *(f"upstream_{x}" for x in steps))
    assert {r[0] for r in here} == {f"upstream_{x}" for x in steps}
    relayed = [r for r in here if r[0] == "upstream_verification" and r[1] == "match"]
    assert relayed and relayed[0][2] == key["id_number"] and relayed[0][3] is not None
    assert person["name"] not in json.dumps(here, ensure_ascii=False, default=str)
    # Relayed calls count as calls the department made upstairs, never as a use of this level's resources.
    (mzj_stats,) = department_stats(hub, "mzj")
    (gongan_stats,) = department_stats(hub, "gongan")
    assert mzj_stats["calls_upstream"] >= 4 and mzj_stats["calls_made"] == 0 and gongan_stats["calls_answered"] == 0
    this_month = bulletin(hub, datetime.now(CHINA).date())
    relayed = this_month["calls_upstream"]["gongan.population"]
    assert relayed["verification"]["answered"] >= 2 and relayed["verification"]["refused"] >= 2
    assert "gongan.population" not in this_month["calls"]
    there = audit_rows(up_hub, "department, result", "verification")
    assert there and all(d == "lichuan" for d, _ in there)


def test_an_upper_level_that_does_not_answer_is_named_and_a_platform_without_one_says_so(
    make_hub, use_env, monkeypatch: pytest.MonkeyPatch
) -> None:
    hub = make_hub()
    use_env(hub)
    mzj = add_consumer(hub, "民政 低保核对", "mzj", "consumer")[1]
    none = TestClient(create_app()).get("/upstream/catalogue", headers=_auth(mzj))
    assert none.status_code == 404 and "SHAREHUB_UPSTREAM_URL" in none.json()["detail"]

    port = free_port()  # nothing listens there
    monkeypatch.setenv("SHAREHUB_UPSTREAM_URL", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("SHAREHUB_UPSTREAM_KEY", "shk_nothing_here")
    from sharehub.settings import get_settings

    get_settings.cache_clear()
    down = TestClient(create_app()).get("/upstream/catalogue", headers=_auth(mzj))
    assert down.status_code == 502 and f"127.0.0.1:{port}" in down.json()["detail"]
    assert "shk_nothing_here" not in down.text
    cli_down = CliRunner().invoke(cli, ["upstream", "catalogue"])
    assert cli_down.exit_code == 1 and "did not answer" in cli_down.output


def test_a_key_the_upper_level_refuses_is_the_platforms_trouble_not_the_callers(
    province, make_hub, use_env, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _, url, _ = province
    hub = make_hub(home=tmp_path / "county")
    use_env(hub)
    monkeypatch.setenv("SHAREHUB_UPSTREAM_URL", url)
    monkeypatch.setenv("SHAREHUB_UPSTREAM_KEY", "shk_000000000000_revokedlongago")
    from sharehub.settings import get_settings

    get_settings.cache_clear()
    mzj = add_consumer(hub, "民政 低保核对", "mzj", "consumer")[1]
    refused = TestClient(create_app()).get("/upstream/catalogue", headers=_auth(mzj))
    assert refused.status_code == 502 and "this platform's key was refused" in refused.json()["detail"]
    assert "revokedlongago" not in refused.text


def _person(hub: Hub) -> dict[str, str]:
    """A person in the province's population store, with a three-character name (masked as 张*三)."""
    from warehouse.delta import open_table

    res = hub.catalogue.resource("gongan.population")
    table = open_table(hub.store.uri(res.store_path), hub.store.delta_options())
    assert table is not None
    rows = table.to_pyarrow_dataset().to_table(columns=["id_number", "name", "sex"]).to_pylist()
    return min((r for r in rows if r["name"] and len(r["name"]) == 3 and r["sex"]), key=lambda r: r["id_number"])


def test_a_refusal_upstairs_is_contested_through_the_platform_of_its_own_level(province, county) -> None:
    """Lichuan 25 across levels: a department contests the upper level's refusal here; the platform office's
    application upstairs is contested there, once even when retried, and sync brings each outcome down: a
    grant on what the upper level's provider agreed (the request narrows to it), or a referral."""
    up_hub, up_url, up_keys = province
    hub, client, keys = county
    why = {"reason": "低保认定须核实家庭成员参保状态"}
    asked = _request(
        client,
        keys["mzj"],
        "rsj.insurance_enrolment",
        ["id_number", "insurance_type", "name", "status"],
        ["query", "bulk"],
    ).json()
    path = f"/upstream/requests/{asked['id']}"
    application = client.post(f"{path}/forward", headers=_auth(keys["platform"])).json()["upstream_application_id"]
    with httpx.Client(base_url=up_url, timeout=30) as up:
        passed = {"approve": True, "reason": "符合规范"}
        assert up.post(
            f"/applications/{application}/review", json=passed, headers=_auth(up_keys["platform"])
        ).is_success
        no = {"approve": False, "reason": "姓名不在共享范围"}
        assert up.post(f"/applications/{application}/decision", json=no, headers=_auth(up_keys["rsj"])).is_success
        assert client.post(f"{path}/contest", json=why, headers=_auth(keys["mzj"])).status_code == 409  # not synced yet
        assert client.post("/upstream/sync", headers=_auth(keys["platform"])).status_code == 200
        refused = client.get(path, headers=_auth(keys["mzj"])).json()
        assert refused["status"] == "refused" and no["reason"] in refused["reason"]
        assert client.post(f"{path}/contest", json=why, headers=_auth(keys["wjw"])).status_code == 404
        assert client.post(f"{path}/contest", json=why, headers=_auth(keys["platform"])).status_code == 403
        contested = client.post(f"{path}/contest", json=why, headers=_auth(keys["mzj"]))
        assert contested.status_code == 200 and contested.json()["status"] == "contested", contested.text
        there = up.get(f"/applications/{application}", headers=_auth(up_keys["platform"])).json()
        assert there["status"] == "contested" and there["contest"]["reason"].endswith(why["reason"])
        assert "民政" in there["contest"]["reason"]
        # A contest that went up but was not recorded here is found upstairs again on the retry.
        with hub.db() as s:
            s.get(UpstreamRequest, asked["id"]).status = "refused"
        assert client.post(f"{path}/contest", json=why, headers=_auth(keys["mzj"])).json()["status"] == "contested"
        assert any("提出异议" in n.subject for n in _notices(hub, "platform"))

        agreed = {"outcome": "granted", "reason": "协商后不含姓名", "fields": ["id_number", "insurance_type", "status"]}
        agreed["modes"] = ["query"]
        settled = up.post(f"/applications/{application}/contest/outcome", json=agreed, headers=_auth(up_keys["rsj"]))
        assert settled.is_success, settled.text
        assert [r["id"] for r in client.post("/upstream/sync", headers=_auth(keys["platform"])).json()["requests"]] == [
            asked["id"]
        ]
        now = client.get(path, headers=_auth(keys["mzj"])).json()
        assert (now["status"], now["fields"], now["modes"]) == ("granted", agreed["fields"], ["query"])
        assert any("已同意" in n.subject for n in _notices(hub, "mzj"))
        enrolled = _enrolled(up_hub)
        answer = client.get("/upstream/query/rsj.insurance_enrolment", params=enrolled, headers=_auth(keys["mzj"]))
        assert answer.status_code == 200 and set(answer.json()["record"]) <= set(agreed["fields"]), answer.text
        assert "name" not in answer.json()["record"]
        bulk = client.post("/upstream/bulk/rsj.insurance_enrolment", json={}, headers=_auth(keys["mzj"]))
        assert bulk.status_code == 403

        # Refused at review, contested through the CLI, referred upstairs; the DAG's sync brings it down.
        other = _request(client, keys["wjw"], "rsj.insurance_enrolment", ["id_number"], ["query"], "家医签约参保核对")
        second = client.post(f"/upstream/requests/{other.json()['id']}/forward", headers=_auth(keys["platform"])).json()
        no = {"approve": False, "reason": "用途不明确"}
        upstairs = f"/applications/{second['upstream_application_id']}"
        assert up.post(f"{upstairs}/review", json=no, headers=_auth(up_keys["platform"])).is_success
        assert upstream_sync_task()["changed"] == 1
        said = ["upstream", "contest", str(second["id"]), "--consumer", "3", "--reason", "家医签约须核实参保"]
        shown = CliRunner().invoke(cli, said, env={"COLUMNS": "200"})
        assert shown.exit_code == 0 and "contested" in shown.output, shown.output
        referred = {"outcome": "referred", "reason": "协商未能一致", "referred_to": "省政府办公厅"}
        assert up.post(f"{upstairs}/contest/outcome", json=referred, headers=_auth(up_keys["platform"])).is_success
        assert upstream_sync_task()["changed"] == 1
        ended = client.get(f"/upstream/requests/{second['id']}", headers=_auth(keys["wjw"])).json()
        assert ended["status"] == "referred" and "省政府办公厅" in ended["reason"]
        assert any("省政府办公厅" in n.body for n in _notices(hub, "wjw"))

        # Withdrawing a contested request withdraws the contest upstairs: the refusal there stands.
        third = _request(client, keys["mzj"], "rsj.insurance_enrolment", ["status"], ["query"], "低保复核参保核对")
        sent = client.post(f"/upstream/requests/{third.json()['id']}/forward", headers=_auth(keys["platform"])).json()
        upstairs = f"/applications/{sent['upstream_application_id']}"
        assert up.post(f"{upstairs}/review", json=no, headers=_auth(up_keys["platform"])).is_success
        assert upstream_sync_task()["changed"] == 1
        path = f"/upstream/requests/{sent['id']}"
        assert client.post(f"{path}/contest", json=why, headers=_auth(keys["mzj"])).status_code == 200
        gone = client.post(f"{path}/withdraw", json={"reason": "已另行核实"}, headers=_auth(keys["mzj"]))
        assert gone.status_code == 200 and gone.json()["status"] == "withdrawn", gone.text
        there = up.get(upstairs, headers=_auth(up_keys["platform"])).json()
        assert (there["status"], there["contest"]["status"]) == ("refused", "withdrawn")

    here = audit_rows(hub, "action, department, result", "upstream_contest")
    assert here == [("upstream_contest", d, "contested") for d in ("mzj", "mzj", "wjw", "mzj")]
    there = audit_rows(up_hub, "action, department, result", "application_contest")
    assert there == [("application_contest", "lichuan", "contested")] * 3
    assert verify_chain(hub).ok and verify_chain(up_hub).ok


def _notices(hub: Hub, department: str) -> list[Notice]:
    with hub.db() as s:
        return list(s.query(Notice).filter_by(department=department, kind="upstream_request"))


def _enrolled(hub: Hub) -> dict[str, str]:
    """The key of one enrolment in the province's insurance store."""
    from warehouse.delta import open_table

    res = hub.catalogue.resource("rsj.insurance_enrolment")
    table = open_table(hub.store.uri(res.store_path), hub.store.delta_options())
    assert table is not None
    row = table.to_pyarrow_dataset().head(1, columns=["id_number", "insurance_type"]).to_pylist()[0]
    return {"id_number": row["id_number"], "insurance_type": row["insurance_type"]}
