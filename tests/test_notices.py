"""A whole rectification cycle on PostgreSQL with a real SMTP server: quarantine, e-mail, fix, auto-resolve."""

from __future__ import annotations

import email
from collections.abc import Iterator
from email.message import Message

import pytest
import sqlalchemy as sa
from aiosmtpd.controller import Controller
from sqlalchemy import select

from expectations.identifiers import resident_id_problem
from sharehub.demo.build import build_sources
from sharehub.metadata.models import Notice, OutboxMessage
from sharehub.notices import deliver, dispute, list_disputes, list_notices, mark_overdue
from sharehub.pipeline.run import run_resource
from tests.support.seaweed import free_port


class Inbox:
    """An aiosmtpd handler that keeps every message it receives."""

    def __init__(self) -> None:
        self.messages: list[Message] = []

    async def handle_DATA(self, server, session, envelope) -> str:
        self.messages.append(email.message_from_bytes(envelope.content))
        return "250 OK"


@pytest.fixture
def smtp() -> Iterator[tuple[Inbox, int]]:
    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield inbox, port
    finally:
        controller.stop()


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


def test_quality_cycle_on_postgresql(make_hub, pg_url: str, smtp) -> None:
    inbox, port = smtp
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
    assert "expect_column_values_to_not_be_null(name)" in body and "a value is required" in body
    (notice,) = list_notices(hub, department="gongan")
    assert notice.status == "open" and notice.deadline > notice.created_at
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
