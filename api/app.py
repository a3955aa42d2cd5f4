"""The FastAPI application: catalogue, applications and grants, verification and query, notices, callers.

Every route except health and the OpenAPI document needs `Authorization: Bearer <api key>`. One
dependency (`get_caller`) resolves the caller; routes state the roles they admit with `require`; one
dependency (`granted(mode)`, on top of `get_caller`) resolves the grant of every serving call. Every
serving call, allowed or not, is written to the audit chain.
"""

from __future__ import annotations

import gc
import logging
import threading
import time
from collections.abc import AsyncIterator, Callable, Hashable
from contextlib import asynccontextmanager
from datetime import date, datetime, timedelta
from typing import Annotated, Any, Literal, NamedTuple, TypeVar

from fastapi import Depends, FastAPI, HTTPException, Path, Query, Request, Response, status
from fastapi.dependencies.models import Dependant
from fastapi.exceptions import RequestValidationError
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field, ValidationError

from api.errors import notice_step, step
from api.limits import BodyLimit
from api.openapi import document_answers
from api.paging import PAGED, ConflictPage, ListPage, paged
from api.schemas import BulkIn, Moment, ObjectionIn, VerifyIn
from api.sharing import ProtocolError, protocol_error
from api.sharing import build_router as build_sharing_router
from api.upstream import build_router as build_upstream_router
from sharehub import audit
from sharehub.bulk import Issued, list_extracts
from sharehub.bulk import create as bulk_create
from sharehub.bulk import downloaded as bulk_downloaded
from sharehub.bulk import get as bulk_get
from sharehub.bulk import issue_url as bulk_issue
from sharehub.bulk import open_signed as bulk_open
from sharehub.bulletin import published as published_bulletins
from sharehub.bulletin import read as read_bulletin
from sharehub.catalogue.models import Resource
from sharehub.consistency.check import decide as decide_conflict
from sharehub.consistency.check import decide_many as decide_conflicts
from sharehub.consistency.check import list_conflicts
from sharehub.consistency.check import reply as reply_conflict
from sharehub.consistency.check import verify as verify_conflicts
from sharehub.consumers import AuthError, Caller, add_consumer, authenticate, list_consumers, rotate
from sharehub.contests import Outcome, contest, settle
from sharehub.freshness import FreshState
from sharehub.freshness import freshness as resource_freshness
from sharehub.grants import (
    Access,
    ApplicationState,
    Forbidden,
    GrantState,
    active_grant,
    apply,
    decide,
    list_applications,
    list_grants,
    review,
    revoke_grant,
    withdraw,
)
from sharehub.hub import Hub
from sharehub.metadata import fast
from sharehub.metadata.models import Consumer, Notice, Objection, OpenRequest
from sharehub.notices import (
    acknowledge,
    decide_dispute,
    dispute,
    expected,
    explained,
    get_notice,
    list_disputes,
    list_notices,
    pending_reasons,
)
from sharehub.objections import ObjectionState, key_fields, list_objections, raise_objection, under_objection
from sharehub.objections import answer as answer_objection
from sharehub.openrequests import OpenRequestState, file_request
from sharehub.openrequests import decide_request as decide_open_request
from sharehub.openrequests import late as late_answer
from sharehub.openrequests import list_requests as list_open_requests
from sharehub.openrequests import withdraw_request as withdraw_open_request
from sharehub.paging import Page
from sharehub.ratelimit import SharedRateLimit
from sharehub.revocation import revoke_consumer
from sharehub.scores import as_dict as score_dict
from sharehub.scores import department_scores
from sharehub.seal import ALGORITHM as SEAL_ALGORITHM
from sharehub.seal import key_id as seal_key_id
from sharehub.seal import public_pem as seal_public_pem
from sharehub.service import BadRequest, masked, request_key, verify
from sharehub.serving import key_of, lookup_as_of
from sharehub.settings import Settings, get_settings
from sharehub.stats import department_stats

_hubs: dict[int, tuple[Settings, Hub]] = {}
_Model = TypeVar("_Model", bound=BaseModel)
_Row = TypeVar("_Row")


async def get_hub() -> Hub:
    """The hub configured by the environment, built once per settings (catalogue changes need a restart)."""
    settings = get_settings()
    found = _hubs.get(id(settings))
    if found is None:
        found = _hubs[id(settings)] = (settings, Hub(settings))
    return found[1]


HubDep = Annotated[Hub, Depends(get_hub)]
PathId = Annotated[int, Path(ge=1, le=2**62, description="A row id (positive, within a 64-bit integer).")]
BEARER = {
    "type": "http",
    "scheme": "bearer",
    "description": "An API key from `sharehub consumers add` or POST /consumers.",
}


async def get_caller(request: Request) -> Caller:
    """The caller behind the bearer key, or 401: the one dependency that resolves callers, on every route.

    It reads the header itself; FastAPI's security classes would put a layer of dependencies on every
    serving call. The OpenAPI document still says which routes take the key (`_document_bearer`)."""
    hub = await get_hub()
    with fast.raw(hub.settings.metadata_url).checked_once():
        return _caller(hub, request.headers.get("authorization"))


def _caller(hub: Hub, authorization: str | None) -> Caller:
    scheme, _, key = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "an API key is required", {"WWW-Authenticate": "Bearer"})
    try:
        return authenticate(hub, key.strip())
    except AuthError as exc:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, str(exc), {"WWW-Authenticate": "Bearer"}) from None


CallerDep = Annotated[Caller, Depends(get_caller)]


def require(*roles: str) -> Callable[..., Any]:
    """A dependency that admits only callers of these roles (403 otherwise, saying which roles may)."""

    async def check(caller: CallerDep) -> Caller:
        if caller.role not in roles:
            raise HTTPException(status.HTTP_403_FORBIDDEN, f"this route is for the {' or '.join(roles)} role")
        return caller

    return check


ProviderDep = Annotated[Caller, Depends(require("provider"))]
DepartmentDep = Annotated[Caller, Depends(require("platform", "provider"))]  # a department, or the platform office


class Served(NamedTuple):
    """What a serving call runs under: the hub, the caller, and its grant for the resource in the mode."""

    hub: Hub
    caller: Caller
    access: Access


# A lower-level platform names, on each call it relays, the grant it holds for the department that asked.
GRANT_HEADER = "x-sharehub-grant"
# The verification route reads its resource id from the path itself (FastAPI's parameter handling
# was a tenth of the hot path); the document still names the parameter.
RESOURCE_IN_PATH: dict[str, Any] = {
    "parameters": [{"name": "resource_id", "in": "path", "required": True, "schema": {"type": "string"}}]
}


def granted(mode: str) -> Callable[..., Any]:
    """The dependency that resolves the grant of every serving call: the caller's (from `get_caller`, 401
    without a valid key) for this resource in this mode, or 403 saying why not. It reads the resource id
    from the path, not as a declared parameter: on the verification hot path FastAPI's cost per
    parameter is not small. A lower-level platform relaying a department's call names the grant it holds
    for that department (`X-Sharehub-Grant: <id>`), and then only that grant counts."""

    async def resolve(request: Request, caller: CallerDep) -> Served:
        resource_id = request.path_params["resource_id"]
        hub = await get_hub()
        named = request.headers.get(GRANT_HEADER)
        with fast.raw(hub.settings.metadata_url).checked_once():
            try:
                if named is not None and not (named.isascii() and named.isdigit() and len(named) <= 18):
                    raise Forbidden(f"{GRANT_HEADER} names a grant by its id, a number")
                grant_id = int(named) if named is not None else None
                return Served(hub, caller, active_grant(hub, caller, resource_id, mode, grant_id))
            except Forbidden as exc:
                refused = str(exc)
        await audit.arecord(hub, mode, caller, resource_id, result="denied", detail=refused)
        raise HTTPException(status.HTTP_403_FORBIDDEN, refused)

    return resolve


REFUSED_LINKS_PER_MINUTE = 30  # refused download links audited per address and minute; then 429


class RateLimit:
    """A token bucket per key (a consumer, an address): `per_minute` tokens a minute, refilled continuously."""

    def __init__(self) -> None:
        self._buckets: dict[tuple[Hashable, int], tuple[float, float]] = {}
        self._lock = threading.Lock()

    def _tokens(self, key: Hashable, per_minute: int, now: float) -> float:
        tokens, last = self._buckets.get((key, per_minute), (float(per_minute), now))
        return min(float(per_minute), tokens + (now - last) * per_minute / 60.0)

    def allow(self, key: Hashable, per_minute: int) -> bool:
        """Take one token if there is one."""
        now = time.monotonic()
        with self._lock:
            tokens = self._tokens(key, per_minute, now)
            if tokens < 1:
                self._buckets[(key, per_minute)] = (tokens, now)
                return False
            self._buckets[(key, per_minute)] = (tokens - 1, now)
            return True

    def spent(self, key: Hashable, per_minute: int) -> bool:
        """Whether the key has no token left, without taking one."""
        with self._lock:
            return self._tokens(key, per_minute, time.monotonic()) < 1


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
    """A request from the open-data portal for a resource opened on application (依申请开放)."""

    resource_id: str = Field(min_length=3, max_length=100)
    applicant: str = Field(min_length=1, max_length=200, description="The requester, as the portal knows them.")
    fields: list[str] = Field(min_length=1, max_length=100, description="L1 (public) fields of the resource.")
    purpose: str = Field(min_length=4, max_length=2000)
    portal_ref: str | None = Field(default=None, max_length=100, description="The portal's own number for it.")


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
    revoked_at: Moment | None
    revoke_reason: str | None = Field(None, description="Why the grant was ended, when it was.")


class FieldOut(BaseModel):
    """A field as the catalogue publishes it."""

    name: str
    title: str
    type: str
    classification: str
    masking: str


class ResourceOut(BaseModel):
    """A catalogue entry as consumers see it (目录)."""

    id: str
    title: str
    description: str
    provider: str
    share_type: str
    conditions: str | None
    legal_basis: str | None
    serving_modes: list[str]
    update_frequency: str
    key: list[str]
    fields: list[FieldOut]


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
    rectify: list[str] = Field(
        description="What it must rectify: catalogue_not_updated, data_late, notices_overdue, "
        "inconsistent_with_source, application_steps_overdue, open_requests_late (each while its figure is "
        "above zero)."
    )


class ScoreOut(BaseModel):
    """One provider department's score for the period (Zhejiang 35; Hengyang 25), each part 0–100; a part
    with nothing to measure in the period is null and left out of the score (see `sharehub.scores`)."""

    department: str
    score: float | None = Field(description="The mean of the parts that could be measured.")
    rank: int | None = Field(description="1 for the best score; equal scores share a rank.")
    quantity: float | None = Field(description="Share of its resources that delivered in the period.")
    timeliness: float | None = Field(description="Share of update periods due in the period delivered on time.")
    quality: float | None = Field(description="Share of rows landed in the period that passed the quality gate.")
    use: float | None = Field(description="Share of its shared resources that answered a serving call.")
    figures: dict[str, int] = Field(description="The counts each part is computed from.")


class SealOut(BaseModel):
    """The public key that checks the platform's electronic seal on manifests and bulletins."""

    algorithm: str
    key_id: str
    public_key: str = Field(description="PEM (SubjectPublicKeyInfo).")


class Health(BaseModel):
    """Whether the hub's own dependencies answer."""

    status: str
    catalogue_version: int
    resources: int
    metadata: str
    object_store: str


@asynccontextmanager
async def _lifespan(_app: FastAPI) -> AsyncIterator[None]:
    """Load the hub before the first call: the catalogue read and validated, the metadata database
    migrated and connected on the event loop's thread (otherwise the first calls after a start waited
    ~100 ms for them). Then take everything long-lived out of the cyclic garbage collector: its full
    passes over the catalogue, the hub and the libraries paused every request for 100–200 ms about
    once a second under load (bench/serving's p99)."""
    hub = await get_hub()
    _ = hub.catalogue
    fast.raw(hub.settings.metadata_url).connection()
    gc.collect()
    gc.freeze()
    yield
    gc.unfreeze()


class QueryStringHidden(logging.Filter):
    """uvicorn's access log, with each query string replaced by `?…`: a query's key is personal data (an
    ID number) and a download link carries its signature there; the path, method and status stay."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite the access line's path argument (uvicorn logs client, method, path, version, status)."""
        args = record.args
        if isinstance(args, tuple) and len(args) == 5 and isinstance(args[2], str) and "?" in args[2]:
            record.args = (*args[:2], args[2].split("?", 1)[0] + "?…", *args[3:])
        return True


def _hide_query_strings() -> None:
    access = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, QueryStringHidden) for f in access.filters):
        access.addFilter(QueryStringHidden())


def create_app() -> FastAPI:
    """Build the application."""
    _hide_query_strings()
    app = FastAPI(
        title="sharehub",
        version="0.1.0",
        description="Government data-sharing hub: verification, query and bulk copy under grants.",
        lifespan=_lifespan,
    )
    app.add_middleware(BodyLimit)
    app.add_exception_handler(ProtocolError, protocol_error)

    @app.get("/health", response_model=Health, tags=["health"])
    def health(hub: HubDep) -> Health:
        """Catalogue loaded, metadata database migrated and object store reachable."""
        hub.store.exists("")  # raises if the object store cannot be reached; creates nothing
        return Health(
            status="ok",
            catalogue_version=hub.catalogue_version,
            resources=len(hub.catalogue.resources),
            metadata=hub.settings.metadata_url.split("://", 1)[0],
            object_store=hub.settings.storage_url.split("://", 1)[0],
        )

    @app.get("/health/noop", tags=["health"])
    async def noop() -> dict[str, bool]:
        """Does nothing: the baseline that bench/serving compares the serving routes with."""
        return {"ok": True}

    platform_only = Depends(require("platform"))

    @app.get("/consumers", response_model=list[ConsumerOut], tags=["consumers"], dependencies=[platform_only])
    def consumers(hub: HubDep, department: str | None = None) -> list[ConsumerOut]:
        """Registered callers (platform office only)."""
        return [ConsumerOut.model_validate(c, from_attributes=True) for c in list_consumers(hub, department)]

    @app.post(
        "/consumers",
        response_model=ConsumerCreated,
        status_code=201,
        tags=["consumers"],
        dependencies=[platform_only],
        responses={422: {"description": "Unknown department or role"}},
    )
    def consumer_add(hub: HubDep, caller: CallerDep, body: ConsumerIn) -> ConsumerCreated:
        """Register a caller and return its API key, this once (platform office only)."""
        try:
            made, key = add_consumer(hub, body.name, body.department, body.role, actor=caller)
        except ValueError as exc:
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from None
        return _created(made, key)

    @app.post(
        "/consumers/me/rotate",
        response_model=ConsumerCreated,
        tags=["consumers"],
        responses={401: {"description": "No valid API key"}, 422: {"description": "Overlap out of range"}},
    )
    def consumer_rotate_own(hub: HubDep, caller: CallerDep, overlap_minutes: OverlapQuery = 0) -> ConsumerCreated:
        """A new key for the caller itself, shown this once: the key this call used stops working at once,
        or after `overlap_minutes`, so that the new one can be deployed without a gap. Its applications and
        grants stay, since its id does."""
        made, key = _rotated(lambda: rotate(hub, caller.id, actor=caller, overlap=timedelta(minutes=overlap_minutes)))
        return _created(made, key)

    @app.post(
        "/consumers/{consumer_id}/rotate",
        response_model=ConsumerCreated,
        tags=["consumers"],
        dependencies=[platform_only],
        responses={
            404: {"description": "No such consumer"},
            422: {"description": "Overlap out of range, or asked for a revoked key"},
        },
    )
    def consumer_rotate(
        hub: HubDep, caller: CallerDep, consumer_id: PathId, overlap_minutes: OverlapQuery = 0
    ) -> ConsumerCreated:
        """A new key for a caller, shown this once (platform office only): the old key stops working at once,
        or after `overlap_minutes`; its grants stay. A revoked caller is reinstated with the new key (and
        no overlap)."""
        made, key = _rotated(lambda: rotate(hub, consumer_id, actor=caller, overlap=timedelta(minutes=overlap_minutes)))
        return _created(made, key)

    @app.post(
        "/consumers/{consumer_id}/revoke",
        response_model=ConsumerOut,
        tags=["consumers"],
        dependencies=[platform_only],
        responses={404: {"description": "No such consumer"}},
    )
    def consumer_revoke(
        hub: HubDep,
        caller: CallerDep,
        consumer_id: PathId,
        reason: Annotated[str, Query(max_length=500, description="Why, as the ended grants will say.")] = "",
    ) -> ConsumerOut:
        """Revoke a caller at once (platform office only): its key and Delta Sharing token are refused, every
        grant it holds ends with the reason, and its extracts leave the object store, so no link still serves."""
        try:
            revoked = revoke_consumer(hub, consumer_id, actor=caller, reason=reason)
            return ConsumerOut.model_validate(revoked, from_attributes=True)
        except LookupError as exc:
            raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None

    @app.get("/notices", response_model=list[NoticeOut], tags=["notices"], responses=PAGED)
    def notices(
        hub: HubDep,
        caller: DepartmentDep,
        request: Request,
        response: Response,
        page: ListPage,
        department: Annotated[str | None, Query(max_length=50)] = None,
        notice_status: Annotated[str | None, Query(alias="status", max_length=20)] = None,
        kind: Annotated[
            str | None,
            Query(
                max_length=30,
                description="quality, conflict, delivery, objection, objection_answer, application, "
                "application_contest, grant_expiring, open_request, conflict_decision, upstream_request, "
                "upstream_objection, bulletin or escalation.",
            ),
        ] = None,
    ) -> list[NoticeOut]:
        """Notices, newest first. A provider department sees only its own; the platform office sees all."""
        department = _own_department(caller, department, "notices")
        found = list_notices(hub, department, notice_status, page.limit, page.before, kind)
        paged(request, response, found)
        return [_notice_out(n) for n in found]

    @app.get(
        "/notices/{notice_id}",
        response_model=NoticeDetail,
        tags=["notices"],
        responses={403: {"description": "A consumer"}, 404: {"description": "No such notice to this department"}},
    )
    def notice(hub: HubDep, caller: DepartmentDep, notice_id: PathId) -> NoticeDetail:
        """One notice with every key still pending on it: what the department has to correct."""
        found = notice_step(lambda: get_notice(hub, notice_id, _department_of(caller)))
        reasons = pending_reasons(hub, found)
        return NoticeDetail(
            **_notice_out(found).model_dump(),
            pending_keys=list(found.pending_keys),
            reasons=reasons,
            expected=expected(hub, found.resource_id, (r for rs in reasons.values() for r in rs)),
            explained=explained(hub, found.resource_id, (r for rs in reasons.values() for r in rs)),
        )

    @app.post(
        "/notices/{notice_id}/ack",
        response_model=NoticeOut,
        tags=["notices"],
        responses={403: {"description": "A consumer"}, 404: {"description": "No such notice to this department"}},
    )
    def notice_ack(hub: HubDep, caller: ProviderDep, notice_id: PathId) -> NoticeOut:
        """The department has seen its notice and is working on it."""
        return _notice_out(notice_step(lambda: acknowledge(hub, notice_id, caller.department, actor=caller)))

    @app.post(
        "/notices/{notice_id}/disputes",
        response_model=NoticeOut,
        status_code=201,
        tags=["notices"],
        responses={
            403: {"description": "A consumer"},
            404: {"description": "No such notice, or no such pending row on it"},
            422: {"description": "Not a quality notice, or no reason"},
        },
    )
    def notice_dispute(hub: HubDep, caller: ProviderDep, notice_id: PathId, body: DisputeIn) -> NoticeOut:
        """Hold a quarantined row correct and the rule wrong: it leaves the notice until the platform office
        decides (accepted: the rule is waived for that row; rejected: it is back on the notice)."""
        made = notice_step(lambda: dispute(hub, notice_id, body.key, body.reason, caller.department, actor=caller))
        return _notice_out(made)

    @app.get(
        "/disputes",
        response_model=list[DisputeOut],
        tags=["notices"],
        responses={**PAGED, 403: {"description": "A consumer, or another department's"}},
    )
    def disputes(
        hub: HubDep,
        caller: DepartmentDep,
        request: Request,
        response: Response,
        page: ListPage,
        review: Literal["pending", "accepted", "rejected"] | None = None,
        department: Annotated[str | None, Query(max_length=50, description="The platform office's filter.")] = None,
    ) -> list[DisputeOut]:
        """Disputed rows, newest first, with their review: a department its own, the platform office every
        department's (or, with `department`, one's). `review=pending` is the office's queue."""
        department = _own_department(caller, department, "disputes")
        found = list_disputes(hub, review, department=department, limit=page.limit, before=page.before)
        paged(request, response, found)
        return [DisputeOut.model_validate(d, from_attributes=True) for d in found]

    @app.get(
        "/disputes/{dispute_id}",
        response_model=DisputeOut,
        tags=["notices"],
        responses={403: {"description": "A consumer"}, 404: {"description": "No such dispute of yours"}},
    )
    def dispute_(hub: HubDep, caller: DepartmentDep, dispute_id: PathId) -> DisputeOut:
        """One disputed row and its review, on the rule of the list."""
        found = list_disputes(hub, None, department=_department_of(caller), only=dispute_id)
        return DisputeOut.model_validate(_one(found, "dispute", dispute_id), from_attributes=True)

    @app.post(
        "/disputes/{dispute_id}/decision",
        response_model=DisputeOut,
        tags=["notices"],
        dependencies=[platform_only],
        responses={
            403: {"description": "Not the platform office"},
            404: {"description": "No such dispute"},
            422: {"description": "Already decided, or no reason"},
        },
    )
    def dispute_decision(hub: HubDep, caller: CallerDep, dispute_id: PathId, body: DisputeDecisionIn) -> DisputeOut:
        """The platform office's review of a disputed row: accepted, the rules it failed are waived for that
        row from the next run; rejected, the row is back on its notice (reopened if it had closed). The twin
        of `sharehub notices decide`."""
        decided = notice_step(lambda: decide_dispute(hub, dispute_id, actor=caller, **body.model_dump()))
        return DisputeOut.model_validate(decided, from_attributes=True)

    @app.get("/catalogue", response_model=list[ResourceOut], tags=["catalogue"])
    def catalogue(hub: HubDep, caller: CallerDep) -> list[ResourceOut]:
        """Every catalogue resource: fields, classification, share type and serving modes."""
        return [_resource_out(r) for r in sorted(hub.catalogue.resources.values(), key=lambda r: r.id)]

    @app.get(
        "/catalogue/{resource_id}",
        response_model=ResourceOut,
        tags=["catalogue"],
        responses={404: {"description": "No such resource"}},
    )
    def catalogue_entry(hub: HubDep, caller: CallerDep, resource_id: str) -> ResourceOut:
        """One catalogue resource."""
        res = hub.catalogue.resources.get(resource_id)
        if res is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no resource {resource_id!r}")
        return _resource_out(res)

    @app.post(
        "/applications",
        response_model=ApplicationOut,
        status_code=201,
        tags=["applications"],
        responses={403: {"description": "Not a consumer"}, 422: {"description": "Invalid application"}},
    )
    def application_add(hub: HubDep, caller: CallerDep, body: ApplicationIn) -> ApplicationOut:
        """Apply for fields of a resource. Unconditional resources are granted at once; not-shared ones refused."""
        made = step(
            lambda: apply(hub, caller, body.resource_id, body.fields, list(body.modes), body.purpose, body.valid_until)
        )
        return ApplicationOut.model_validate(made, from_attributes=True)

    @app.get("/applications", response_model=list[ApplicationOut], tags=["applications"], responses=PAGED)
    def applications(
        hub: HubDep,
        caller: CallerDep,
        request: Request,
        response: Response,
        page: ListPage,
        application_status: Annotated[
            ApplicationState | None,
            Query(alias="status", description="review: the platform office's queue; provider: decisions owed."),
        ] = None,
    ) -> list[ApplicationOut]:
        """A consumer's own applications; a provider's, for its resources; all, for the platform office."""
        found = list_applications(hub, caller, page.limit, page.before, status=application_status)
        paged(request, response, found)
        return [ApplicationOut.model_validate(a, from_attributes=True) for a in found]

    @app.get(
        "/applications/{application_id}",
        response_model=ApplicationOut,
        tags=["applications"],
        responses={404: {"description": "No such application that the caller may see"}},
    )
    def application(hub: HubDep, caller: CallerDep, application_id: PathId) -> ApplicationOut:
        """One application, where it stands and its step's deadline, on the rule of `GET /applications`."""
        found = _one(list_applications(hub, caller, only=application_id), "application", application_id)
        return ApplicationOut.model_validate(found, from_attributes=True)

    @app.post(
        "/applications/{application_id}/review",
        response_model=ApplicationOut,
        tags=["applications"],
        responses={
            403: {"description": "Not the platform office"},
            404: {"description": "No such application"},
            409: {"description": "Not waiting for review"},
        },
    )
    def application_review(hub: HubDep, caller: CallerDep, application_id: PathId, body: StepIn) -> ApplicationOut:
        """The platform office's review of a conditional application."""
        made = step(lambda: review(hub, caller, application_id, body.approve, body.reason))
        return ApplicationOut.model_validate(made, from_attributes=True)

    @app.post(
        "/applications/{application_id}/decision",
        response_model=ApplicationOut,
        tags=["applications"],
        responses={
            403: {"description": "Not the provider"},
            404: {"description": "No such application"},
            409: {"description": "Not waiting for a decision"},
        },
    )
    def application_decision(hub: HubDep, caller: CallerDep, application_id: PathId, body: StepIn) -> ApplicationOut:
        """The providing department's decision; a refusal gives its reasons. The applicant is told."""
        made = step(lambda: decide(hub, caller, application_id, body.approve, body.reason))
        return ApplicationOut.model_validate(made, from_attributes=True)

    @app.post(
        "/applications/{application_id}/withdraw",
        response_model=ApplicationOut,
        tags=["applications"],
        responses={
            404: {"description": "No such application of yours"},
            409: {"description": "Already decided"},
            422: {"description": "No reason"},
        },
    )
    def application_withdraw(hub: HubDep, caller: CallerDep, application_id: PathId, body: RevokeIn) -> ApplicationOut:
        """The applicant takes back an application still under way: its clock stops, and the provider's
        notice asking for a decision is resolved."""
        made = step(lambda: withdraw(hub, caller, application_id, body.reason))
        return ApplicationOut.model_validate(made, from_attributes=True)

    @app.post(
        "/applications/{application_id}/contest",
        response_model=ApplicationOut,
        tags=["applications"],
        responses={
            404: {"description": "No such application of yours"},
            409: {"description": "Not refused, or contested already"},
        },
    )
    def application_contest(hub: HubDep, caller: CallerDep, application_id: PathId, body: ContestIn) -> ApplicationOut:
        """The applicant contests the refusal of its application (Lichuan 25): the platform office is asked to
        coordinate with the provider within the profile's `application_contest` working days."""
        made = step(lambda: contest(hub, caller, application_id, body.reason))
        return ApplicationOut.model_validate(made, from_attributes=True)

    @app.post(
        "/applications/{application_id}/contest/outcome",
        response_model=ApplicationOut,
        tags=["applications"],
        responses={
            403: {"description": "granted: not the provider; upheld or referred: not the platform office"},
            404: {"description": "No such application"},
            409: {"description": "No open contest"},
            422: {"description": "Fields or modes beyond the application, or no department to refer to"},
        },
    )
    def application_contest_outcome(
        hub: HubDep, caller: CallerDep, application_id: PathId, body: ContestOutcomeIn
    ) -> ApplicationOut:
        """Settle a contest: the provider grants on what was agreed, or the platform office upholds the refusal
        or refers the contest to the government department that coordinates. Both sides are told."""
        made = step(
            lambda: settle(
                hub,
                caller,
                application_id,
                body.outcome,
                body.reason,
                fields=body.fields,
                modes=list(body.modes) if body.modes else None,
                referred_to=body.referred_to,
            )
        )
        return ApplicationOut.model_validate(made, from_attributes=True)

    @app.get("/grants", response_model=list[GrantOut], tags=["applications"], responses=PAGED)
    def grants(
        hub: HubDep,
        caller: CallerDep,
        request: Request,
        response: Response,
        page: ListPage,
        state: Annotated[
            GrantState | None,
            Query(description="active: neither revoked nor past valid_until; expired: run out unrevoked."),
        ] = None,
        resource_id: Annotated[str | None, Query(max_length=100)] = None,
    ) -> list[GrantOut]:
        """Grants the caller may see, on the same rule as applications."""
        found = list_grants(hub, caller, page.limit, page.before, state=state, resource_id=resource_id)
        paged(request, response, found)
        return [GrantOut.model_validate(g, from_attributes=True) for g in found]

    @app.get(
        "/grants/{grant_id}",
        response_model=GrantOut,
        tags=["applications"],
        responses={404: {"description": "No such grant that the caller may see"}},
    )
    def grant(hub: HubDep, caller: CallerDep, grant_id: PathId) -> GrantOut:
        """One grant, on the rule of `GET /grants`."""
        found = _one(list_grants(hub, caller, only=grant_id), "grant", grant_id)
        return GrantOut.model_validate(found, from_attributes=True)

    @app.post(
        "/grants/{grant_id}/revoke",
        response_model=GrantOut,
        tags=["applications"],
        responses={
            403: {"description": "Another department's resource"},
            404: {"description": "No such grant (of yours, for a consumer)"},
        },
    )
    def grant_revoke(hub: HubDep, caller: CallerDep, grant_id: PathId, body: RevokeIn) -> GrantOut:
        """End a grant at once: the platform office, the providing department, or the consumer that holds it
        (its purpose served)."""
        return GrantOut.model_validate(
            step(lambda: revoke_grant(hub, caller, grant_id, body.reason)), from_attributes=True
        )

    limiter = SharedRateLimit()  # across workers and replicas: kept in the metadata database
    refused_links = RateLimit()

    @app.post(
        "/verify/{resource_id}",
        response_model=VerifyOut,
        tags=["serving"],
        responses={
            401: {"description": "No valid API key"},
            403: {"description": "No grant, or a claimed field outside it"},
            422: {"description": "Key fields wrong"},
            429: {"description": "Rate limit"},
        },
        openapi_extra={**_json_body(VerifyIn), **RESOURCE_IN_PATH},
    )
    async def verify_(request: Request, served: Annotated[Served, Depends(granted("verification"))]) -> Response:
        """Do these claimed values match the record? Per-field booleans only; a missing record answers like a
        mismatch, unless the caller also holds a query grant on the resource (then `found` says which)."""
        hub, caller, access = served
        body = _parse(VerifyIn, await request.body())
        res = hub.catalogue.resource(request.path_params["resource_id"])
        if not limiter.allow(hub.settings.metadata_url, caller.id, hub.settings.verify_rate_per_minute):
            await audit.arecord(hub, "verification", caller, res.id, grant_id=access.grant_id, result="rate_limited")
            raise HTTPException(status.HTTP_429_TOO_MANY_REQUESTS, "too many verification calls", {"Retry-After": "1"})
        key = await _key(hub, caller, res.id, access, "verification", body.key)
        outside = sorted(set(body.claims) - access.fields)
        if outside:
            unknown = sorted(set(outside) - {f.name for f in res.fields})
            if unknown:  # a misspelt field, not a refusal: the catalogue is everyone's to read
                detail, result, code = (
                    f"{res.id}: {unknown[0]} is not a field of this resource (GET /catalogue/{res.id})",
                    "bad_request",
                    status.HTTP_422_UNPROCESSABLE_CONTENT,
                )
            else:
                detail, result, code = f"{res.id}: field {outside[0]} is not in your grant", "denied", 403
            await audit.arecord(
                hub, "verification", caller, res.id, grant_id=access.grant_id, result=result, detail=detail
            )
            raise HTTPException(code, detail)
        record = hub.serving.lookup(res, key)
        fields = verify(res, record, body.claims)
        told = "query" in access.modes  # the right to tell a missing record from a mismatch
        out = VerifyOut(match=all(fields.values()), fields=fields, found=(record is not None) if told else None)
        payload = out.model_dump_json(exclude_none=True)
        await audit.arecord(
            hub,
            "verification",
            caller,
            res.id,
            grant_id=access.grant_id,
            purpose=access.purpose,
            record_key=key_of(res, key),
            result="not_found" if record is None else "match" if out.match else "no_match",
            response_bytes=len(payload),
        )
        return Response(payload, media_type="application/json")

    @app.get(
        "/query/{resource_id}",
        response_model=QueryOut,
        tags=["serving"],
        responses={
            403: {"description": "No grant"},
            404: {"description": "No such record"},
            422: {"description": "Key fields wrong"},
        },
    )
    async def query(
        request: Request,
        resource_id: str,
        served: Annotated[Served, Depends(granted("query"))],
        as_of: Annotated[datetime | None, Query(description="Read the record as the store held it then.")] = None,
    ) -> Response:
        """The granted fields of the record with these key fields (`?id_number=…`), masked by classification."""
        hub, caller, access = served
        res = hub.catalogue.resource(resource_id)
        params = request.query_params  # a key field given twice stays a list, which request_key refuses
        given = {k: vs if len(vs := params.getlist(k)) > 1 else vs[0] for k in params if k != "as_of"}
        key = await _key(hub, caller, res.id, access, "query", given)
        if as_of is not None and as_of.tzinfo is None:
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "as_of needs a time zone, e.g. +08:00")
        if as_of is None:
            row, version = hub.serving.lookup(res, key), hub.serving.version(res.id)
        else:
            try:
                version, row = lookup_as_of(hub, res, key, as_of)
            except LookupError as exc:
                raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None
        if row is None:
            await audit.arecord(
                hub, "query", caller, res.id, grant_id=access.grant_id, record_key=key_of(res, key), result="not_found"
            )
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"{res.id}: no record with that key")
        disputed = sorted(under_objection(hub, res.id, key_of(res, key)) & access.fields)
        record = masked(res, row, access.fields)
        out = QueryOut(resource_id=res.id, version=version, as_of=as_of, record=record, under_objection=disputed)
        payload = out.model_dump_json()
        await audit.arecord(
            hub,
            "query",
            caller,
            res.id,
            grant_id=access.grant_id,
            purpose=access.purpose,
            record_key=key_of(res, key),
            result="ok",
            response_bytes=len(payload),
        )
        return Response(payload, media_type="application/json")

    @app.post(
        "/bulk/{resource_id}",
        response_model=ExtractOut,
        status_code=201,
        tags=["serving"],
        responses={403: {"description": "No bulk grant"}, 404: {"description": "No store yet"}},
    )
    def bulk(
        resource_id: str, served: Annotated[Served, Depends(granted("bulk"))], body: BulkIn | None = None
    ) -> ExtractOut:
        """Write a masked Parquet extract of the granted columns (and its manifest); return a short-lived URL."""
        hub, caller, access = served
        issued = step(lambda: bulk_create(hub, caller, access, resource_id, bool(body and body.incremental)))
        return _extract_out(issued)

    @app.get("/bulk/extracts", response_model=list[ExtractListed], tags=["serving"], responses=PAGED)
    def bulk_extracts(
        hub: HubDep,
        caller: CallerDep,
        request: Request,
        response: Response,
        resource_id: str | None = None,
        consumer_id: Annotated[int | None, Query(ge=1, le=2**62)] = None,
        limit: Annotated[int, Query(ge=1, le=1000, description="At most this many, newest first.")] = 100,
        before: Annotated[
            str | None, Query(max_length=36, description="Only extracts made before this one: the next page.")
        ] = None,
    ) -> list[ExtractListed]:
        """Extracts, newest first: a consumer's own, a provider department's resources' (who copied its data),
        or, for the platform office, all. Removed ones stay listed with `removed_at`; no URL is issued here."""
        page = step(
            lambda: list_extracts(
                hub, caller, resource_id=resource_id, consumer_id=consumer_id, limit=limit, before=before
            )
        )
        paged(request, response, page)
        return [ExtractListed.model_validate(e, from_attributes=True) for e in page]

    @app.get(
        "/bulk/extracts/{extract_id}",
        response_model=ExtractOut,
        tags=["serving"],
        responses={
            404: {"description": "No such extract of yours"},
            410: {"description": "Its files were removed (grant ended, or older than the hub keeps extracts)"},
        },
    )
    def bulk_extract(hub: HubDep, caller: CallerDep, extract_id: str) -> ExtractOut:
        """One of your extracts, with a fresh download URL (its issuance is audited)."""
        extract = step(lambda: bulk_get(hub, caller, extract_id))
        step(lambda: active_grant(hub, caller, extract.resource_id, "bulk"))
        return _extract_out(bulk_issue(hub, caller, extract))

    @app.head("/bulk/extracts/{extract_id}/download", include_in_schema=False)
    @app.get(
        "/bulk/extracts/{extract_id}/download",
        tags=["serving"],
        response_class=Response,
        responses={
            200: {"content": {"application/vnd.apache.parquet": {}}},
            206: {"description": "The requested byte range"},
            403: {"description": "Bad or expired link"},
        },
    )
    def bulk_download(
        hub: HubDep,
        request: Request,
        extract_id: str,
        expires: Annotated[int, Query()],
        sig: Annotated[str, Query(pattern="^[0-9a-f]{64}$")],
    ) -> Response:
        """The extract's Parquet, for a signed, unexpired link (local object store; S3 links go to S3).

        Byte ranges are served, so Parquet readers (pyarrow, fsspec, the delta-sharing client) can seek.
        """
        # A refused link is audited (probing shows in the trail), but only a few a minute per address:
        # past them a refusal is 429 and writes nothing, so nobody floods the audit chain. Good links are
        # served whatever the address did before.
        address = ("download", request.client.host if request.client else "")
        quiet = refused_links.spent(address, REFUSED_LINKS_PER_MINUTE)
        try:
            opened = step(lambda: bulk_open(hub, extract_id, expires, sig, audit_refusal=not quiet))
        except HTTPException:
            if quiet:
                wait = {"Retry-After": "60"}
                raise HTTPException(status.HTTP_429_TOO_MANY_REQUESTS, "too many refused links; wait", wait) from None
            refused_links.allow(address, REFUSED_LINKS_PER_MINUTE)
            raise
        size = opened.size
        kind = "application/vnd.apache.parquet"
        whole = {"Accept-Ranges": "bytes", "Content-Length": str(size)}
        if request.method == "HEAD":  # the size only, as readers ask before their ranges: no data, no entry
            return Response(media_type=kind, headers=whole)
        wanted = request.headers.get("range", "")
        if wanted.startswith("bytes="):
            first, _, last = wanted[6:].split(",")[0].partition("-")
            try:
                start = int(first) if first else max(size - int(last), 0)
                end = min(int(last), size - 1) if first and last else size - 1
            except ValueError:
                start, end = 0, size - 1
            if start >= size or start > end:
                return Response(status_code=416, headers={"Content-Range": f"bytes */{size}"})
            span = {
                "Accept-Ranges": "bytes",
                "Content-Range": f"bytes {start}-{end}/{size}",
                "Content-Length": str(end + 1 - start),
            }
            bulk_downloaded(hub, opened, end + 1 - start, part=True)
            body = hub.store.read_span(opened.path, start, end)
            return StreamingResponse(body, status_code=206, media_type=kind, headers=span)
        bulk_downloaded(hub, opened, size)
        return StreamingResponse(hub.store.read_span(opened.path, 0, size - 1), media_type=kind, headers=whole)

    @app.post(
        "/objections",
        response_model=ObjectionOut,
        status_code=201,
        tags=["objections"],
        responses={403: {"description": "No grant on the resource"}, 422: {"description": "Invalid objection"}},
    )
    def objection_add(hub: HubDep, caller: CallerDep, body: ObjectionIn) -> ObjectionOut:
        """Report a record you are granted as wrong; its provider must answer within the profile's deadline."""
        made = step(lambda: raise_objection(hub, caller, body.resource_id, body.key, body.fields, body.reason))
        return _objection_out(hub, made)

    @app.get("/objections", response_model=list[ObjectionOut], tags=["objections"], responses=PAGED)
    def objections(
        hub: HubDep,
        caller: CallerDep,
        request: Request,
        response: Response,
        page: ListPage,
        objection_status: Annotated[
            ObjectionState | None,
            Query(alias="status", description="open: the answers a provider owes."),
        ] = None,
    ) -> list[ObjectionOut]:
        """A consumer's own objections, a provider's on its resources, all for the platform office."""
        found = list_objections(hub, caller, page.limit, page.before, status=objection_status)
        paged(request, response, found)
        return [_objection_out(hub, o) for o in found]

    @app.get(
        "/objections/{objection_id}",
        response_model=ObjectionOut,
        tags=["objections"],
        responses={404: {"description": "No such objection that the caller may see"}},
    )
    def objection(hub: HubDep, caller: CallerDep, objection_id: PathId) -> ObjectionOut:
        """One objection and, once given, the provider's answer, on the rule of `GET /objections`."""
        return _objection_out(hub, _one(list_objections(hub, caller, only=objection_id), "objection", objection_id))

    @app.post(
        "/objections/{objection_id}/answer",
        response_model=ObjectionOut,
        tags=["objections"],
        responses={
            403: {"description": "Not the provider"},
            404: {"description": "No such objection"},
            409: {"description": "Already answered"},
        },
    )
    def objection_answer(hub: HubDep, caller: CallerDep, objection_id: PathId, body: AnswerIn) -> ObjectionOut:
        """The provider's answer, corrected or confirmed with reasons; it goes back to the consumer."""
        made = step(lambda: answer_objection(hub, caller, objection_id, body.outcome, body.reason))
        return _objection_out(hub, made)

    @app.post(
        "/open/requests",
        response_model=OpenRequestOut,
        status_code=201,
        tags=["open data"],
        responses={
            403: {"description": "Not the platform office"},
            422: {"description": "Not open on application, a field not public, or no purpose"},
        },
    )
    def open_request_add(hub: HubDep, caller: CallerDep, body: OpenRequestIn) -> OpenRequestOut:
        """The open-data portal files a request for data opened on application; the providing department
        gets a notice with the profile's `open_application` deadline."""
        made = step(
            lambda: file_request(
                hub, caller, body.resource_id, body.applicant, body.fields, body.purpose, body.portal_ref
            )
        )
        return _open_request_out(made)

    @app.get("/open/requests", response_model=list[OpenRequestOut], tags=["open data"], responses=PAGED)
    def open_requests(
        hub: HubDep,
        caller: CallerDep,
        request: Request,
        response: Response,
        page: ListPage,
        request_status: Annotated[
            OpenRequestState | None, Query(alias="status", description="pending: the answers owed.")
        ] = None,
        resource_id: Annotated[str | None, Query(max_length=100)] = None,
    ) -> list[OpenRequestOut]:
        """Every request for the platform office; a provider department's on its own resources."""
        found = step(
            lambda: list_open_requests(
                hub, caller, page.limit, page.before, status=request_status, resource_id=resource_id
            )
        )
        paged(request, response, found)
        return [_open_request_out(r) for r in found]

    @app.get(
        "/open/requests/{request_id}",
        response_model=OpenRequestOut,
        tags=["open data"],
        responses={404: {"description": "No such request that the caller may see"}},
    )
    def open_request(hub: HubDep, caller: CallerDep, request_id: PathId) -> OpenRequestOut:
        """One request, on the rule of `GET /open/requests`."""
        found = _one(step(lambda: list_open_requests(hub, caller, only=request_id)), "open-data request", request_id)
        return _open_request_out(found)

    @app.post(
        "/open/requests/{request_id}/decision",
        response_model=OpenRequestOut,
        tags=["open data"],
        responses={
            403: {"description": "Not a provider department"},
            404: {"description": "No such request on your resources"},
            409: {"description": "Already answered, or nothing delivered yet"},
        },
    )
    def open_request_decision(hub: HubDep, caller: CallerDep, request_id: PathId, body: StepIn) -> OpenRequestOut:
        """The providing department approves (its request's dataset is written, sealed) or refuses with
        reasons; the platform office is told, for the portal."""
        return _open_request_out(step(lambda: decide_open_request(hub, caller, request_id, body.approve, body.reason)))

    @app.post(
        "/open/requests/{request_id}/withdraw",
        response_model=OpenRequestOut,
        tags=["open data"],
        responses={
            403: {"description": "Not the platform office"},
            404: {"description": "No such request"},
            409: {"description": "Already answered"},
        },
    )
    def open_request_withdraw(hub: HubDep, caller: CallerDep, request_id: PathId, body: RevokeIn) -> OpenRequestOut:
        """The portal takes a pending request back for its applicant; the department's notice is resolved."""
        return _open_request_out(step(lambda: withdraw_open_request(hub, caller, request_id, body.reason)))

    @app.get("/conflicts", response_model=list[ConflictOut], tags=["conflicts"], responses=PAGED)
    def conflicts(
        hub: HubDep,
        caller: DepartmentDep,
        request: Request,
        response: Response,
        page: ConflictPage,
        department: Annotated[str | None, Query(max_length=50, description="The platform office's filter.")] = None,
        conflict_status: Annotated[str | None, Query(alias="status", max_length=20)] = None,
        notice: Annotated[int | None, Query(ge=1, le=2**62, description="Only the conflicts of this notice.")] = None,
        resource_id: Annotated[str | None, Query(max_length=100, description="Only this resource's copies.")] = None,
    ) -> list[ConflictOut]:
        """Conflicts, newest first: a provider department sees those of its copies and those on items it is
        the authoritative source of; the platform office sees all, or one department's as it sees them."""
        department = _own_department(caller, department, "conflicts")
        found = list_conflicts(
            hub,
            department,
            conflict_status,
            page.limit,
            as_authority=True,
            notice_id=notice,
            resource_id=resource_id,
            before=page.before,
        )
        paged(request, response, found)
        return [ConflictOut.model_validate(c, from_attributes=True) for c in found]

    @app.get(
        "/conflicts/{conflict_id}",
        response_model=ConflictOut,
        tags=["conflicts"],
        responses={404: {"description": "No such conflict that the caller may see"}},
    )
    def conflict(hub: HubDep, caller: DepartmentDep, conflict_id: PathId) -> ConflictOut:
        """One conflict, on the rule of `GET /conflicts`."""
        found = list_conflicts(hub, _department_of(caller), as_authority=True, only=conflict_id)
        return ConflictOut.model_validate(_one(found, "conflict", conflict_id), from_attributes=True)

    @app.post(
        "/conflicts/{conflict_id}/reply",
        response_model=ConflictOut,
        tags=["conflicts"],
        responses={
            403: {"description": "Not a provider department"},
            404: {"description": "No such conflict between this department and another"},
            422: {"description": "Already decided or closed, or no reason"},
        },
    )
    def conflict_reply(hub: HubDep, caller: ProviderDep, conflict_id: PathId, body: ReplyIn) -> ConflictOut:
        """The department holds its value right, with reasons: the conflict goes under verification for the
        platform office to decide. (A department that corrects its copy needs no reply: the next check
        closes the conflict.)"""
        step = notice_step(
            lambda: reply_conflict(hub, conflict_id, department=caller.department, actor=caller, **body.model_dump())
        )
        return ConflictOut.model_validate(step, from_attributes=True)

    @app.post(
        "/conflicts/verify",
        response_model=list[ConflictOut],
        tags=["conflicts"],
        dependencies=[platform_only],
        responses={
            403: {"description": "Not the platform office"},
            404: {"description": "No such conflict"},
            422: {"description": "A conflict already decided or closed"},
        },
    )
    def conflicts_verify(hub: HubDep, caller: CallerDep, body: ConflictsVerifyIn) -> list[ConflictOut]:
        """Take conflicts up for verification (核实), all of them or none; optionally ask the authoritative
        department to check its value. The twin of `sharehub conflicts verify`."""
        rows = notice_step(
            lambda: verify_conflicts(
                hub,
                list(dict.fromkeys(body.conflict_ids)),
                by=body.by,
                notify_authority=body.notify_authority,
                actor=caller,
            )
        )
        return [ConflictOut.model_validate(r, from_attributes=True) for r in rows]

    @app.post(
        "/conflicts/decision",
        response_model=list[ConflictOut],
        tags=["conflicts"],
        dependencies=[platform_only],
        responses={
            403: {"description": "Not the platform office"},
            404: {"description": "No such conflict"},
            422: {"description": "A conflict already decided or closed"},
        },
    )
    def conflicts_decision(hub: HubDep, caller: CallerDep, body: DecisionsIn) -> list[ConflictOut]:
        """Decide many conflicts at once, all of them or none: each department hears it once per resource
        (one notice to correct, listing the entities), not once per conflict. The twin of `sharehub
        conflicts decide ID…`."""
        decided = body.model_dump(exclude={"conflict_ids"})
        rows = notice_step(lambda: decide_conflicts(hub, body.conflict_ids, actor=caller, **decided))
        return [ConflictOut.model_validate(r, from_attributes=True) for r in rows]

    @app.post(
        "/conflicts/{conflict_id}/decision",
        response_model=ConflictOut,
        tags=["conflicts"],
        dependencies=[platform_only],
        responses={
            403: {"description": "Not the platform office"},
            404: {"description": "No such conflict"},
            422: {"description": "Already decided or closed"},
        },
    )
    def conflict_decision(hub: HubDep, caller: CallerDep, conflict_id: PathId, body: DecisionIn) -> ConflictOut:
        """Record which value is right, who decided and why; the notices on it settle. The twin of
        `sharehub conflicts decide`."""
        step = notice_step(lambda: decide_conflict(hub, conflict_id, actor=caller, **body.model_dump()))
        return ConflictOut.model_validate(step, from_attributes=True)

    @app.get(
        "/audit",
        response_model=list[AuditOut],
        tags=["audit"],
        responses={**PAGED, 422: {"description": "A moment without its offset"}},
    )
    def audit_trail(
        hub: HubDep,
        caller: CallerDep,
        request: Request,
        response: Response,
        page: ListPage,
        action: Annotated[str | None, Query(max_length=40, description="e.g. verification, query, extract.")] = None,
        resource_id: Annotated[str | None, Query(max_length=100)] = None,
        consumer_id: Annotated[int | None, Query(ge=0, le=2**62)] = None,
        record_key: Annotated[
            str | None, Query(max_length=200, description="A record's key, key fields joined by |.")
        ] = None,
        result: Annotated[
            str | None, Query(max_length=40, description="An outcome, e.g. denied (refusals), not_found, match.")
        ] = None,
        since: Annotated[datetime | None, Query(description="From this moment (with its offset).")] = None,
        until: Annotated[datetime | None, Query(description="Before this moment (with its offset).")] = None,
    ) -> list[AuditOut]:
        """Trace calls and steps (MISSION 12: every access, transfer and download can be traced): the platform
        office every entry, a provider department the calls on its resources and its own steps, a consumer
        its own calls. Reading the trail is itself audited, with the key that was looked for."""
        if any(moment is not None and moment.tzinfo is None for moment in (since, until)):
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "since and until need a time zone, e.g. +08:00")
        found = audit.trail(
            hub,
            caller,
            action=action,
            resource_id=resource_id,
            consumer_id=consumer_id,
            record_key=record_key,
            result=result,
            since=since,
            until=until,
            limit=page.limit,
            before=page.before,
        )
        paged(request, response, found)
        whole = caller.role == "platform"
        out = []
        for e in found:
            entry = AuditOut.model_validate(e, from_attributes=True)
            entry.record_key = audit.shown_key(hub, e.resource_id, e.record_key, whole=whole)
            entry.result = audit.shown_result(e, caller)
            out.append(entry)
        return out

    @app.get("/freshness", response_model=list[FreshnessOut], tags=["stats"])
    def freshness_(
        hub: HubDep,
        caller: CallerDep,
        provider: Annotated[str | None, Query(max_length=50, description="Only this department's resources.")] = None,
    ) -> list[FreshnessOut]:
        """How current each resource's store is (data availability, Lichuan 26): its state for the latest
        update period, the deadline, the last delivery and the latest run. Every caller may see it: a
        consumer learns whether the data it uses is up to date."""
        return [
            FreshnessOut.model_validate(f, from_attributes=True) for f in resource_freshness(hub, provider=provider)
        ]

    @app.get("/stats", response_model=list[StatsOut], tags=["stats"])
    def stats(hub: HubDep, caller: CallerDep) -> list[StatsOut]:
        """Figures per department; the platform office sees all departments, anyone else its own."""
        rows = department_stats(hub, None if caller.role == "platform" else caller.department)
        return [StatsOut(**row) for row in rows]

    @app.get(
        "/scores",
        response_model=list[ScoreOut],
        tags=["stats"],
        responses={403: {"description": "A consumer's key"}, 422: {"description": "An empty period"}},
    )
    def department_scores_(
        hub: HubDep,
        caller: DepartmentDep,
        since: Annotated[date | None, Query(description="First day (China time); default 1 January.")] = None,
        until: Annotated[date | None, Query(description="Last day (China time); default today.")] = None,
    ) -> list[ScoreOut]:
        """Every provider department's score for the period, best first: published to the departments and
        the platform office alike (Zhejiang 35: 公布评估结果)."""
        try:
            rows = department_scores(hub, since, until)
        except ValueError as exc:
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from None
        return [ScoreOut(**score_dict(row)) for row in rows]

    @app.get("/seal", response_model=SealOut, tags=["catalogue"])
    def seal_key(hub: HubDep, caller: CallerDep) -> SealOut:
        """The platform's seal (Zhejiang 23): the key that checks the `seal` of an extract's manifest, an
        open dataset's manifest or a bulletin (`sharehub seal verify`)."""
        public = seal_public_pem(hub)
        return SealOut(algorithm=SEAL_ALGORITHM, key_id=seal_key_id(public), public_key=public)

    @app.get("/bulletins", response_model=list[str], tags=["stats"], responses={403: {"description": "A consumer"}})
    def bulletins_(hub: HubDep, caller: DepartmentDep) -> list[str]:
        """The months whose statistics bulletin was published (Lichuan 26), newest first."""
        return published_bulletins(hub)

    @app.get(
        "/bulletins/{month}",
        response_model=dict[str, Any],
        tags=["stats"],
        responses={403: {"description": "A consumer"}, 404: {"description": "Not published"}},
    )
    def bulletin_(hub: HubDep, caller: DepartmentDep, month: str) -> dict[str, Any]:
        """A published monthly bulletin (YYYY-MM): authorizations, calls, availability per resource and
        each department's score, as frozen when the month ended."""
        try:
            return read_bulletin(hub, month)
        except LookupError as exc:
            raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None

    app.include_router(build_sharing_router(get_hub, get_caller))
    app.include_router(build_upstream_router(get_hub, get_caller, limiter))
    # Starlette tries the routes in order: the two lookups, nearly all the traffic, go first.
    hot = [r for r in app.router.routes if getattr(r, "path", "") in ("/verify/{resource_id}", "/query/{resource_id}")]
    app.router.routes[:] = hot + [r for r in app.router.routes if r not in hot]
    document_answers(app, _resolves_caller, BEARER)
    return app


def _resolves_caller(dependant: Dependant) -> bool:
    return any(d.call is get_caller or _resolves_caller(d) for d in dependant.dependencies)


def _resource_out(r: Resource) -> ResourceOut:
    return ResourceOut(
        id=r.id,
        title=r.title,
        description=r.description,
        provider=r.provider,
        share_type=r.share.type,
        conditions=r.share.conditions,
        legal_basis=r.share.legal_basis,
        serving_modes=list(r.serving_modes),
        update_frequency=r.update.frequency,
        key=list(r.source.key),
        fields=[
            FieldOut(name=f.name, title=f.title, type=f.type, classification=f.classification, masking=f.masking)
            for f in r.fields
        ],
    )


def _extract_out(issued: Issued) -> ExtractOut:
    e = issued.extract
    return ExtractOut(
        id=e.id,
        resource_id=e.resource_id,
        grant_id=e.grant_id,
        rows=e.rows,
        sha256=e.sha256,
        store_version=e.store_version,
        since_version=e.since_version,
        columns=e.columns,
        url=issued.url,
        expires_at=issued.expires_at,
    )


def _json_body(model: type[BaseModel]) -> dict[str, Any]:
    """The OpenAPI request body of a route that parses its JSON body itself."""
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": model.model_json_schema()}}}}


def _parse(model: type[_Model], raw: bytes) -> _Model:
    """A JSON body parsed by pydantic's own parser (on the verification hot path FastAPI's generic body
    handling cost more than the lookup); a bad body gets the same 422 FastAPI would give."""
    try:
        return model.model_validate_json(raw)
    except ValidationError as exc:
        errors = [{**e, "loc": ("body", *e["loc"])} for e in exc.errors(include_url=False)]
        raise RequestValidationError(errors, body=raw) from None


def _one(page: Page[_Row], what: str, row_id: int) -> _Row:
    """The one row a single-item route asks for, or 404: one the caller may not see is answered as if it
    did not exist, so ids cannot be probed for what others applied for."""
    if not page:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no {what} {row_id}")
    return page[0]


OverlapQuery = Annotated[
    int,
    Query(ge=0, le=7 * 24 * 60, description="Minutes the replaced key keeps working (0: it stops at once)."),
]


def _rotated(step: Callable[[], tuple[Consumer, str]]) -> tuple[Consumer, str]:
    """A rotation, its refusals as 404 (no such caller) or 422 (an overlap it cannot have)."""
    try:
        return step()
    except LookupError as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None
    except ValueError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from None


def _created(made: Consumer, key: str) -> ConsumerCreated:
    """A caller with its new key, as answered this once."""
    return ConsumerCreated(**ConsumerOut.model_validate(made, from_attributes=True).model_dump(), api_key=key)


def _own_department(caller: Caller, department: str | None, what: str) -> str | None:
    """The department a list is filtered to: a provider department's own (asking for another's is 403),
    or for the platform office the one it asked for, if any."""
    if caller.role != "provider":
        return department
    if department not in (None, caller.department):
        raise HTTPException(status.HTTP_403_FORBIDDEN, f"a department sees only its own {what}")
    return caller.department


def _department_of(caller: Caller) -> str | None:
    """Whose notices the caller may see: a provider department its own, the platform office every one."""
    return caller.department if caller.role == "provider" else None


def _notice_out(n: Notice) -> NoticeOut:
    return NoticeOut(
        id=n.id,
        kind=n.kind,
        department=n.department,
        resource_id=n.resource_id,
        run_id=n.run_id,
        status=n.status,
        created_at=n.created_at,
        deadline=n.deadline,
        subject=n.subject,
        body=n.body,
        pending_rows=len(n.pending_keys),
        resolved_at=n.resolved_at,
    )


def _open_request_out(made: OpenRequest) -> OpenRequestOut:
    fields = {name: getattr(made, name) for name in OpenRequestOut.model_fields if name != "late"}
    return OpenRequestOut(**fields, late=late_answer(made))


def _objection_out(hub: Hub, made: Objection) -> ObjectionOut:
    """The objection as its consumer, its provider and the platform office see it: with the record's key."""
    fields = {name: getattr(made, name) for name in ObjectionOut.model_fields if name != "key"}
    return ObjectionOut(**fields, key=key_fields(hub, made))


async def _key(
    hub: Hub, caller: Caller, resource_id: str, access: Access, mode: str, given: dict[str, Any]
) -> dict[str, str]:
    res = hub.catalogue.resource(resource_id)
    try:
        return request_key(res, given)
    except BadRequest as exc:
        await audit.arecord(
            hub, mode, caller, resource_id, grant_id=access.grant_id, result="bad_request", detail=str(exc)
        )
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from None
