"""A department's work through the API: objections, notices, disputes and conflicts, in pages."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from sharehub.audit import verify as verify_chain
from sharehub.cli import app as cli
from sharehub.metadata.models import QuarantinedRow
from sharehub.notices import check_deliveries, list_disputes, list_notices, mark_overdue
from sharehub.reporting.stats import FIGURES
from tests.support.audit import audit_rows
from tests.support.served import apply as _apply
from tests.support.served import auth as _auth
from tests.support.served import source_row as _row


def test_objections_are_answered_in_time_and_counted(served) -> None:

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
    from sharehub.consistency import conflicts
    from sharehub.consistency.check import check

    hub, client, keys = served
    monkeypatch.setattr(conflicts, "SAMPLE_CONFLICTS", 1)  # a notice lists one, so that some have more
    check(hub, full=True)
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

    about = {n.id: len(conflicts.list_conflicts(hub, notice_id=n.id)) for n in list_notices(hub)}
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
