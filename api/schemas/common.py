"""What this level's routes and the routes relayed to the upper level (`api.upstream`) share: request
bodies, and how a moment is answered."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel, Field

from sharehub.metadata.models import as_utc

# Every moment the API answers is in UTC (`…Z`), whether it was read back from the metadata database or
# just computed in China time (a deadline from the working-day calendar).
Moment = Annotated[datetime, AfterValidator(lambda moment: as_utc(moment).astimezone(UTC))]


class VerifyIn(BaseModel):
    """The record's key and the values claimed for it."""

    key: dict[str, str] = Field(description="Every key field of the resource, e.g. {'id_number': '…'}.")
    claims: dict[str, str | int | float | bool | None] = Field(min_length=1, max_length=50)


class BulkIn(BaseModel):
    """What extract to make."""

    incremental: bool = Field(
        default=False, description="Only the rows changed since your last extract of this resource under this grant."
    )


class ObjectionIn(BaseModel):
    """A record the consumer believes wrong (疑义): its key, the fields, and what is wrong."""

    resource_id: str = Field(min_length=3, max_length=100)
    key: dict[str, str]
    fields: list[str] = Field(min_length=1, max_length=50)
    reason: str = Field(min_length=4, max_length=2000)
