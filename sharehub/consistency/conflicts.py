"""Conflicts after the check: one notice per resource to its provider, the list a department sees, a
department's reply that its value is right, verification with the authority, and the platform office's
decision, told to each department once."""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from sharehub import audit
from sharehub.access.consumers import Caller
from sharehub.catalogue.models import Resource
from sharehub.consistency.pairs import _among, _key_field
from sharehub.errors import Invalid, NotFound
from sharehub.hub import Hub
from sharehub.metadata.models import Conflict, Notice, utcnow
from sharehub.notices import ask, file_notice, tell
from sharehub.paging import Page, newest_first
from sharehub.serving.masking import mask_field
from sharehub.workdays import due_text

log = logging.getLogger(__name__)


OPEN = ("open", "verifying")


SAMPLE_CONFLICTS = 20  # conflicts a notice lists; the rest are a GET away


def _notify(hub: Hub, settle: dict[int, set[str]]) -> list[int]:
    """One notice per resource with conflicts not yet noticed; close notices whose conflicts all ended."""
    cols = (
        Conflict.id,
        Conflict.kind,
        Conflict.item,
        Conflict.entity_key,
        Conflict.resource_id,
        Conflict.authority_resource,
        Conflict.authority_value,
        Conflict.other_value,
    )
    with hub.db() as s:
        fresh = s.execute(select(*cols).where(Conflict.status == "open", Conflict.notice_id.is_(None))).all()
        _settle_notices(s, settle)
        held = _quarantined_at_authority(s, fresh)
    by_resource: dict[str, list[Any]] = defaultdict(list)
    waiting: dict[str, int] = defaultdict(int)
    for c in fresh:
        if c.kind == "missing_in_base" and (c.authority_resource, c.entity_key) in held:
            waiting[c.resource_id] += 1  # the authority's to correct, and its quality notice says so
        else:
            by_resource[c.resource_id].append(c)
    return [_conflict_notice(hub, hub.catalogue.resource(rid), cs, waiting[rid]) for rid, cs in by_resource.items()]


def _quarantined_at_authority(s: Session, conflicts: Sequence[Any]) -> set[tuple[str, str]]:
    """(authoritative resource, entity key) of entities the authority did deliver, but whose rows failed its
    quality gate and await its correction (pending on an open quality notice to it).

    The base store lacks such an entity only until the authority corrects it, so the department holding
    a copy is not asked to verify it: the conflict stays on record, un-noticed, and is noticed at a later
    check only if it outlives the authority's quality notice."""
    authorities = {c.authority_resource for c in conflicts if c.kind == "missing_in_base"}
    if not authorities:
        return set()
    pending = select(Notice.resource_id, Notice.pending_keys).where(
        Notice.kind == "quality", Notice.resource_id.in_(sorted(authorities)), Notice.status != "resolved"
    )
    return {(rid, str(k).split("|")[0]) for rid, keys in s.execute(pending) for k in keys or []}


def _settle_notices(s: Session, ended: dict[int, set[str]]) -> None:
    """Take the keys whose conflicts ended off their notices' pending lists (unless the key still has an
    open conflict under that notice); a notice with no key left is resolved. Only the ended keys are
    looked up, so the cost follows what changed, not how many conflicts a notice lists."""
    if not ended:
        return
    ids = sorted(ended)
    linked = or_(Conflict.notice_id.in_(ids), Conflict.authority_notice_id.in_(ids))
    cols = (Conflict.entity_key, Conflict.notice_id, Conflict.authority_notice_id)
    still: dict[int, set[str]] = defaultdict(set)
    ended_keys = sorted(set().union(*ended.values()))
    query = select(*cols).where(Conflict.status.in_(OPEN), _among(s, Conflict.entity_key, ended_keys), linked)
    for key, notice_id, asked_id in s.execute(query):
        for nid in (notice_id, asked_id):
            if nid in ended:
                still[nid].add(key)
    # A correction notice is about the conflicts decided together: an entity leaves it only when every one
    # of them on that entity has closed (a company's name and its status, say, decided at once).
    decided = select(Conflict.entity_key, Conflict.correction_notice_id).where(
        Conflict.status == "decided", Conflict.correction_notice_id.in_(ids), _among(s, Conflict.entity_key, ended_keys)
    )
    for key, correction_id in s.execute(decided):
        if correction_id is not None:
            still[correction_id].add(key)
    unresolved = select(Notice).where(
        Notice.id.in_(ids), Notice.kind.in_(("conflict", "conflict_decision")), Notice.status != "resolved"
    )
    for notice in s.scalars(unresolved):
        gone = ended[notice.id] - still[notice.id]
        keys = [k for k in notice.pending_keys if k not in gone]
        if len(keys) != len(notice.pending_keys):
            notice.pending_keys = keys
        if not keys:
            notice.status, notice.resolved_at = "resolved", utcnow()


def _conflict_notice(hub: Hub, res: Resource, conflicts: list[Any], waiting: int = 0) -> int:
    department = hub.catalogue.departments[res.provider]
    rule = hub.profile.deadlines["feedback"]  # verify and answer (核查、反馈); correcting later is rectification
    now = utcnow()
    deadline = hub.calendar.deadline(now, rule.working_days)
    key_field = _key_field(res)
    lines = [
        f"{department.name}：",
        "",
        f"共享平台比对发现，资源 {res.id}（{res.title}）有 {len(conflicts):,} 处数据与权威来源不一致"
        "（一数一源、多元校核）。请核实：如本部门数据有误，请更正；如权威来源有误，请说明理由，由平台协调权威部门核实。",
        f"请在 {due_text(deadline)}（北京时间）前反馈，即 {rule.working_days} 个工作日；依据：{rule.basis}。",
        "",
        f"如本部门的值无误，请逐项答复理由：POST /conflicts/{{冲突编号}}/reply，或 sharehub conflicts reply 冲突编号"
        f" --department {res.provider} --by 经办人 --reason 理由（全部冲突及完整实体键：GET /conflicts）。",
        "",
        "不一致项（值已按分级脱敏）/ conflicts, values masked:",
    ]
    for c in conflicts[:SAMPLE_CONFLICTS]:
        shown_key = mask_field(c.entity_key, key_field)
        if c.kind == "missing_in_base":
            lines.append(
                f"  - 冲突 {c.id} · {shown_key}: 权威库（{c.authority_resource}）无此实体；本部门值 {c.other_value}"
            )
        else:
            lines.append(
                f"  - 冲突 {c.id} · {shown_key} · {c.item}: 本部门 {c.other_value}；"
                f"权威来源 {c.authority_resource} {c.authority_value}"
            )
    after = []
    if waiting:
        after += [
            "",
            f"另有 {waiting:,} 个实体权威库暂缺：权威来源报送了这些实体，但其数据未通过质量检查、已隔离待其更正"
            "（见对其的质量整改通知），无需本部门处理。",
        ]
    after += ["", "数据一致后，下一次比对将自动关闭这些不一致项，本通知随之办结。"]
    subject = f"[sharehub] {res.id}: {len(conflicts):,} 处数据与权威来源不一致，请于 {due_text(deadline)} 前核实"
    with hub.db() as s:
        notice = _file_conflict_notice(s, res, department, deadline, subject, lines, conflicts, after)
        s.execute(update(Conflict).where(_among(s, Conflict.id, [c.id for c in conflicts])).values(notice_id=notice.id))
        return notice.id


def list_conflicts(
    hub: Hub,
    department: str | None = None,
    status: str | None = None,
    limit: int | None = None,
    *,
    as_authority: bool = False,
    notice_id: int | None = None,
    resource_id: str | None = None,
    before: int | None = None,
    only: int | None = None,
) -> Page[Conflict]:
    """Conflicts, newest first, a page of `limit` below `before`: of `department`'s copies, and with
    `as_authority` also those on items it is the authoritative source of; of one notice or one resource."""
    with hub.db() as s:
        q = select(Conflict)
        if department and as_authority:
            own = sorted(r.id for r in hub.catalogue.resources.values() if r.provider == department)
            q = q.where(or_(Conflict.department == department, Conflict.authority_resource.in_(own)))
        elif department:
            q = q.where(Conflict.department == department)
        if status:
            q = q.where(Conflict.status == status)
        if notice_id is not None:
            linked = (Conflict.notice_id, Conflict.authority_notice_id, Conflict.correction_notice_id)
            q = q.where(or_(*(column == notice_id for column in linked)))
        if resource_id:
            q = q.where(Conflict.resource_id == resource_id)
        return newest_first(s, q, Conflict.id, limit, before, only)


def verify(
    hub: Hub, conflict_ids: list[int], *, by: str, notify_authority: bool = False, actor: Caller | None = None
) -> list[Conflict]:
    """Take conflicts up for verification (核实); optionally ask the authoritative department to check its value.

    The authoritative department gets one notice per authoritative resource, with the profile's
    rectification deadline, listing the entities; it resolves when those conflicts are decided or close.
    """
    if not by.strip():
        raise Invalid("say who is verifying (--by)")
    now = utcnow()
    with hub.db() as s:
        rows = []
        for cid in conflict_ids:
            row = s.get(Conflict, cid)
            if row is None:
                raise NotFound(f"no conflict {cid}")
            if row.status not in OPEN:
                raise Invalid(f"conflict {cid} is {row.status}; only open conflicts can be verified")
            row.status, row.verifying_by, row.verifying_since = "verifying", by.strip(), now
            rows.append(row)
        if notify_authority:
            asked: dict[str, list[Conflict]] = defaultdict(list)
            for row in rows:
                if row.authority_notice_id is None:
                    asked[row.authority_resource].append(row)
            for rid, conflicts in asked.items():
                notice_id = _authority_notice(hub, s, hub.catalogue.resource(rid), conflicts, by.strip())
                for row in conflicts:
                    row.authority_notice_id = notice_id
        s.flush()
    for row in rows:
        _audit_step(hub, "conflict_verify", actor, row)
    return rows


def _audit_step(hub: Hub, action: str, actor: Caller | None, row: Conflict) -> None:
    """A step on a conflict, in the audit chain: the entity key is the record key."""
    audit.record(
        hub, action, actor, row.resource_id, record_key=row.entity_key, result=row.status, detail=f"conflict {row.id}"
    )


def _authority_notice(hub: Hub, s: Session, res: Resource, conflicts: list[Conflict], by: str) -> int:
    department = hub.catalogue.departments[res.provider]
    rule = hub.profile.deadlines["feedback"]  # the authority verifies and answers (核实反馈)
    now = utcnow()
    deadline = hub.calendar.deadline(now, rule.working_days)
    lines = [
        f"{department.name}：",
        "",
        f"贵部门是下列数据项的权威来源（{res.id}）。其他部门的数据与贵部门不一致，平台（{by}）请贵部门协助核实"
        "贵部门的值是否正确；如有误，请更正后重新报送。",
        f"请在 {due_text(deadline)}（北京时间）前反馈，即 {rule.working_days} 个工作日；依据：{rule.basis}。",
        "",
        "待核实项（值已按分级脱敏）/ to verify, values masked:",
    ]
    for c in conflicts[:SAMPLE_CONFLICTS]:
        lines.append(
            f"  - 冲突 {c.id} · {c.entity_key[:6]}… · {c.item}: 贵部门 {c.authority_value or '（无此实体）'}；"
            f"{c.department} {c.other_value}"
        )
    subject = f"[sharehub] {res.id}: 请协助核实 {len(conflicts):,} 处不一致数据，{due_text(deadline)} 前反馈"
    return _file_conflict_notice(s, res, department, deadline, subject, lines, conflicts).id


def _file_conflict_notice(
    s: Session,
    res: Resource,
    department: Any,
    deadline: datetime,
    subject: str,
    lines: list[str],
    conflicts: list[Any],
    after: Sequence[str] = (),
) -> Notice:
    """A conflict notice to a department about these conflicts' entities, with its e-mail queued. `lines`
    end with the first conflicts; where there are more, a line naming the notice's own route for all of
    them follows, then `after`."""
    keys = sorted({c.entity_key for c in conflicts})
    notice = Notice(
        kind="conflict",
        department=department.id,
        resource_id=res.id,
        run_id=None,
        created_at=utcnow(),
        deadline=deadline,
        status="open",
        subject=subject,
        body="",
        row_keys=keys,
        pending_keys=keys,
    )
    file_notice(s, notice, department.contact_email)  # its id is known from here
    more = len(conflicts) - SAMPLE_CONFLICTS
    if more > 0:
        lines = [*lines, f"  … 另有 {more:,} 处 / and {more:,} more: GET /conflicts?notice={notice.id} lists them all"]
    notice.body = "\n".join([*lines, *after])
    return notice


def reply(
    hub: Hub, conflict_id: int, *, department: str, by: str, reason: str, actor: Caller | None = None
) -> Conflict:
    """A department holds its value right (核实反馈): the conflict goes under verification with its reasons,
    for the platform office to decide. Only the department holding the copy, or the authoritative one,
    replies; correcting the copy instead needs no reply, since the next check closes the conflict."""
    if not by.strip() or len(reason.strip()) < 4:
        raise Invalid("a reply names who replies and gives the reasons")
    with hub.db() as s:
        row = s.get(Conflict, conflict_id)
        if row is None:
            raise NotFound(f"no conflict {conflict_id}")
        authority = hub.catalogue.resources.get(row.authority_resource)
        if department not in (row.department, authority.provider if authority else None):
            raise NotFound(f"no conflict {conflict_id}")  # as GET /conflicts/{id}: others' conflicts look absent
        if row.status not in OPEN:
            raise Invalid(f"conflict {conflict_id} is {row.status}; only open or verifying conflicts are replied to")
        now = utcnow()
        who = f"{department} · {by.strip()}"[:100]
        if department == row.department:  # the copy's holder (also when it is the authority's own department)
            row.reply, row.replied_by, row.replied_at = reason.strip(), who, now
        else:
            row.authority_reply, row.authority_replied_by, row.authority_replied_at = reason.strip(), who, now
        if row.status == "open":
            row.status, row.verifying_by, row.verifying_since = "verifying", who, now
        s.flush()
    _audit_step(hub, "conflict_reply", actor, row)
    return row


def decide(hub: Hub, conflict_id: int, *, right: str, by: str, reason: str, actor: Caller | None = None) -> Conflict:
    """Record which value is right (`authority` or `provider`), who decided and why."""
    return decide_many(hub, [conflict_id], right=right, by=by, reason=reason, actor=actor)[0]


def decide_many(
    hub: Hub, conflict_ids: list[int], *, right: str, by: str, reason: str, actor: Caller | None = None
) -> list[Conflict]:
    """One decision on many conflicts, all of them or none (the same value right, by the same person, for
    the same reason): each department hears it once per resource, not once per conflict."""
    if right not in ("authority", "provider") or not by.strip() or len(reason.strip()) < 4:
        raise Invalid("a decision names the right value (authority or provider), who decided, and why")
    now = utcnow()
    with hub.db() as s:
        rows = []
        for cid in dict.fromkeys(conflict_ids):
            row = s.get(Conflict, cid)
            if row is None:
                raise NotFound(f"no conflict {cid}")
            if row.status not in OPEN:
                raise Invalid(f"conflict {cid} is {row.status}; only open or verifying conflicts are decided")
            row.status, row.decision, row.decided_by, row.decision_reason = "decided", right, by.strip(), reason.strip()
            row.decided_at = now
            rows.append(row)
        s.flush()
        settled: dict[int, set[str]] = defaultdict(set)
        for row in rows:
            for n in (row.notice_id, row.authority_notice_id):
                if n is not None:
                    settled[n].add(row.entity_key)
        _settle_notices(s, settled)
        wrong_side: dict[str, list[Conflict]] = defaultdict(list)
        for row in rows:
            wrong_side[row.resource_id if right == "authority" else row.authority_resource].append(row)
        for group in wrong_side.values():
            correction = _tell_decision(hub, s, group)
            for row in group:
                row.correction_notice_id = correction
    for row in rows:
        _audit_step(hub, "conflict_decision", actor, row)
    return rows


def _tell_decision(hub: Hub, s: Session, rows: list[Conflict]) -> int:
    """A decision goes to both departments, once for all the conflicts it settles in one resource: the one
    whose values were judged wrong gets a notice to correct them by the rectification deadline (it
    resolves when the copies converge and every one of these conflicts closes; past the deadline it runs
    overdue like any notice); each other one is told. Returns the correction notice."""
    first = rows[0]
    authority = hub.catalogue.resource(first.authority_resource)
    held = hub.catalogue.resource(first.resource_id)
    wrong = held if first.decision == "authority" else authority
    rule = hub.profile.deadlines["rectification"]
    deadline = hub.calendar.deadline(utcnow(), rule.working_days)
    winner = f"{authority.provider}（权威来源）" if first.decision == "authority" else "持有副本的部门"
    decided = f"平台（{first.decided_by}）裁定：{winner}的值正确。"
    decided += f"理由：{first.decision_reason}"
    wrong_dept = hub.catalogue.departments[wrong.provider]
    lines: dict[str, list[str]] = defaultdict(list)  # the other side's resource → its lines
    for row in rows:
        copy = hub.catalogue.resource(row.resource_id)
        shown = mask_field(row.entity_key, _key_field(copy))
        authoritative = row.authority_value or "（无此实体）"
        values = f"{authority.provider}（权威）{authoritative}；{copy.provider} {row.other_value}"
        lines[row.authority_resource if wrong.id == row.resource_id else row.resource_id].append(
            f"  - 冲突 {row.id} · {shown} · {row.item}: {values}"
        )
    listed = [line for group in lines.values() for line in group]
    more = len(listed) - SAMPLE_CONFLICTS
    listing = listed[:SAMPLE_CONFLICTS] + ([f"  … 另有 {more:,} 项 / {more:,} more"] if more > 0 else [])
    which = f"冲突 {first.id}（{first.item}）" if len(rows) == 1 else f"{len(rows):,} 项冲突"
    correction = ask(
        s,
        kind="conflict_decision",
        department=wrong.provider,
        resource_id=wrong.id,
        deadline=deadline,
        subject=f"[sharehub] {which}已裁定：请于 {due_text(deadline)} 前更正 {wrong.id}",
        body="\n".join(
            [
                f"{wrong_dept.name}：",
                "",
                *listing,
                decided,
                f"请更正 {wrong.id} 中这些实体的数据并重新报送，于 {due_text(deadline)}（北京时间）前完成，"
                f"即 {rule.working_days} 个工作日（依据：{rule.basis}）；数据一致后本通知自动办结。",
            ]
        ),
        keys=sorted({row.entity_key for row in rows}),
        recipient=wrong_dept.contact_email,
    )
    for rid, told in lines.items():
        right = hub.catalogue.resource(rid)
        right_dept = hub.catalogue.departments[right.provider]
        tell(
            s,
            kind="conflict_decision",
            department=right.provider,
            resource_id=right.id,
            subject=f"[sharehub] {which}已裁定：{right.id} 的值无需更正",
            body="\n".join([f"{right_dept.name}：", "", *told[:SAMPLE_CONFLICTS], decided, "贵部门的值无需更正。"]),
            recipient=right_dept.contact_email,
        )
    return correction.id
