"""Each jurisdiction's workflow, as its profile declares it: which application steps exist and their
clocks, the provider owing a conditional resource's data after a grant (Hengyang 17), the applicant told
in time (Lichuan 20), delivery deadlines cut to the regulation's (Zhejiang 25), and filing ahead (报备,
Zhongshan 16). And no key a profile declares goes unread by the code."""

from __future__ import annotations

import ast
import json
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sharehub.access.callers import Caller, operator
from sharehub.access.clocks import mark_told_late
from sharehub.access.consumers import add_consumer
from sharehub.access.contests import contest, settle, settle_reclassifications
from sharehub.access.grants import apply, decide, review
from sharehub.access.objections import answer, raise_objection
from sharehub.access.openrequests import file_request
from sharehub.errors import Forbidden, Invalid, NotFound, Refused, WrongState
from sharehub.metadata.models import Application
from sharehub.notices import (
    check_deliveries,
    deliver,
    delivery_days,
    file_delivery,
    list_filings,
    list_notices,
    mark_overdue,
)
from sharehub.opendata import open_catalogue
from sharehub.profiles import CITED, DEADLINES, Workflow, load_profile
from sharehub.profiles.check import catalogue_against_profile
from sharehub.reporting.bulletin import bulletin
from sharehub.workdays import CHINA
from tests.support.served import auth

PROFILES = ("lichuan", "fushun", "zhejiang", "hengyang", "zhongshan")
ROOT = Path(__file__).resolve().parents[2]


def _read_by_code() -> tuple[set[str], set[str]]:
    """The string constants in the hub's code outside the profiles package, and the attribute names read
    anywhere in it (a field's declaration is a name, not an attribute)."""
    strings: set[str] = set()
    attributes: set[str] = set()
    for folder in ("sharehub", "api", "dags"):
        for path in (ROOT / folder).rglob("*.py"):
            if "migrations" in path.parts:
                continue
            declared_here = "profiles" in path.parts  # its tuples of keys are declarations, not reads
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Constant) and isinstance(node.value, str) and not declared_here:
                    strings.add(node.value)
                elif isinstance(node, ast.Attribute):
                    attributes.add(node.attr)
    return strings, attributes


def test_every_key_a_profile_declares_is_read_by_the_code() -> None:
    strings, attributes = _read_by_code()
    assert sorted(k for k in (*DEADLINES, *CITED) if k not in strings) == []
    assert sorted(f for f in Workflow.model_fields if f not in attributes) == []


def _consumer(hub, department: str = "mzj") -> Caller:
    consumer, _ = add_consumer(hub, "民政 低保核对", department, "consumer")
    return Caller(consumer.id, consumer.name, consumer.department, "consumer")


@pytest.mark.parametrize("profile_id", PROFILES)
def test_a_conditional_application_follows_its_profiles_steps_and_clocks(make_hub, profile_id: str) -> None:
    hub = make_hub(profile=profile_id)
    profile = hub.profile
    until = datetime.now(UTC) + timedelta(days=90)
    app = apply(hub, _consumer(hub), "rsj.insurance_enrolment", ["name"], ["verification"], "低保资格核对", until)
    first = profile.workflow.application_steps[0]
    assert app.status == first
    rule = "application_review" if first == "review" else "provider_decision"
    assert app.step_deadline == hub.calendar.deadline(app.created_at, profile.days(rule))
    if first == "review":
        assert not [n for n in list_notices(hub, department="rsj") if n.kind == "application"]  # not asked yet
        app = review(hub, operator(), app.id, True, "材料齐全")
        assert app.status == "provider"
    (asked,) = [n for n in list_notices(hub, department="rsj") if n.kind == "application"]
    assert profile.deadlines["provider_decision"].basis in asked.body

    app = decide(hub, operator(department="rsj"), app.id, True, "同意")
    assert app.status == "granted" and app.told_notice_id is not None

    # Nothing of rsj's has landed here: rsj owes the data within conditional_delivery of the grant.
    (owed,) = [n for n in list_notices(hub, department="rsj") if n.kind == "conditional_delivery"]
    granted_at = app.decided_at
    assert owed.deadline == hub.calendar.deadline(granted_at, profile.days("conditional_delivery"))
    assert profile.deadlines["conditional_delivery"].basis in owed.body
    assert mark_overdue(hub, owed.deadline - timedelta(minutes=1)) == []
    assert owed.id in mark_overdue(hub, owed.deadline + timedelta(minutes=1))
    escalations = [n for n in list_notices(hub, department="platform") if n.parent_id == owed.id]
    assert len(escalations) == 1 and "有条件共享" in escalations[0].body

    # No SMTP here: the applicant's e-mail never left, and nobody read it. Late past notify_applicant.
    told_by = hub.calendar.deadline(granted_at, profile.days("notify_applicant"))
    assert mark_told_late(hub, told_by - timedelta(minutes=1)) == []
    assert mark_told_late(hub, told_by + timedelta(minutes=1)) == [app.id]
    assert mark_told_late(hub, told_by + timedelta(days=5)) == []  # escalated once
    with hub.db() as s:
        assert s.get(Application, app.id).told_overdue_at is not None
    (late,) = [n for n in list_notices(hub, department="platform") if n.parent_id == app.told_notice_id]
    assert profile.deadlines["notify_applicant"].basis in late.body
    month = (told_by + timedelta(minutes=1)).astimezone(CHINA).date().replace(day=1)
    counted = bulletin(hub, month, now=told_by + timedelta(days=1))["authorizations"]["steps_overdue"]
    assert counted.get("platform") == 1  # the platform office's step, in the month's bulletin


def test_an_applicant_whose_e_mail_left_in_time_was_told(make_hub, smtp) -> None:
    inbox, port = smtp
    hub = make_hub(profile="lichuan", smtp_host="127.0.0.1", smtp_port=port)
    until = datetime.now(UTC) + timedelta(days=90)
    app = apply(hub, _consumer(hub), "rsj.insurance_enrolment", ["name"], ["verification"], "低保资格核对", until)
    review(hub, operator(), app.id, True, "材料齐全")
    app = decide(hub, operator(department="rsj"), app.id, False, "用途与共享条件不符")
    deliver(hub)
    assert hub.catalogue.departments["mzj"].contact_email in [m["To"] for m in inbox.messages]
    assert mark_told_late(hub, datetime.now(UTC) + timedelta(days=30)) == []


def test_a_grant_of_data_already_landed_owes_no_delivery(served) -> None:
    hub, _client, _keys = served  # the served world has run swj.tax_registration
    until = datetime.now(UTC) + timedelta(days=90)
    app = apply(hub, _consumer(hub), "swj.tax_registration", ["name"], ["verification"], "低保资格核对", until)
    review(hub, operator(), app.id, True, "材料齐全")
    assert decide(hub, operator(department="swj"), app.id, True, "同意").status == "granted"
    assert not [n for n in list_notices(hub, department="swj") if n.kind == "conditional_delivery"]


def test_zhejiang_cuts_delivery_deadlines_to_two_working_days_and_says_so(make_hub, use_env) -> None:
    from sharehub.cli.main import app as cli

    lichuan = make_hub(profile="lichuan")
    zhejiang = make_hub(profile="zhejiang", home=lichuan.settings.home.parent / "zhejiang")
    monthly = lichuan.catalogue.resource("mzj.subsistence_allowance")
    assert (delivery_days(lichuan, monthly), delivery_days(zhejiang, monthly)) == (5, 2)
    # 2026-12-01 ends November's period; five working days is 12-08, two is 12-03.
    dec5 = datetime(2026, 12, 5, 12, tzinfo=CHINA)
    assert [n.resource_id for n in list_notices(zhejiang)] == []
    check_deliveries(zhejiang, dec5)
    check_deliveries(lichuan, dec5)
    # Nothing was ever delivered: under Zhejiang November's data is late already, under Lichuan October's.
    (cut,) = [n for n in list_notices(zhejiang, kind="delivery") if n.resource_id == "mzj.subsistence_allowance"]
    (kept,) = [n for n in list_notices(lichuan, kind="delivery") if n.resource_id == "mzj.subsistence_allowance"]
    assert "截至 2026-12-01 00:00" in cut.body and "（2 个工作日）" in cut.body
    assert "截至 2026-11-01 00:00" in kept.body and "（5 个工作日）" in kept.body

    use_env(zhejiang)
    warned = CliRunner().invoke(cli, ["catalogue", "validate"])
    assert warned.exit_code == 0 and "mzj.subsistence_allowance" in warned.stderr and "第二十五条" in warned.stderr
    assert CliRunner().invoke(cli, ["catalogue", "validate", "--strict"]).exit_code == 1


def test_a_filing_ahead_moves_the_due_date_and_the_platform_is_told(make_hub) -> None:
    hub = make_hub(profile="zhongshan")
    other = make_hub(profile="zhongshan", home=hub.settings.home.parent / "other")
    mzj = operator("张三", department="mzj")
    dec2 = datetime(2026, 12, 2, 10, tzinfo=CHINA)  # November's data is due 2026-12-08 (5 working days)
    with pytest.raises(NotFound):
        file_delivery(hub, operator(department="gongan"), "mzj.subsistence_allowance", dec2, "系统升级", dec2)
    with pytest.raises(Invalid):  # beyond ten working days
        file_delivery(hub, mzj, "mzj.subsistence_allowance", datetime(2027, 1, 30, tzinfo=CHINA), "系统升级", dec2)
    filing = file_delivery(
        hub, mzj, "mzj.subsistence_allowance", datetime(2026, 12, 11, 18, tzinfo=CHINA), "核对系统升级停机", dec2
    )
    assert filing.period_end == datetime(2026, 12, 1, tzinfo=CHINA)
    assert filing.due_before == hub.calendar.deadline(filing.period_end, 5)
    with pytest.raises(WrongState):  # one filing per period
        file_delivery(hub, mzj, "mzj.subsistence_allowance", datetime(2026, 12, 10, tzinfo=CHINA), "再次报备", dec2)
    (told,) = [n for n in list_notices(hub, department="platform") if n.kind == "delivery_filing"]
    assert "第十六条" in told.body and "核对系统升级停机" in told.body
    assert [f.id for f in list_filings(hub, operator(department="mzj"))] == [filing.id]
    assert list_filings(hub, operator(department="gongan")) == []

    dec9 = datetime(2026, 12, 9, 12, tzinfo=CHINA)  # past the old due date, before the new one
    check_deliveries(hub, dec9)
    check_deliveries(other, dec9)
    assert "mzj.subsistence_allowance" not in {n.resource_id for n in list_notices(hub, kind="delivery")}
    assert "mzj.subsistence_allowance" in {n.resource_id for n in list_notices(other, kind="delivery")}
    check_deliveries(hub, datetime(2026, 12, 14, 12, tzinfo=CHINA))
    (late,) = [n for n in list_notices(hub, kind="delivery") if n.resource_id == "mzj.subsistence_allowance"]
    assert "已报备推迟至此" in late.body

    with pytest.raises(WrongState):  # a filing is made ahead, not once the data is late
        file_delivery(other, mzj, "mzj.subsistence_allowance", datetime(2026, 12, 11, tzinfo=CHINA), "系统升级", dec9)


def test_a_department_files_over_http_and_a_consumer_cannot(served) -> None:
    hub, client, keys = served
    body = {"due": hub.calendar.deadline(datetime.now(UTC), 6).isoformat(), "reason": "系统升级停机"}
    path = "/resources/{}/delivery-filings"
    assert client.post(path.format("gongan.population"), json=body, headers=auth(keys["mzj"])).status_code == 403
    assert client.post(path.format("swj.tax_registration"), json=body, headers=auth(keys["gongan"])).status_code == 404
    made = client.post(path.format("gongan.population"), json=body, headers=auth(keys["gongan"]))
    assert made.status_code == 201, made.text
    assert client.post(path.format("gongan.population"), json=body, headers=auth(keys["gongan"])).status_code == 409
    listed = client.get("/delivery-filings", headers=auth(keys["platform"])).json()
    assert [f["id"] for f in listed] == [made.json()["id"]] and listed[0]["filed_by"] == "公安局"
    assert client.get("/delivery-filings", headers=auth(keys["swj"])).json() == []
    assert client.get("/delivery-filings", headers=auth(keys["mzj"])).status_code == 403
    trail = client.get("/audit", headers=auth(keys["platform"]), params={"action": "delivery_filing"}).json()
    assert [e["resource_id"] for e in trail] == ["gongan.population"]


def test_the_profiles_workflows_are_as_their_regulations_say() -> None:
    steps = {p: load_profile(p).workflow.application_steps for p in PROFILES}
    assert steps["zhejiang"] == ("provider",)  # Zhejiang 26: the provider alone reviews
    assert all(steps[p] == ("review", "provider") for p in PROFILES if p != "zhejiang")
    assert load_profile("zhejiang").workflow.delivery_max_working_days == 2
    assert load_profile("zhongshan").cite("advance_filing").startswith("中山市政务信息资源共享管理办法第十六条")
    assert load_profile("lichuan").cite("advance_filing").startswith("平台规则")


@pytest.mark.parametrize(
    ("profile_id", "reviewer"),
    [
        ("zhongshan", "platform"),
        ("lichuan", "gongan"),
        ("zhejiang", "gongan"),
        ("fushun", "gongan"),
        ("hengyang", "gongan"),
    ],
)
def test_an_objection_goes_to_whom_the_profile_says(make_hub, profile_id: str, reviewer: str) -> None:
    """Zhongshan 22: the platform authority reviews an objection and has the provider correct what is
    wrong; elsewhere the providing department checks and answers it."""
    hub = make_hub(profile=profile_id)
    caller = _consumer(hub)
    until = datetime.now(UTC) + timedelta(days=90)
    apply(hub, caller, "gongan.population", ["name", "phone"], ["query"], "低保申请人身份核验", until)
    key = {"id_number": "42282219800101001X"}
    objection = raise_objection(hub, caller, "gongan.population", key, ["phone"], "电话号码已停用")
    (asked,) = [n for n in list_notices(hub, department=reviewer) if n.kind == "objection"]
    assert hub.profile.workflow.objection_basis in asked.body and "42282219800101001X" not in asked.body
    other = operator(department="gongan" if reviewer == "platform" else "platform")
    with pytest.raises(Forbidden):
        answer(hub, other, objection.id, "corrected", "已核实并更正")
    answered = answer(hub, operator(department=reviewer), objection.id, "corrected", "号码确已变更")
    assert answered.status == "corrected"
    ordered = [n for n in list_notices(hub, department="gongan") if n.kind == "objection_correction"]
    if reviewer == "platform":  # the provider is told to correct, by the rectification deadline
        (order,) = ordered
        assert order.deadline == hub.calendar.deadline(order.created_at, hub.profile.days("rectification"))
        assert "号码确已变更" in order.body and order.status == "open"
        assert order.id in mark_overdue(hub, order.deadline + timedelta(minutes=1))
    else:
        assert ordered == []
    (told,) = [n for n in list_notices(hub, department="mzj") if n.kind == "objection_answer"]
    assert ("已要求提供部门更正" in told.body) == (reviewer == "platform")


@pytest.mark.parametrize("profile_id", PROFILES)
def test_each_profile_walks_its_own_contest_path(make_hub, profile_id: str) -> None:
    """A refusal of not-shared data, contested: coordinated by the platform within the profile's
    `application_contest` deadline; under Hengyang 16 reviewed, ending in reclassification or 公示."""
    hub = make_hub(profile=profile_id)
    caller = _consumer(hub)
    until = datetime.now(UTC) + timedelta(days=90)
    refused = apply(hub, caller, "wjw.health_record", ["id_number"], ["query"], "低保申请人因病支出核实", until)
    assert refused.status == "refused"
    contest(hub, caller, refused.id, "因病致贫认定须核实病情")
    (asked,) = [n for n in list_notices(hub, department="platform") if n.kind == "application_contest"]
    assert asked.deadline == hub.calendar.deadline(asked.created_at, hub.profile.days("application_contest"))
    assert hub.profile.deadlines["application_contest"].basis in asked.body
    review = hub.profile.workflow.not_shared_review
    office = operator("平台办", department="platform")
    if review is None:
        assert "--outcome upheld" in asked.body
        with pytest.raises(Refused):
            settle(hub, office, refused.id, "publicized", "不能共享，公示依据")
        assert settle(hub, office, refused.id, "upheld", "不予共享有法定依据").contest.status == "upheld"
        assert "not_shared_publicized" not in _open_catalogue_file(hub)
        return
    assert "--outcome publicized" in asked.body and review in asked.body
    with pytest.raises(Refused):
        settle(hub, office, refused.id, "upheld", "维持不予共享")
    assert settle(hub, office, refused.id, "publicized", "涉及患者隐私，不能共享").contest.status == "publicized"
    (shown,) = _open_catalogue_file(hub)["not_shared_publicized"]
    assert shown["resource_id"] == "wjw.health_record" and shown["review"] == "涉及患者隐私，不能共享"
    assert shown["legal_basis"] == hub.catalogue.resource("wjw.health_record").share.legal_basis

    again = apply(hub, caller, "wjw.health_record", ["last_visit"], ["query"], "低保申请人就诊记录核实", until)
    contest(hub, caller, again.id, "仅需就诊日期，不涉及病情")
    settle(hub, office, again.id, "reclassified", "仅就诊日期可以共享")
    (order,) = [n for n in list_notices(hub, department="wjw") if n.kind == "reclassification"]
    assert order.deadline == hub.calendar.deadline(order.created_at, hub.profile.days("rectification"))
    assert review in order.body and settle_reclassifications(hub) == []  # the catalogue still says not shared
    assert order.id in mark_overdue(hub, order.deadline + timedelta(minutes=1))


def _open_catalogue_file(hub) -> dict:
    return json.loads(hub.store.read_bytes("open/catalogue.json")) if hub.store.exists("open/catalogue.json") else {}


@pytest.mark.parametrize("profile_id", PROFILES)
def test_each_profile_walks_its_own_open_data_path(make_hub, profile_id: str) -> None:
    """An on-application open-data request answered within the profile's `open_application` deadline; under
    Fushun 22 the basis for not opening data, or restricting it, is published with the open catalogue."""
    hub = make_hub(profile=profile_id)
    office = operator("平台办", department="platform")
    request = file_request(hub, office, "swj.tax_registration", "利川市信用研究院", ["uscc", "name"], "企业信用研究")
    assert request.deadline == hub.calendar.deadline(request.created_at, hub.profile.days("open_application"))
    (asked,) = [n for n in list_notices(hub, department="swj") if n.kind == "open_request"]
    assert hub.profile.deadlines["open_application"].basis in asked.body
    listed = {e["resource_id"]: e for e in open_catalogue(hub)}
    published = hub.profile.workflow.open_basis_published
    assert ("gongan.population" in listed) == (published is not None)
    if published:
        assert listed["gongan.population"]["not_open_basis"].startswith("户籍人口信息属个人信息")
        assert "税收征收管理法" in listed["swj.tax_registration"]["restriction_basis"]
    else:
        assert "restriction_basis" not in listed["swj.tax_registration"]


@pytest.mark.parametrize("profile_id", PROFILES)
def test_each_profile_walks_its_own_delivery_path(make_hub, profile_id: str) -> None:
    """A monthly resource's data is due in the catalogue's working days, cut to the profile's limit; a
    filing ahead (报备) moves it and cites the profile's own article, or says the rule is the platform's."""
    hub = make_hub(profile=profile_id)
    monthly = hub.catalogue.resource("mzj.subsistence_allowance")
    limit = hub.profile.workflow.delivery_max_working_days
    assert delivery_days(hub, monthly) == (5 if limit is None else min(5, limit))
    dec2 = datetime(2026, 12, 2, 10, tzinfo=CHINA)  # November's data is due no earlier than 12-03 anywhere
    due = hub.calendar.deadline(dec2, 8)
    filing = file_delivery(hub, operator(department="mzj"), "mzj.subsistence_allowance", due, "系统升级停机", dec2)
    assert filing.due_before == hub.calendar.deadline(filing.period_end, delivery_days(hub, monthly))
    (told,) = [n for n in list_notices(hub, department="platform") if n.kind == "delivery_filing"]
    assert hub.profile.cite("advance_filing") in told.body


@pytest.mark.parametrize(("profile_id", "first"), [("zhejiang", "provider"), ("lichuan", "review")])
def test_the_api_follows_the_profile_set_in_the_environment(make_hub, use_env, profile_id: str, first: str) -> None:
    from fastapi.testclient import TestClient

    from api.app import create_app
    from sharehub.access.consumers import add_consumer as add

    hub = make_hub(profile=profile_id)
    use_env(hub)
    mzj, platform = add(hub, "民政 低保核对", "mzj", "consumer")[1], add(hub, "平台办", "platform", "platform")[1]
    client = TestClient(create_app())
    body = {
        "resource_id": "rsj.insurance_enrolment",
        "fields": ["name"],
        "modes": ["verification"],
        "purpose": "低保资格核对",
        "valid_until": (datetime.now(UTC) + timedelta(days=90)).isoformat(),
    }
    made = client.post("/applications", json=body, headers={"Authorization": f"Bearer {mzj}"}).json()
    assert made["status"] == first
    reviewed = client.post(
        f"/applications/{made['id']}/review", json={"approve": True}, headers={"Authorization": f"Bearer {platform}"}
    )
    assert reviewed.status_code == (409 if first == "provider" else 200)  # Zhejiang 26 has no platform review


def test_hengyang_opens_data_on_conditions_a_type_of_its_own(make_hub, tmp_path: Path) -> None:
    """Hengyang 22: 有条件开放 is provided in part or on conditions the requester accepts; its catalogue has
    no 依申请开放, and Fushun's has no 有条件开放: each says so of a resource declared otherwise."""
    hengyang = make_hub(profile="hengyang")
    assert any(
        "swj.tax_registration: open is on_application" in p
        for p in catalogue_against_profile(hengyang.profile, hengyang.catalogue)
    )
    catalogue = tmp_path / "catalogue"
    shutil.copytree(ROOT / "catalogue", catalogue)
    yaml_path = catalogue / "resources" / "swj.tax_registration.yaml"
    text = yaml_path.read_text(encoding="utf-8").replace(
        "open: on_application",
        "open: conditional\nopen_conditions: 仅用于信用研究，不得向第三方提供，成果发布前报税务局审核",
    )
    yaml_path.write_text(text, encoding="utf-8")
    hub = make_hub(profile="hengyang", home=tmp_path / "h", catalogue_dir=catalogue)
    fushun = make_hub(profile="fushun", home=tmp_path / "f", catalogue_dir=catalogue)
    assert not any("swj.tax_registration: open" in p for p in catalogue_against_profile(hub.profile, hub.catalogue))
    assert any("open is conditional" in p for p in catalogue_against_profile(fushun.profile, fushun.catalogue))

    office = operator("平台办", department="platform")
    with pytest.raises(Refused, match="有条件开放"):
        file_request(hub, office, "swj.tax_registration", "利川市信用研究院", ["uscc"], "企业信用研究")
    file_request(hub, office, "swj.tax_registration", "利川市信用研究院", ["uscc"], "企业信用研究", None, True)
    (asked,) = [n for n in list_notices(hub, department="swj") if n.kind == "open_request"]
    assert "有条件开放" in asked.subject and "不得向第三方提供" in asked.body
    (entry,) = [e for e in open_catalogue(hub) if e["resource_id"] == "swj.tax_registration"]
    assert entry["open"] == "conditional" and entry["conditions"].startswith("仅用于信用研究")
