"""`sharehub applications …`, `grants …`, `objections …` and `audit verify`, on the functions the API uses.

The CLI acts for the platform office (review, revoke), for a provider department (`--department`:
decide, answer an objection) or for a registered consumer (`--consumer ID`, apply); every step is
audited like the API's.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import typer
from rich.table import Table

from sharehub.access.consumers import PLATFORM, operator
from sharehub.cli.console import (
    Before,
    Fields,
    Limit,
    Modes,
    Purpose,
    ValidUntil,
    comma_list,
    consumer_caller,
    err,
    last_moment,
    one_of,
    out,
    page_line,
    run_step,
)
from sharehub.cli.console import hub as _hub
from sharehub.workdays import CHINA, china_time, due_text

applications_app = typer.Typer(help="Applications for data: apply, review (platform), decide (provider).")
grants_app = typer.Typer(help="Grants: list and revoke.")
audit_app = typer.Typer(help="The audit chain of every call and step.")
objections_app = typer.Typer(help="Objections (疑义) to records: list, and the provider's answer.")
extracts_app = typer.Typer(help="Bulk extracts (批量复制) in the object store.", no_args_is_help=True)


def _show(apps: list) -> None:
    t = Table("id", "applicant", "resource", "fields", "modes", "status", "step due", "overdue", "reason")
    for a in apps:
        due = due_text(a.step_deadline) if a.step_deadline else ""
        t.add_row(
            str(a.id),
            a.department,
            a.resource_id,
            ", ".join(a.fields),
            ", ".join(a.modes),
            a.status,
            due,
            a.overdue_department or "",
            _reason(a),
        )
    out.print(t)


def _reason(a: Any) -> str:
    """The refusal's (or the review's) reasons, and the contest of a refusal with how it stands."""
    said = a.decision_reason or a.review_reason or ""
    c = a.contest
    if c is None:
        return said
    if c.status == "open":
        return f"{said}; contested: {c.reason} (coordination due {due_text(c.deadline)})"
    where = f" to {c.referred_to}" if c.referred_to else ""
    return f"{said}; contested: {c.reason}; {c.status}{where} by {c.settled_by}: {c.outcome_reason}"


@applications_app.command("apply")
def applications_apply(
    resource_id: str,
    consumer: Annotated[int, typer.Option(help="The applying consumer's id (sharehub consumers list).")],
    fields: Fields,
    modes: Modes,
    purpose: Purpose,
    valid_until: ValidUntil,
    expected_calls_per_day: Annotated[
        int | None, typer.Option(help="The serving calls a day the purpose needs; far beyond it is raised.")
    ] = None,
) -> None:
    """Apply for data; unconditional resources are granted at once, not-shared ones refused with the legal basis."""
    from sharehub.access.grants import apply

    caller = consumer_caller(consumer)
    until = last_moment(valid_until)
    made = run_step(
        lambda: apply(
            _hub(), caller, resource_id, comma_list(fields), comma_list(modes), purpose, until, expected_calls_per_day
        )
    )
    _show([made])


@applications_app.command("list")
def applications_list(
    status: Annotated[
        str | None,
        typer.Option(
            help="review (the platform office's queue), provider, granted, refused, contested (the contests "
            "to coordinate), referred or withdrawn."
        ),
    ] = None,
    limit: Limit = 100,
    before: Before = None,
) -> None:
    """Every application, newest first (the platform office's view)."""
    from sharehub.access.grants import APPLICATION_STATES, list_applications

    one_of("--status", status, APPLICATION_STATES)
    found = list_applications(_hub(), operator("cli"), limit, before, status=status)
    _show(found)
    page_line(found)


@applications_app.command("show")
def applications_show(application_id: int) -> None:
    """One application whole: what was asked, each step with who took it, when and why, the contest of a
    refusal, and the grants it gave."""
    from sharehub.access.grants import list_applications, list_grants

    hub = _hub()
    found = list_applications(hub, operator("cli"), only=application_id)
    if not found:
        err.print(f"no application {application_id}")
        raise typer.Exit(code=1)
    a = found[0]

    def at(moment: datetime | None) -> str:
        return f"{china_time(moment, '%Y-%m-%d %H:%M')} (Beijing)" if moment else ""

    t = Table.grid(padding=(0, 2))
    for label, value in (
        ("application", f"#{a.id}, {a.status}" + (f", due {due_text(a.step_deadline)}" if a.step_deadline else "")),
        ("applicant", f"{a.department} (consumer #{a.consumer_id}), {at(a.created_at)}"),
        ("resource", f"{a.resource_id} of {a.provider} ({a.share_type})"),
        ("fields", ", ".join(a.fields)),
        ("modes", ", ".join(a.modes)),
        ("purpose", a.purpose),
        ("valid until", at(a.valid_until)),
        ("review", f"{a.reviewed_by}, {at(a.reviewed_at)}: {a.review_reason}" if a.reviewed_at else ""),
        ("decision", f"{a.decided_by}, {at(a.decided_at)}: {a.decision_reason}" if a.decided_at else ""),
        ("overdue", f"{at(a.overdue_at)}, against {a.overdue_department}" if a.overdue_at else ""),
        ("applicant told", at(a.notified_at)),
    ):
        if value:
            t.add_row(label, value)
    c = a.contest
    if c is not None:
        t.add_row("contested", f"{at(c.opened_at)}: {c.reason} (coordination due {due_text(c.deadline)})")
        if c.settled_at:
            where = f" to {c.referred_to}" if c.referred_to else ""
            t.add_row("settled", f"{c.status}{where} by {c.settled_by}, {at(c.settled_at)}: {c.outcome_reason}")
    for g in list_grants(hub, operator("cli"), application_id=a.id):
        ended = f", revoked {at(g.revoked_at)}" if g.revoked_at else ""
        t.add_row(f"grant #{g.id}", f"{', '.join(g.fields)}; {', '.join(g.modes)}; until {at(g.valid_until)}{ended}")
    out.print(t)


@applications_app.command("review")
def applications_review(
    application_id: int,
    approve: Annotated[bool, typer.Option("--approve/--refuse", help="Pass the review, or refuse.")],
    by: Annotated[str, typer.Option(help="Who reviewed, at the platform office.")],
    reason: Annotated[str, typer.Option(help="Reasons (required to refuse).")] = "",
) -> None:
    """The platform office's review of a conditional application."""
    from sharehub.access.grants import review

    _show([run_step(lambda: review(_hub(), operator(by), application_id, approve, reason))])


@applications_app.command("decide")
def applications_decide(
    application_id: int,
    department: Annotated[str, typer.Option(help="The providing department deciding.")],
    approve: Annotated[bool, typer.Option("--approve/--refuse", help="Grant, or refuse.")],
    by: Annotated[str, typer.Option(help="Who decided.")],
    reason: Annotated[str, typer.Option(help="Reasons (required to refuse).")] = "",
) -> None:
    """The providing department's decision; the applicant is told."""
    from sharehub.access.grants import decide

    caller = operator(by, department)
    _show([run_step(lambda: decide(_hub(), caller, application_id, approve, reason))])


@applications_app.command("check")
def applications_check() -> None:
    """Mark steps past their working-day deadline overdue against their department, and escalate them;
    mark applicants whose outcome e-mail did not leave in time; tell consumers' departments of grants that
    run out within the renewal lead time."""
    from sharehub.access.clocks import mark_overdue_steps, mark_told_late
    from sharehub.access.reminders import remind_expiring

    hub = _hub()
    late = mark_overdue_steps(hub)
    out.print(f"{len(late)} application step(s) overdue" + (f": {', '.join(map(str, late))}" if late else ""))
    untold = mark_told_late(hub)
    out.print(
        f"{len(untold)} applicant(s) not told within the profile's limit (e-mail not sent)"
        + (f": {', '.join(map(str, untold))}" if untold else "")
    )
    soon = remind_expiring(hub)
    out.print(
        f"{len(soon)} grant(s) expiring soon, their departments told"
        + (f": {', '.join(map(str, soon))}" if soon else "")
    )


@applications_app.command("withdraw")
def applications_withdraw(
    application_id: int,
    consumer: Annotated[int, typer.Option(help="The consumer that applied.")],
    reason: Annotated[str, typer.Option(help="Why.")],
) -> None:
    """Take back an application still under review or awaiting the provider's decision, or the contest of
    its refusal (the refusal then stands)."""
    from sharehub.access.grants import withdraw

    a = run_step(lambda: withdraw(_hub(), consumer_caller(consumer), application_id, reason))
    out.print(f"application {a.id} on {a.resource_id} " + ("withdrawn" if a.status == "withdrawn" else "uncontested"))


@applications_app.command("contest")
def applications_contest(
    application_id: int,
    consumer: Annotated[int, typer.Option(help="The consumer that applied.")],
    reason: Annotated[str, typer.Option(help="Why the refusal is wrong.")],
) -> None:
    """Contest the refusal of an application (意见分歧, Lichuan 25): the platform office coordinates with the
    provider within the profile's working days."""
    from sharehub.access.contests import contest

    _show([run_step(lambda: contest(_hub(), consumer_caller(consumer), application_id, reason))])


@applications_app.command("settle")
def applications_settle(
    application_id: int,
    outcome: Annotated[
        str,
        typer.Option(
            help="granted (the provider, with --department), upheld or referred (the platform office, "
            "referred with --referred-to)."
        ),
    ],
    by: Annotated[str, typer.Option(help="Who settles it.")],
    reason: Annotated[str, typer.Option(help="The reasons, as agreed or not.")],
    department: Annotated[str | None, typer.Option(help="The providing department, to grant.")] = None,
    fields: Annotated[str | None, typer.Option(help="granted: the comma-separated fields agreed.")] = None,
    modes: Annotated[str | None, typer.Option(help="granted: the comma-separated modes agreed.")] = None,
    referred_to: Annotated[str | None, typer.Option(help="referred: the government department asked.")] = None,
) -> None:
    """Settle a contested refusal; both sides are told."""
    from sharehub.access.contests import OUTCOMES, settle

    one_of("--outcome", outcome, OUTCOMES)
    caller = operator(by, department or PLATFORM)
    agreed_fields = comma_list(fields) if fields else None
    agreed_modes = comma_list(modes) if modes else None
    settled = run_step(
        lambda: settle(
            _hub(),
            caller,
            application_id,
            outcome,
            reason,
            fields=agreed_fields,
            modes=agreed_modes,
            referred_to=referred_to,
        )
    )
    _show([settled])


@grants_app.command("list")
def grants_list(
    state: Annotated[str | None, typer.Option(help="active, revoked or expired.")] = None,
    resource: Annotated[str | None, typer.Option(help="Only this resource's.")] = None,
    limit: Limit = 100,
    before: Before = None,
) -> None:
    """Every grant, newest first."""
    from sharehub.access.consumers import list_consumers
    from sharehub.access.grants import GRANT_STATES, list_grants

    one_of("--state", state, GRANT_STATES)
    hub = _hub()
    who = {c.id: f"{c.department} · {c.name} (#{c.id})" for c in list_consumers(hub)}
    t = Table("id", "consumer", "resource", "fields", "modes", "until", "revoked")
    found = list_grants(hub, operator("cli"), limit, before, state=state, resource_id=resource)
    for g in found:
        revoked = china_time(g.revoked_at) if g.revoked_at else ""
        until = china_time(g.valid_until)
        consumer = who.get(g.consumer_id, f"#{g.consumer_id}")
        t.add_row(str(g.id), consumer, g.resource_id, ", ".join(g.fields), ", ".join(g.modes), until, revoked)
    out.print(t)
    page_line(found)


@grants_app.command("revoke")
def grants_revoke(
    grant_id: int,
    by: Annotated[str, typer.Option(help="Who revokes, at the platform office.")],
    reason: Annotated[str, typer.Option(help="Why.")],
) -> None:
    """End a grant at once."""
    from sharehub.access.grants import revoke_grant

    g = run_step(lambda: revoke_grant(_hub(), operator(by), grant_id, reason))
    out.print(f"grant {g.id} on {g.resource_id} revoked")


@objections_app.command("list")
def objections_list(
    department: Annotated[str | None, typer.Option(help="Only those on this provider department's data.")] = None,
    status: Annotated[str | None, typer.Option(help="open (the answers owed), corrected or confirmed.")] = None,
    limit: Limit = 100,
    before: Before = None,
) -> None:
    """Objections, newest first, with the record key the provider needs to find the record."""
    from sharehub.access.objections import OBJECTION_STATES, key_fields, list_objections

    one_of("--status", status, OBJECTION_STATES)
    hub = _hub()
    caller = operator("cli", department or PLATFORM)
    t = Table("id", "from", "resource", "record", "fields", "reason", "status", "due", "answer")
    found = list_objections(hub, caller, limit, before, status=status)
    for o in found:
        key = ", ".join(f"{k}={v}" for k, v in key_fields(hub, o).items())
        due = due_text(o.deadline) if o.status == "open" else ""
        t.add_row(
            str(o.id), o.department, o.resource_id, key, ", ".join(o.fields), o.reason, o.status, due, o.answer or ""
        )
    out.print(t)
    page_line(found)


@objections_app.command("answer")
def objections_answer(
    objection_id: int,
    department: Annotated[str, typer.Option(help="The providing department answering.")],
    outcome: Annotated[str, typer.Option(help="corrected (the source is fixed) or confirmed (the record stands).")],
    by: Annotated[str, typer.Option(help="Who answers.")],
    reason: Annotated[str, typer.Option(help="What was found; the consumer is told.")],
) -> None:
    """The provider's answer to an objection; the objecting department is told."""
    from sharehub.access.objections import answer

    made = run_step(lambda: answer(_hub(), operator(by, department), objection_id, outcome, reason))
    out.print(f"objection {made.id} on {made.resource_id}: {made.status}; {made.department} is told")


@audit_app.command("list")
def audit_list(
    action: Annotated[str | None, typer.Option(help="e.g. verification, query, extract, grant_revoke.")] = None,
    resource: Annotated[str | None, typer.Option(help="Only calls on this resource.")] = None,
    consumer: Annotated[int | None, typer.Option(help="Only this caller's (0: the command line's).")] = None,
    key: Annotated[str | None, typer.Option(help="Only this record key; key fields joined by |.")] = None,
    result: Annotated[str | None, typer.Option(help="Only this outcome, e.g. denied (the refusals).")] = None,
    since: Annotated[datetime | None, typer.Option(formats=["%Y-%m-%d"], help="From this day (China time).")] = None,
    until: Annotated[datetime | None, typer.Option(formats=["%Y-%m-%d"], help="Up to this day, inclusive.")] = None,
    limit: Limit = 50,
    before: Before = None,
) -> None:
    """Trace who called what, when, under which grant and with what result, newest first. Record keys are
    shown masked (L3/L4 key fields); reading the trail is itself audited, with the key looked for."""
    from datetime import timedelta

    from sharehub.audit import shown_key, trail

    hub = _hub()
    start = None if since is None else since.replace(tzinfo=CHINA)
    end = None if until is None else until.replace(tzinfo=CHINA) + timedelta(days=1)
    found = trail(
        hub,
        operator("cli"),
        action=action,
        resource_id=resource,
        consumer_id=consumer,
        record_key=key,
        result=result,
        since=start,
        until=end,
        limit=limit,
        before=before,
    )
    t = Table("id", "at (China)", "action", "caller", "resource", "grant", "record", "result", "bytes", "detail")
    for e in found:
        who = f"{e.department or '-'} #{e.consumer_id}" if e.consumer_id is not None else "-"
        t.add_row(
            str(e.id),
            china_time(e.at, "%Y-%m-%d %H:%M:%S"),
            e.action,
            who,
            e.resource_id or "",
            "" if e.grant_id is None else str(e.grant_id),
            shown_key(hub, e.resource_id, e.record_key) or "",
            e.result,
            f"{e.response_bytes:,}",
            e.detail or "",
        )
    out.print(t)
    page_line(found)


@audit_app.command("verify")
def audit_verify() -> None:
    """Walk the hash chain and hold it against every sealed checkpoint in the object store; exit 1 naming the
    first entry that was edited, removed, reordered or rewritten."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from sharehub.audit import verify

    columns = (TextColumn("audit chain"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=err, transient=True) as bar:
        walk = bar.add_task("entries", total=None)
        result = verify(_hub(), on_entries=lambda done, total: bar.update(walk, completed=done, total=total))
    if result.ok:
        agreed = f"agreeing with {result.checkpoints:,} sealed checkpoints"
        out.print(f"audit chain intact: {result.entries:,} entries, {agreed}")
        return
    err.print(f"[red]audit chain broken at entry {result.first_bad}: {result.reason}[/red]")
    raise typer.Exit(code=1)


@audit_app.command("checkpoint")
def audit_checkpoint() -> None:
    """Seal the chain's head with the platform's seal and write it to the object store (an anchor outside
    the database, which `audit verify` holds the chain against); the hourly DAG does this too."""
    from sharehub.anchors import checkpoint

    made = checkpoint(_hub())
    if made is None:
        out.print("the audit chain is empty: nothing to anchor")
        return
    out.print(f"audit chain anchored at entry {made.last_id:,}: {made.path}")


@extracts_app.command("list")
def extracts_list(
    consumer: Annotated[int | None, typer.Option(help="Only this consumer's.")] = None,
    resource: Annotated[str | None, typer.Option(help="Only of this resource.")] = None,
    limit: Limit = 100,
    before: Annotated[
        str | None,
        typer.Option(help="Only extracts made before this one: the next page, as the line under the list names it."),
    ] = None,
) -> None:
    """Bulk extracts, newest first: who copied what, when, and whether its files are still kept."""
    from sharehub.access.consumers import list_consumers
    from sharehub.serving.bulk import list_extracts

    hub = _hub()
    who = {c.id: f"{c.department} · {c.name} (#{c.id})" for c in list_consumers(hub)}
    found = run_step(
        lambda: list_extracts(
            hub, operator("cli"), resource_id=resource, consumer_id=consumer, limit=limit, before=before
        )
    )
    t = Table("id", "consumer", "resource", "grant", "rows", "store", "made", "files")
    for e in found:
        store = f"v{e.store_version}" if e.since_version is None else f"v{e.since_version}→v{e.store_version}"
        files = f"removed {china_time(e.removed_at)}" if e.removed_at else "kept"
        consumer_label = who.get(e.consumer_id, f"#{e.consumer_id}")
        t.add_row(
            e.id, consumer_label, e.resource_id, str(e.grant_id), f"{e.rows:,}", store, china_time(e.created_at), files
        )
    out.print(t)
    page_line(found)


@extracts_app.command("prune")
def extracts_prune() -> None:
    """Remove from the object store the files of extracts whose grant ended, and of extracts older than
    SHAREHUB_EXTRACT_KEEP_DAYS (the daily DAG does this too); each removal is audited."""
    from sharehub.serving.bulk import prune

    hub = _hub()
    removed = prune(hub)
    out.print(
        f"{sum(removed.values())} extract(s) removed: {removed['grant_ended']} of ended grants, "
        f"{removed['aged']} older than {hub.settings.extract_keep_days} day(s)"
    )
