"""SQLAlchemy models of the metadata database. Alembic migrations in `migrations/` create them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator


def utcnow() -> datetime:
    """Now, in UTC: the platform's timestamps are the ones that count (Lichuan 22)."""
    return datetime.now(UTC)


def as_utc(moment: datetime) -> datetime:
    """A moment made aware: a naive one is UTC, as the metadata database keeps every moment."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A moment, stored in UTC and read back aware.

    SQLite has no time zones: SQLAlchemy writes an aware datetime's wall-clock time and drops its
    offset, so a deadline made in China time (00:00+08:00) read back as UTC was 8 hours late. Every
    moment is turned to UTC before it is written, and a naive one read back is UTC. PostgreSQL's
    timestamptz does the same by itself.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """To UTC before it is written (a naive value is taken to be UTC already)."""
        return value.astimezone(UTC) if value is not None and value.tzinfo is not None else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        """Aware, in UTC where the database gave it back naive."""
        return as_utc(value) if isinstance(value, datetime) else value


class Base(DeclarativeBase):
    """Declarative base of every metadata table."""


class CatalogueVersion(Base):
    """One distinct content of the catalogue folder, recorded the first time it is seen."""

    __tablename__ = "catalogue_versions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    digest: Mapped[str] = mapped_column(String(64), unique=True)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    resource_ids: Mapped[list] = mapped_column(JSON)
    documents: Mapped[dict] = mapped_column(JSON)


class Run(Base):
    """One pipeline run of one resource: extract, gate, promote."""

    __tablename__ = "runs"
    id: Mapped[str] = mapped_column(String(120), primary_key=True)
    resource_id: Mapped[str] = mapped_column(String(100), index=True)
    catalogue_version_id: Mapped[int | None] = mapped_column(ForeignKey("catalogue_versions.id"))
    trigger: Mapped[str] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(20), index=True)
    step: Mapped[str] = mapped_column(String(20))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    mode: Mapped[str] = mapped_column(String(20))
    watermark_from: Mapped[str | None] = mapped_column(String(64))
    watermark_to: Mapped[str | None] = mapped_column(String(64))
    rows_read: Mapped[int] = mapped_column(BigInteger, default=0)
    rows_landed: Mapped[int] = mapped_column(BigInteger, default=0)
    rows_passed: Mapped[int] = mapped_column(BigInteger, default=0)
    rows_quarantined: Mapped[int] = mapped_column(BigInteger, default=0)
    rows_inserted: Mapped[int] = mapped_column(BigInteger, default=0)
    rows_updated: Mapped[int] = mapped_column(BigInteger, default=0)
    rows_deleted: Mapped[int] = mapped_column(BigInteger, default=0)
    store_version: Mapped[int | None] = mapped_column(BigInteger)
    error_kind: Mapped[str | None] = mapped_column(String(40))
    error: Mapped[str | None] = mapped_column(Text)
    holder: Mapped[str | None] = mapped_column(String(200))  # "host pid N" of the process on its current step
    step_started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class RateBucket(Base):
    """A token bucket of the verification rate limit, shared by every API worker (`sharehub.access.ratelimit`)."""

    __tablename__ = "rate_buckets"
    key: Mapped[str] = mapped_column(String(100), primary_key=True)
    tokens: Mapped[float] = mapped_column(Float)
    updated: Mapped[float] = mapped_column(Float)  # seconds since the epoch


class Watermark(Base):
    """How far an incremental resource has been read; moved only after its store has committed."""

    __tablename__ = "watermarks"
    resource_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    value: Mapped[str] = mapped_column(String(64))
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id"))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class QualityResult(Base):
    """The outcome of one expectation on one run's batch."""

    __tablename__ = "quality_results"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id"), index=True)
    rule: Mapped[str] = mapped_column(String(120))
    column: Mapped[str | None] = mapped_column(String(100))
    success: Mapped[bool] = mapped_column(Boolean)
    element_count: Mapped[int] = mapped_column(BigInteger, default=0)
    unexpected_count: Mapped[int] = mapped_column(BigInteger, default=0)


class QuarantinedRow(Base):
    """A row the gate refused: its key and its reasons. The full row is in the quarantine Parquet."""

    __tablename__ = "quarantined_rows"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id"), index=True)
    resource_id: Mapped[str] = mapped_column(String(100), index=True)
    row_number: Mapped[int] = mapped_column(BigInteger)
    row_key: Mapped[str] = mapped_column(String(400), index=True)
    reasons: Mapped[list] = mapped_column(JSON)


class Notice(Base):
    """A notice to a provider department: what is wrong, which rows, and by when it must be fixed."""

    __tablename__ = "notices"
    __table_args__ = (UniqueConstraint("run_id", "kind", name="uq_notice_run_kind"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(30))
    department: Mapped[str] = mapped_column(String(50), index=True)
    resource_id: Mapped[str] = mapped_column(String(100), index=True)
    # The run that found the problem; none for a missed delivery, where no run came.
    run_id: Mapped[str | None] = mapped_column(ForeignKey("runs.id"))
    # An escalation points at the notice it escalates.
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("notices.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    deadline: Mapped[datetime] = mapped_column(UTCDateTime())
    status: Mapped[str] = mapped_column(String(20), index=True)
    subject: Mapped[str] = mapped_column(String(300))
    body: Mapped[str] = mapped_column(Text)
    row_keys: Mapped[list] = mapped_column(JSON)
    pending_keys: Mapped[list] = mapped_column(JSON)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    resolved_by_run: Mapped[str | None] = mapped_column(String(120))


class OutboxMessage(Base):
    """An e-mail waiting to be sent; one per notice and recipient, so retries never send twice."""

    __tablename__ = "outbox"
    __table_args__ = (UniqueConstraint("notice_id", "recipient", name="uq_outbox_notice_recipient"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    notice_id: Mapped[int] = mapped_column(ForeignKey("notices.id"), index=True)
    recipient: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(String(300))


class RowDispute(Base):
    """A department's statement that a quarantined row is correct and the rule is wrong; the platform reviews it."""

    __tablename__ = "row_disputes"
    __table_args__ = (UniqueConstraint("notice_id", "row_key", name="uq_dispute_notice_key"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    notice_id: Mapped[int] = mapped_column(ForeignKey("notices.id"), index=True)
    department: Mapped[str] = mapped_column(String(50), index=True)
    row_key: Mapped[str] = mapped_column(String(400))
    reason: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    review: Mapped[str] = mapped_column(String(20), default="pending")  # pending, accepted, rejected
    resource_id: Mapped[str | None] = mapped_column(String(100), index=True)
    rules: Mapped[list | None] = mapped_column(JSON)  # the rules the row failed, which an acceptance waives
    decided_by: Mapped[str | None] = mapped_column(String(100))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    decision_reason: Mapped[str | None] = mapped_column(Text)


class Consumer(Base):
    """A caller of the API: a department's application, a provider department or the platform office.

    Only the SHA-256 of its API key is kept; the key itself is shown once, when it is made.
    """

    __tablename__ = "consumers"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(200))
    department: Mapped[str] = mapped_column(String(50), index=True)
    role: Mapped[str] = mapped_column(String(20))  # platform, provider, consumer
    key_prefix: Mapped[str] = mapped_column(String(16), unique=True)
    key_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # After a rotation with an overlap, the key it replaced still works until `previous_until`.
    previous_prefix: Mapped[str | None] = mapped_column(String(16), index=True, unique=True)
    previous_hash: Mapped[str | None] = mapped_column(String(64))
    previous_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    username: Mapped[str | None] = mapped_column(String(60), index=True, unique=True)  # the console's sign-in name
    password_hash: Mapped[str | None] = mapped_column(String(200))  # argon2id


class Conflict(Base):
    """Two departments disagree about one item of one entity (一数一源, 多元校核).

    Values are kept masked by their field's classification: the stores hold the real ones.
    `kind` is `value` (the copies differ), `status` (coded states that mean different things, such as
    deregistered in one and registered in another) or `missing_in_base` (the authoritative store lacks it).
    `status` goes open → verifying → decided, and any of them → closed when the copies converge.
    """

    __tablename__ = "conflicts"
    __table_args__ = (UniqueConstraint("item", "entity_key", "resource_id", name="uq_conflict_item_key_resource"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(20))
    item: Mapped[str] = mapped_column(String(100), index=True)
    entity_key: Mapped[str] = mapped_column(String(64), index=True)
    resource_id: Mapped[str] = mapped_column(String(100), index=True)
    department: Mapped[str] = mapped_column(String(50), index=True)
    authority_resource: Mapped[str] = mapped_column(String(100))
    authority_value: Mapped[str | None] = mapped_column(String(400))
    other_value: Mapped[str | None] = mapped_column(String(400))
    status: Mapped[str] = mapped_column(String(20), index=True)  # open, verifying, decided, closed
    first_seen: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_seen: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    notice_id: Mapped[int | None] = mapped_column(ForeignKey("notices.id"))
    decided_by: Mapped[str | None] = mapped_column(String(100))
    decision: Mapped[str | None] = mapped_column(String(20))  # authority or provider: whose value is right
    decision_reason: Mapped[str | None] = mapped_column(Text)
    # Verification (核实): who took it up and when, and the notice asking the authoritative department.
    verifying_by: Mapped[str | None] = mapped_column(String(100))
    verifying_since: Mapped[datetime | None] = mapped_column(UTCDateTime())
    authority_notice_id: Mapped[int | None] = mapped_column(
        ForeignKey("notices.id", name="fk_conflicts_authority_notice_id_notices")
    )
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # After a decision, the notice asking the department whose value was wrong to correct it.
    correction_notice_id: Mapped[int | None] = mapped_column(
        ForeignKey("notices.id", name="fk_conflicts_correction_notice_id")
    )
    # A department's reply that its value is right, with reasons, for the platform office to decide on.
    reply: Mapped[str | None] = mapped_column(Text)
    replied_by: Mapped[str | None] = mapped_column(String(100))
    replied_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # The authoritative department's own reply, when it was asked to check its value.
    authority_reply: Mapped[str | None] = mapped_column(Text)
    authority_replied_by: Mapped[str | None] = mapped_column(String(100))
    authority_replied_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class Application(Base):
    """A consumer's application for a resource (Lichuan 18–22): fields, serving modes, purpose, validity.

    `status` is `review` (the platform office checks it), `provider` (the providing department
    decides), `granted`, `refused` or `withdrawn` (by the applicant, before a decision). Each open step
    has a working-day deadline from the profile; `overdue_at` is set when a step ran past it, and the
    step counts against its department. A refusal the applicant contests is `contested` until the
    contest is settled (`ApplicationContest`): `granted`, `refused` again, or `referred` to the
    government's coordinating department.
    """

    __tablename__ = "applications"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    consumer_id: Mapped[int] = mapped_column(ForeignKey("consumers.id", name="fk_applications_consumer_id"))
    department: Mapped[str] = mapped_column(String(50), index=True)  # the applicant's department
    resource_id: Mapped[str] = mapped_column(String(100), index=True)
    provider: Mapped[str] = mapped_column(String(50), index=True)
    fields: Mapped[list[str]] = mapped_column(JSON)
    modes: Mapped[list[str]] = mapped_column(JSON)
    purpose: Mapped[str] = mapped_column(Text)
    valid_until: Mapped[datetime] = mapped_column(UTCDateTime())
    share_type: Mapped[str] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(20), index=True)
    step_deadline: Mapped[datetime | None] = mapped_column(UTCDateTime())
    overdue_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    overdue_department: Mapped[str | None] = mapped_column(String(50))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    reviewed_by: Mapped[str | None] = mapped_column(String(100))
    reviewed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    review_reason: Mapped[str | None] = mapped_column(Text)
    decided_by: Mapped[str | None] = mapped_column(String(100))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    decision_reason: Mapped[str | None] = mapped_column(Text)
    notified_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    told_notice_id: Mapped[int | None] = mapped_column(Integer)  # the notice that told the applicant
    told_overdue_at: Mapped[datetime | None] = mapped_column(UTCDateTime())  # not told within notify_applicant
    expected_calls_per_day: Mapped[int | None] = mapped_column(Integer)  # the volume its purpose needs, if declared
    contest: Mapped[ApplicationContest | None] = relationship(lazy="selectin", uselist=False)


class ApplicationContest(Base):
    """An applicant's disagreement with the refusal of its application (意见分歧, Lichuan 25; Fushun 18),
    one per application. The platform office coordinates it with the provider by `deadline`. `status` is
    `open`, then `granted` (the provider reconsidered: `grant_id`, on the fields and modes agreed),
    `upheld` (the refusal stands), `referred` (no agreement: `referred_to`, the government department
    asked to coordinate) or `withdrawn` (by the applicant)."""

    __tablename__ = "application_contests"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    application_id: Mapped[int] = mapped_column(
        ForeignKey("applications.id", name="fk_application_contests_application_id"), unique=True
    )
    reason: Mapped[str] = mapped_column(Text)
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    deadline: Mapped[datetime] = mapped_column(UTCDateTime())
    status: Mapped[str] = mapped_column(String(20), index=True)
    settled_by: Mapped[str | None] = mapped_column(String(100))
    settled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    outcome_reason: Mapped[str | None] = mapped_column(Text)
    referred_to: Mapped[str | None] = mapped_column(String(200))
    grant_id: Mapped[int | None] = mapped_column(Integer)


class ConsoleSession(Base):
    """A browser signed in to the web console: the SHA-256 of its cookie's token, whose it is, its CSRF
    token, and when it ends."""

    __tablename__ = "console_sessions"
    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    consumer_id: Mapped[int] = mapped_column(ForeignKey("consumers.id", name="fk_console_sessions_consumer_id"))
    csrf: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())


class DeliveryFiling(Base):
    """A department's report ahead (报备, Zhongshan 16; Hengyang 9) that the data of the period ending at
    `period_end` will be late: it moves the period's due date from `due_before` to `due_after`, with its
    reason. Filed before the data was due; audited."""

    __tablename__ = "delivery_filings"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    resource_id: Mapped[str] = mapped_column(String(100), index=True)
    department: Mapped[str] = mapped_column(String(50))
    period_end: Mapped[datetime] = mapped_column(UTCDateTime())
    due_before: Mapped[datetime] = mapped_column(UTCDateTime())
    due_after: Mapped[datetime] = mapped_column(UTCDateTime())
    reason: Mapped[str] = mapped_column(Text)
    filed_by: Mapped[str] = mapped_column(String(100))
    filed_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Grant(Base):
    """What a consumer may do with a resource: these fields, these modes, until `valid_until`."""

    __tablename__ = "grants"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    application_id: Mapped[int] = mapped_column(ForeignKey("applications.id", name="fk_grants_application_id"))
    consumer_id: Mapped[int] = mapped_column(ForeignKey("consumers.id", name="fk_grants_consumer_id"), index=True)
    resource_id: Mapped[str] = mapped_column(String(100), index=True)
    fields: Mapped[list[str]] = mapped_column(JSON)
    modes: Mapped[list[str]] = mapped_column(JSON)
    purpose: Mapped[str] = mapped_column(Text)
    granted_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    valid_until: Mapped[datetime] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    revoked_by: Mapped[str | None] = mapped_column(String(100))
    revoke_reason: Mapped[str | None] = mapped_column(Text)
    reminded_at: Mapped[datetime | None] = mapped_column(UTCDateTime())  # told it expires soon
    expected_calls_per_day: Mapped[int | None] = mapped_column(Integer)  # as its application declared


class AuditEntry(Base):
    """One call, in an append-only hash chain: `hash` = sha256(previous hash + this entry's canonical JSON).

    Nothing personal is kept beyond `record_key`, the key that was asked for.
    """

    __tablename__ = "audit_log"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # No secondary indexes, not even a unique one on `hash`: every serving call appends here, and each
    # index is one more B-tree page written per commit; the reports over it (stats) scan it whole, and
    # `sharehub audit verify` walks it by id.
    action: Mapped[str] = mapped_column(String(40))
    consumer_id: Mapped[int | None] = mapped_column(Integer)
    department: Mapped[str | None] = mapped_column(String(50))
    resource_id: Mapped[str | None] = mapped_column(String(100))
    grant_id: Mapped[int | None] = mapped_column(Integer)
    purpose: Mapped[str | None] = mapped_column(Text)
    record_key: Mapped[str | None] = mapped_column(String(200))
    result: Mapped[str] = mapped_column(String(40))
    response_bytes: Mapped[int] = mapped_column(Integer, default=0)
    detail: Mapped[str | None] = mapped_column(Text)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class AuditHead(Base):
    """The chain's last hash, in one row that every append locks, so appends are strictly ordered."""

    __tablename__ = "audit_head"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    last_id: Mapped[int] = mapped_column(Integer, default=0)
    last_hash: Mapped[str] = mapped_column(String(64))


class Extract(Base):
    """A bulk copy (批量复制): a masked Parquet extract of granted columns, with its manifest."""

    __tablename__ = "extracts"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    consumer_id: Mapped[int] = mapped_column(Integer, index=True)
    grant_id: Mapped[int] = mapped_column(ForeignKey("grants.id", name="fk_extracts_grant_id"))
    resource_id: Mapped[str] = mapped_column(String(100), index=True)
    store_version: Mapped[int] = mapped_column(Integer)
    # The store's Delta table id: a store deleted and written anew is another table, its versions from 0.
    store_table_id: Mapped[str | None] = mapped_column(String(64))
    since_version: Mapped[int | None] = mapped_column(Integer)  # incremental: changes after this version
    rows: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    path: Mapped[str] = mapped_column(String(400))
    columns: Mapped[list[str]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    removed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())  # its files deleted; the row stays


class Objection(Base):
    """A consumer's report that a record is wrong (疑义/纠错), the provider's answer, and its deadline."""

    __tablename__ = "objections"
    # A query asks whether its record is under an open objection.
    __table_args__ = (Index("ix_objections_record", "resource_id", "record_key"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    consumer_id: Mapped[int] = mapped_column(Integer, index=True)
    department: Mapped[str] = mapped_column(String(50))
    resource_id: Mapped[str] = mapped_column(String(100), index=True)
    provider: Mapped[str] = mapped_column(String(50), index=True)
    record_key: Mapped[str] = mapped_column(String(200))
    fields: Mapped[list[str]] = mapped_column(JSON)
    reason: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(20), index=True)  # open, corrected, confirmed
    notice_id: Mapped[int | None] = mapped_column(ForeignKey("notices.id", name="fk_objections_notice_id"))
    deadline: Mapped[datetime] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    answered_by: Mapped[str | None] = mapped_column(String(100))
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    answer: Mapped[str | None] = mapped_column(Text)


class OpenRequest(Base):
    """A request to the open-data portal for a resource opened on application (依申请开放), its answer by
    the providing department within the profile's `open_application` working days, and the dataset
    written for it when approved."""

    __tablename__ = "open_requests"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    resource_id: Mapped[str] = mapped_column(String(100), index=True)
    provider: Mapped[str] = mapped_column(String(50), index=True)
    applicant: Mapped[str] = mapped_column(String(200))  # as the portal names the requester
    purpose: Mapped[str] = mapped_column(Text)
    fields: Mapped[list[str]] = mapped_column(JSON)
    portal_ref: Mapped[str | None] = mapped_column(String(100))  # the portal's own number for the request
    status: Mapped[str] = mapped_column(String(20), index=True)  # pending, approved, refused
    deadline: Mapped[datetime] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    filed_by: Mapped[str] = mapped_column(String(100))
    notice_id: Mapped[int | None] = mapped_column(ForeignKey("notices.id", name="fk_open_requests_notice_id"))
    decided_by: Mapped[str | None] = mapped_column(String(100))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    reason: Mapped[str | None] = mapped_column(Text)
    dataset: Mapped[str | None] = mapped_column(String(300))  # object-store path of the data file
    store_version: Mapped[int | None] = mapped_column(BigInteger)
    rows: Mapped[int | None] = mapped_column(BigInteger)
    sha256: Mapped[str | None] = mapped_column(String(64))


class UpstreamRequest(Base):
    """A department's request for data held at the upper-level platform (MISSION 14; Zhongshan 20): the
    platform office collects it, forwards it upward as its own application, and relays the answer and,
    once granted, the serving calls made under it."""

    __tablename__ = "upstream_requests"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    consumer_id: Mapped[int] = mapped_column(ForeignKey("consumers.id", name="fk_upstream_requests_consumer_id"))
    department: Mapped[str] = mapped_column(String(50), index=True)
    resource_id: Mapped[str] = mapped_column(String(100), index=True)  # the upper level's resource id
    provider: Mapped[str] = mapped_column(String(50))  # the upper-level department that provides it
    fields: Mapped[list[str]] = mapped_column(JSON)
    modes: Mapped[list[str]] = mapped_column(JSON)
    purpose: Mapped[str] = mapped_column(Text)
    valid_until: Mapped[datetime] = mapped_column(UTCDateTime())
    # collected, declined (by this platform), forwarded, granted, refused (upstream), contested, referred,
    # withdrawn, ended
    status: Mapped[str] = mapped_column(String(20), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    deadline: Mapped[datetime] = mapped_column(UTCDateTime())  # for this platform office to forward or decline
    notice_id: Mapped[int | None] = mapped_column(ForeignKey("notices.id", name="fk_upstream_requests_notice_id"))
    forwarded_by: Mapped[str | None] = mapped_column(String(100))
    forwarded_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    upstream_application_id: Mapped[int | None] = mapped_column(BigInteger)
    upstream_status: Mapped[str | None] = mapped_column(String(20))
    upstream_step_deadline: Mapped[datetime | None] = mapped_column(UTCDateTime())
    upstream_grant_id: Mapped[int | None] = mapped_column(BigInteger)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    reason: Mapped[str | None] = mapped_column(Text)
    synced_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class UpstreamObjection(Base):
    """An objection (疑义) a department here raised, through this platform office, on an upper-level record
    it uses under a granted request; the upper level's provider answers it, and sync brings the answer down."""

    __tablename__ = "upstream_objections"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    request_id: Mapped[int] = mapped_column(
        ForeignKey("upstream_requests.id", name="fk_upstream_objections_request_id"), index=True
    )
    consumer_id: Mapped[int] = mapped_column(ForeignKey("consumers.id", name="fk_upstream_objections_consumer_id"))
    department: Mapped[str] = mapped_column(String(50), index=True)
    resource_id: Mapped[str] = mapped_column(String(100))
    record_key: Mapped[str] = mapped_column(String(200))
    fields: Mapped[list[str]] = mapped_column(JSON)
    reason: Mapped[str] = mapped_column(Text)
    upstream_objection_id: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(20), index=True)  # open, corrected, confirmed (as upstairs)
    deadline: Mapped[datetime] = mapped_column(UTCDateTime())  # the upper-level provider's, to answer
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    answer: Mapped[str | None] = mapped_column(Text)
    synced_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
