"""Disputes: a department holds a quarantined row right and says why; the platform office accepts (the
rule is waived for that row) or rejects it (the row goes back on its notice)."""

from __future__ import annotations

import logging

from sqlalchemy import select

from sharehub import audit
from sharehub.access.consumers import Caller
from sharehub.errors import Invalid, NotFound
from sharehub.hub import Hub
from sharehub.metadata.models import Notice, QuarantinedRow, RowDispute, utcnow
from sharehub.notices.core import (
    _addressed,
)
from sharehub.paging import Page, newest_first
from sharehub.pipeline import reasons as why
from sharehub.pipeline.rowkeys import UNIQUE_RULE

log = logging.getLogger(__name__)


def dispute(
    hub: Hub, notice_id: int, row_key: str, reason: str, department: str | None = None, *, actor: Caller | None = None
) -> Notice:
    """The department confirms a row is correct and the rule wrong: it leaves the notice and awaits review.

    A reason is required; the platform office sees every dispute (`sharehub notices disputes`). Only a
    quality notice lists rows that rules failed; a conflict is answered by correcting the copy, or by
    replying to the conflict.
    """
    if len(reason.strip()) < 4:
        raise Invalid("a dispute needs a reason the platform can review")
    with hub.db() as s:
        notice = _addressed(s, notice_id, department)
        if notice.kind != "quality":
            raise Invalid(f"notice {notice_id} is a {notice.kind} notice: only a quality notice's rows are disputed")
        if row_key not in notice.pending_keys:
            raise NotFound(f"notice {notice_id} has no pending row with that key")
        failed = s.scalar(
            select(QuarantinedRow.reasons).where(
                QuarantinedRow.run_id == notice.run_id, QuarantinedRow.row_key == row_key
            )
        )
        s.add(
            RowDispute(
                notice_id=notice_id,
                department=notice.department,
                resource_id=notice.resource_id,
                row_key=row_key,
                rules=[r for r in failed or [] if why.is_rule(r) and not r.startswith(UNIQUE_RULE)],
                reason=reason.strip(),
            )
        )
        notice.pending_keys = [k for k in notice.pending_keys if k != row_key]
        if not notice.pending_keys:
            notice.status, notice.resolved_at = "resolved", utcnow()
    audit.record(
        hub,
        "notice_dispute",
        actor,
        notice.resource_id,
        record_key=row_key,
        result="disputed",
        detail=f"notice {notice.id}",
    )
    return notice


def decide_dispute(
    hub: Hub, dispute_id: int, *, accept: bool, by: str, reason: str, actor: Caller | None = None
) -> RowDispute:
    """The platform office's decision on a disputed row, with who decided and why.

    Accepted: the rules the row failed are waived for that key of that resource, so later runs let it
    pass those rules (it still has to pass every other one; see `sharehub.pipeline.gate.waivers`).
    Rejected: the row goes back on its notice, which reopens if it had closed, and the department
    must correct it.
    """
    if len(reason.strip()) < 4 or not by.strip():
        raise Invalid("a decision needs the name of who decided and a reason")
    with hub.db() as s:
        found = s.get(RowDispute, dispute_id)
        if found is None:
            raise NotFound(f"no dispute {dispute_id}")
        if found.review != "pending":
            raise Invalid(f"dispute {dispute_id} was already {found.review} by {found.decided_by}")
        found.review = "accepted" if accept else "rejected"
        found.decided_by, found.decided_at, found.decision_reason = by.strip(), utcnow(), reason.strip()
        if not accept:
            notice = s.get(Notice, found.notice_id)
            assert notice is not None
            notice.pending_keys = [*notice.pending_keys, found.row_key]
            if notice.status == "resolved":
                overdue = notice.deadline < utcnow()
                notice.status, notice.resolved_at = ("overdue" if overdue else "open"), None
    audit.record(
        hub,
        "dispute_decision",
        actor,
        found.resource_id,
        record_key=found.row_key,
        result=found.review,
        detail=f"dispute {found.id} on notice {found.notice_id}",
    )
    return found


def list_disputes(
    hub: Hub,
    review: str | None = "pending",
    *,
    department: str | None = None,
    limit: int | None = None,
    before: int | None = None,
    only: int | None = None,
) -> Page[RowDispute]:
    """Disputed rows, newest first: those awaiting the platform office's review, or decided ones (`review`
    None: all); of one department's notices, or every department's."""
    with hub.db() as s:
        q = select(RowDispute)
        if review:
            q = q.where(RowDispute.review == review)
        if department:
            q = q.where(RowDispute.department == department)
        return newest_first(s, q, RowDispute.id, limit, before, only)
