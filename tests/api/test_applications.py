"""Applications through the API: share types, working-day clocks, withdrawal, contests, expiry."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import sqlalchemy as sa
from typer.testing import CliRunner

from sharehub.access.clocks import mark_overdue_steps
from sharehub.audit import verify as verify_chain
from sharehub.cli import app as cli
from sharehub.metadata.models import Grant, OutboxMessage
from sharehub.notices import list_notices, mark_overdue
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


def test_a_department_is_told_before_a_grant_runs_out_and_a_renewal_settles_it(served) -> None:
    """A grant that runs out within the renewal lead time (the profile's review and decision clocks) is
    told to its consumer's department once, with the day it ends; applying again resolves the reminder,
    and a grant that simply runs out closes it."""
    from sharehub.access.reminders import RENEWAL_STEPS, remind_expiring

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
