"""Contested refusals (意见分歧): an applicant that disagrees with the refusal of its application.

Lichuan 25: disagreements over sharing conditions, the reasons of an application or the outcome of an
authorization are settled by the providing department, the platform and the using department together;
where they cannot agree, the government department that coordinates is asked. Fushun 18 gives the
coordination to the city's data authority. So:
  - the consumer that applied contests a refused application, with its reasons (`contest`): the
    application is `contested`, the platform office is asked to coordinate within the profile's
    `application_contest` working days, and the provider is told;
  - the provider may reconsider and grant, on the fields and modes agreed (no more than were asked for,
    and only in modes the resource offers); a not-shared resource stays not shared, its legal basis
    holds whatever is agreed;
  - otherwise the platform office settles it: the refusal is `upheld` (agreed), or the contest is
    `referred` to the named government department (no agreement; the hub records where it went);
  - the applicant may withdraw its contest while it is open.
The applicant is told of the outcome, every step is audited, and the platform office's notice runs
overdue past its deadline like any other.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal, get_args

from sqlalchemy import select
from sqlalchemy.orm import Session

from sharehub import audit
from sharehub.access.consumers import PLATFORM, Caller
from sharehub.access.grants import (
    asked_key,
    asking,
    audit_grant,
    grant_application,
    owe_delivery,
    own_application,
    sees_application,
)
from sharehub.errors import Forbidden, NotFound, WrongState
from sharehub.errors import Refused as GrantError
from sharehub.hub import Hub
from sharehub.metadata.models import Application, ApplicationContest, Grant, Notice, utcnow
from sharehub.notices import addressee, ask, resolve, tell
from sharehub.opendata import publish_catalogue
from sharehub.workdays import due_text

RULE = "application_contest"
Outcome = Literal["granted", "upheld", "referred", "reclassified", "publicized"]
OUTCOMES: tuple[str, ...] = get_args(Outcome)
# The two ends of the platform's review of a contested not-shared classification, where the profile has one
# (Hengyang 16): it can be shared (the provider changes its share attribute), or it cannot (公示告知).
NOT_SHARED_OUTCOMES = ("reclassified", "publicized")
_SAID = {
    "granted": "经协商，提供部门同意授权",
    "upheld": "经协商，维持不予授权",
    "referred": "协商未能一致，已提请",
    "reclassified": "经平台论证审核，该数据可以共享，已要求提供部门变更为共享属性",
    "publicized": "经平台论证审核，该数据不能共享，不予共享的依据予以公示",
}


def contest(hub: Hub, caller: Caller, application_id: int, reason: str) -> Application:
    """The applicant disagrees with the refusal of its application: the platform office is asked to
    coordinate with the provider by the profile's deadline, and the provider is told. Once per application."""
    if len(reason.strip()) < 4:
        raise GrantError("a contest states why the refusal is wrong")
    now = utcnow()
    with hub.db() as s:
        app = own_application(s, caller, application_id)
        if app.contest is not None:
            raise WrongState(f"application {application_id} was contested already ({app.contest.status})")
        if app.status != "refused":
            raise WrongState(f"application {application_id} is {app.status}: only a refusal is contested")
        rule = hub.profile.deadlines[RULE]
        deadline = hub.calendar.deadline(now, rule.working_days)
        app.status = "contested"
        app.contest = ApplicationContest(
            application_id=app.id, reason=reason.strip(), opened_at=now, deadline=deadline, status="open"
        )
        refused = f"{app.decided_by or '平台'}以“{app.decision_reason}”不予授权"
        ask(
            s,
            kind="application_contest",
            department=PLATFORM,
            resource_id=app.resource_id,
            deadline=deadline,
            subject=(
                f"[sharehub] 数据申请 #{app.id}（{app.resource_id}）存在意见分歧，请于 {due_text(deadline)} 前组织协商"
            ),
            body=(
                f"平台管理部门：\n\n{app.department} 对数据申请 #{app.id}（{app.resource_id}）的结果有异议："
                f"{refused}；申请人理由：{app.contest.reason}。\n"
                f"请会同提供部门 {app.provider} 与申请人在 {rule.working_days} 个工作日内协商（依据：{rule.basis}）。\n"
                + (
                    f"不予共享的数据，经论证审核（依据：{hub.profile.workflow.not_shared_review}）：\n"
                    f"可共享：sharehub applications settle {app.id} --outcome reclassified --by NAME --reason TEXT\n"
                    f"不能共享、公示告知：sharehub applications settle {app.id} --outcome publicized --by NAME "
                    "--reason TEXT"
                    if hub.profile.workflow.not_shared_review and app.share_type == "not_shared"
                    else f"维持：sharehub applications settle {app.id} --outcome upheld --by NAME --reason TEXT\n"
                    f"无法协商一致：sharehub applications settle {app.id} --outcome referred --referred-to 部门 "
                    "--by NAME --reason TEXT"
                )
            ),
            keys=[asked_key(app)],
            recipient=hub.settings.platform_email,
        )
        _tell(
            hub,
            s,
            app.provider,
            app,
            f"对 {app.resource_id} 的数据申请 #{app.id}，申请人 {app.department} 对不予授权有异议，理由："
            f"{app.contest.reason}。平台将组织协商，请于 {due_text(deadline)} 前参与。如经重新考虑同意授权：\n"
            f"sharehub applications settle {app.id} --outcome granted --department {app.provider} --by NAME "
            "--reason TEXT [--fields …] [--modes …]",
        )
    audit.record(hub, "application_contest", caller, app.resource_id, result="contested", detail=f"#{app.id}")
    return app


def settle(
    hub: Hub,
    caller: Caller,
    application_id: int,
    outcome: str,
    reason: str,
    *,
    fields: list[str] | None = None,
    modes: list[str] | None = None,
    referred_to: str | None = None,
) -> Application:
    """The outcome of a contest. `granted` is the provider's own reconsidered authorization, on `fields`
    and `modes` (default: those applied for, in the modes the resource offers); `upheld` and `referred`
    (to the government department `referred_to`) are the platform office's, which coordinates."""
    if outcome not in OUTCOMES:
        raise GrantError(f"the outcome is one of {', '.join(OUTCOMES)}; not {outcome!r}")
    if len(reason.strip()) < 4:
        raise GrantError("an outcome states its reasons")
    now = utcnow()
    with hub.db() as s:
        app = s.get(Application, application_id)
        if app is None or not _sees(caller, app):  # as GET /applications/{id} answers those who may not see it
            raise NotFound(f"no application {application_id}")
        if outcome == "granted" and (caller.role != "provider" or caller.department != app.provider):
            raise Forbidden(f"only the providing department ({app.provider}) grants {app.resource_id}")
        if outcome != "granted" and caller.role != "platform":
            raise Forbidden(f"only the platform office settles a contest as {outcome}")
        review = hub.profile.workflow.not_shared_review
        reviewable = review is not None and app.share_type == "not_shared"
        if outcome in NOT_SHARED_OUTCOMES and not reviewable:
            raise GrantError(
                f"{outcome} ends the review of a contested not-shared classification, which {hub.profile.id} "
                + ("has for not-shared data only" if review else "does not have")
            )
        if reviewable and outcome not in NOT_SHARED_OUTCOMES:
            raise GrantError(
                f"under {hub.profile.id} a contested not-shared classification is reviewed and ends reclassified "
                f"or publicized ({review})"
            )
        contest = app.contest
        if app.status != "contested" or contest is None or contest.status != "open":
            raise WrongState(f"application {application_id} is {app.status}: no open contest to settle")
        grant = None
        if outcome == "granted":
            grant = _grant_agreed(hub, s, app, fields, modes, now)
            contest.grant_id = grant.id
        elif outcome == "referred":
            if referred_to is None or len(referred_to.strip()) < 2:
                raise GrantError("a referred contest names the government department asked to coordinate")
            app.status, contest.referred_to = "referred", referred_to.strip()
        else:
            app.status = "refused"
            if outcome == "reclassified":
                _ask_reclassification(hub, s, app, reason)
        contest.status, contest.settled_by, contest.settled_at = outcome, caller.name, now
        contest.outcome_reason = reason.strip()
        for asked in asking(s, app, "application_contest", PLATFORM):
            resolve(asked, now)
        said = f"{_SAID[outcome]}{contest.referred_to or ''}协调，理由：{contest.outcome_reason}"
        if grant is not None:
            said += f"（授权 #{grant.id}：字段 {', '.join(grant.fields)}；方式 {', '.join(grant.modes)}）"
        _tell(hub, s, app.department, app, f"您对数据申请 #{app.id}（{app.resource_id}）的异议：{said}。")
        app.notified_at = now  # the applicant is told of the outcome, as of a decision
        if caller.department != app.provider:
            _tell(hub, s, app.provider, app, f"数据申请 #{app.id}（{app.resource_id}）的意见分歧：{said}。")
    audit.record(hub, "application_contest_outcome", caller, app.resource_id, result=outcome, detail=f"#{app.id}")
    if outcome == "publicized":
        publish_catalogue(hub)  # 公示告知: the open catalogue carries it from now on
    audit_grant(hub, grant, caller.name)
    return app


def _ask_reclassification(hub: Hub, s: Session, app: Application, reason: str) -> None:
    """The platform's review found not-shared data shareable: its provider is asked to change the share
    attribute in the catalogue by the rectification deadline; the notice resolves once the catalogue no
    longer marks it not shared (`settle_reclassifications`)."""
    rule = hub.profile.deadlines["rectification"]
    deadline = hub.calendar.deadline(utcnow(), rule.working_days)
    name, recipient = addressee(hub, app.provider)
    ask(
        s,
        kind="reclassification",
        department=app.provider,
        resource_id=app.resource_id,
        deadline=deadline,
        subject=f"[sharehub] {app.resource_id} 经论证审核可以共享，请于 {due_text(deadline)} 前变更共享属性",
        body=(
            f"{name}：\n\n{app.department} 对 {app.resource_id} 不予共享的异议（数据申请 #{app.id}），经平台管理部门"
            f"论证审核，该数据可以共享：{reason.strip()}\n请在 {due_text(deadline)}（北京时间）前，即 "
            f"{rule.working_days} 个工作日内，在资源目录中变更其共享属性（share.type）并重新发布目录"
            f"（依据：{hub.profile.workflow.not_shared_review}）。目录变更后本通知自动办结。"
        ),
        keys=[asked_key(app)],
        recipient=recipient,
    )


def settle_reclassifications(hub: Hub) -> list[int]:
    """Resolve the reclassification notices whose resource the catalogue no longer marks not shared."""
    now = utcnow()
    with hub.db() as s:
        open_ = s.scalars(select(Notice).where(Notice.kind == "reclassification", Notice.status != "resolved"))
        shared = {r.id for r in hub.catalogue.resources.values() if r.share.type != "not_shared"}
        done = [n for n in open_ if n.resource_id in shared]
        for n in done:
            resolve(n, now)
        return [n.id for n in done]


def _sees(caller: Caller, app: Application) -> bool:
    """Whether the caller settles on the application's contest and may see it: the platform office, or its provider."""
    return caller.role != "consumer" and sees_application(caller, app)


def _grant_agreed(
    hub: Hub, s: Session, app: Application, fields: list[str] | None, modes: list[str] | None, now: datetime
) -> Grant:
    res = hub.catalogue.resource(app.resource_id)
    if res.share.type == "not_shared":
        raise Forbidden(f"{res.id} is not shared ({res.share.legal_basis}): no agreement grants it; refer it")
    offered = set(res.serving_modes)
    agreed_fields = sorted(set(fields or app.fields))
    agreed_modes = sorted(set(modes or [m for m in app.modes if m in offered]))
    beyond = sorted(set(agreed_fields) - set(app.fields)) or sorted(set(agreed_modes) - set(app.modes))
    if beyond:
        raise GrantError(f"application {app.id} did not ask for {beyond[0]}: a grant gives no more than was asked")
    unoffered = sorted(set(agreed_modes) - offered)
    if not agreed_modes or unoffered:
        not_offered = f"; not {unoffered[0]}" if unoffered else ""
        raise GrantError(f"{res.id} is served only as {', '.join(sorted(offered))}{not_offered}")
    grant = grant_application(s, app, now, agreed_fields, agreed_modes)
    owe_delivery(hub, s, app, grant)
    return grant


def _tell(hub: Hub, s: Session, department: str, app: Application, text: str) -> None:
    name, recipient = addressee(hub, department)
    tell(
        s,
        kind="application_contest",
        department=department,
        resource_id=app.resource_id,
        subject=f"[sharehub] 数据申请 #{app.id}（{app.resource_id}）意见分歧",
        body=f"{name}：\n\n{text}",
        recipient=recipient,
    )
