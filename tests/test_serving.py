"""Applications, grants, verification, query and the audit chain, end to end through the HTTP API."""

from __future__ import annotations

import itertools
import os
import random
import re
import subprocess
import sys
from datetime import UTC, datetime, time, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from api.app import create_app
from sharehub.access.consumers import add_consumer
from sharehub.access.grants import mark_overdue_steps
from sharehub.audit import verify as verify_chain
from sharehub.cli import app as cli
from sharehub.demo.build import build_sources
from sharehub.metadata.models import Grant, OutboxMessage, QuarantinedRow
from sharehub.notices import check_deliveries, list_disputes, list_notices, mark_overdue
from sharehub.pipeline.run import run_resource
from sharehub.reporting.stats import FIGURES
from sharehub.settings import REPO_ROOT
from sharehub.workdays import CHINA
from tests.support.audit import audit_rows
from tests.support.served import UNTIL
from tests.support.served import apply as _apply
from tests.support.served import auth as _auth
from tests.support.served import source_row as _row


def test_applications_follow_the_share_type_with_working_day_clocks(served) -> None:
    hub, client, keys = served
    direct = _apply(client, keys["rsj"], "gongan.population", ["name", "sex"], ["verification"])
    assert direct.status_code == 201 and direct.json()["status"] == "granted"

    refused = _apply(client, keys["rsj"], "wjw.health_record", ["name"], ["query"]).json()
    basis = hub.catalogue.resource("wjw.health_record").share.legal_basis
    assert refused["status"] == "refused" and basis in refused["decision_reason"]

    app = _apply(client, keys["rsj"], "swj.tax_registration", ["taxpayer_status"], ["query"]).json()
    created = datetime.fromisoformat(app["step_deadline"])
    assert app["status"] == "review" and created > datetime.now(UTC)
    assert app["step_deadline"].endswith("Z")  # every answered moment in UTC, even one just computed
    assert _apply(client, keys["platform"], "swj.tax_registration", ["name"], ["query"]).status_code == 403

    path = f"/applications/{app['id']}"
    # Out of order, by the wrong party, or refusing without reasons: each refused with its reason.
    assert client.post(f"{path}/decision", json={"approve": True}, headers=_auth(keys["swj"])).status_code == 409
    assert client.post(f"{path}/review", json={"approve": True}, headers=_auth(keys["rsj"])).status_code == 403
    reviewed = client.post(f"{path}/review", json={"approve": True}, headers=_auth(keys["platform"])).json()
    assert reviewed["status"] == "provider"
    (asked,) = [n for n in list_notices(hub, department="swj") if n.kind == "application"]
    assert f"#{app['id']}" in asked.subject and asked.status == "open"
    # The provider's deadline ends a working day at 24:00 China time; the notice names that day.
    ends = datetime.fromisoformat(reviewed["step_deadline"]).astimezone(CHINA)
    last = ends.date() - timedelta(days=1)
    assert asked.deadline == ends and ends.time() == time(0) and hub.calendar.is_workday(last)
    assert f"请于 {last:%Y-%m-%d} 24:00 前答复" in asked.subject
    # Another provider learns nothing of the application: it answers as for an id that does not exist.
    probe = client.post(f"{path}/decision", json={"approve": True}, headers=_auth(keys["scjg"]))
    absent = client.post("/applications/999999/decision", json={"approve": True}, headers=_auth(keys["scjg"]))
    assert probe.status_code == absent.status_code == 404
    assert probe.json()["detail"] == f"no application {app['id']}" and "swj" not in probe.text
    assert client.post(f"{path}/decision", json={"approve": False}, headers=_auth(keys["swj"])).status_code == 422
    decided = client.post(f"{path}/decision", json={"approve": True, "reason": "同意"}, headers=_auth(keys["swj"]))
    assert decided.json()["status"] == "granted" and decided.json()["notified_at"]
    told = [n for n in list_notices(hub, department="rsj") if n.kind == "application"]
    assert any("已授权" in n.subject for n in told)
    # Answered: the notice that asked the provider is resolved, not left open to run overdue.
    (answered,) = [n for n in list_notices(hub, department="swj") if n.kind == "application"]
    assert answered.id == asked.id and answered.status == "resolved" and answered.pending_keys == []

    # A step left past its working-day deadline is marked against its department and escalated.
    late = _apply(client, keys["mzj"], "swj.tax_registration", ["name"], ["query"]).json()
    assert mark_overdue_steps(hub, datetime.now(UTC) + timedelta(days=30)) == [late["id"]]
    mine = client.get("/applications", headers=_auth(keys["mzj"])).json()
    assert [(a["id"], a["overdue_at"] is not None) for a in mine] == [(late["id"], True)]
    assert any(n.kind == "escalation" and f"#{late['id']}" in n.subject for n in list_notices(hub, "platform"))
    # A provider sees the applications for its own resources only.
    assert {a["resource_id"] for a in client.get("/applications", headers=_auth(keys["swj"])).json()} == {
        "swj.tax_registration"
    }
    # The platform office's queue, and the decisions a department owes, by status.
    queue = client.get("/applications?status=review", headers=_auth(keys["platform"]))
    assert [a["id"] for a in queue.json()] == [late["id"]] and queue.headers["x-total-count"] == "1"
    assert client.get("/applications?status=provider", headers=_auth(keys["swj"])).json() == []
    assert client.get("/applications?status=lost", headers=_auth(keys["platform"])).status_code == 422
    shown = CliRunner().invoke(cli, ["applications", "list", "--status", "granted"])
    assert shown.exit_code == 0 and "2 of 2, newest first" in shown.output
    assert CliRunner().invoke(cli, ["applications", "list", "--status", "lost"]).exit_code == 2


def test_an_applicant_withdraws_an_application_and_gives_up_a_grant(served) -> None:
    """An application under way is taken back by its applicant (its clock stops, the provider's notice is
    resolved), and a consumer gives up a grant it no longer needs; nobody else can do either for it."""
    hub, client, keys = served
    app = _apply(client, keys["rsj"], "swj.tax_registration", ["taxpayer_status"], ["query"]).json()
    path = f"/applications/{app['id']}"
    assert client.post(f"{path}/review", json={"approve": True}, headers=_auth(keys["platform"])).status_code == 200
    (asked,) = [n for n in list_notices(hub, department="swj") if n.kind == "application"]
    why = {"reason": "申请字段有误，将重新申请"}
    assert client.post(f"{path}/withdraw", json=why, headers=_auth(keys["mzj"])).status_code == 404  # not its own
    assert client.post(f"{path}/withdraw", json=why, headers=_auth(keys["swj"])).status_code == 404
    assert client.post(f"{path}/withdraw", json={"reason": "无"}, headers=_auth(keys["rsj"])).status_code == 422
    taken = client.post(f"{path}/withdraw", json=why, headers=_auth(keys["rsj"]))
    assert taken.status_code == 200, taken.text
    assert (taken.json()["status"], taken.json()["step_deadline"]) == ("withdrawn", None)
    assert taken.json()["decision_reason"] == f"申请人撤回：{why['reason']}"
    (answered,) = [n for n in list_notices(hub, department="swj") if n.kind == "application"]
    assert (answered.id, answered.status, answered.pending_keys) == (asked.id, "resolved", [])
    assert client.post(f"{path}/decision", json={"approve": True}, headers=_auth(keys["swj"])).status_code == 409
    assert client.post(f"{path}/withdraw", json=why, headers=_auth(keys["rsj"])).status_code == 409
    assert mark_overdue_steps(hub, datetime.now(UTC) + timedelta(days=30)) == []  # its clock stopped

    assert _apply(client, keys["rsj"], "gongan.population", ["name"], ["verification"]).json()["status"] == "granted"
    gid = client.get("/grants", headers=_auth(keys["rsj"])).json()[0]["id"]
    person = _row(hub, "gongan_front:population_register")
    claim = {"key": {"id_number": person["id_number"]}, "claims": {"name": person["name"]}}
    assert client.post("/verify/gongan.population", json=claim, headers=_auth(keys["rsj"])).status_code == 200
    done = {"reason": "核验任务已完成，不再使用"}
    assert client.post(f"/grants/{gid}/revoke", json=done, headers=_auth(keys["mzj"])).status_code == 404
    given_up = client.post(f"/grants/{gid}/revoke", json=done, headers=_auth(keys["rsj"]))
    assert given_up.status_code == 200 and given_up.json()["revoked_at"] is not None
    refused = client.post("/verify/gongan.population", json=claim, headers=_auth(keys["rsj"]))
    assert refused.status_code == 403 and "was revoked" in refused.json()["detail"]

    # Its grants by state: the one it gave up is revoked, one that ran out is expired, neither is active.
    def mine(query: str) -> list[int]:
        return [g["id"] for g in client.get(f"/grants{query}", headers=_auth(keys["rsj"])).json()]

    assert _apply(client, keys["rsj"], "scjg.legal_entity", ["name"], ["query"]).json()["status"] == "granted"
    (ran_out,) = mine("?resource_id=scjg.legal_entity")
    with hub.db() as s:
        s.get(Grant, ran_out).valid_until = datetime.now(UTC) - timedelta(minutes=1)
    assert mine("?state=revoked") == [gid] and mine("?state=expired") == [ran_out]
    assert not {gid, ran_out} & set(mine("?state=active"))
    shown = CliRunner().invoke(cli, ["grants", "list", "--state", "revoked"])
    assert shown.exit_code == 0 and "1 of 1, newest first" in shown.output

    again = _apply(client, keys["rsj"], "swj.tax_registration", ["name"], ["query"]).json()
    shown = CliRunner().invoke(
        cli, ["applications", "withdraw", str(again["id"]), "--consumer", "2", "--reason", "重复申请，撤回"]
    )
    assert shown.exit_code == 0 and f"application {again['id']} on swj.tax_registration withdrawn" in shown.output
    steps = audit_rows(hub, "action, department, result", "application_withdraw", "grant_revoke")
    assert [tuple(r) for r in steps] == [
        ("application_withdraw", "rsj", "withdrawn"),
        ("grant_revoke", "rsj", "revoked"),
        ("application_withdraw", "rsj", "withdrawn"),
    ]


def test_a_refusal_is_contested_coordinated_and_settled(served) -> None:
    """Lichuan 25: an applicant that disagrees with a refusal contests it; the platform office coordinates
    with the provider by the profile's deadline. The provider may grant on what was agreed (never more
    than was asked), the platform office upholds the refusal or refers the contest on; a not-shared
    resource stays not shared; the applicant may withdraw its contest. Everyone concerned is told."""
    hub, client, keys = served
    app = _apply(client, keys["rsj"], "swj.tax_registration", ["name", "taxpayer_status"], ["query", "bulk"]).json()
    path = f"/applications/{app['id']}"
    client.post(f"{path}/review", json={"approve": True}, headers=_auth(keys["platform"]))
    no = {"approve": False, "reason": "用途与纳税人状态无关"}
    assert client.post(f"{path}/decision", json=no, headers=_auth(keys["swj"])).json()["status"] == "refused"

    why = {"reason": "待遇资格认证须核实参保单位是否正常经营"}
    for other in ("mzj", "platform", "swj"):  # only the applicant contests
        assert client.post(f"{path}/contest", json=why, headers=_auth(keys[other])).status_code == 404
    assert client.post(f"{path}/contest", json={"reason": "不"}, headers=_auth(keys["rsj"])).status_code == 422
    contested = client.post(f"{path}/contest", json=why, headers=_auth(keys["rsj"]))
    assert contested.status_code == 200, contested.text
    body = contested.json()
    assert (body["status"], body["contest"]["status"]) == ("contested", "open")
    assert body["contest"]["reason"] == why["reason"]
    opened = datetime.fromisoformat(body["contest"]["opened_at"])
    deadline = hub.calendar.deadline(opened, hub.profile.deadlines["application_contest"].working_days)
    assert datetime.fromisoformat(body["contest"]["deadline"]) == deadline
    (asked,) = [n for n in list_notices(hub, "platform") if n.kind == "application_contest"]
    assert (asked.status, asked.deadline) == ("open", deadline) and f"#{app['id']}" in asked.subject
    assert why["reason"] in asked.body and "用途与纳税人状态无关" in asked.body
    (provider_told,) = [n for n in list_notices(hub, "swj") if n.kind == "application_contest"]
    assert why["reason"] in provider_told.body
    assert client.post(f"{path}/contest", json=why, headers=_auth(keys["rsj"])).status_code == 409
    queue = client.get("/applications?status=contested", headers=_auth(keys["platform"])).json()
    assert [a["id"] for a in queue] == [app["id"]]

    outcome = f"{path}/contest/outcome"
    grant = {"outcome": "granted", "reason": "经协商，仅提供纳税人名称用于核实", "fields": ["name"], "modes": ["query"]}
    for other in ("scjg", "rsj"):  # neither sees the application
        assert client.post(outcome, json=grant, headers=_auth(keys[other])).status_code == 404
    assert client.post(outcome, json=grant, headers=_auth(keys["platform"])).status_code == 403  # the provider grants
    upheld = {"outcome": "upheld", "reason": "维持原决定"}
    assert client.post(outcome, json=upheld, headers=_auth(keys["swj"])).status_code == 403  # the platform upholds
    more = client.post(outcome, json={**grant, "fields": ["name", "tax_grade"]}, headers=_auth(keys["swj"]))
    assert more.status_code == 422 and "tax_grade" in more.json()["detail"]
    more = client.post(outcome, json={**grant, "modes": ["verification"]}, headers=_auth(keys["swj"]))
    assert more.status_code == 422 and "verification" in more.json()["detail"]
    settled = client.post(outcome, json=grant, headers=_auth(keys["swj"]))
    assert settled.status_code == 200, settled.text
    body = settled.json()
    assert (body["status"], body["contest"]["status"]) == ("granted", "granted")
    assert body["notified_at"] == body["contest"]["settled_at"]
    assert body["contest"]["settled_by"] == "税务局"
    granted = client.get(f"/grants/{body['contest']['grant_id']}", headers=_auth(keys["rsj"])).json()
    assert (granted["fields"], granted["modes"], granted["application_id"]) == (["name"], ["query"], app["id"])
    company = _row(hub, "swj_front:tax_registration")
    answer = client.get(f"/query/swj.tax_registration?uscc={company['uscc']}", headers=_auth(keys["rsj"]))
    assert answer.status_code == 200 and set(answer.json()["record"]) == {"name"}, answer.text
    assert client.post(outcome, json=grant, headers=_auth(keys["swj"])).status_code == 409
    (done,) = [n for n in list_notices(hub, "platform") if n.kind == "application_contest"]
    assert (done.id, done.status, done.pending_keys) == (asked.id, "resolved", [])
    (told,) = [n for n in list_notices(hub, "rsj") if n.kind == "application_contest"]
    assert "同意授权" in told.body and grant["reason"] in told.body

    # Not shared: no agreement grants it; without one, the platform office refers it, naming to whom.
    barred = _apply(client, keys["mzj"], "wjw.health_record", ["name"], ["query"]).json()
    assert barred["status"] == "refused"
    contest_cli = ["applications", "contest", str(barred["id"]), "--consumer", "3", "--reason", "低保核对需要因病支出"]
    shown = CliRunner().invoke(cli, contest_cli, env={"COLUMNS": "250"})
    assert shown.exit_code == 0 and "contested" in shown.output, shown.output
    settle = ["applications", "settle", str(barred["id"]), "--by", "张三", "--reason", "双方未能协商一致"]
    shown = CliRunner().invoke(cli, [*settle, "--outcome", "granted", "--department", "wjw"])
    assert shown.exit_code == 1 and "not shared" in shown.output, shown.output
    shown = CliRunner().invoke(cli, [*settle, "--outcome", "referred"])
    assert shown.exit_code == 1 and "names the government department" in shown.output, shown.output
    assert CliRunner().invoke(cli, [*settle, "--outcome", "maybe"]).exit_code == 2
    shown = CliRunner().invoke(cli, [*settle, "--outcome", "referred", "--referred-to", "市政府办公室"])
    assert shown.exit_code == 0, shown.output
    referred = client.get(f"/applications/{barred['id']}", headers=_auth(keys["mzj"])).json()
    assert (referred["status"], referred["contest"]["referred_to"]) == ("referred", "市政府办公室")
    assert any("市政府办公室" in n.body for n in list_notices(hub, "mzj") if n.kind == "application_contest")
    shown = CliRunner().invoke(cli, ["applications", "show", str(app["id"])], env={"COLUMNS": "250"})
    assert shown.exit_code == 0 and f"grant #{granted['id']}" in shown.output and "name; query" in shown.output
    assert "用途与纳税人状态无关" in shown.output and why["reason"] in shown.output, shown.output
    shown = CliRunner().invoke(cli, ["applications", "show", str(barred["id"])], env={"COLUMNS": "250"})
    assert "referred to 市政府办公室 by 张三" in shown.output and "grant #" not in shown.output, shown.output
    assert CliRunner().invoke(cli, ["applications", "show", "9999"]).exit_code == 1

    # Left past its deadline, the platform office's own notice shows as overdue (it is not told of it);
    # the applicant then withdraws its contest, and the refusal stands.
    late = _apply(client, keys["mzj"], "swj.tax_registration", ["taxpayer_status"], ["query"]).json()
    path = f"/applications/{late['id']}"
    refuse = {"approve": False, "reason": "用途未说明法定依据"}
    assert client.post(f"{path}/review", json=refuse, headers=_auth(keys["platform"])).json()["status"] == "refused"
    assert client.post(f"{path}/contest", json=why, headers=_auth(keys["mzj"])).status_code == 200
    (overdue,) = [n for n in list_notices(hub, "platform") if n.kind == "application_contest" and n.status == "open"]
    assert overdue.id in mark_overdue(hub, datetime.now(UTC) + timedelta(days=30))
    assert [n.status for n in list_notices(hub, "platform") if n.id == overdue.id] == ["overdue"]
    assert not [n for n in list_notices(hub, "platform") if n.parent_id == overdue.id]  # no escalation to itself
    back = client.post(f"{path}/withdraw", json={"reason": "已补充依据后重新申请"}, headers=_auth(keys["mzj"]))
    assert back.status_code == 200, back.text
    assert (back.json()["status"], back.json()["contest"]["status"]) == ("refused", "withdrawn")
    assert [n.status for n in list_notices(hub, "platform") if n.id == overdue.id] == ["resolved"]
    again = client.post(f"{path}/withdraw", json={"reason": "再次撤回异议"}, headers=_auth(keys["mzj"]))
    assert again.status_code == 409

    steps = audit_rows(
        hub,
        "action, department, result",
        "application_contest",
        "application_contest_outcome",
        "application_contest_withdraw",
    )
    assert [tuple(r) for r in steps] == [
        ("application_contest", "rsj", "contested"),
        ("application_contest_outcome", "swj", "granted"),
        ("application_contest", "mzj", "contested"),
        ("application_contest_outcome", "platform", "referred"),
        ("application_contest", "mzj", "contested"),
        ("application_contest_withdraw", "mzj", "refused"),
    ]
    assert verify_chain(hub).ok


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


def test_objections_are_answered_in_time_and_counted(served) -> None:
    from sharehub.notices import mark_overdue

    hub, client, keys = served
    person = _row(hub, "gongan_front:population_register")
    _apply(client, keys["rsj"], "gongan.population", ["name", "sex"], ["query"])
    body = {"resource_id": "gongan.population", "key": {"id_number": person["id_number"]}, "fields": ["name"]}
    assert (
        client.post("/objections", json={**body, "reason": "姓名与户口簿不符"}, headers=_auth(keys["mzj"])).status_code
        == 403
    )
    assert (
        client.post(
            "/objections", json={**body, "fields": ["phone"], "reason": "号码已停用"}, headers=_auth(keys["rsj"])
        )
    ).status_code == 422
    made = client.post("/objections", json={**body, "reason": "姓名与户口簿不符"}, headers=_auth(keys["rsj"]))
    assert made.status_code == 201, made.text
    objection = made.json()
    rule = hub.profile.deadlines["objection"]
    created = datetime.fromisoformat(objection["created_at"])
    assert datetime.fromisoformat(objection["deadline"]) == hub.calendar.deadline(created, rule.working_days)
    listed = client.get("/objections", headers=_auth(keys["rsj"])).json()
    assert objection["deadline"].endswith("Z") and [o["deadline"] for o in listed] == [objection["deadline"]]
    asked = [n for n in list_notices(hub, department="gongan") if n.kind == "objection"]
    assert len(asked) == 1 and person["name"] not in asked[0].body and person["id_number"] not in asked[0].body
    assert f"POST /objections/{objection['id']}/answer" in asked[0].body  # which objection to answer
    seen = client.get("/objections", headers=_auth(keys["gongan"])).json()  # the provider finds the record
    assert [(o["id"], o["key"]) for o in seen] == [(objection["id"], body["key"])]
    # Meanwhile the record is served as it stands, and a query says which fields are being checked.
    query = f"/query/gongan.population?id_number={person['id_number']}"
    shown = client.get(query, headers=_auth(keys["rsj"])).json()
    assert shown["under_objection"] == ["name"] and set(shown["record"]) == {"name", "sex"}

    path = f"/objections/{objection['id']}/answer"
    reply = {"outcome": "confirmed", "reason": "经核对户籍档案，登记无误"}
    assert client.post(path, json=reply, headers=_auth(keys["scjg"])).status_code == 404  # not its objection
    answered = client.post(path, json=reply, headers=_auth(keys["gongan"]))
    assert answered.json()["status"] == "confirmed" and answered.json()["answer"] == reply["reason"]
    assert client.post(path, json=reply, headers=_auth(keys["gongan"])).status_code == 409
    assert client.get(query, headers=_auth(keys["rsj"])).json()["under_objection"] == []  # checked
    told = [n for n in list_notices(hub, department="rsj") if n.kind == "objection_answer"]
    assert told and "经核实无误" in told[0].subject

    # An objection left unanswered runs overdue and is escalated to the platform office.
    late = client.post("/objections", json={**body, "reason": "性别有误"}, headers=_auth(keys["rsj"])).json()
    overdue = mark_overdue(hub, datetime.now(UTC) + timedelta(days=30))
    late_notice = next(
        n for n in list_notices(hub, department="gongan") if n.kind == "objection" and n.status == "overdue"
    )
    assert late_notice.id in overdue and late["id"]
    # The answers it owes, by status: the late one is open, the first one confirmed.
    owed = client.get("/objections?status=open", headers=_auth(keys["gongan"])).json()
    assert [o["id"] for o in owed] == [late["id"]]
    done = client.get("/objections?status=confirmed", headers=_auth(keys["gongan"])).json()
    assert [o["id"] for o in done] == [objection["id"]]
    assert client.get("/objections?status=lost", headers=_auth(keys["gongan"])).status_code == 422
    # The provider answers it from the command line, as the notice says.
    listing = CliRunner().invoke(
        cli, ["objections", "list", "--department", "gongan", "--status", "open"], env={"COLUMNS": "250"}
    )
    assert listing.exit_code == 0 and f"id_number={person['id_number']}" in listing.output, listing.output
    assert "1 of 1, newest first" in listing.output
    args = ["objections", "answer", str(late["id"]), "--department", "gongan", "--outcome", "corrected"]
    by_cli = CliRunner().invoke(cli, [*args, "--by", "户政科", "--reason", "已按户籍档案更正"])
    assert by_cli.exit_code == 0 and "corrected" in by_cli.output, by_cli.output
    again = CliRunner().invoke(cli, [*args, "--by", "户政科", "--reason", "已按户籍档案更正"])
    assert again.exit_code == 1 and "already corrected" in again.output
    assert sum(n.kind == "objection_answer" for n in list_notices(hub, department="rsj")) == 2

    before = {r["department"]: r["rectify"] for r in client.get("/stats", headers=_auth(keys["platform"])).json()}
    # A month on, every daily resource has missed its deliveries: the platform names who must rectify what.
    missed = check_deliveries(hub, datetime.now(UTC) + timedelta(days=30))
    figures = {r["department"]: r for r in client.get("/stats", headers=_auth(keys["platform"])).json()}
    assert figures["gongan"]["objections_received"] == 2 and figures["gongan"]["runs_succeeded"] >= 1
    assert figures["gongan"]["notices_overdue"] >= 1 and missed and figures["gongan"]["deliveries_late"] >= 1
    assert "data_late" not in before["gongan"] and "notices_overdue" in before["gongan"]
    assert figures["gongan"]["rectify"] == ["data_late", "notices_overdue"]  # the authority: no conflicts
    own = client.get("/stats", headers=_auth(keys["gongan"])).json()
    assert [r["department"] for r in own] == ["gongan"]
    assert set(own[0]) == {"department", *FIGURES, "rectify"}  # every figure, zero or not
    result = CliRunner().invoke(cli, ["stats", "--department", "gongan"])
    assert result.exit_code == 0 and "gongan" in result.output and "rectify" in result.output


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


def test_a_department_works_its_notices_and_conflicts_through_the_api(served) -> None:
    """A provider department sees what to correct, acknowledges, disputes a row and replies to a conflict;
    only on its own notices and conflicts."""
    hub, client, keys = served
    quality = next(n for n in list_notices(hub, department="gongan") if n.kind == "quality")
    path = f"/notices/{quality.id}"

    shown = client.get(path, headers=_auth(keys["gongan"]))
    assert shown.status_code == 200 and shown.json()["pending_keys"] == quality.pending_keys
    # Why each row fails, as recorded at its quarantine, and what a correct value looks like.
    with hub.db() as s:
        recorded = {
            q.row_key: q.reasons
            for q in s.scalars(sa.select(QuarantinedRow).where(QuarantinedRow.run_id == quality.run_id))
        }
    reasons, expected = shown.json()["reasons"], shown.json()["expected"]
    assert set(reasons) == set(quality.pending_keys) and all(reasons[k] for k in reasons)
    assert all(set(recorded[k]) <= set(reasons[k]) for k in reasons)
    assert set(expected) == {r for rs in reasons.values() for r in rs}
    assert expected.get("expect_column_values_to_not_be_null(name)", "此项必填") == "此项必填"
    explained = shown.json()["explained"]
    assert set(explained) == set(expected) and all(f"〔规则 {rule}〕" in explained[rule] for rule in explained)
    assert client.get(path, headers=_auth(keys["platform"])).status_code == 200
    assert client.get(path, headers=_auth(keys["scjg"])).status_code == 404  # another department's: as if absent
    assert client.get(path, headers=_auth(keys["rsj"])).status_code == 403  # a consumer's key
    assert client.get("/notices/999999", headers=_auth(keys["gongan"])).status_code == 404

    assert client.post(f"{path}/ack", headers=_auth(keys["scjg"])).status_code == 404
    acked = client.post(f"{path}/ack", headers=_auth(keys["gongan"]))
    assert acked.status_code == 200 and acked.json()["status"] == "acknowledged"

    row = quality.pending_keys[0]
    reason = {"key": row, "reason": "该公民户籍迁入前的出生日期按原籍登记，核实无误"}
    assert client.post(f"{path}/disputes", json=reason, headers=_auth(keys["scjg"])).status_code == 404
    made = client.post(f"{path}/disputes", json=reason, headers=_auth(keys["gongan"]))
    assert made.status_code == 201 and made.json()["pending_rows"] == len(quality.pending_keys) - 1
    assert client.post(f"{path}/disputes", json=reason, headers=_auth(keys["gongan"])).status_code == 404  # gone
    (pending,) = list_disputes(hub)  # awaiting the platform office's review
    assert (pending.notice_id, pending.row_key, pending.department) == (quality.id, row, "gongan")
    # The department follows its dispute; the platform office reviews it through the API too.
    platform = _auth(keys["platform"])
    own = client.get("/disputes", headers=_auth(keys["gongan"]))
    assert own.status_code == 200 and own.headers["x-total-count"] == "1"
    assert [(d["id"], d["review"], d["row_key"]) for d in own.json()] == [(pending.id, "pending", row)]
    assert client.get("/disputes", headers=_auth(keys["scjg"])).json() == []  # not its notice
    assert client.get("/disputes?department=gongan", headers=_auth(keys["scjg"])).status_code == 403
    assert client.get("/disputes", headers=_auth(keys["rsj"])).status_code == 403  # a consumer
    assert client.get(f"/disputes/{pending.id}", headers=_auth(keys["scjg"])).status_code == 404
    queue = client.get("/disputes?review=pending&department=gongan", headers=platform).json()
    assert [d["id"] for d in queue] == [pending.id]
    ruling = {"accept": False, "by": "平台办 王五", "reason": "出生日期确有误，请更正"}
    assert (
        client.post(f"/disputes/{pending.id}/decision", json=ruling, headers=_auth(keys["gongan"])).status_code == 403
    )
    decided = client.post(f"/disputes/{pending.id}/decision", json=ruling, headers=platform)
    assert decided.status_code == 200, decided.text
    assert (decided.json()["review"], decided.json()["decided_by"]) == ("rejected", "平台办 王五")
    assert client.post(f"/disputes/{pending.id}/decision", json=ruling, headers=platform).status_code == 422
    assert row in client.get(path, headers=_auth(keys["gongan"])).json()["pending_keys"]  # back on its notice
    followed = client.get(f"/disputes/{pending.id}", headers=_auth(keys["gongan"])).json()
    assert followed["decision_reason"] == ruling["reason"]
    assert client.get("/disputes?review=pending", headers=platform).json() == []

    # A conflict is not a rule's failure: it is answered by correcting the copy, not disputed as a row.
    from sharehub.consistency.check import check

    check(hub, full=True)
    conflict_notice = next(n for n in list_notices(hub, department="swj") if n.kind == "conflict")
    by_kind = client.get("/notices?kind=conflict", headers=_auth(keys["swj"])).json()
    assert [n["id"] for n in by_kind] == [conflict_notice.id]
    quality_only = client.get("/notices?kind=quality", headers=_auth(keys["gongan"])).json()
    assert quality.id in [n["id"] for n in quality_only] and {n["kind"] for n in quality_only} == {"quality"}
    wrong_kind = {"key": conflict_notice.pending_keys[0], "reason": "本部门数据无误"}
    refused = client.post(f"/notices/{conflict_notice.id}/disputes", json=wrong_kind, headers=_auth(keys["swj"]))
    assert refused.status_code == 422 and "only a quality notice" in refused.json()["detail"]
    # A conflict notice is answered by correcting the copy, or by replying that the copy is right.
    mine = client.get("/conflicts", headers=_auth(keys["swj"])).json()
    assert mine and {c["department"] for c in mine} == {"swj"}
    assert "/reply" in conflict_notice.body and any(f"冲突 {c['id']} ·" in conflict_notice.body for c in mine)
    as_authority = client.get("/conflicts", headers=_auth(keys["scjg"])).json()  # scjg: authority for companies
    assert {c["id"] for c in mine} <= {c["id"] for c in as_authority}
    assert not [c for c in client.get("/conflicts", headers=_auth(keys["gongan"])).json() if c["department"] == "swj"]
    assert client.get("/conflicts", headers=_auth(keys["rsj"])).status_code == 403  # a consumer
    target = mine[0]["id"]
    answer = {"by": "征管科", "reason": "该企业已于本局办理注销登记，以本局为准"}
    others = client.post(f"/conflicts/{target}/reply", json=answer, headers=_auth(keys["gongan"]))
    unknown = client.post("/conflicts/999999/reply", json=answer, headers=_auth(keys["gongan"]))
    assert others.status_code == unknown.status_code == 404 and others.json()["detail"] == f"no conflict {target}"
    replied = client.post(f"/conflicts/{target}/reply", json=answer, headers=_auth(keys["swj"]))
    assert replied.status_code == 200, replied.text
    assert replied.json()["status"] == "verifying" and replied.json()["reply"] == answer["reason"]
    decided = CliRunner().invoke(
        cli,
        ["conflicts", "decide", str(target), "--right", "authority", "--by", "平台办", "--reason", "以登记机关为准"],
    )
    assert decided.exit_code == 0, decided.output
    late = client.post(f"/conflicts/{target}/reply", json=answer, headers=_auth(keys["swj"]))
    assert late.status_code == 422 and "decided" in late.json()["detail"]

    # Each answer a department gave through the API is in the audit chain, under its own name, and so is
    # the platform office's decision at the command line.
    steps = audit_rows(
        hub,
        "action, department, result, record_key",
        "notice_ack",
        "notice_dispute",
        "conflict_reply",
        "conflict_decision",
    )
    assert [tuple(r) for r in steps] == [
        ("notice_ack", "gongan", "acknowledged", None),
        ("notice_dispute", "gongan", "disputed", row),
        ("conflict_reply", "swj", "verifying", mine[0]["entity_key"]),
        ("conflict_decision", "platform", "decided", mine[0]["entity_key"]),
    ]
    assert verify_chain(hub).ok

    # The platform office works conflicts through the API as well: it takes two up, asking the authority
    # to check its values (one notice for both), and decides one. A department can do neither.
    assert len(mine) >= 3
    taken_up = {c["id"]: c["entity_key"] for c in mine[1:3]}
    body = {"conflict_ids": list(taken_up), "by": "平台办 李四", "notify_authority": True}
    assert client.post("/conflicts/verify", json=body, headers=_auth(keys["swj"])).status_code == 403
    taken = client.post("/conflicts/verify", json=body, headers=platform)
    assert taken.status_code == 200, taken.text
    assert {(c["id"], c["status"], c["verifying_by"]) for c in taken.json()} == {
        (cid, "verifying", "平台办 李四") for cid in taken_up
    }
    (asked_id,) = {c["authority_notice_id"] for c in taken.json()}
    asked = client.get(f"/notices/{asked_id}", headers=_auth(keys["scjg"]))  # scjg: the authority for companies
    assert asked.status_code == 200 and set(taken_up.values()) <= set(asked.json()["pending_keys"])
    first, second = taken_up
    ruling = {"right": "provider", "by": "平台办 李四", "reason": "经核实，以税务登记为准"}
    assert client.post(f"/conflicts/{first}/decision", json=ruling, headers=_auth(keys["scjg"])).status_code == 403
    ruled = client.post(f"/conflicts/{first}/decision", json=ruling, headers=platform)
    assert ruled.status_code == 200, ruled.text
    assert (ruled.json()["status"], ruled.json()["decision"], ruled.json()["decided_by"]) == (
        "decided",
        "provider",
        "平台办 李四",
    )
    assert client.post(f"/conflicts/{first}/decision", json=ruling, headers=platform).status_code == 422
    assert client.post("/conflicts/999999/decision", json=ruling, headers=platform).status_code == 404
    bad = client.post(f"/conflicts/{second}/decision", json={**ruling, "right": "both"}, headers=platform)
    assert bad.status_code == 422
    # All or none: one decided conflict among them, and the other is left as it was.
    again = {**body, "conflict_ids": [second, first], "by": "平台办 赵六"}  # the second one is refused
    refused = client.post("/conflicts/verify", json=again, headers=platform)
    assert refused.status_code == 422 and "decided" in refused.json()["detail"]
    assert client.get(f"/conflicts/{second}", headers=platform).json()["verifying_by"] == "平台办 李四"
    # Many at once, all or none, by the platform office only.
    batch = {**ruling, "conflict_ids": [second, first]}
    assert client.post("/conflicts/decision", json=batch, headers=_auth(keys["scjg"])).status_code == 403
    assert client.post("/conflicts/decision", json=batch, headers=platform).status_code == 422  # first is decided
    assert client.get(f"/conflicts/{second}", headers=platform).json()["status"] == "verifying"
    both = client.post("/conflicts/decision", json={**batch, "conflict_ids": [second]}, headers=platform)
    assert both.status_code == 200 and [c["status"] for c in both.json()] == ["decided"]
    steps = audit_rows(hub, "action, department, result, record_key", "conflict_verify", "conflict_decision")
    assert [tuple(r) for r in steps][-4:] == [
        *[("conflict_verify", "platform", "verifying", key) for key in taken_up.values()],
        ("conflict_decision", "platform", "decided", taken_up[first]),
        ("conflict_decision", "platform", "decided", taken_up[second]),
    ]


def _next_page(response) -> str | None:
    link = response.headers.get("Link")
    if link is None:
        return None
    found = re.fullmatch(r'<(/[^>]+)>; rel="next"', link)
    assert found, link
    return found.group(1)


def test_lists_come_in_pages_that_a_department_can_work_through(served, monkeypatch: pytest.MonkeyPatch) -> None:
    """List routes page newest first: X-Total-Count says how many match and Link names the next page, with
    the same filters, until the last. A conflict notice that lists only its first conflicts names the
    route that lists every one of them."""
    from sharehub.consistency import check as consistency

    hub, client, keys = served
    monkeypatch.setattr(consistency, "SAMPLE_CONFLICTS", 1)  # a notice lists one, so that some have more
    consistency.check(hub, full=True)
    platform = _auth(keys["platform"])

    whole = client.get("/conflicts", headers=platform)
    everyone = [c["id"] for c in whole.json()]
    assert len(everyone) >= 3 and everyone == sorted(everyone, reverse=True)
    assert whole.headers["X-Total-Count"] == str(len(everyone)) and "Link" not in whole.headers
    seen, url = [], "/conflicts?limit=2"
    while url is not None:
        page = client.get(url, headers=platform)
        assert page.status_code == 200 and page.headers["X-Total-Count"] == str(len(everyone))
        assert 1 <= len(page.json()) <= 2
        seen += [c["id"] for c in page.json()]
        url = _next_page(page)
    assert seen == everyone  # each once, in order, none skipped

    opened = client.get("/conflicts?status=open&limit=1", headers=platform)
    assert "status=open" in str(_next_page(opened))  # the filters go along to the next page
    notices = client.get("/notices?limit=1", headers=platform)
    assert len(notices.json()) == 1 and notices.headers["X-Total-Count"] == str(len(list_notices(hub)))
    assert _next_page(notices) == f"/notices?limit=1&before={notices.json()[0]['id']}"

    about = {n.id: len(consistency.list_conflicts(hub, notice_id=n.id)) for n in list_notices(hub)}
    noticed = [n for n in list_notices(hub) if n.kind == "conflict" and about[n.id] > 1]
    assert noticed, "no conflict notice is about more than one conflict"
    notice = noticed[0]
    assert f"GET /conflicts?notice={notice.id} lists them all" in notice.body
    listed = client.get(f"/conflicts?notice={notice.id}", headers=platform).json()
    assert {c["entity_key"] for c in listed} == set(notice.row_keys)
    assert all(c["notice_id"] == notice.id for c in listed)
    swj = _auth(keys["swj"])
    assert client.get("/conflicts?department=scjg", headers=swj).status_code == 403  # not its own
    assert client.get("/conflicts?department=swj", headers=swj).json() == client.get("/conflicts", headers=swj).json()

    shown = CliRunner().invoke(cli, ["conflicts", "list", "--limit", "2"])
    assert shown.exit_code == 0, shown.output
    assert f"2 of {len(everyone)}, newest first; the next page: --before {everyone[1]}" in shown.output
    last = CliRunner().invoke(cli, ["conflicts", "list", "--before", str(everyone[-2])])
    assert last.exit_code == 0 and f"1 of {len(everyone)}, newest first\n" in last.output


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


def test_a_department_is_told_before_a_grant_runs_out_and_a_renewal_settles_it(served) -> None:
    """A grant that runs out within the renewal lead time (the profile's review and decision clocks) is
    told to its consumer's department once, with the day it ends; applying again resolves the reminder,
    and a grant that simply runs out closes it."""
    from sharehub.access.grants import RENEWAL_STEPS, remind_expiring

    hub, client, keys = served
    soon = (datetime.now(UTC) + timedelta(days=2)).isoformat()
    body = {"resource_id": "gongan.population", "fields": ["name"], "modes": ["verification"], "purpose": "资格认证"}
    short = client.post("/applications", json={**body, "valid_until": soon}, headers=_auth(keys["rsj"])).json()
    assert short["status"] == "granted"
    far = _apply(client, keys["mzj"], "gongan.population", ["name"], ["verification"])  # runs 200 days
    assert far.json()["status"] == "granted"
    (told,) = remind_expiring(hub)
    assert remind_expiring(hub) == []  # once per grant
    (notice,) = [n for n in list_notices(hub, department="rsj") if n.kind == "grant_expiring"]
    assert notice.pending_keys == [str(told)] and notice.resource_id == "gongan.population"
    with hub.db() as s:
        granted = s.get(Grant, told)
        assert granted is not None and granted.valid_until == notice.deadline
        lead = sum(hub.profile.deadlines[step].working_days for step in RENEWAL_STEPS)
        assert (
            f"授权 #{told}" in notice.body
            and "POST /applications" in notice.body
            and f"约 {lead} 个工作日" in notice.body
        )
        (mail,) = s.scalars(sa.select(OutboxMessage).where(OutboxMessage.notice_id == notice.id))
    assert mail.recipient == hub.catalogue.departments["rsj"].contact_email
    assert (
        next(r for r in client.get("/stats", headers=_auth(keys["platform"])).json() if r["department"] == "rsj")[
            "notices_open"
        ]
        == 0
    )  # told, not asked to rectify anything

    renewed = client.post("/applications", json={**body, "valid_until": UNTIL}, headers=_auth(keys["rsj"]))
    assert renewed.json()["status"] == "granted"
    assert next(n for n in list_notices(hub, department="rsj") if n.id == notice.id).status == "resolved"

    again = client.post("/applications", json={**body, "valid_until": soon}, headers=_auth(keys["wjw_app"]))
    assert again.json()["status"] == "granted"
    checked = CliRunner().invoke(cli, ["applications", "check"])
    assert "1 grant(s) expiring soon, their departments told" in checked.output, checked.output
    (left,) = [n for n in list_notices(hub, department="wjw") if n.kind == "grant_expiring"]
    assert remind_expiring(hub, datetime.now(UTC) + timedelta(days=3)) == []
    assert next(n for n in list_notices(hub, department="wjw") if n.id == left.id).status == "resolved"  # ran out


def test_one_application_grant_objection_or_conflict_is_read_on_the_rule_of_its_list(served) -> None:
    """GET /applications/{id}, /grants/{id}, /objections/{id} and /conflicts/{id} answer whoever the list
    shows the row to, and 404 to everyone else, as if it did not exist."""
    from sharehub.consistency.check import check

    hub, client, keys = served
    made = _apply(client, keys["rsj"], "gongan.population", ["name", "sex"], ["query"]).json()
    (granted,) = client.get("/grants", headers=_auth(keys["rsj"])).json()
    person = _row(hub, "gongan_front:population_register")
    body = {"resource_id": "gongan.population", "key": {"id_number": person["id_number"]}, "fields": ["name"]}
    objected = client.post("/objections", json={**body, "reason": "姓名与户口簿不符"}, headers=_auth(keys["rsj"]))
    for path, row in (
        (f"/applications/{made['id']}", made),
        (f"/grants/{granted['id']}", granted),
        (f"/objections/{objected.json()['id']}", objected.json()),
    ):
        for who in ("rsj", "gongan", "platform"):  # the applicant, the provider, the platform office
            seen = client.get(path, headers=_auth(keys[who]))
            assert seen.status_code == 200 and seen.json()["id"] == row["id"], (path, who)
        for who in ("mzj", "swj"):  # another consumer, another provider
            hidden = client.get(path, headers=_auth(keys[who]))
            assert hidden.status_code == 404 and hidden.json()["detail"] == f"no {path.split('/')[1][:-1]} {row['id']}"
    assert client.get("/applications/999999", headers=_auth(keys["platform"])).status_code == 404

    check(hub, full=True)
    conflict = client.get("/conflicts?limit=1", headers=_auth(keys["swj"])).json()[0]
    assert client.get(f"/conflicts/{conflict['id']}", headers=_auth(keys["swj"])).json() == conflict
    assert client.get(f"/conflicts/{conflict['id']}", headers=_auth(keys["scjg"])).status_code == 200  # the authority
    assert client.get(f"/conflicts/{conflict['id']}", headers=_auth(keys["gongan"])).status_code == 404
    assert client.get(f"/conflicts/{conflict['id']}", headers=_auth(keys["rsj"])).status_code == 403  # a consumer


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
