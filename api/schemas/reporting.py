"""Request and response models: reporting."""

from __future__ import annotations

from pydantic import BaseModel, Field

from api.schemas.common import Moment
from sharehub.reporting.freshness import FreshState


class AuditOut(BaseModel):
    """One entry of the audit trail. The record key is shown whole to the platform office only; to a
    department or a consumer its L3/L4 key fields are masked."""

    id: int
    at: Moment
    action: str
    consumer_id: int | None = Field(description="The caller; 0 is the hub's operator at the command line.")
    department: str | None
    resource_id: str | None
    grant_id: int | None
    purpose: str | None
    record_key: str | None = Field(description="The key that was asked for, key fields joined by |.")
    result: str
    response_bytes: int
    detail: str | None


class FreshnessOut(BaseModel):
    """How current one resource's store is: delivered for its latest update period, due, late or never."""

    resource_id: str
    provider: str
    frequency: str
    state: FreshState
    period_end: Moment = Field(description="The end of the update period the state is about.")
    due: Moment = Field(description="That period's delivery deadline (passed, when late).")
    delivered_at: Moment | None = Field(description="When the last successful run ended.")
    store_version: int | None
    latest_status: str | None = Field(description="The latest run's status: running, succeeded or failed.")
    latest_step: str | None
    latest_started: Moment | None


class StatsOut(BaseModel):
    """One department's figures (Lichuan 31): what it provides, how well, and what it uses."""

    department: str
    resources: int = Field(description="Catalogue resources it provides.")
    runs: int = Field(description="Pipeline runs of its resources.")
    runs_succeeded: int
    rows_landed: int
    rows_quarantined: int
    notices_open: int = Field(description="Notices to it still open.")
    notices_overdue: int
    deliveries_late: int = Field(description="Deliveries it missed that are still outstanding.")
    conflicts_open: int = Field(description="Conflicts where its copy disagrees with the authoritative source.")
    application_steps_overdue: int = Field(description="Application steps it let run past their deadline.")
    objections_received: int
    open_requests_late: int = Field(
        description="Open-data requests on its resources answered, or still unanswered, past their deadline."
    )
    catalogue_drift: int = Field(
        description="Its resources whose latest run found the source no longer as the catalogue describes it."
    )
    calls_made: int = Field(description="Serving calls it made as a consumer, refused ones included.")
    calls_answered: int = Field(description="Serving calls on its resources that were answered (not refused).")
    calls_upstream: int = Field(description="Serving calls it made to the upper-level platform through this one.")
    use_beyond_declared: int = Field(
        description="Grant-days on which its consumers' calls ran far beyond the volume their applications declared."
    )
    rectify: list[str] = Field(
        description="What it must rectify: catalogue_not_updated, data_late, notices_overdue, "
        "inconsistent_with_source, application_steps_overdue, open_requests_late, use_beyond_grant (each while its "
        "figure is above zero)."
    )


class ScoreOut(BaseModel):
    """One provider department's score for the period (Zhejiang 35; Hengyang 25), each part 0–100; a part
    with nothing to measure in the period is null and left out of the score (see `sharehub.reporting.scores`)."""

    department: str
    score: float | None = Field(description="The mean of the parts that could be measured.")
    rank: int | None = Field(description="1 for the best score; equal scores share a rank.")
    quantity: float | None = Field(description="Share of its resources that delivered in the period.")
    timeliness: float | None = Field(description="Share of update periods due in the period delivered on time.")
    quality: float | None = Field(description="Share of rows landed in the period that passed the quality gate.")
    use: float | None = Field(description="Share of its shared resources that answered a serving call.")
    figures: dict[str, int] = Field(description="The counts each part is computed from.")
