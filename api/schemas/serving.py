"""Request and response models: serving."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from api.schemas.common import Moment


class VerifyOut(BaseModel):
    """Whether every claim matches, and each one; never a stored value."""

    match: bool
    fields: dict[str, bool]
    found: bool | None = Field(
        None,
        description="Whether a record has this key: only for a caller that also holds a query grant on the "
        "resource (it could learn that by querying). To any other caller a missing record answers like a "
        "record whose values all differ, and this field is absent.",
    )


class QueryOut(BaseModel):
    """The granted fields of one record, masked by their classification."""

    resource_id: str
    version: int | None
    as_of: Moment | None
    record: dict[str, Any]
    under_objection: list[str] = Field(
        default_factory=list,
        description="Granted fields of this record that an open objection disputes (疑义校核中): its provider "
        "is checking them, and meanwhile they are served as they stand (Lichuan 23: business goes on).",
    )


class ExtractOut(BaseModel):
    """A bulk extract and a fresh short-lived download URL."""

    id: str
    resource_id: str
    grant_id: int
    rows: int
    sha256: str
    store_version: int
    since_version: int | None
    columns: list[str]
    url: str
    expires_at: Moment


class ExtractListed(BaseModel):
    """An extract as a list shows it: what it holds, for whom, and whether its files are still kept (a fresh
    download URL comes from `GET /bulk/extracts/{id}`)."""

    id: str
    resource_id: str
    grant_id: int
    consumer_id: int
    rows: int
    sha256: str
    store_version: int
    since_version: int | None
    columns: list[str]
    created_at: Moment
    removed_at: Moment | None
