"""One datum, one source: a disagreement between departments is raised, notified, and closes when fixed."""

from __future__ import annotations

import sqlite3
from datetime import date

import duckdb
import pytest
import sqlalchemy as sa
from sqlalchemy import select

from sharehub.catalogue.loader import load_catalogue
from sharehub.consistency.cache import StoreCache
from sharehub.consistency.check import Pairing, check, decide, list_conflicts, normalize_value, verify
from sharehub.consistency.compare import _compare
from sharehub.consistency.normalize import _register_normalizers
from sharehub.demo.build import build_sources
from sharehub.metadata.models import OutboxMessage
from sharehub.notices import list_notices
from sharehub.pipeline.run import run_resource
from sharehub.settings import REPO_ROOT
from tests.support.databases import fresh_database


def _sql(url: str, statement: str, **params: object) -> None:
    engine = sa.create_engine(url)
    with engine.begin() as c:
        c.execute(sa.text(statement), params)
    engine.dispose()


def _scalar(url: str, statement: str) -> object:
    engine = sa.create_engine(url)
    with engine.connect() as c:
        value = c.execute(sa.text(statement)).scalar_one()
    engine.dispose()
    return value


def test_normalization_ignores_width_spaces_case_and_traditional_forms() -> None:
    assert normalize_value("张　靜 ", traditional=True) == normalize_value("张静", traditional=True)
    assert normalize_value("ＡＢＣ有限公司", traditional=False) == normalize_value("abc有限公司", traditional=False)
    assert normalize_value("张靜", traditional=False) != normalize_value("张静", traditional=False)
    assert normalize_value("张玮", traditional=True) != normalize_value("张伟", traditional=True)


def test_a_text_copy_of_a_date_is_compared_as_the_date_it_writes() -> None:
    """A department that keeps a birth date as text (1990/1/2, 1990年1月2日, 19900102) agrees with the
    authority's DATE 1990-01-02; a different day is a conflict, and so is text that is no date at all."""
    catalogue = load_catalogue(REPO_ROOT / "catalogue")
    population, health = catalogue.resource("gongan.population"), catalogue.resource("wjw.health_record")
    as_text = health.field("birth_date").model_copy(update={"type": "string"})
    pair = Pairing("birth_date", population, population.field("birth_date"), "id_number", health, as_text, "id_number")
    con = duckdb.connect()
    _register_normalizers(con)
    keys = [f"42280119900102{n:04d}" for n in range(6)]
    written = ["1990-01-02", "1990/1/2", "1990年1月2日", "１９９０．０１．０２", "1990-01-03", "unknown"]
    authority, other = StoreCache.table(population.id), StoreCache.table(health.id)
    con.execute(
        f"CREATE TABLE {authority} AS SELECT unnest($1::VARCHAR[]) AS id_number, DATE '1990-01-02' AS birth_date",
        [keys],
    )
    con.execute(
        f"CREATE TABLE {other} AS SELECT unnest($1::VARCHAR[]) AS id_number, unnest($2::VARCHAR[]) AS birth_date",
        [keys, written],
    )
    found = {key: fields for key, _, fields in _compare(con, [pair], None)}
    assert sorted(found) == [keys[4], keys[5]]
    assert found[keys[4]] == [(0, date(1990, 1, 2), "1990-01-03")]


@pytest.mark.parametrize("metadata", ["sqlite", pytest.param("postgresql", marks=pytest.mark.slow)])
def test_a_name_disagreement_is_raised_notified_and_closes_when_fixed(
    make_hub, pg_url: str, mariadb_url: str, metadata: str
) -> None:
    """On either metadata database (the check passes its key lists to each in its own way)."""
    meta = {} if metadata == "sqlite" else {"metadata_url": fresh_database(pg_url, "sharehub_meta_consistency")}
    hub = make_hub(connections={"gongan_front": pg_url, "rsj_front": mariadb_url}, **meta)
    build_sources(hub.settings, hub.catalogue, 400, 80)
    run_resource(hub, "gongan.population")
    run_resource(hub, "rsj.insurance_enrolment")
    assert check(hub, full=True).entities is None  # every entity compared
    assert check(hub).entities == 0  # nothing changed since
    before = {c.id for c in list_conflicts(hub)}

    # A person both hold under the same name: PostgreSQL (公安, authoritative) and MariaDB (人社).
    person = str(
        _scalar(
            mariadb_url,
            "SELECT MIN(id_number) FROM insurance_enrolment WHERE id_number IN "
            "(SELECT id_number FROM insurance_enrolment GROUP BY id_number HAVING COUNT(DISTINCT name) = 1)",
        )
    )
    true_name = str(_scalar(pg_url, f"SELECT name FROM population_register WHERE id_number = '{person}'"))
    rsj_name = str(_scalar(mariadb_url, f"SELECT MIN(name) FROM insurance_enrolment WHERE id_number = '{person}'"))
    assert rsj_name == true_name
    bump = "UPDATE insurance_enrolment SET name = :n, updated_at = '2026-11-21 10:00:00' WHERE id_number = :k"

    # Written in traditional characters with a full-width space, it is the same name: no conflict.
    _sql(mariadb_url, bump, n=true_name[0] + "\u3000" + true_name[1:].replace("静", "靜"), k=person)
    run_resource(hub, "rsj.insurance_enrolment")
    check(hub)
    assert {c.id for c in list_conflicts(hub)} == before

    _sql(mariadb_url, bump, n=true_name + "某", k=person)
    run_resource(hub, "rsj.insurance_enrolment")
    result = check(hub)
    assert result.entities == 1  # only the person whose row changed
    (conflict,) = [c for c in list_conflicts(hub) if c.id not in before]
    assert (conflict.item, conflict.entity_key, conflict.kind) == ("population.name", person, "value")
    assert conflict.department == "rsj" and conflict.authority_resource == "gongan.population"
    assert conflict.status == "open" and conflict.authority_value and conflict.other_value
    assert true_name not in (conflict.authority_value or "") + (conflict.other_value or "")  # masked (L3)
    assert conflict.authority_value[0] == true_name[0] and conflict.other_value[-1] == "某"
    notice = next(n for n in list_notices(hub, department="rsj") if n.id == conflict.notice_id)
    assert notice.kind == "conflict" and person in notice.pending_keys and notice.id in result.notices
    assert "gongan.population" in notice.body and person not in notice.body  # the key is masked in the text
    # It asks for verification and an answer (核查、反馈): the profile's feedback deadline, not rectification's.
    assert f"依据：{hub.profile.deadlines['feedback'].basis}" in notice.body
    with hub.db() as s:
        assert s.scalar(select(OutboxMessage.recipient).where(OutboxMessage.notice_id == notice.id))

    _sql(mariadb_url, bump, n=true_name, k=person)
    run_resource(hub, "rsj.insurance_enrolment")
    closed = check(hub)
    assert closed.closed >= 1
    again = next(c for c in list_conflicts(hub) if c.id == conflict.id)
    assert again.status == "closed" and again.closed_at is not None
    assert person not in next(n for n in list_notices(hub, department="rsj") if n.id == notice.id).pending_keys

    # The compared columns are a cache of the stores: without it the next check reloads and finds the same.
    still_open = {c.id for c in list_conflicts(hub, status="open")}
    (hub.settings.home / "consistency.duckdb").unlink()
    reloaded = check(hub)
    assert (
        reloaded.opened == 0
        and reloaded.closed == 0
        and {c.id for c in list_conflicts(hub, status="open")} == still_open
    )


def test_a_status_conflict_across_vocabularies_is_verified_with_the_authority_and_decided(
    make_hub, pg_url: str, mariadb_url: str
) -> None:
    from datetime import timedelta

    from sharehub.notices import mark_overdue
    from sharehub.serving.masking import mask_field

    hub = make_hub(connections={"scjg_front": pg_url, "swj_front": mariadb_url})
    build_sources(hub.settings, hub.catalogue, 200, 300)
    run_resource(hub, "scjg.legal_entity")
    run_resource(hub, "swj.tax_registration")
    check(hub, full=True)
    meaning = {
        "scjg": hub.catalogue.resource("scjg.legal_entity").field("status").vocabulary or {},
        "swj": hub.catalogue.resource("swj.tax_registration").field("taxpayer_status").vocabulary or {},
    }
    planted = [c for c in list_conflicts(hub) if c.kind == "status"]
    # 吊销 against 非正常, or 存续 against 正常, say the same thing; only registered against deregistered differs.
    for c in planted:
        assert meaning["scjg"][c.authority_value or ""] != meaning["swj"][c.other_value or ""]
    before = {c.id for c in planted}

    # The market regulator deregisters a company the tax bureau still has as a normal taxpayer.
    company = str(
        _scalar(
            mariadb_url,
            "SELECT MIN(uscc) FROM tax_registration WHERE taxpayer_status = '正常'",
        )
    )
    _sql(
        pg_url,
        "UPDATE legal_entity_register SET status = '注销', updated_at = '2026-11-21 10:00:00' WHERE uscc = :k",
        k=company,
    )
    run_resource(hub, "scjg.legal_entity")
    check(hub)
    (conflict,) = [c for c in list_conflicts(hub) if c.kind == "status" and c.id not in before]
    assert (conflict.item, conflict.entity_key, conflict.department) == ("legal_entity.status", company, "swj")
    assert (conflict.authority_value, conflict.other_value) == ("注销", "正常")

    (taken,) = verify(hub, [conflict.id], by="平台 王工", notify_authority=True)
    assert taken.status == "verifying" and taken.verifying_by == "平台 王工" and taken.authority_notice_id
    asked = next(n for n in list_notices(hub, department="scjg") if n.id == taken.authority_notice_id)
    assert asked.kind == "conflict" and asked.pending_keys == [company] and asked.status == "open"
    with hub.db() as s:
        assert s.scalar(select(OutboxMessage.recipient).where(OutboxMessage.notice_id == asked.id))
    check(hub)  # a check while verifying keeps the conflict where it is
    assert next(c for c in list_conflicts(hub) if c.id == conflict.id).status == "verifying"

    decided = decide(hub, conflict.id, right="authority", by="平台 王工", reason="市场监管局已核准注销登记")
    assert decided.status == "decided" and decided.decision == "authority" and decided.decided_at
    assert next(n for n in list_notices(hub, department="scjg") if n.id == asked.id).status == "resolved"
    # Both departments hear the decision: the tax bureau, whose value was wrong, is asked to correct it by
    # the rectification deadline; the market regulator is told.
    told = {n.department: n for n in list_notices(hub, kind="conflict_decision")}
    correct, informed = told["swj"], told["scjg"]
    assert decided.correction_notice_id == correct.id and correct.resource_id == "swj.tax_registration"
    assert correct.status == "open" and correct.pending_keys == [company] and "市场监管局已核准注销登记" in correct.body
    uscc = hub.catalogue.resource("swj.tax_registration").field("uscc")  # L1: a company's code is public
    assert mask_field(company, uscc) in correct.body and informed.status == "resolved"
    assert [c.id for c in list_conflicts(hub, notice_id=correct.id)] == [conflict.id]  # GET /conflicts?notice=
    check(hub)  # still disagreeing: the correction is still owed
    assert next(n for n in list_notices(hub, department="swj") if n.id == correct.id).status == "open"
    assert correct.id in mark_overdue(hub, now=correct.deadline + timedelta(seconds=1))

    # The tax bureau follows: the copies converge, the decided conflict closes and its correction is done.
    _sql(mariadb_url, "UPDATE tax_registration SET taxpayer_status = '注销' WHERE uscc = :k", k=company)
    run_resource(hub, "swj.tax_registration")
    check(hub)
    assert next(c for c in list_conflicts(hub) if c.id == conflict.id).status == "closed"
    done = next(n for n in list_notices(hub, department="swj") if n.id == correct.id)
    assert done.status == "resolved" and done.pending_keys == []


def test_the_command_says_what_it_compared_and_what_waits_for_a_store(make_hub, use_env) -> None:
    from typer.testing import CliRunner

    from sharehub.cli import app as cli

    hub = make_hub()
    use_env(hub)
    build_sources(hub.settings, hub.catalogue, 200, 40)
    run_resource(hub, "scjg.legal_entity")
    first = CliRunner().invoke(cli, ["consistency"], env={"COLUMNS": "250"})
    assert first.exit_code == 0, first.output
    assert "not compared until they have a store:" in first.output and "swj.tax_registration" in first.output
    assert "no entity changed" not in first.output  # nothing could be compared: that is not "unchanged"
    run_resource(hub, "swj.tax_registration")
    second = CliRunner().invoke(cli, ["consistency"], env={"COLUMNS": "250"})
    assert "over every entity (a new store" in second.output and "incremental" not in second.output, second.output
    third = CliRunner().invoke(cli, ["consistency"], env={"COLUMNS": "250"})
    assert "incremental check: no entity changed since the last check" in third.output, third.output
    steps: list[str] = []
    check(hub, full=True, say=steps.append)  # what a progress line shows: ids and counts, no values
    assert steps[0] == "bringing the cached columns of scjg.legal_entity to store v0", steps
    assert "comparing swj.tax_registration with scjg.legal_entity (" in steps[2] and "every entity" in steps[2]
    assert steps[-2].startswith("recording ") and steps[-1] == "notifying the departments"


def test_a_notice_keeps_a_key_until_every_conflict_of_it_has_closed(make_hub) -> None:
    hub = make_hub()
    build_sources(hub.settings, hub.catalogue, 300, 60)
    run_resource(hub, "scjg.legal_entity")
    run_resource(hub, "swj.tax_registration")
    check(hub, full=True)
    url = hub.settings.connection_url("swj_front")
    before = {c.id for c in list_conflicts(hub)}
    known = hub.settings.connection_url("scjg_front").removeprefix("sqlite:///")
    with sqlite3.connect(url.removeprefix("sqlite:///")) as con:  # a registered company both hold alike
        con.execute("ATTACH DATABASE ? AS scjg", (known,))
        company, name = con.execute(
            "SELECT t.uscc, t.name FROM tax_registration t JOIN scjg.legal_entity_register e USING (uscc)"
            " WHERE t.name = e.name AND t.taxpayer_status = '正常' AND e.status = '存续' ORDER BY t.uscc LIMIT 1"
        ).fetchone()
    change = "UPDATE tax_registration SET name = :n, taxpayer_status = :s WHERE uscc = :k"

    # The tax bureau gets the name wrong and has the company deregistered: two conflicts, one notice.
    _sql(url, change, n=name + "某", s="注销", k=company)
    run_resource(hub, "swj.tax_registration")
    check(hub)
    mine = [c for c in list_conflicts(hub) if c.id not in before and c.entity_key == company]
    assert sorted((c.item, c.kind) for c in mine) == [("legal_entity.name", "value"), ("legal_entity.status", "status")]
    assert len({c.notice_id for c in mine}) == 1
    notice_id = mine[0].notice_id

    def pending() -> list[str]:
        return next(n for n in list_notices(hub, department="swj") if n.id == notice_id).pending_keys

    assert company in pending()
    # The name is fixed, the status is not: the company is still pending on the notice.
    _sql(url, change, n=name, s="注销", k=company)
    run_resource(hub, "swj.tax_registration")
    assert check(hub).closed == 1 and company in pending()
    # Both fixed: the company leaves the notice.
    _sql(url, change, n=name, s="正常", k=company)
    run_resource(hub, "swj.tax_registration")
    assert check(hub).closed == 1 and company not in pending()


def test_an_entity_the_authority_quarantined_is_not_put_to_the_copy_holder(
    make_hub, pg_url: str, mariadb_url: str
) -> None:
    """公安 delivered a person whose row failed its gate: the base store lacks them until 公安 corrects it.
    The conflict is on record, but 人社 is not asked to verify it; it closes once the row is corrected."""
    hub = make_hub(connections={"gongan_front": pg_url, "rsj_front": mariadb_url})
    build_sources(hub.settings, hub.catalogue, 400, 80)
    person = str(_scalar(mariadb_url, "SELECT MIN(id_number) FROM insurance_enrolment"))
    rsj_name = str(_scalar(mariadb_url, f"SELECT MIN(name) FROM insurance_enrolment WHERE id_number = '{person}'"))
    _sql(pg_url, "UPDATE population_register SET name = NULL WHERE id_number = :k", k=person)
    run_resource(hub, "gongan.population")
    run_resource(hub, "rsj.insurance_enrolment")
    quality = next(n for n in list_notices(hub, department="gongan") if n.kind == "quality")
    assert person in quality.pending_keys
    check(hub, full=True)
    (held,) = [c for c in list_conflicts(hub) if c.entity_key == person]
    assert (held.kind, held.status, held.notice_id) == ("missing_in_base", "open", None)
    notices = [n for n in list_notices(hub, department="rsj") if n.kind == "conflict"]
    assert notices and all(person not in n.pending_keys for n in notices)
    assert any("无需本部门处理" in n.body for n in notices)

    _sql(
        pg_url,
        "UPDATE population_register SET name = :n, updated_at = now() + interval '1 minute' WHERE id_number = :k",
        n=rsj_name,
        k=person,
    )
    run_resource(hub, "gongan.population")
    check(hub)
    (after,) = [c for c in list_conflicts(hub) if c.entity_key == person and c.id == held.id]
    assert after.status == "closed" and after.notice_id is None


def test_a_conflict_notice_runs_overdue_only_while_feedback_is_owed(make_hub) -> None:
    """Zhejiang 28: departments feed back on inconsistencies within the deadline. A department that replies
    to each of its conflicts in time is waiting for the platform's decision, not late; one that says
    nothing runs overdue and is escalated, and the authority asked to check its value owes its reply too."""
    from datetime import timedelta

    from sharehub.consistency.check import reply, verify
    from sharehub.metadata.models import Notice
    from sharehub.notices import mark_overdue

    hub = make_hub()
    build_sources(hub.settings, hub.catalogue, 3000, 60)
    for rid in ("gongan.population", "rsj.insurance_enrolment", "wjw.health_record"):
        run_resource(hub, rid)
    check(hub, full=True)
    notices = {n.department: n for n in list_notices(hub) if n.kind == "conflict"}
    assert {"rsj", "wjw"} <= set(notices)
    # 卫健委 replies to each of its conflicts before the deadline; 人社局 says nothing.
    wjw_conflicts = [c for c in list_conflicts(hub) if c.notice_id == notices["wjw"].id]
    assert wjw_conflicts
    for c in wjw_conflicts:
        reply(hub, c.id, department="wjw", by="病案室", reason="以就诊时出示的身份证为准")
    after = max(n.deadline for n in notices.values()) + timedelta(seconds=1)
    late = mark_overdue(hub, now=after)
    assert notices["rsj"].id in late and notices["wjw"].id not in late
    with hub.db() as s:
        escalated = s.scalars(select(Notice).where(Notice.parent_id == notices["rsj"].id)).one()
        assert escalated.department == "platform" and "核实反馈" in escalated.body
        assert s.get(Notice, notices["wjw"].id).status == "open"  # fed back: waiting for the decision
        assert s.get(Notice, notices["rsj"].id).status == "overdue"  # counted in its stats as overdue

    # The platform asks the authority (公安局) to check its value on two of them: it owes its own replies.
    # It replies on the second, and the holder replies there again: one reply no longer replaces the other.
    assert len(wjw_conflicts) >= 2
    (first,) = verify(hub, [wjw_conflicts[0].id], by="平台办", notify_authority=True)
    (second,) = verify(hub, [wjw_conflicts[1].id], by="平台办", notify_authority=True)
    assert first.authority_notice_id and second.authority_notice_id
    reply(hub, second.id, department="gongan", by="户政科", reason="户籍档案登记无误")
    held = reply(hub, second.id, department="wjw", by="病案室", reason="以就诊时出示的身份证为准")
    assert (held.authority_reply, held.reply) == ("户籍档案登记无误", "以就诊时出示的身份证为准")
    with hub.db() as s:
        deadline = max(s.get(Notice, n).deadline for n in (first.authority_notice_id, second.authority_notice_id))
    late = mark_overdue(hub, now=deadline + timedelta(seconds=1))
    assert first.authority_notice_id in late and second.authority_notice_id not in late


def test_one_decision_on_many_conflicts_is_told_once_per_department(make_hub, use_env) -> None:
    """A platform office deciding a batch of conflicts alike: the department judged wrong gets one notice
    listing every entity, which stays open until each of them is corrected; the other is told once."""
    from typer.testing import CliRunner

    from sharehub.cli import app as cli

    hub = make_hub()
    use_env(hub)
    build_sources(hub.settings, hub.catalogue, 300, 60)
    run_resource(hub, "scjg.legal_entity")
    run_resource(hub, "swj.tax_registration")
    check(hub, full=True)
    known = {c.id for c in list_conflicts(hub)}
    url = hub.settings.connection_url("swj_front").removeprefix("sqlite:///")
    scjg = hub.settings.connection_url("scjg_front").removeprefix("sqlite:///")
    agreed = (
        "SELECT t.uscc, t.name FROM tax_registration t JOIN scjg.legal_entity_register e USING (uscc)"
        " WHERE t.name = e.name AND t.taxpayer_status = '正常' AND e.status = '存续' ORDER BY t.uscc LIMIT 2"
    )
    rename = "UPDATE tax_registration SET name = ? WHERE uscc = ?"
    restatus = "UPDATE tax_registration SET taxpayer_status = ? WHERE uscc = ?"
    with sqlite3.connect(url) as con:  # the tax bureau misspells two companies' names, and deregisters one
        con.execute("ATTACH DATABASE ? AS scjg", (scjg,))
        names = dict(con.execute(agreed).fetchall())
        for uscc, name in names.items():
            con.execute(rename, (name + "某", uscc))
        first, second = sorted(names)
        con.execute(restatus, ("注销", first))
    run_resource(hub, "swj.tax_registration")
    check(hub)
    named = sorted((c for c in list_conflicts(hub) if c.id not in known), key=lambda c: c.id)
    assert sorted((c.entity_key, c.item) for c in named) == [
        (first, "legal_entity.name"),
        (first, "legal_entity.status"),
        (second, "legal_entity.name"),
    ]
    before = {n.id for n in list_notices(hub)}
    ids = [str(c.id) for c in named]
    decide = ["conflicts", "decide", "--right", "authority", "--by", "平台 王工", "--reason", "以登记机关为准"]
    done = CliRunner().invoke(cli, [*decide, *ids])
    assert done.exit_code == 0, done.output
    new = [n for n in list_notices(hub) if n.id not in before]
    assert sorted((n.department, n.kind, n.status) for n in new) == [
        ("scjg", "conflict_decision", "resolved"),
        ("swj", "conflict_decision", "open"),
    ]
    (correct,) = [n for n in new if n.department == "swj"]
    assert sorted(correct.pending_keys) == sorted(names)
    assert "3 项冲突" in correct.subject and all(f"冲突 {c.id} " in correct.body for c in named)
    decided = [c for c in list_conflicts(hub) if c.id in {x.id for x in named}]
    assert {(c.status, c.correction_notice_id) for c in decided} == {("decided", correct.id)}
    # Deciding one of them again is refused: all or none.
    again = CliRunner().invoke(cli, [*decide, ids[0]])
    assert again.exit_code == 1 and "decided" in again.output

    # The tax bureau corrects one thing at a time: a company stays on the notice until all of it is right.
    fixes = [
        (rename, names[first], first, [first, second]),  # its status is still wrong
        (restatus, "正常", first, [second]),
        (rename, names[second], second, []),
    ]
    for change, value, company, left in fixes:
        with sqlite3.connect(url) as con:
            con.execute(change, (value, company))
        run_resource(hub, "swj.tax_registration")
        check(hub)
        notice = next(n for n in list_notices(hub) if n.id == correct.id)
        assert sorted(notice.pending_keys) == left and notice.status == ("open" if left else "resolved")
