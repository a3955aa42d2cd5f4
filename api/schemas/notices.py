"""Request and response models: notices."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field

from api.schemas.common import Moment


class NoticeOut(BaseModel):
    """A notice to a department, as the department and the platform office see it."""

    id: int
    kind: str
    department: str
    resource_id: str
    run_id: str | None
    status: str
    created_at: Moment
    deadline: Moment
    subject: str
    body: str
    pending_rows: int = Field(
        description="Keys still pending on it: rows to correct (a key delivered twice counts once) or entities."
    )
    resolved_at: Moment | None


class NoticeDetail(NoticeOut):
    """One notice, with the keys still pending on it: the rows (quality) or entities (conflict) to correct."""

    pending_keys: list[str]
    reasons: dict[str, list[str]] = Field(
        description="Quality notices: why each pending row fails, as the latest run that quarantined it found "
        "(a row corrected wrongly shows its new fault). Empty for other notices."
    )
    expected: dict[str, str] = Field(description="What a correct value looks like, for each rule in `reasons`.")
    explained: dict[str, str] = Field(
        description="Each rule in `reasons` as a sentence for a clerk (Chinese, with the field's title and the rule)."
    )


class DisputeIn(BaseModel):
    """A quarantined row the department holds correct: the rule is wrong for it (the platform reviews)."""

    key: str = Field(min_length=1, max_length=400, description="The row key, as the notice lists it.")
    reason: str = Field(min_length=4, max_length=2000)


class DisputeOut(BaseModel):
    """A row a department holds correct against a rule, and the platform office's review of it."""

    id: int
    notice_id: int
    department: str
    resource_id: str | None
    row_key: str
    rules: list[str] | None = Field(description="The rules the row failed: what an acceptance waives for it.")
    reason: str
    created_at: Moment
    review: str = Field(description="pending, accepted or rejected.")
    decided_by: str | None
    decided_at: Moment | None
    decision_reason: str | None


class DisputeDecisionIn(BaseModel):
    """The platform office's review of a disputed row."""

    accept: bool = Field(description="true: waive the rules for that row from the next run; false: back on its notice.")
    by: str = Field(min_length=1, max_length=60, description="Who decided, at the platform office.")
    reason: str = Field(min_length=4, max_length=2000)


class ConflictOut(BaseModel):
    """A disagreement between a department's copy and the authoritative source, values masked."""

    id: int
    kind: str = Field(description="value, status (coded states that differ) or missing_in_base.")
    item: str
    entity_key: str
    resource_id: str = Field(description="The copy that disagrees.")
    department: str
    authority_resource: str
    authority_value: str | None
    other_value: str | None
    status: str = Field(description="open, verifying, decided or closed.")
    first_seen: Moment
    last_seen: Moment
    notice_id: int | None
    reply: str | None = Field(description="The copy holder's reply: its value is right, and why.")
    replied_by: str | None
    replied_at: Moment | None
    authority_reply: str | None = Field(description="The authoritative department's reply, when asked to check.")
    authority_replied_by: str | None
    authority_replied_at: Moment | None
    verifying_by: str | None = Field(description="Who took it up for verification (核实), or replied.")
    authority_notice_id: int | None = Field(description="The notice asking the authoritative department to check.")
    decision: str | None = Field(description="authority or provider: whose value is right.")
    decided_by: str | None
    decision_reason: str | None
    correction_notice_id: int | None = Field(
        description="After a decision: the notice asking the department whose value was wrong to correct it."
    )


class ReplyIn(BaseModel):
    """A department's reply to a conflict: its value is right, and why."""

    by: str = Field(min_length=1, max_length=60, description="Who replies, in the department.")
    reason: str = Field(min_length=4, max_length=2000)


class ConflictsVerifyIn(BaseModel):
    """Conflicts the platform office takes up for verification (核实)."""

    conflict_ids: list[Annotated[int, Field(ge=1, le=2**62)]] = Field(min_length=1, max_length=1000)
    by: str = Field(min_length=1, max_length=60, description="Who verifies, at the platform office.")
    notify_authority: bool = Field(
        default=False,
        description="Also ask the authoritative department to check its value: one notice per authoritative "
        "resource, with the profile's deadline.",
    )


class DecisionIn(BaseModel):
    """The platform office's decision on a conflict: whose value is right, who decided, and why."""

    right: Literal["authority", "provider"] = Field(description="authority: the authoritative source's value.")
    by: str = Field(min_length=1, max_length=60, description="Who decided, at the platform office.")
    reason: str = Field(min_length=4, max_length=2000)


class DecisionsIn(DecisionIn):
    """One decision on many conflicts: the same value right, by the same person, for the same reason."""

    conflict_ids: list[Annotated[int, Field(ge=1, le=2**62)]] = Field(min_length=1, max_length=10_000)


class FilingIn(BaseModel):
    """A department's report ahead (报备) that its next data will be late."""

    due: datetime = Field(description="The new due date, with a time zone; at most 10 working days later.")
    reason: str = Field(min_length=4, max_length=2000, description="Why the data will be late.")


class FilingOut(BaseModel):
    """A delivery filing (报备): the period it concerns and the due date it moved."""

    id: int
    resource_id: str
    department: str
    period_end: Moment = Field(description="The end of the update period whose data will be late.")
    due_before: Moment
    due_after: Moment
    reason: str
    filed_by: str
    filed_at: Moment
