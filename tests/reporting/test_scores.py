"""Department scores (Zhejiang 35; Hengyang 25): quantity, timeliness, quality and use, over a run history
whose every moment is known, so each part can be worked out by hand."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from api.app import create_app
from sharehub import audit
from sharehub.access.consumers import Caller, add_consumer
from sharehub.cli import app as cli
from sharehub.metadata.models import Run
from sharehub.reporting.scores import department_scores
from sharehub.workdays import CHINA


def _at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=CHINA)


def _run(hub, resource_id: str, started: datetime, status: str, landed: int = 0, quarantined: int = 0) -> None:
    with hub.db() as s:
        s.add(
            Run(
                id=f"{resource_id}__{started:%Y%m%dT%H%M}",
                resource_id=resource_id,
                trigger="schedule",
                status=status,
                step="promote",
                started_at=started,
                finished_at=started.replace(minute=started.minute + 5),
                mode="incremental",
                rows_landed=landed,
                rows_quarantined=quarantined,
            )
        )


def test_each_part_follows_the_run_history_and_the_working_day_calendar(make_hub) -> None:
    hub = make_hub()
    # gongan.population, daily, due 2 working days after each day ends. Connected Monday 2 November 10:00;
    # delivers again Tuesday 09:00 (the data of Monday, due Thursday 24:00), then never again.
    _run(hub, "gongan.population", _at(2, 10), "succeeded", landed=100, quarantined=5)
    _run(hub, "gongan.population", _at(3, 9), "succeeded", landed=50)
    # scjg.legal_entity was connected the same Monday, and its only run failed.
    _run(hub, "scjg.legal_entity", _at(2, 11), "failed")
    # Monday 9 November, noon: Monday's data (due Thu 5th 24:00) came on time; Tuesday's (due Fri 6th
    # 24:00) never did; Wednesday's is due Monday 9th 24:00, not yet.
    scores = {s.department: s for s in department_scores(hub, date(2026, 11, 1), None, now=_at(9, 12))}

    gongan = scores["gongan"]
    assert (gongan.periods_due, gongan.periods_on_time) == (2, 1)
    assert (gongan.rows_landed, gongan.rows_passed) == (150, 145)
    assert gongan.parts == {"quantity": 100.0, "timeliness": 50.0, "quality": 96.7, "use": 0.0}
    assert gongan.score == 61.7 and gongan.rank == 1

    scjg = scores["scjg"]  # connected, never delivered: no quality to measure, every period late
    assert scjg.parts == {"quantity": 0.0, "timeliness": 0.0, "quality": None, "use": 0.0}
    assert scjg.score == 0.0 and scjg.rank == 2
    # Never connected: nothing to be late for. Not shared: no use to measure.
    assert scores["wjw"].parts == {"quantity": 0.0, "timeliness": None, "quality": None, "use": None}
    assert scores["wjw"].rank == 2

    # A period that ends before `since` is not counted, nor are runs finished after `until`.
    later = {s.department: s for s in department_scores(hub, date(2026, 11, 4), None, now=_at(9, 12))}
    assert (later["gongan"].periods_due, later["gongan"].periods_on_time) == (1, 0)
    assert later["gongan"].parts["quantity"] == 0.0 and later["gongan"].parts["quality"] is None
    early = {s.department: s for s in department_scores(hub, date(2026, 11, 1), date(2026, 11, 2), now=_at(9, 12))}
    assert early["gongan"].rows_landed == 100 and early["gongan"].periods_due == 0

    with pytest.raises(ValueError, match="the period is empty"):
        department_scores(hub, date(2026, 11, 5), date(2026, 11, 4))


def test_use_counts_answered_calls_only_and_the_api_publishes_scores(make_hub, use_env) -> None:
    hub = make_hub()
    use_env(hub)
    consumer = Caller(1, "人社 待遇资格认证", "rsj", "consumer")
    audit.record(hub, "query", consumer, "gongan.population", grant_id=1, result="ok")
    audit.record(hub, "verification", consumer, "scjg.legal_entity", result="denied")  # refused: no use
    scores = {s.department: s for s in department_scores(hub)}
    assert (scores["gongan"].resources_used, scores["gongan"].calls_answered) == (1, 1)
    assert scores["gongan"].parts["use"] == 100.0 and scores["scjg"].parts["use"] == 0.0

    platform = add_consumer(hub, "平台", "platform", "platform")[1]
    provider = add_consumer(hub, "市场监管局", "scjg", "provider")[1]
    app_key = add_consumer(hub, "人社 待遇资格认证", "rsj", "consumer")[1]
    client = TestClient(create_app())
    published = client.get("/scores", headers={"Authorization": f"Bearer {provider}"})
    assert published.status_code == 200  # published: a department sees every department's score
    by_department = {row["department"]: row for row in published.json()}
    assert set(by_department) == {r.provider for r in hub.catalogue.resources.values()}
    assert by_department["gongan"]["use"] == 100.0 and by_department["gongan"]["figures"]["calls_answered"] == 1
    assert client.get("/scores", headers={"Authorization": f"Bearer {platform}"}).status_code == 200
    assert client.get("/scores", headers={"Authorization": f"Bearer {app_key}"}).status_code == 403
    empty = client.get("/scores?since=2026-11-05&until=2026-11-04", headers={"Authorization": f"Bearer {platform}"})
    assert empty.status_code == 422 and "the period is empty" in empty.text

    shown = CliRunner().invoke(cli, ["scores", "--since", "2026-01-01"], env={"COLUMNS": "200"})
    assert shown.exit_code == 0 and "100.0 (1/1, 1 call)" in shown.output, shown.output
    refused = CliRunner().invoke(cli, ["scores", "--since", "2026-11-05", "--until", "2026-11-04"])
    assert refused.exit_code == 1 and "the period is empty" in refused.output


def test_the_period_reaches_at_most_to_now() -> None:
    from sharehub.reporting.scores import window

    now = _at(9, 12)
    assert window(date(2026, 11, 1), date(9999, 12, 31), now) == (_at(1, 0), now)
    assert window(None, None, now) == (datetime(2026, 1, 1, tzinfo=CHINA), now)
    assert window(date(1, 1, 1), date(2026, 11, 2), now)[1] == _at(3, 0)


def test_the_bulletin_month_defaults_to_the_month_just_ended() -> None:
    from sharehub.reporting.bulletin import month_of

    assert month_of(None, _at(9, 12)) == date(2026, 10, 1)
    assert month_of(None, datetime(2027, 1, 1, 0, 30, tzinfo=CHINA)) == date(2026, 12, 1)  # China time
    assert month_of("2026-02") == date(2026, 2, 1)
    with pytest.raises(ValueError, match="YYYY-MM"):
        month_of("2026-2")


def test_the_monthly_bulletin_is_published_once_its_month_is_over(make_hub, use_env) -> None:

    from sqlalchemy import update

    from sharehub.access.consumers import operator
    from sharehub.access.grants import apply
    from sharehub.access.openrequests import file_request, withdraw_request
    from sharehub.metadata.models import OpenRequest
    from sharehub.reporting import bulletin

    hub = make_hub()
    use_env(hub)
    today = datetime.now(CHINA).date()
    month = today.replace(day=1)
    month_after = datetime(month.year + (month.month == 12), month.month % 12 + 1, 1, 9, tzinfo=CHINA)
    made, app_key = add_consumer(hub, "人社 待遇资格认证", "rsj", "consumer")
    consumer = Caller(made.id, made.name, made.department, "consumer")
    apply(hub, consumer, "gongan.population", ["name"], ["query"], "待遇资格认证", month_after + timedelta(days=30))
    audit.record(hub, "query", consumer, "gongan.population", grant_id=1, result="ok")
    audit.record(hub, "verification", consumer, "scjg.legal_entity", result="denied")
    _run(hub, "gongan.population", datetime(month.year, month.month, 1, 10, tzinfo=CHINA), "succeeded", 40, 4)
    # Two open-data requests: one withdrawn, one left unanswered past its deadline.
    portal = operator("开放平台")
    waiting = file_request(hub, portal, "swj.tax_registration", "某研究院", ["uscc"], "信用研究")
    taken_back = file_request(hub, portal, "swj.tax_registration", "某公司", ["uscc"], "招投标资格")
    withdraw_request(hub, portal, taken_back.id, "申请人不再需要")
    with hub.db() as s:
        s.execute(update(OpenRequest).where(OpenRequest.id == waiting.id).values(deadline=waiting.created_at))

    made_now = bulletin.bulletin(hub, month, now=month_after)
    assert made_now["month"] == f"{month:%Y-%m}" and made_now["complete"]
    assert made_now["authorizations"] == {
        "applications": 1,
        "by_share_type": {"unconditional": 1},
        "by_status_now": {"granted": 1},
        "steps_overdue": {},
        "open_data_requests": 2,
        "open_data_by_status_now": {"pending": 1, "withdrawn": 1},
        "open_data_answered_late": {"swj": 1},
    }
    assert made_now["calls"] == {
        "gongan.population": {"query": {"answered": 1, "refused": 0}},
        "scjg.legal_entity": {"verification": {"answered": 0, "refused": 1}},
    }
    gongan = next(a for a in made_now["availability"] if a["resource_id"] == "gongan.population")
    assert (gongan["runs_succeeded"], gongan["rows_landed"], gongan["rows_passed"], gongan["calls_answered"]) == (
        1,
        40,
        36,
        1,
    )
    assert {s["department"] for s in made_now["scores"]} == {r.provider for r in hub.catalogue.resources.values()}

    # Not before the month is over: a published bulletin does not change.
    with pytest.raises(ValueError, match="is not over yet"):
        bulletin.publish(hub, month)
    path, frozen = bulletin.publish(hub, month, now=month_after)
    assert path == f"bulletins/{month:%Y-%m}.json" and bulletin.published(hub) == [f"{month:%Y-%m}"]
    # Each scored department is told its score, once.
    from sharehub.notices import list_notices

    told = {n.department: n for n in list_notices(hub, kind="bulletin")}
    assert set(told) == {row["department"] for row in frozen["scores"]}
    gongan_row = next(row for row in frozen["scores"] if row["department"] == "gongan")
    assert f"{gongan_row['score']:.1f} 分，第 {gongan_row['rank']}/" in told["gongan"].subject
    assert all(n.status == "resolved" and n.resource_id == f"bulletins/{month:%Y-%m}" for n in told.values())
    # Published is frozen: publishing again, later, with more calls on record, gives back the same.
    audit.record(hub, "query", consumer, "gongan.population", grant_id=1, result="ok")
    assert bulletin.publish(hub, month, now=month_after + timedelta(days=3)) == (path, frozen)
    assert len(list_notices(hub, kind="bulletin")) == len(told)  # nobody is told twice

    platform = add_consumer(hub, "平台", "platform", "platform")[1]
    provider = add_consumer(hub, "公安局", "gongan", "provider")[1]
    client = TestClient(create_app())
    assert client.get("/bulletins", headers={"Authorization": f"Bearer {provider}"}).json() == [f"{month:%Y-%m}"]
    shown = client.get(f"/bulletins/{month:%Y-%m}", headers={"Authorization": f"Bearer {provider}"})
    assert shown.status_code == 200 and shown.json() == bulletin.read(hub, f"{month:%Y-%m}")
    assert shown.json()["calls"] == made_now["calls"]
    from sharehub.seal import verify

    sealed_by = client.get("/seal", headers={"Authorization": f"Bearer {provider}"}).json()["public_key"]
    assert verify(shown.json(), sealed_by) is None  # published under the platform's seal
    assert client.get(f"/bulletins/{month:%Y-%m}", headers={"Authorization": f"Bearer {app_key}"}).status_code == 403
    missing = client.get("/bulletins/1999-01", headers={"Authorization": f"Bearer {platform}"})
    assert missing.status_code == 404 and "no bulletin published for 1999-01" in missing.text
    assert client.get("/bulletins/..%2Fsecrets", headers={"Authorization": f"Bearer {platform}"}).status_code == 404

    shown_cli = CliRunner().invoke(cli, ["bulletin", "--month", f"{month:%Y-%m}"], env={"COLUMNS": "200"})
    assert shown_cli.exit_code == 0 and "month not over yet" in shown_cli.output, shown_cli.output
    assert "gongan.population" in shown_cli.output and "36/40" in shown_cli.output
    bad = CliRunner().invoke(cli, ["bulletin", "--month", "2026-13"])
    assert bad.exit_code == 1 and "a month is written YYYY-MM" in bad.output


def test_freshness_follows_the_update_periods_and_their_deadlines(make_hub, use_env) -> None:
    """Each resource is current, due, late or never delivered, by the delivery check's own rule; the command
    exits 1 while any is late, and every caller can read the states through the API."""
    from sharehub.reporting.freshness import freshness

    hub = make_hub()
    # gongan (daily, 2 working days): Tuesday 3rd delivers Monday's data; Tuesday's (due Fri 6th 24:00) never
    # comes, and its latest run failed. scjg only ever failed. rsj delivered this morning. swj (weekly)
    # delivered last week's data on Friday; this week's data is not due yet.
    _run(hub, "gongan.population", _at(3, 9), "succeeded")
    _run(hub, "gongan.population", _at(9, 8), "failed")
    _run(hub, "scjg.legal_entity", _at(2, 11), "failed")
    _run(hub, "rsj.insurance_enrolment", _at(9, 10), "succeeded")
    _run(hub, "swj.tax_registration", _at(6, 10), "succeeded")
    now = _at(9, 12)  # Monday 9 November, noon
    states = {f.resource_id: f for f in freshness(hub, now)}

    gongan = states["gongan.population"]
    assert (gongan.state, gongan.period_end, gongan.due) == ("late", _at(4, 0), _at(7, 0))
    assert gongan.delivered_at == _at(3, 9, 5) and (gongan.latest_status, gongan.latest_step) == ("failed", "promote")
    assert states["scjg.legal_entity"].state == "never" and states["scjg.legal_entity"].delivered_at is None
    assert (states["rsj.insurance_enrolment"].state, states["rsj.insurance_enrolment"].period_end) == (
        "current",
        _at(9, 0),
    )
    swj = states["swj.tax_registration"]
    assert (swj.state, swj.period_end) == ("due", _at(9, 0)) and swj.due == hub.calendar.deadline(_at(9, 0), 2)
    assert swj.due > now
    assert [f.resource_id for f in freshness(hub, now, provider="swj")] == ["swj.tax_registration"]

    use_env(hub)
    shown = CliRunner().invoke(cli, ["freshness"])
    assert shown.exit_code == 1 and "late or never delivered" in shown.output and "gongan.population" in shown.output
    _, key = add_consumer(hub, "民政 低保核对", "mzj", "consumer")
    answer = TestClient(create_app()).get("/freshness?provider=gongan", headers={"Authorization": f"Bearer {key}"})
    assert answer.status_code == 200 and [(f["resource_id"], f["state"]) for f in answer.json()] == [
        ("gongan.population", "late")
    ]
