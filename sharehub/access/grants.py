"""Applications and grants (Lichuan 12, 18–22; Zhejiang 26; Hengyang 17).

A consumer applies for fields of a resource, in serving modes, for a purpose, until a date:
  - unconditional resources are granted at once by the platform;
  - conditional ones go through the steps the profile's workflow names: the platform's review (not under
    Zhejiang 26, where the provider alone reviews), then the provider's decision (reasons required to
    refuse), then the applicant is told; each step has a working-day clock from the profile, and a step
    that runs over is marked overdue against its department and escalated to the platform office
    (`sharehub.access.clocks`);
  - not-shared resources are refused, citing their legal basis.
A grant can be revoked, and it expires (its department is reminded: `sharehub.access.reminders`).
`active_grant` is the one check every serving call makes.
Every step is written to the audit chain.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal, NamedTuple, get_args

from sqlalchemy import select
from sqlalchemy.orm import Session

from sharehub import audit
from sharehub.access.consumers import PLATFORM, Caller
from sharehub.access.reminders import settle_reminders
from sharehub.access.workflow import Workflow
from sharehub.errors import Forbidden, NotFound, Refused, WrongState
from sharehub.hub import Hub
from sharehub.metadata import dbapi
from sharehub.metadata.models import Application, Grant, Notice, Run, utcnow
from sharehub.notices import addressee, ask, resolve, tell
from sharehub.paging import Page, newest_first
from sharehub.workdays import china_time, due_text

MAX_VALIDITY = timedelta(days=366 * 3)
STEP_RULE = {"review": "application_review", "provider": "provider_decision"}


GrantError = Refused  # the refusals of every access workflow are the domain's (`sharehub.errors`)


@dataclass(frozen=True)
class Access:
    """What a serving call may use: the grant, its fields and its purpose; `modes`, every mode the
    consumer's live grants on the resource allow (verification tells a query-granted caller whether
    the record exists, which it could learn by querying anyway)."""

    grant_id: int
    fields: frozenset[str]
    purpose: str
    modes: frozenset[str] = frozenset()


MAX_CALLS_PER_DAY = 10_000_000


def apply(
    hub: Hub,
    caller: Caller,
    resource_id: str,
    fields: list[str],
    modes: list[str],
    purpose: str,
    valid_until: datetime,
    expected_calls_per_day: int | None = None,
) -> Application:
    """File an application; unconditional resources are granted and not-shared ones refused at once. The
    volume the purpose needs may be declared (`expected_calls_per_day`): a day far beyond it is raised as a
    rectification item (`sharehub.reporting.overuse`)."""
    if expected_calls_per_day is not None and not 1 <= expected_calls_per_day <= MAX_CALLS_PER_DAY:
        raise GrantError(f"expected_calls_per_day is between 1 and {MAX_CALLS_PER_DAY:,}")
    if caller.role != "consumer":
        raise Forbidden("only a consumer applies for data")
    res = hub.catalogue.resources.get(resource_id)
    if res is None:
        raise GrantError(f"no resource {resource_id!r} in the catalogue")
    names = {f.name for f in res.fields}
    unknown = sorted(set(fields) - names)
    if not fields or unknown:
        raise GrantError(f"{resource_id}: name the fields you need; unknown: {unknown}" if unknown else "no fields")
    bad_modes = sorted(set(modes) - {"verification", "query", "bulk"})
    if not modes or bad_modes:
        raise GrantError(f"modes are verification, query or bulk; not {bad_modes}" if bad_modes else "no modes")
    if len(purpose.strip()) < 4:
        raise GrantError("state the purpose (用途) of the application")
    now = utcnow()
    if valid_until.tzinfo is None or not now < valid_until <= now + MAX_VALIDITY:
        raise GrantError("valid_until must be a future date with a time zone, at most three years ahead")
    app = Application(
        consumer_id=caller.id,
        department=caller.department,
        resource_id=res.id,
        provider=res.provider,
        fields=sorted(set(fields)),
        modes=sorted(set(modes)),
        purpose=purpose.strip(),
        valid_until=valid_until,
        share_type=res.share.type,
        expected_calls_per_day=expected_calls_per_day,
        status="review",
        created_at=now,
        contest=None,  # loaded as none: the application is read after its session ends
    )
    grant = None
    with hub.db() as s:
        s.add(app)
        s.flush()
        offered = set(res.serving_modes)
        if res.share.type == "not_shared":
            _refuse(s, app, "platform", f"不予共享（{res.id}）：{res.share.legal_basis}", now)
        elif not set(modes) <= offered:
            _refuse(s, app, "platform", f"{res.id} 只提供 {', '.join(sorted(offered))} 方式", now)
        elif res.share.type == "unconditional":
            app.reviewed_by, app.reviewed_at, app.review_reason = "platform", now, "无条件共享，直接授权"
            grant = grant_application(s, app, now)
            _tell_provider_of_direct_grant(hub, s, app, grant)
        else:
            _enter_step(hub, s, app, hub.profile.next_step(None), now)
    audit.record(hub, "application", caller, res.id, result=app.status, purpose=app.purpose, detail=f"#{app.id}")
    audit_grant(hub, grant, "platform")
    return app


def review(hub: Hub, caller: Caller, application_id: int, approve: bool, reason: str) -> Application:
    """The platform office's review of a conditional application (规范性检查)."""
    if caller.role != "platform":
        raise Forbidden("only the platform office reviews applications")
    now = utcnow()
    with hub.db() as s:
        app = _open_step(s, caller, application_id, "review")
        if not approve and len(reason.strip()) < 4:
            raise GrantError("a refusal states its reasons")
        app.reviewed_by, app.reviewed_at, app.review_reason = caller.name, now, reason.strip() or "通过"
        if approve:
            _enter_step(hub, s, app, hub.profile.next_step("review"), now)
        else:
            _refuse(s, app, caller.name, reason, now)
            _tell_applicant(hub, s, app)
    audit.record(hub, "application_review", caller, app.resource_id, result=app.status, detail=f"#{app.id}")
    return app


def decide(hub: Hub, caller: Caller, application_id: int, approve: bool, reason: str) -> Application:
    """The providing department's decision (授权); a refusal must give its reasons. The applicant is told."""
    now = utcnow()
    with hub.db() as s:
        app = _open_step(s, caller, application_id, "provider")
        if caller.role != "provider" or caller.department != app.provider:
            raise Forbidden(f"only the providing department decides on {app.resource_id}")
        if not approve and len(reason.strip()) < 4:
            raise GrantError("a refusal states its reasons")
        app.decided_by, app.decided_at, app.decision_reason = caller.name, now, reason.strip() or "同意"
        grant = grant_application(s, app, now) if approve else None
        if grant is not None:
            owe_delivery(hub, s, app, grant)
        if not approve:
            _refuse(s, app, caller.name, reason, now)
        _tell_applicant(hub, s, app)
        for asked in provider_notices(s, app):  # answered: the provider's notice is done
            resolve(asked, now)
    audit.record(hub, "application_decision", caller, app.resource_id, result=app.status, detail=f"#{app.id}")
    audit_grant(hub, grant, caller.name)
    return app


def withdraw(hub: Hub, caller: Caller, application_id: int, reason: str) -> Application:
    """The applicant takes back an application still under review or awaiting the provider's decision (the
    fields were wrong, or the need has gone): its step clock stops, and the provider's notice asking for a
    decision is resolved. Only the consumer that applied withdraws; a decided application stays as it is,
    except that an open contest of its refusal is withdrawn (the refusal stands; `sharehub.access.contests`)."""
    if len(reason.strip()) < 4:
        raise GrantError("a withdrawal states its reason")
    now = utcnow()
    with hub.db() as s:
        app = own_application(s, caller, application_id)
        contested = app.status == "contested" and app.contest is not None and app.contest.status == "open"
        if contested:
            withdraw_contest(s, app, now, reason)
        elif app.status not in STEP_RULE:
            raise WrongState(
                f"application {application_id} is {app.status}: only one still under way, or an open contest, "
                "is withdrawn"
            )
        else:
            app.status, app.step_deadline = "withdrawn", None
            app.decided_by, app.decided_at, app.decision_reason = caller.name, now, f"申请人撤回：{reason.strip()}"
            for asked in provider_notices(s, app):
                resolve(asked, now)
    action = "application_contest_withdraw" if contested else "application_withdraw"
    audit.record(hub, action, caller, app.resource_id, result=app.status, detail=f"#{app.id}")
    return app


def revoke_grant(hub: Hub, caller: Caller, grant_id: int, reason: str) -> Grant:
    """End a grant at once: by the platform office, by the department that provides the resource, or by
    the consumer that holds it (its purpose served: 用完即止)."""
    with hub.db() as s:
        grant = s.get(Grant, grant_id)
        provider = None if grant is None else hub.catalogue.resource(grant.resource_id).provider
        if grant is None or not (
            (caller.role == "consumer" and grant.consumer_id == caller.id)
            or caller.role == "platform"
            or (caller.role == "provider" and caller.department == provider)
        ):
            raise NotFound(f"no grant {grant_id}")  # as GET /grants/{id} answers whoever its list does not show
        if len(reason.strip()) < 4:
            raise GrantError("a revocation states its reason")
        if grant.revoked_at is None:
            grant.revoked_at, grant.revoked_by, grant.revoke_reason = utcnow(), caller.name, reason.strip()
    audit.record(hub, "grant_revoke", caller, grant.resource_id, grant_id=grant.id, result="revoked")
    return grant


class _GrantRow(NamedTuple):
    id: int
    fields: frozenset[str]
    modes: list[str]
    purpose: str
    valid_until: datetime
    revoked_at: object


def _grant_rows(db: dbapi.Raw, consumer_id: int, resource_id: str) -> list[_GrantRow]:
    found = db.rows(
        "SELECT id, fields, modes, purpose, valid_until, revoked_at FROM grants"
        " WHERE consumer_id = ? AND resource_id = ? ORDER BY id",
        (consumer_id, resource_id),
    )
    return [
        _GrantRow(gid, frozenset(dbapi.read_json(f)), dbapi.read_json(m), purpose, dbapi.read_time(until), revoked)
        for gid, f, m, purpose, until, revoked in found
    ]


def active_grant(hub: Hub, caller: Caller, resource_id: str, mode: str, grant_id: int | None = None) -> Access:
    """The grant that lets this consumer use this resource in this mode now, or Forbidden saying why.

    With `grant_id`, only that grant counts, its fields and its modes alone: a lower-level platform
    names the grant it holds for one of its departments (`sharehub.levels.upstream`), so a grant revoked
    here stops that department's calls at once even while the platform holds others."""
    if caller.role != "consumer":
        raise Forbidden("serving calls are made by consumers under a grant")
    if resource_id not in hub.catalogue.resources:
        raise Forbidden(f"no grant for {resource_id}")  # the same answer as for a resource not granted
    now = utcnow()
    db = dbapi.raw(hub.settings.metadata_url)
    grants = db.remembered(("grants", caller.id, resource_id), lambda: _grant_rows(db, caller.id, resource_id))
    if grant_id is not None:
        grants = [g for g in grants if g.id == grant_id]
        if not grants:
            raise Forbidden(f"no grant {grant_id} of yours for {resource_id}")
    live = [g for g in grants if g.revoked_at is None and g.valid_until > now]
    usable = [g for g in live if mode in g.modes]
    if not usable:
        if any(mode in g.modes and g.revoked_at is not None for g in grants):
            raise Forbidden(f"your grant for {resource_id} ({mode}) was revoked")
        if any(mode in g.modes for g in grants):
            raise Forbidden(f"your grant for {resource_id} ({mode}) has expired")
        raise Forbidden(f"no grant for {resource_id} in mode {mode}")
    fields = frozenset(f for g in usable for f in g.fields)
    return Access(usable[-1].id, fields, usable[-1].purpose, frozenset(m for g in live for m in g.modes))


ApplicationState = Literal["review", "provider", "granted", "refused", "contested", "referred", "withdrawn"]
APPLICATION_STATES: tuple[str, ...] = get_args(ApplicationState)
APPLICATIONS = Workflow(
    "application", Application, APPLICATION_STATES, consumer=Application.consumer_id, provider=Application.provider
)


def list_applications(
    hub: Hub,
    caller: Caller,
    limit: int | None = None,
    before: int | None = None,
    *,
    only: int | None = None,
    status: str | None = None,
) -> Page[Application]:
    """Applications the caller may see: its own, its department's resources', or all for the platform;
    newest first, a page of `limit` below `before`; with `status`, only those in that state (`review`: the
    platform office's queue, `provider`: the decisions a department owes)."""
    return APPLICATIONS.listed(hub, caller, limit, before, only=only, status=status)


GrantState = Literal["active", "revoked", "expired"]
GRANT_STATES: tuple[str, ...] = get_args(GrantState)
GRANTS = Workflow("grant", Grant, GRANT_STATES, consumer=Grant.consumer_id, resource=Grant.resource_id)


def list_grants(
    hub: Hub,
    caller: Caller,
    limit: int | None = None,
    before: int | None = None,
    *,
    only: int | None = None,
    state: str | None = None,
    resource_id: str | None = None,
    application_id: int | None = None,
) -> Page[Grant]:
    """Grants the caller may see, on the same rule as applications. Newest first: a page of `limit` below
    `before`; with `state`, only those `active` (neither revoked nor past `valid_until`), `revoked` or
    `expired` (run out without a revocation); with `resource_id`, only that resource's; with
    `application_id`, those that application gave."""
    now = utcnow()
    with hub.db() as s:
        q = GRANTS.visible(hub, caller)
        if state == "active":
            q = q.where(Grant.revoked_at.is_(None), Grant.valid_until > now)
        elif state == "revoked":
            q = q.where(Grant.revoked_at.is_not(None))
        elif state == "expired":
            q = q.where(Grant.revoked_at.is_(None), Grant.valid_until <= now)
        if resource_id is not None:
            q = q.where(Grant.resource_id == resource_id)
        if application_id is not None:
            q = q.where(Grant.application_id == application_id)
        return newest_first(s, q, Grant.id, limit, before, only)


def owe_delivery(hub: Hub, s: Session, app: Application, grant: Grant) -> None:
    """A conditional resource granted before any of its data reached the hub: its provider owes the data
    within the profile's `conditional_delivery` working days of the grant (Hengyang 17). A notice asks for
    it; the resource's next successful run resolves it, and it runs overdue and is escalated like any."""
    if app.share_type != "conditional":
        return
    landed = select(Run.id).where(Run.resource_id == app.resource_id, Run.status == "succeeded")
    if s.scalar(landed.limit(1)) is not None:
        return  # delivered already: the grant is served from the store at once
    rule = hub.profile.deadlines["conditional_delivery"]
    deadline = hub.calendar.deadline(grant.granted_at, rule.working_days)
    name, recipient = addressee(hub, app.provider)
    ask(
        s,
        kind="conditional_delivery",
        department=app.provider,
        resource_id=app.resource_id,
        deadline=deadline,
        subject=f"[sharehub] {app.resource_id} 已授权给 {app.department}，请于 {due_text(deadline)} 前提供数据",
        body=(
            f"{name}：\n\n贵部门已授权 {app.department} 使用有条件共享资源 {app.resource_id}（授权 #{grant.id}），"
            f"但平台尚未收到该资源的数据。请在 {due_text(deadline)}（北京时间）前，即授权后 {rule.working_days} "
            f"个工作日内，将数据报送至前置库（依据：{rule.basis}）。该资源下一次运行成功后，本通知自动办结。"
        ),
        keys=[GRANTS.asked(grant.id)],
        recipient=recipient,
    )


STEP_NAME = {"review": "平台审核", "provider": "提供部门授权"}


def withdraw_contest(s: Session, app: Application, now: datetime, reason: str) -> None:
    """The applicant drops its open contest: the refusal stands, and the platform office's notice is done."""
    contest = app.contest
    assert contest is not None and contest.status == "open"
    app.status = "refused"
    contest.status, contest.settled_by, contest.settled_at = "withdrawn", app.department, now
    contest.outcome_reason = f"申请人撤回异议：{reason.strip()}"
    for asked in asking(s, app, "application_contest", PLATFORM):
        resolve(asked, now)


def own_application(s: Session, caller: Caller, application_id: int) -> Application:
    """The application, if the caller is the consumer that made it; NotFound for anyone else."""
    app = s.get(Application, application_id)
    if app is None or caller.role != "consumer" or app.consumer_id != caller.id:
        raise NotFound(f"no application {application_id} of yours")
    return app


def sees_application(caller: Caller, app: Application) -> bool:
    """Whether the caller's list of applications shows this one: its applicant, its provider, the platform office."""
    return APPLICATIONS.sees(caller, app)


def _open_step(s: Session, caller: Caller, application_id: int, step: str) -> Application:
    """The application waiting for `step`; NotFound, as if it did not exist, when the caller may not see it,
    so that an id cannot be probed for its state or its provider."""
    app = s.get(Application, application_id)
    if app is None or not sees_application(caller, app):
        raise NotFound(f"no application {application_id}")
    if app.status != step:
        raise WrongState(f"application {application_id} is {app.status}, not waiting for {STEP_NAME[step]}")
    return app


def grant_application(
    s: Session, app: Application, now: datetime, fields: list[str] | None = None, modes: list[str] | None = None
) -> Grant:
    """Grant the application, on its fields and modes or on those agreed (a settled contest: `access.contests`)."""
    app.status, app.step_deadline = "granted", None
    grant = Grant(
        application_id=app.id,
        consumer_id=app.consumer_id,
        resource_id=app.resource_id,
        fields=fields or app.fields,
        modes=modes or app.modes,
        purpose=app.purpose,
        granted_at=now,
        valid_until=app.valid_until,
        expected_calls_per_day=app.expected_calls_per_day,
    )
    s.add(grant)
    s.flush()
    settle_reminders(s, now, grant.resource_id)  # a renewal ends the reminders of the grants it outlives
    return grant


def audit_grant(hub: Hub, grant: Grant | None, by: str) -> None:
    if grant is not None:
        audit.record(
            hub,
            "grant",
            None,
            grant.resource_id,
            grant_id=grant.id,
            purpose=grant.purpose,
            result="granted",
            detail=f"consumer {grant.consumer_id}; {','.join(grant.fields)}; {','.join(grant.modes)}; {by}",
        )


def _enter_step(hub: Hub, s: Session, app: Application, step: str | None, now: datetime) -> None:
    """Put a conditional application into `step`, as the profile's workflow orders them, with its clock:
    the platform office's review, or the provider's decision (which is asked by a notice)."""
    assert step in STEP_RULE, f"the profile's workflow has no step {step!r} after {app.status!r}"
    app.status = step
    app.step_deadline = hub.calendar.deadline(now, hub.profile.deadlines[STEP_RULE[step]].working_days)
    if step == "provider":
        _ask_provider(hub, s, app)


def _refuse(s: Session, app: Application, by: str, reason: str, now: datetime) -> None:
    app.status, app.step_deadline = "refused", None
    if app.decided_at is None:
        app.decided_by, app.decided_at, app.decision_reason = by, now, reason.strip()


def _ask_provider(hub: Hub, s: Session, app: Application) -> None:
    dept = hub.catalogue.departments[app.provider]
    rule = hub.profile.deadlines["provider_decision"]
    assert app.step_deadline is not None
    ask(
        s,
        kind="application",
        department=app.provider,
        resource_id=app.resource_id,
        deadline=app.step_deadline,
        subject=(
            f"[sharehub] 数据申请 #{app.id}：{app.department} 申请 {app.resource_id}，"
            f"请于 {due_text(app.step_deadline)} 前答复"
        ),
        body=(
            f"{dept.name}：\n\n{app.department} 申请使用 {app.resource_id} 的字段 {', '.join(app.fields)}，"
            f"方式 {', '.join(app.modes)}，用途：{app.purpose}，有效期至 {china_time(app.valid_until)}。\n"
            f"请在 {rule.working_days} 个工作日内答复（依据：{rule.basis}）；不同意的须说明理由。\n"
            f"审核流程：{hub.profile.workflow.application_basis}。\n"
            f"sharehub applications decide {app.id} --approve|--refuse --reason TEXT"
        ),
        keys=[asked_key(app)],
        recipient=dept.contact_email,
    )


def asked_key(app: Application) -> str:
    """The key a notice asking something of this application carries."""
    return APPLICATIONS.asked(app.id)


def asking(s: Session, app: Application, kind: str, department: str) -> list[Notice]:
    """The unresolved notices of `kind` that asked `department` to act on this application."""
    candidates = s.scalars(
        select(Notice).where(
            Notice.kind == kind,
            Notice.department == department,
            Notice.resource_id == app.resource_id,
            Notice.status != "resolved",
        )
    )
    return [n for n in candidates if asked_key(app) in n.pending_keys]


def provider_notices(s: Session, app: Application) -> list[Notice]:
    """The unresolved notice that asked the provider to decide on this application."""
    return asking(s, app, "application", app.provider)


def _tell_provider_of_direct_grant(hub: Hub, s: Session, app: Application, grant: Grant) -> None:
    """An unconditional resource is granted at once, within the profile's `direct_grant` limit, and its
    providing department is told who uses its data, for what, and until when (Lichuan 21)."""
    rule = hub.profile.deadlines["direct_grant"]
    name, recipient = addressee(hub, app.provider)
    within = "即时" if rule.working_days == 0 else f"{rule.working_days} 个工作日内"
    tell(
        s,
        kind="direct_grant",
        department=app.provider,
        resource_id=app.resource_id,
        subject=f"[sharehub] {app.resource_id} 已直接授权给 {app.department}（数据申请 #{app.id}）",
        body=(
            f"{name}：\n\n{app.department} 申请使用贵部门的无条件共享资源 {app.resource_id}，平台已直接授权"
            f"（应于{within}完成，本次即时完成；依据：{rule.basis}）。\n"
            f"字段：{', '.join(app.fields)}；方式：{', '.join(app.modes)}；用途：{app.purpose}；"
            f"使用至 {due_text(app.valid_until)}。\n"
            f"如认为不应共享，可撤销授权 #{grant.id}：POST /grants/{grant.id}/revoke"
            f"（sharehub grants revoke {grant.id} --by … --reason …）。"
        ),
        recipient=recipient,
    )


def _tell_applicant(hub: Hub, s: Session, app: Application) -> None:
    """The third step: the applicant learns the outcome and the reasons (in the same transaction)."""
    name, recipient = addressee(hub, app.department)
    outcome = "已授权" if app.status == "granted" else f"未获同意，理由：{app.decision_reason}"
    told = tell(
        s,
        kind="application",
        department=app.department,
        resource_id=app.resource_id,
        subject=f"[sharehub] 数据申请 #{app.id}（{app.resource_id}）{outcome[:40]}",
        body=f"{name}：\n\n您对 {app.resource_id} 的数据申请 #{app.id} {outcome}。",
        recipient=recipient,
    )
    app.notified_at, app.told_notice_id = told.created_at, told.id
