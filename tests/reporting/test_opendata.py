"""Open data: only L1 fields of unconditionally open resources are handed to the open-data portal, and
republished when their store moves."""

from __future__ import annotations

import hashlib
import io
import json
from datetime import datetime

import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa
from deltalake import DeltaTable
from typer.testing import CliRunner

from sharehub.catalogue.models import Classification
from sharehub.cli import app as cli
from sharehub.demo.build import build_sources
from sharehub.opendata import open_fields, publish
from sharehub.pipeline.run import run_resource
from sharehub.seal import public_pem, verify


def _change_status(hub, uscc: str, status: str, at: str) -> None:  # type: ignore[no-untyped-def]
    """The market regulator changes a company's status in its front-end database, and the pipeline runs."""
    res = hub.catalogue.resource("scjg.legal_entity")
    engine = sa.create_engine(hub.settings.connection_url(res.source.connection))
    with engine.begin() as c:
        c.exec_driver_sql(
            "UPDATE legal_entity_register SET status = ?, updated_at = ? WHERE uscc = ?", (status, at, uscc)
        )
    engine.dispose()
    run_resource(hub, res.id)


def test_open_datasets_hold_only_public_fields_and_follow_the_store(make_hub, use_env) -> None:
    hub = make_hub()
    build_sources(hub.settings, hub.catalogue, 300, 200)
    res = hub.catalogue.resource("scjg.legal_entity")
    assert publish(hub)[0].status == "no_store"  # nothing delivered yet: nothing to open
    run_resource(hub, res.id)

    (first,) = publish(hub)
    assert (first.resource_id, first.status, first.store_version) == (res.id, "published", 0)
    manifest = json.loads(hub.store.read_bytes(f"open/{res.id}/manifest.json"))
    assert manifest["data"] == "v0.parquet"
    data = hub.store.read_bytes(f"open/{res.id}/v0.parquet")
    table = pq.read_table(io.BytesIO(data))
    public = [f.name for f in res.fields if f.classification == Classification.L1]
    assert table.column_names == open_fields(res) == public
    assert {"legal_rep_name", "legal_rep_id"}.isdisjoint(table.column_names)  # a person's data never opens
    stored = DeltaTable(hub.store.uri(res.store_path)).to_pyarrow_table(columns=public)
    assert table.num_rows == stored.num_rows == manifest["rows"] == first.rows
    assert manifest["sha256"] == hashlib.sha256(data).hexdigest() and manifest["store_version"] == 0
    assert verify(manifest, public_pem(hub)) is None  # under the platform's seal
    assert publish(hub)[0].status == "unchanged"

    # The department changes a company: the next publish carries the store's new version.
    uscc = stored.column("uscc")[0].as_py()
    _change_status(hub, uscc, "注销", "2026-11-21 10:00:00")
    (second,) = publish(hub)
    assert second.status == "published" and second.store_version == 1
    rows = pq.read_table(io.BytesIO(hub.store.read_bytes(f"open/{res.id}/v1.parquet"))).to_pylist()
    assert next(r for r in rows if r["uscc"] == uscc)["status"] == "注销"
    # The file of the version before stays for its readers until the next one; older ones go.
    assert hub.store.list(f"open/{res.id}") == [
        f"open/{res.id}/{n}" for n in ("manifest.json", "v0.parquet", "v1.parquet")
    ]
    _change_status(hub, uscc, "吊销", "2026-11-21 11:00:00")
    assert publish(hub)[0].store_version == 2
    assert hub.store.list(f"open/{res.id}") == [
        f"open/{res.id}/{n}" for n in ("manifest.json", "v1.parquet", "v2.parquet")
    ]

    # The open catalogue names the dataset, and for an on-application resource whom to apply to and how fast.
    listed = {e["resource_id"]: e for e in json.loads(hub.store.read_bytes("open/catalogue.json"))["resources"]}
    assert set(listed) == {r.id for r in hub.catalogue.resources.values() if r.open != "not_open"}
    assert listed[res.id]["dataset"] == f"open/{res.id}/v2.parquet" and listed[res.id]["store_version"] == 2
    tax = listed["swj.tax_registration"]
    rule = hub.profile.deadlines["open_application"]
    assert tax["apply_to"]["contact"] == hub.catalogue.departments["swj"].contact_email
    assert tax["answer_within_working_days"] == rule.working_days and "dataset" not in tax
    assert [f["name"] for f in tax["fields"]] == open_fields(hub.catalogue.resource("swj.tax_registration"))
    with hub.db() as s:
        published = s.execute(sa.text("SELECT count(*) FROM audit_log WHERE action = 'open_publish'")).scalar_one()
    assert published == 3  # each publication is in the audit chain; "unchanged" wrote nothing

    with pytest.raises(ValueError, match="not open unconditionally"):
        publish(hub, ["swj.tax_registration"])
    use_env(hub)
    shown = CliRunner().invoke(cli, ["open", "publish", res.id], env={"COLUMNS": "200"})
    assert shown.exit_code == 0 and "unchanged" in shown.output, shown.output
    refused = CliRunner().invoke(cli, ["open", "publish", "gongan.population"])
    assert refused.exit_code == 1 and "not open unconditionally" in refused.output


def test_a_request_for_data_opened_on_application_is_answered_by_its_department(make_hub, use_env) -> None:
    from fastapi.testclient import TestClient

    from api.app import create_app
    from sharehub.access.consumers import add_consumer
    from sharehub.metadata.models import Notice, OpenRequest

    hub = make_hub()
    use_env(hub)
    build_sources(hub.settings, hub.catalogue, 300, 200)
    res = hub.catalogue.resource("swj.tax_registration")
    run_resource(hub, res.id)
    _, platform = add_consumer(hub, "开放平台", "platform", "platform")
    _, swj = add_consumer(hub, "税务局数据科", "swj", "provider")
    _, scjg = add_consumer(hub, "市场监管局数据科", "scjg", "provider")
    _, reader = add_consumer(hub, "人社局待遇认证", "rsj", "consumer")
    client = TestClient(create_app())

    def call(method: str, path: str, key: str, **kw):  # type: ignore[no-untyped-def]
        return client.request(method, path, headers={"Authorization": f"Bearer {key}"}, **kw)

    ask = {"resource_id": res.id, "applicant": "利川市信用研究院", "fields": ["uscc", "name", "taxpayer_status"]}
    ask |= {"purpose": "企业信用状况研究", "portal_ref": "KF-2026-0001"}
    # What the portal may ask for: an on-application resource, its L1 fields only, by the platform office.
    for change, says in (
        ({"fields": ["uscc", "tax_grade"]}, "tax_grade is L2, not public (L1)"),
        ({"fields": ["uscc", "nothing"]}, "nothing is not a field"),
        ({"resource_id": "scjg.legal_entity"}, "open unconditionally"),
        ({"resource_id": "gongan.population", "fields": ["id_number"]}, "not open to the public"),
    ):
        refused = call("POST", "/open/requests", platform, json=ask | change)
        assert refused.status_code == 422 and says in refused.json()["detail"], refused.json()
    assert call("POST", "/open/requests", reader, json=ask).status_code == 403
    assert call("POST", "/open/requests", swj, json=ask).status_code == 403

    made = call("POST", "/open/requests", platform, json=ask)
    assert made.status_code == 201, made.json()
    request = made.json()
    rule = hub.profile.deadlines["open_application"]
    assert request["status"] == "pending" and not request["late"] and request["dataset"] is None
    due = hub.calendar.deadline(datetime.fromisoformat(request["created_at"]), rule.working_days)
    assert datetime.fromisoformat(request["deadline"]) == due
    with hub.db() as s:
        asked = s.get(Notice, s.scalar(sa.select(Notice.id).where(Notice.kind == "open_request")))
        assert asked is not None and asked.department == "swj" and asked.status == "open"
        assert f"#{request['id']}" in asked.subject and "利川市信用研究院" in asked.body

    # Each department sees the requests on its own resources; the platform office sees all.
    assert [r["id"] for r in call("GET", "/open/requests", swj).json()] == [request["id"]]
    assert call("GET", "/open/requests", scjg).json() == []
    assert call("GET", f"/open/requests/{request['id']}", scjg).status_code == 404
    assert call("GET", "/open/requests", reader).status_code == 403
    assert [r["id"] for r in call("GET", "/open/requests", platform, params={"status": "pending"}).json()] == [
        request["id"]
    ]
    assert call("GET", "/open/requests", platform, params={"status": "approved"}).json() == []

    # Only the providing department answers; a refusal needs reasons.
    decision = f"/open/requests/{request['id']}/decision"
    assert call("POST", decision, scjg, json={"approve": True}).status_code == 404
    assert call("POST", decision, platform, json={"approve": True}).status_code == 403
    assert call("POST", decision, swj, json={"approve": False, "reason": ""}).status_code == 422
    approved = call("POST", decision, swj, json={"approve": True})
    assert approved.status_code == 200, approved.json()
    done = approved.json()
    assert done["status"] == "approved" and done["dataset"].startswith(f"open/requests/{request['id']}/")
    assert call("POST", decision, swj, json={"approve": False, "reason": "再议一次"}).status_code == 409

    # The request's own dataset: the fields asked for, every row of the store, under the platform's seal.
    data = hub.store.read_bytes(done["dataset"])
    table = pq.read_table(io.BytesIO(data))
    stored = DeltaTable(hub.store.uri(res.store_path)).to_pyarrow_table(columns=["uscc", "name", "taxpayer_status"])
    assert table.column_names == ["uscc", "name", "taxpayer_status"]
    assert table.num_rows == stored.num_rows == done["rows"] > 0
    assert sorted(table.column("uscc").to_pylist()) == sorted(stored.column("uscc").to_pylist())
    manifest = json.loads(hub.store.read_bytes(done["dataset"].replace("data.parquet", "manifest.json")))
    assert manifest["sha256"] == done["sha256"] == hashlib.sha256(data).hexdigest()
    assert manifest["open_request"] == request["id"] and manifest["purpose"] == "企业信用状况研究"
    assert verify(manifest, public_pem(hub)) is None
    with hub.db() as s:
        asked = s.get(Notice, asked.id)
        assert asked is not None and asked.status == "resolved" and asked.pending_keys == []
        told = s.scalars(sa.select(Notice).where(Notice.kind == "open_request", Notice.department == "platform")).one()
        assert "KF-2026-0001" in told.body and done["dataset"] in told.body
        entries = s.execute(sa.text("SELECT action, result, detail FROM audit_log ORDER BY id")).all()
    steps = [(a, r) for a, r, _ in entries if a.startswith("open_")]
    assert steps == [("open_request", "pending"), ("open_decision", "approved")]
    assert not any("研究院" in str(row) for row in entries)  # the applicant's name stays out of the audit chain

    # The portal takes a pending request back for its applicant: the department owes no answer then.
    second = call("POST", "/open/requests", platform, json=ask).json()
    withdraw = f"/open/requests/{second['id']}/withdraw"
    assert call("POST", withdraw, swj, json={"reason": "申请人撤回"}).status_code == 403
    taken = call("POST", withdraw, platform, json={"reason": "申请人不再需要"})
    assert taken.status_code == 200 and taken.json()["status"] == "withdrawn", taken.json()
    assert call("POST", withdraw, platform, json={"reason": "申请人不再需要"}).status_code == 409
    assert call("POST", f"/open/requests/{second['id']}/decision", swj, json={"approve": True}).status_code == 409
    with hub.db() as s:
        withdrawn = s.get(OpenRequest, second["id"])
        owed = s.get(Notice, withdrawn.notice_id) if withdrawn else None
    assert owed is not None and owed.department == "swj" and owed.status == "resolved"


def test_an_unanswered_open_data_request_runs_late_and_a_failed_approval_leaves_nothing(
    make_hub, use_env, monkeypatch: pytest.MonkeyPatch
) -> None:
    from datetime import timedelta

    from sharehub.access.consumers import operator
    from sharehub.access.grants import WrongState
    from sharehub.access.openrequests import decide_request, file_request, late, list_requests
    from sharehub.metadata.models import Notice
    from sharehub.notices import mark_overdue

    hub = make_hub()
    use_env(hub)
    build_sources(hub.settings, hub.catalogue, 300, 200)
    res = hub.catalogue.resource("swj.tax_registration")
    swj = operator("税务局经办人", "swj")
    asked = file_request(hub, operator("开放平台"), res.id, "某公司", ["uscc", "name"], "招投标资格核验")

    # Nothing delivered yet: nothing to open, and the request waits.
    with pytest.raises(WrongState, match="no store yet"):
        decide_request(hub, swj, asked.id, True, "")
    run_resource(hub, res.id)

    # Writing the dataset fails half-way: no file stays behind and the request is still pending.
    def broken(relative: str) -> tuple[str, int]:
        raise OSError("object store unreachable")

    monkeypatch.setattr(hub.store, "sha256", broken)
    with pytest.raises(OSError, match="unreachable"):
        decide_request(hub, swj, asked.id, True, "")
    monkeypatch.undo()
    assert hub.store.list(f"open/requests/{asked.id}") == []
    assert list_requests(hub, swj, only=asked.id)[0].status == "pending"

    # Past its deadline the department's notice runs overdue and the platform office is told.
    after = asked.deadline + timedelta(seconds=1)
    assert late(asked, after) and not late(asked, asked.deadline - timedelta(hours=1))
    overdue = mark_overdue(hub, now=after)
    with hub.db() as s:
        notice = s.get(Notice, asked.notice_id)
        assert notice is not None and notice.id in overdue and notice.status == "overdue"
        escalation = s.scalars(sa.select(Notice).where(Notice.parent_id == notice.id)).one()
        assert escalation.department == "platform" and "依申请开放请求" in escalation.body

    # A refusal keeps its reasons and writes nothing.
    use_env(hub)
    refuse = ["open", "decide", str(asked.id), "--department", "swj", "--refuse", "--by", "李四"]
    shown = CliRunner().invoke(cli, [*refuse, "--reason", "涉及商业秘密"], env={"COLUMNS": "200"})
    assert shown.exit_code == 0 and "refused" in shown.output and "涉及商业秘密" in shown.output, shown.output
    assert hub.store.list(f"open/requests/{asked.id}") == []
    listed = CliRunner().invoke(cli, ["open", "requests", "--status", "refused"], env={"COLUMNS": "200"})
    assert listed.exit_code == 0 and "涉及商业秘密" in listed.output, listed.output
    assert CliRunner().invoke(cli, ["open", "requests", "--status", "nope"]).exit_code == 2

    # A request left unanswered past its deadline counts against the department until it is answered.
    from sharehub.metadata.models import OpenRequest, utcnow
    from sharehub.reporting.stats import department_stats

    assert department_stats(hub, "swj")[0]["open_requests_late"] == 0  # refused in time
    waiting = file_request(hub, operator("开放平台"), res.id, "某公司", ["uscc"], "招投标资格核验")
    with hub.db() as s:
        filed_long_ago = sa.update(OpenRequest).where(OpenRequest.id == waiting.id)
        s.execute(filed_long_ago.values(deadline=utcnow() - timedelta(hours=1)))
    (swj_stats,) = department_stats(hub, "swj")
    assert swj_stats["open_requests_late"] == 1 and "open_requests_late" in swj_stats["rectify"]
