"""Request and response models: access."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from api.schemas.common import Moment
from sharehub.access.contests import Outcome


class AnswerIn(BaseModel):
    """The provider's answer to an objection."""

    outcome: Literal["corrected", "confirmed"]
    reason: str = Field(min_length=4, max_length=2000)


class ObjectionOut(BaseModel):
    """An objection and its answer."""

    id: int
    department: str
    resource_id: str
    provider: str
    key: dict[str, str] = Field(description="The objected record's key: the provider needs it to find the record.")
    fields: list[str]
    reason: str
    status: str
    deadline: Moment
    created_at: Moment
    answered_at: Moment | None
    answer: str | None


class OpenRequestIn(BaseModel):
    """A request from the open-data portal for a resource opened on application (依申请开放) or on
    conditions (有条件开放)."""

    resource_id: str = Field(min_length=3, max_length=100)
    applicant: str = Field(min_length=1, max_length=200, description="The requester, as the portal knows them.")
    fields: list[str] = Field(min_length=1, max_length=100, description="L1 (public) fields of the resource.")
    purpose: str = Field(min_length=4, max_length=2000)
    portal_ref: str | None = Field(default=None, max_length=100, description="The portal's own number for it.")
    accepts_conditions: bool = Field(
        default=False, description="For data opened on conditions (有条件开放): the requester accepts them."
    )


class OpenRequestOut(BaseModel):
    """An open-data request, its answer, and the dataset written for it when approved."""

    id: int
    resource_id: str
    provider: str
    applicant: str
    purpose: str
    fields: list[str]
    portal_ref: str | None
    status: str
    deadline: Moment = Field(description="When the providing department's answer is due.")
    late: bool = Field(description="Answered, or still unanswered, after the deadline.")
    created_at: Moment
    decided_by: str | None
    decided_at: Moment | None
    reason: str | None
    dataset: str | None = Field(description="Object-store path of the data file; manifest.json lies beside it.")
    store_version: int | None
    rows: int | None
    sha256: str | None


class ApplicationIn(BaseModel):
    """An application for data (申请): which fields, how, why, until when."""

    resource_id: str = Field(min_length=3, max_length=100)
    fields: list[str] = Field(min_length=1, max_length=100)
    modes: list[Literal["verification", "query", "bulk"]] = Field(min_length=1)
    purpose: str = Field(min_length=4, max_length=2000)
    valid_until: datetime
    expected_calls_per_day: int | None = Field(
        default=None,
        ge=1,
        le=10_000_000,
        description="The serving calls a day the purpose needs. A day far beyond it is a rectification item.",
    )


class StepIn(BaseModel):
    """A review or decision: approve, or refuse with reasons."""

    approve: bool
    reason: str = Field(default="", max_length=2000)


class RevokeIn(BaseModel):
    """Why a grant ends, or an application is withdrawn."""

    reason: str = Field(min_length=4, max_length=2000)


class ContestIn(BaseModel):
    """Why the applicant holds the refusal wrong (意见分歧, Lichuan 25)."""

    reason: str = Field(min_length=4, max_length=2000)


class ContestOutcomeIn(BaseModel):
    """How a contest was settled: `granted` by the provider (on the fields and modes agreed; default, those
    applied for), or `upheld` or `referred` (to the government department `referred_to`) by the platform office."""

    outcome: Outcome
    reason: str = Field(min_length=4, max_length=2000)
    fields: list[str] | None = Field(default=None, min_length=1, max_length=100)
    modes: list[Literal["verification", "query", "bulk"]] | None = Field(default=None, min_length=1)
    referred_to: str | None = Field(default=None, min_length=2, max_length=200)


class ContestOut(BaseModel):
    """The applicant's contest of a refusal, and how it was settled."""

    reason: str
    opened_at: Moment
    deadline: Moment
    status: str
    settled_by: str | None
    settled_at: Moment | None
    outcome_reason: str | None
    referred_to: str | None
    grant_id: int | None


class ApplicationOut(BaseModel):
    """An application and where it stands; `contest`, the applicant's disagreement with its refusal."""

    id: int
    consumer_id: int
    department: str
    resource_id: str
    provider: str
    fields: list[str]
    modes: list[str]
    purpose: str
    valid_until: Moment
    expected_calls_per_day: int | None = None
    share_type: str
    status: str
    step_deadline: Moment | None
    overdue_at: Moment | None
    review_reason: str | None
    decision_reason: str | None
    notified_at: Moment | None
    contest: ContestOut | None = None


class GrantOut(BaseModel):
    """A grant: fields and modes of one resource for one consumer, until a date."""

    id: int
    application_id: int
    consumer_id: int
    resource_id: str
    fields: list[str]
    modes: list[str]
    purpose: str
    granted_at: Moment
    valid_until: Moment
    expected_calls_per_day: int | None = None
    revoked_at: Moment | None
    revoke_reason: str | None = Field(None, description="Why the grant was ended, when it was.")


class ConsumerIn(BaseModel):
    """A new API caller."""

    name: str = Field(min_length=1, max_length=200)
    department: str = Field(min_length=1, max_length=50)
    role: Literal["platform", "provider", "consumer"] = "consumer"


class ConsumerOut(BaseModel):
    """A registered caller; its key is never shown again."""

    id: int
    name: str
    department: str
    role: str
    key_prefix: str
    created_at: Moment
    revoked_at: Moment | None
    previous_until: Moment | None = Field(
        description="After a rotation with an overlap: until when the replaced key still works."
    )


class ConsumerCreated(ConsumerOut):
    """A caller just made, with its key (shown this once)."""

    api_key: str
