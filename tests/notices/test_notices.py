"""A whole rectification cycle on PostgreSQL with a real SMTP server: quarantine, e-mail, fix, auto-resolve."""

from __future__ import annotations

from datetime import UTC
from email.message import Message

import pytest
import sqlalchemy as sa
from aiosmtpd.controller import Controller
from deltalake import DeltaTable
from sqlalchemy import select
from typer.testing import CliRunner

from expectations.identifiers import resident_id_problem
from sharehub import notices
from sharehub.cli import app as cli
from sharehub.demo.build import build_sources
from sharehub.metadata.models import Notice, OutboxMessage, QuarantinedRow
from sharehub.notices import decide_dispute, deliver, dispute, list_disputes, list_notices, mark_overdue
from sharehub.pipeline.run import run_resource
from sharehub.workdays import CHINA
from tests.support.audit import audit_rows
from tests.support.mail import Inbox
from tests.support.seaweed import free_port


def _body(msg: Message) -> str:
    part = msg.get_payload(decode=True)
    assert isinstance(part, bytes)
    return part.decode(msg.get_content_charset() or "utf-8")


def _sql(url: str, *statements: str) -> None:
    engine = sa.create_engine(url)
    with engine.begin() as c:
        for st in statements:
            c.exec_driver_sql(st)
    engine.dispose()


def test_quality_cycle_on_postgresql(make_hub, pg_url: str, smtp, monkeypatch) -> None:
    inbox, port = smtp
    monkeypatch.setattr(notices.quality, "SAMPLE_ROWS", 3)  # fewer rows than fail: the e-mail says where the rest are
    hub = make_hub(connections={"gongan_front": pg_url}, smtp_host="127.0.0.1", smtp_port=port, profile="zhejiang")
    world = build_sources(hub.settings, hub.catalogue, 1_000, 200).world
    # Rows whose key itself is wrong get a new key when corrected; keep the cycle to rows fixable in place.
    wrong_keys = [
        r["id_number"]
        for r in world.tables["gongan.population"]
        if r["id_number"] and resident_id_problem(r["id_number"])
    ]
    _sql(
        pg_url,
        "DELETE FROM population_register WHERE id_number IN ({})".format(", ".join(f"'{k}'" for k in wrong_keys)),
    )

    first = run_resource(hub, "gongan.population")
    assert first.quarantined > 0
    assert len(inbox.messages) == 1
    msg = inbox.messages[0]
    assert msg["To"] == "data@gongan.example.gov.cn"
    body = _body(msg)
    assert "gongan.population" in body and "第二十八条" in body and "5 个工作日" in body
    # A sentence a clerk understands, with the field's title, and the rule's name beside it.
    assert "「姓名」（name）为空：此项必填。〔规则 expect_column_values_to_not_be_null(name)〕" in body
    (notice,) = list_notices(hub, department="gongan")
    assert notice.status == "open" and notice.deadline > notice.created_at
    # It names itself where it says how to see every key and how to dispute a row.
    assert len(notice.row_keys) > 3 and f"more: GET /notices/{notice.id} lists every key" in body
    assert f"POST /notices/{notice.id}/disputes" in body and "<id>" not in body
    # The e-mail names 24:00 of the 5th working day after today (China time), not the day after it.
    created = notice.created_at.replace(tzinfo=UTC).astimezone(CHINA).date()
    assert f"请在 {hub.calendar.add_working_days(created, 5):%Y-%m-%d} 24:00（北京时间）前更正" in body
    # No full ID number of a quarantined row appears in the e-mail: keys are masked (L3).
    assert not any(k in body for k in notice.row_keys if k)

    # Retrying delivery sends nothing twice.
    assert deliver(hub) == (0, 0)
    assert len(inbox.messages) == 1

    # The department fills in the missing names: those rows pass, the notice stays open for the rest.
    _sql(pg_url, "UPDATE population_register SET name = '补录', updated_at = now() WHERE name IS NULL")
    run_resource(hub, "gongan.population")
    with hub.db() as s:
        after_names = s.get(Notice, notice.id)
        assert after_names is not None and after_names.status == "open"
        assert 0 < len(after_names.pending_keys) < len(notice.row_keys)

    # Then it corrects the impossible dates and removes the duplicate rows: the notice resolves itself.
    _sql(
        pg_url,
        "UPDATE population_register SET birth_date = to_date(substring(id_number from 7 for 8), 'YYYYMMDD'), "
        "updated_at = now() "
        "WHERE birth_date > CURRENT_DATE",
        "DELETE FROM population_register a USING population_register b "
        "WHERE a.id_number = b.id_number AND a.ctid > b.ctid",
        "UPDATE population_register SET updated_at = now() WHERE id_number IN ({})".format(
            ", ".join(f"'{k}'" for k in after_names.pending_keys if k)
        ),
    )
    third = run_resource(hub, "gongan.population")
    assert third.quarantined == 0
    with hub.db() as s:
        done = s.get(Notice, notice.id)
        assert done is not None and done.status == "resolved" and done.resolved_by_run == third.run_id
    assert all(n.status == "resolved" for n in list_notices(hub))


def test_a_department_can_dispute_a_row_with_a_reason(make_hub) -> None:
    hub = make_hub()
    build_sources(hub.settings, hub.catalogue, 600, 120)
    run_resource(hub, "scjg.legal_entity")
    (notice,) = list_notices(hub, department="scjg")
    key = notice.pending_keys[0]
    with pytest.raises(ValueError, match="needs a reason"):
        dispute(hub, notice.id, key, " ")
    with pytest.raises(LookupError):
        dispute(hub, notice.id, "not-a-key", "注册资本按实缴登记，规则有误")
    after = dispute(hub, notice.id, key, "该企业成立日期以营业执照为准，规则有误")
    assert key not in after.pending_keys and len(after.pending_keys) == len(notice.pending_keys) - 1
    (d,) = list_disputes(hub)
    assert d.row_key == key and d.department == "scjg" and d.review == "pending"
    for k in after.pending_keys:
        after = dispute(hub, notice.id, k, "经核实数据无误")
    assert after.status == "resolved"


def test_the_platform_decides_disputes_accepted_rows_pass_rejected_rows_return(make_hub) -> None:
    hub = make_hub()
    build_sources(hub.settings, hub.catalogue, 600, 1000)
    run_resource(hub, "scjg.legal_entity")
    (notice,) = list_notices(hub, department="scjg")
    with hub.db() as db:
        rows = db.scalars(select(QuarantinedRow).where(QuarantinedRow.run_id == notice.run_id))
        bad_codes = sorted(q.row_key for q in rows if q.reasons == ["expect_column_values_to_be_valid_uscc(uscc)"])
    accepted_key, rejected_key = bad_codes[:2]  # each quarantined for its check digit only
    dispute(hub, notice.id, accepted_key, "经核实数据无误，规则有误")
    dispute(hub, notice.id, rejected_key, "经核实数据无误，规则有误")
    second, first = list_disputes(hub)  # newest first
    assert first.rules == ["expect_column_values_to_be_valid_uscc(uscc)"] and first.resource_id == "scjg.legal_entity"
    with pytest.raises(ValueError, match="who decided"):
        decide_dispute(hub, first.id, accept=True, by="", reason="核实无误")
    decided = decide_dispute(hub, first.id, accept=True, by="平台办 王五", reason="经与市场监管局核实，该码为历史赋码")
    assert decided.review == "accepted" and decided.decided_by == "平台办 王五" and decided.decided_at
    with pytest.raises(ValueError, match="already accepted"):
        decide_dispute(hub, first.id, accept=False, by="平台办", reason="重复处理")
    decide_dispute(hub, second.id, accept=False, by="平台办 王五", reason="校验位确实错误，请更正")
    reopened = next(n for n in list_notices(hub, department="scjg") if n.id == notice.id)
    assert rejected_key in reopened.pending_keys and accepted_key not in reopened.pending_keys
    assert list_disputes(hub) == [] and len(list_disputes(hub, None)) == 2

    # The department re-delivers both rows unchanged: the accepted one now passes, the rejected one does not.
    resource = hub.catalogue.resource("scjg.legal_entity")
    engine = sa.create_engine(hub.settings.connection_url(resource.source.connection))
    with engine.begin() as c:
        c.exec_driver_sql(
            "UPDATE legal_entity_register SET updated_at = '2026-11-21 09:00:00' WHERE uscc IN (?, ?)",
            (accepted_key, rejected_key),
        )
    engine.dispose()
    again = run_resource(hub, "scjg.legal_entity")
    # (the lag window may re-read an unchanged row too; it changes nothing)
    assert again.status == "succeeded" and again.quarantined == 1 and again.inserted == 1
    stored = DeltaTable(hub.store.uri(resource.store_path), storage_options=hub.store.delta_options())
    keys = set(stored.to_pyarrow_table(columns=["uscc"]).column("uscc").to_pylist())
    assert accepted_key in keys and rejected_key not in keys


def test_overdue_notices_are_marked(make_hub, pg_url: str) -> None:
    from datetime import timedelta

    hub = make_hub(connections={"gongan_front": pg_url})
    build_sources(hub.settings, hub.catalogue, 600, 120)
    run_resource(hub, "gongan.population")
    (notice,) = list_notices(hub)
    assert mark_overdue(hub, notice.deadline - timedelta(seconds=1)) == []
    assert mark_overdue(hub, notice.deadline + timedelta(seconds=1)) == [notice.id]
    assert mark_overdue(hub, notice.deadline + timedelta(days=3)) == []  # already overdue: escalated once
    (escalation,) = list_notices(hub, department="platform")
    assert escalation.kind == "escalation" and f"通知 #{notice.id}" in escalation.body
    with hub.db() as s:
        outbox = {m.recipient: m for m in s.scalars(select(OutboxMessage))}
    assert set(outbox) == {"data@gongan.example.gov.cn", "platform@localhost"}
    assert all(m.sent_at is None for m in outbox.values())  # no SMTP host: kept in the outbox


def test_a_missed_delivery_raises_one_notice_that_the_next_good_run_resolves(make_hub) -> None:
    from datetime import timedelta

    from sharehub.metadata.models import utcnow
    from sharehub.notices import check_deliveries

    hub = make_hub()
    build_sources(hub.settings, hub.catalogue, 300, 60)
    run_resource(hub, "gongan.population")
    now = utcnow()
    early = check_deliveries(hub, now)  # weekly resources that never ran may already be late this week
    assert "gongan.population" not in {n.resource_id for n in list_notices(hub) if n.id in early}
    later = now + timedelta(days=10)  # past the 2-working-day delivery deadline of a daily resource
    raised = check_deliveries(hub, later)
    delivery = {n.resource_id: n for n in list_notices(hub) if n.kind == "delivery"}
    assert len(early) + len(raised) == len(delivery) and {"gongan.population", "scjg.legal_entity"} <= set(delivery)
    late = delivery["gongan.population"]
    assert late.department == "gongan" and late.run_id is None
    assert late.deadline.replace(tzinfo=later.tzinfo) > later  # SQLite hands back naive UTC
    assert "应每日更新" in late.body and "最近一次成功报送" in late.body
    assert check_deliveries(hub, later + timedelta(hours=1)) == []  # one open notice per resource
    with hub.db() as s:
        assert (
            s.scalar(select(sa.func.count()).select_from(OutboxMessage).where(OutboxMessage.notice_id == late.id)) == 1
        )

    # Left alone, it becomes overdue and is escalated once, pointing at the notice it escalates.
    assert late.id in mark_overdue(hub, late.deadline + timedelta(seconds=1))
    escalation = next(n for n in list_notices(hub, department="platform") if n.parent_id == late.id)
    assert "报送资源 gongan.population" in escalation.body

    run_resource(hub, "gongan.population")
    closed = next(n for n in list_notices(hub) if n.id == late.id)
    assert closed.status == "resolved" and closed.resolved_by_run


def test_a_row_that_fails_again_stays_on_its_notice_and_only_new_rows_get_a_new_one(make_hub, use_env) -> None:
    hub = make_hub()
    use_env(hub)
    build_sources(hub.settings, hub.catalogue, 600, 400)
    first = run_resource(hub, "swj.tax_registration")  # a snapshot: every run reads every row again
    (notice,) = list_notices(hub, department="swj")
    assert first.quarantined >= len(notice.pending_keys) > 1  # (a duplicated key is one key, two rows)

    # Nothing corrected: the same rows fail again, and no second notice resets their deadline.
    again = run_resource(hub, "swj.tax_registration")
    assert again.quarantined == first.quarantined
    assert [n.id for n in list_notices(hub, department="swj")] == [notice.id]

    # A row "corrected" into another fault stays on its notice, which now shows the new fault.
    resource = hub.catalogue.resource("swj.tax_registration")
    engine = sa.create_engine(hub.settings.connection_url(resource.source.connection))
    not_null, in_set = "expect_column_values_to_not_be_null(name)", "expect_column_values_to_be_in_set(tax_grade)"
    first_reasons = notices.pending_reasons(hub, notice)
    miscorrected = next(k for k, reasons in first_reasons.items() if reasons == [not_null])
    with engine.begin() as c:
        c.exec_driver_sql(
            "UPDATE tax_registration SET name = '利川某某有限公司', tax_grade = 'Z' WHERE uscc = ?", (miscorrected,)
        )
    run_resource(hub, "swj.tax_registration")
    assert [n.id for n in list_notices(hub, department="swj")] == [notice.id]
    assert notices.pending_reasons(hub, notice) == first_reasons | {miscorrected: [in_set]}
    assert notices.expected(hub, resource.id, [in_set])[in_set].endswith("A / B / M / C / D")

    # A disputed row that fails again is not notified either, while the platform office decides.
    disputed = notice.pending_keys[0]
    dispute(hub, notice.id, disputed, "经核实数据无误，规则有误")
    run_resource(hub, "swj.tax_registration")
    assert [n.id for n in list_notices(hub, department="swj")] == [notice.id]

    # A row that breaks now gets a notice of its own that names only it, and points at the earlier one.
    with engine.begin() as c:
        fresh = c.exec_driver_sql(
            "SELECT uscc FROM tax_registration WHERE uscc NOT IN ({}) AND name IS NOT NULL LIMIT 1".format(
                ", ".join(f"'{k}'" for k in notice.row_keys)
            )
        ).scalar_one()
        c.exec_driver_sql("UPDATE tax_registration SET name = NULL WHERE uscc = ?", (fresh,))
    engine.dispose()
    third = run_resource(hub, "swj.tax_registration")
    assert third.quarantined == first.quarantined + 1
    newer, older = list_notices(hub, department="swj")
    assert older.id == notice.id and older.deadline == notice.deadline
    assert newer.row_keys == newer.pending_keys == [fresh]
    assert f"另有 {first.quarantined:,} 行仍未通过，已在通知 #{notice.id} 中告知" in newer.body
    assert "〔规则 expect_column_values_to_not_be_null(name)〕：1 行" in newer.body
    # The run says which notices hold its rows: its own for the new one, the first for the others.
    shown = CliRunner().invoke(cli, ["runs", "show", third.run_id], env={"COLUMNS": "250"})
    assert f"notice #{newer.id} (this run's, open" in shown.output and "names 1 of these row keys" in shown.output
    assert f"notice #{older.id} (from run {notice.run_id}" in shown.output, shown.output


def test_answers_given_at_the_command_line_are_audited(make_hub, use_env) -> None:
    hub = make_hub()
    use_env(hub)
    build_sources(hub.settings, hub.catalogue, 300, 200)
    run_resource(hub, "scjg.legal_entity")
    (notice,) = list_notices(hub, department="scjg")
    key = notice.pending_keys[0]
    runner = CliRunner()
    assert runner.invoke(cli, ["notices", "ack", str(notice.id)]).exit_code == 0
    disputed = runner.invoke(cli, ["notices", "dispute", str(notice.id), "--key", key, "--reason", "经核实数据无误"])
    assert disputed.exit_code == 0, disputed.output
    (made,) = list_disputes(hub)
    args = ["notices", "decide", str(made.id), "--reject", "--by", "平台办 王五", "--reason", "校验位确实错误"]
    assert runner.invoke(cli, args).exit_code == 0
    steps = audit_rows(
        hub, "action, department, consumer_id, result, record_key", "notice_ack", "notice_dispute", "dispute_decision"
    )
    # The command line is the hub's operator acting for the platform office: no key, so no caller id.
    assert [tuple(r) for r in steps] == [
        ("notice_ack", "platform", 0, "acknowledged", None),
        ("notice_dispute", "platform", 0, "disputed", key),
        ("dispute_decision", "platform", 0, "rejected", key),
    ]


class Picky(Inbox):
    """An inbox that refuses one recipient, and counts the connections it was sent over."""

    def __init__(self, refused: str) -> None:
        super().__init__()
        self.refused = refused
        self.sessions: set[int] = set()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options) -> str:
        if address == self.refused:
            return "550 no such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope) -> str:
        self.sessions.add(id(session))
        return await super().handle_DATA(server, session, envelope)


def test_an_unreachable_mail_server_costs_one_attempt_and_a_refused_address_holds_back_only_its_mail(
    make_hub, caplog: pytest.LogCaptureFixture
) -> None:
    """With the SMTP server down, a round gives up once, with one warning, and keeps every e-mail queued
    with the reason. Up again, one connection carries the queue; the one address it refuses keeps only its
    own e-mail queued, the others go."""
    down = free_port()  # nothing listens here
    hub = make_hub(smtp_host="127.0.0.1", smtp_port=down)
    build_sources(hub.settings, hub.catalogue, 300, 60)
    for rid in ("gongan.population", "scjg.legal_entity", "swj.tax_registration"):
        run_resource(hub, rid)  # each run's notice goes to the outbox, and its delivery fails
    caplog.clear()
    with caplog.at_level("WARNING", logger="sharehub.notices"):
        assert deliver(hub) == (0, 3)
    (warned,) = [r.getMessage() for r in caplog.records]
    assert f"SMTP server 127.0.0.1:{down}: ConnectionRefusedError; 3 e-mail(s) stay queued" == warned
    with hub.db() as s:
        queued = list(s.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))
    assert [m.attempts for m in queued] == [4, 3, 2]  # a round after each later run, and this one
    assert all(m.sent_at is None for m in queued)
    assert all(str(m.last_error).startswith("ConnectionRefusedError") for m in queued)

    inbox = Picky(refused="data@scjg.example.gov.cn")
    up = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=up)
    controller.start()
    try:
        hub.settings.smtp_port = up
        assert deliver(hub) == (2, 1)
        assert deliver(hub) == (0, 1)  # the refused one is tried again, and nothing is sent twice
    finally:
        controller.stop()
    assert sorted(m["To"] for m in inbox.messages) == ["data@gongan.example.gov.cn", "data@swj.example.gov.cn"]
    assert len(inbox.sessions) == 1  # both went over one connection, not one each
    with hub.db() as s:
        (held,) = s.scalars(select(OutboxMessage).where(OutboxMessage.sent_at.is_(None)))
    assert held.recipient == "data@scjg.example.gov.cn" and held.attempts == 3 + 2
    assert str(held.last_error).startswith("SMTPRecipientsRefused")
