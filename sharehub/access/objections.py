"""Objections (疑义/纠错): a consumer reports a record it believes wrong; it is checked and answered in time.

The reviewer the profile's workflow names (the providing department; under Zhongshan 22 the platform
office, which has the provider correct what it finds wrong) gets a notice with the profile's `objection`
deadline in working days; an unanswered objection runs overdue and is escalated like any notice. The
answer, `corrected` (the source was fixed; the next run carries it) or `confirmed` (the record stands,
with reasons), goes back to the consumer's department as a notice. While an objection is open, the
record is served as it stands, and a query of it names the disputed fields (`under_objection`): the
person's business goes on (Lichuan 23). Every step is audited; the record key is the only personal datum
kept.
"""

from __future__ import annotations

from typing import Literal, get_args

from sqlalchemy.orm import Session

from sharehub import audit
from sharehub.access.consumers import PLATFORM, Caller
from sharehub.access.grants import active_grant
from sharehub.access.workflow import Workflow
from sharehub.errors import Forbidden, NotFound, WrongState
from sharehub.errors import Refused as GrantError
from sharehub.hub import Hub
from sharehub.metadata import dbapi
from sharehub.metadata.models import Objection, utcnow
from sharehub.notices import addressee, ask, resolve_id, tell
from sharehub.paging import Page
from sharehub.serving.answers import request_key
from sharehub.serving.copies import SEP, key_of
from sharehub.serving.masking import mask_field
from sharehub.workdays import due_text


def raise_objection(
    hub: Hub, caller: Caller, resource_id: str, key: dict[str, str], fields: list[str], reason: str
) -> Objection:
    """File an objection on a record the consumer is granted; notify the provider with its deadline."""
    res = hub.catalogue.resources.get(resource_id)
    if res is None:
        raise Forbidden(f"no grant for {resource_id}")
    granted: set[str] = set()
    for mode in res.serving_modes:
        try:
            granted |= active_grant(hub, caller, resource_id, mode).fields
        except Forbidden:
            continue
    if not granted:
        raise Forbidden(f"no grant for {resource_id}: only data you use can be objected to")
    outside = sorted(set(fields) - granted)
    if not fields or outside:
        raise GrantError(
            f"{resource_id}: name the granted fields you dispute" + (f"; not granted: {outside}" if outside else "")
        )
    if len(reason.strip()) < 4:
        raise GrantError("say what is wrong with the record")
    record = key_of(res, request_key(res, key))
    now = utcnow()
    rule = hub.profile.deadlines["objection"]
    deadline = hub.calendar.deadline(now, rule.working_days)
    flow = hub.profile.workflow
    reviewer = res.provider if flow.objection_reviewer == "provider" else PLATFORM
    reviewer_name, recipient = addressee(hub, reviewer)
    key_field = res.field(res.source.key[0])
    shown = mask_field(record.split(SEP)[0], key_field)
    due = due_text(deadline)
    with hub.db() as s:
        objection = Objection(
            consumer_id=caller.id,
            department=caller.department,
            resource_id=res.id,
            provider=res.provider,
            record_key=record,
            fields=sorted(set(fields)),
            reason=reason.strip(),
            status="open",
            deadline=deadline,
            created_at=now,
        )
        s.add(objection)
        s.flush()  # its id goes into the notice: the provider answers that objection
        notice = ask(
            s,
            kind="objection",
            department=reviewer,
            resource_id=res.id,
            deadline=deadline,
            subject=(
                f"[sharehub] {res.id}: {caller.department} 对一条记录提出疑义（#{objection.id}），请于 {due} 前答复"
            ),
            body=(
                f"{reviewer_name}：\n\n{caller.department} 认为 {res.id}（{res.provider} 提供）中记录 {shown} 的 "
                f"{', '.join(fields)} 有误：{reason.strip()}\n"
                f"请在 {due}（北京时间）前，即 {rule.working_days} 个工作日内核实并答复"
                f"（依据：{rule.basis}；校核流程：{flow.objection_basis}）：更正（corrected"
                + ("，由提供部门更正" if reviewer == PLATFORM else "")
                + "），或确认无误并说明理由（confirmed）。\n"
                f"完整的记录键见 GET /objections/{objection.id}；答复：\n"
                f"  POST /objections/{objection.id}/answer\n"
                f"  sharehub objections answer {objection.id} --department {reviewer}"
                " --outcome corrected|confirmed --by 经办人 --reason 说明"
            ),
            keys=[record],
            recipient=recipient,
        )
        objection.notice_id = notice.id
    audit.record(hub, "objection", caller, res.id, record_key=record, result="open", detail=f"objection {objection.id}")
    return objection


def under_objection(hub: Hub, resource_id: str, record_key: str) -> set[str]:
    """The fields of a record that an open objection disputes: the provider is still checking them, and
    meanwhile the record is served as it stands (Lichuan 23: the person's business goes on)."""
    rows = dbapi.raw(hub.settings.metadata_url).rows(
        "SELECT fields FROM objections WHERE resource_id = ? AND record_key = ? AND status = 'open'",
        (resource_id, record_key),
    )
    return {name for (fields,) in rows for name in dbapi.read_json(fields)}


def answer(hub: Hub, caller: Caller, objection_id: int, outcome: str, reason: str) -> Objection:
    """The answer, `corrected` or `confirmed` (with reasons), by whom the profile's workflow names: the
    providing department, or the platform office, whose `corrected` orders the provider to correct the
    record (`_order_correction`). The consumer is told."""
    if outcome not in ("corrected", "confirmed"):
        raise GrantError("the answer is corrected or confirmed")
    if len(reason.strip()) < 4:
        raise GrantError("an answer gives its reasons")
    now = utcnow()
    with hub.db() as s:
        objection = s.get(Objection, objection_id)
        if objection is None or not OBJECTIONS.sees(caller, objection):
            raise NotFound(f"no objection {objection_id}")  # as GET /objections/{id} answers those it hides from
        if hub.profile.workflow.objection_reviewer == "platform":
            if caller.role != "platform":
                raise Forbidden(f"under {hub.profile.id}, the platform office reviews and answers objections")
        elif caller.role != "provider" or caller.department != objection.provider:
            raise Forbidden(f"only the providing department answers objections on {objection.resource_id}")
        if objection.status != "open":
            raise WrongState(f"objection {objection_id} is already {objection.status}")
        objection.status, objection.answered_by, objection.answered_at = outcome, caller.name, now
        objection.answer = reason.strip()
        resolve_id(s, objection.notice_id, now)
        _, recipient = addressee(hub, objection.department)
        ordered = caller.role == "platform" and outcome == "corrected"
        if ordered:
            _order_correction(hub, s, objection)
        word = (
            "经平台审核确有错误，已要求提供部门更正"
            if ordered
            else "已更正，下一次更新后生效"
            if outcome == "corrected"
            else "经核实无误"
        )
        tell(
            s,
            kind="objection_answer",
            department=objection.department,
            resource_id=objection.resource_id,
            subject=f"[sharehub] 疑义 #{objection.id}（{objection.resource_id}）：{word}",
            body=(
                f"您对 {objection.resource_id} 提出的疑义 #{objection.id}：{word}。"
                f"{caller.department if caller.role == 'provider' else '平台管理部门'}的说明：{objection.answer}"
            ),
            recipient=recipient,
        )
    audit.record(
        hub,
        "objection_answer",
        caller,
        objection.resource_id,
        record_key=objection.record_key,
        result=outcome,
        detail=f"objection {objection.id}",
    )
    return objection


def _order_correction(hub: Hub, s: Session, objection: Objection) -> None:
    """The platform office found the record wrong: the providing department must correct it within the
    profile's rectification deadline (Zhongshan 22: 数据提供部门须予以更正). The resource's next successful
    run resolves the notice; left longer, it runs overdue and is escalated."""
    rule = hub.profile.deadlines["rectification"]
    deadline = hub.calendar.deadline(utcnow(), rule.working_days)
    name, recipient = addressee(hub, objection.provider)
    res = hub.catalogue.resource(objection.resource_id)
    shown = mask_field(objection.record_key.split(SEP)[0], res.field(res.source.key[0]))
    ask(
        s,
        kind="objection_correction",
        department=objection.provider,
        resource_id=objection.resource_id,
        deadline=deadline,
        subject=(
            f"[sharehub] {objection.resource_id}: 疑义 #{objection.id} 经平台审核确有错误，"
            f"请于 {due_text(deadline)} 前更正"
        ),
        body=(
            f"{name}：\n\n{objection.department} 对记录 {shown} 的 {', '.join(objection.fields)} 提出的疑义 "
            f"#{objection.id}，经平台管理部门审核确有错误：{objection.answer}\n"
            f"请在 {due_text(deadline)}（北京时间）前，即 {rule.working_days} 个工作日内在前置库更正"
            f"（依据：{hub.profile.workflow.objection_basis}）。"
            "更正后该资源下一次运行成功，本通知自动办结。"
        ),
        keys=[objection.record_key],
        recipient=recipient,
    )


def key_fields(hub: Hub, objection: Objection) -> dict[str, str]:
    """The objected record's key, field by field, as the resource declares its key."""
    key = hub.catalogue.resource(objection.resource_id).source.key
    return dict(zip(key, objection.record_key.split(SEP), strict=False))


ObjectionState = Literal["open", "corrected", "confirmed"]
OBJECTION_STATES: tuple[str, ...] = get_args(ObjectionState)
OBJECTIONS = Workflow(
    "objection", Objection, OBJECTION_STATES, consumer=Objection.consumer_id, provider=Objection.provider
)


def list_objections(
    hub: Hub,
    caller: Caller,
    limit: int | None = None,
    before: int | None = None,
    *,
    only: int | None = None,
    status: str | None = None,
) -> Page[Objection]:
    """A consumer's own objections, a provider's on its resources, all for the platform office; newest
    first, a page of `limit` below `before`; with `status`, only those in that state (`open`: the answers
    a provider owes)."""
    return OBJECTIONS.listed(hub, caller, limit, before, only=only, status=status)
