"""Pydantic models of the catalogue (目录): one department file, one resource file, nothing else."""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated, Any, Literal

import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

RESOURCE_ID = re.compile(r"^[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*$")
DEPARTMENT_ID = re.compile(r"^[a-z][a-z0-9_]*$")
DECIMAL_TYPE = re.compile(r"^decimal\((\d{1,2}),(\d{1,2})\)$")
SIMPLE_TYPES: dict[str, pa.DataType] = {
    "string": pa.string(),
    "integer": pa.int64(),
    "float": pa.float64(),
    "boolean": pa.bool_(),
    "date": pa.date32(),
    "timestamp": pa.timestamp("us"),
    "timestamptz": pa.timestamp("us", tz="UTC"),
}


SEP = "\x1f"  # between the key fields of a record key written as one string (serving copies, audit entries)


class Strict(BaseModel):
    """Every catalogue model refuses keys it does not know."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Level(StrEnum):
    """Government level of a department's platform (MISSION 14)."""

    province = "province"
    city = "city"
    county = "county"


class Department(Strict):
    """A department that provides and consumes data."""

    id: Annotated[str, Field(pattern=DEPARTMENT_ID.pattern)]
    name: str
    name_en: str
    level: Level = Level.city
    contact_email: str
    contact_name: str = ""


class Classification(StrEnum):
    """Data grading (Lichuan 27; Hengyang 24(七)): L1 public … L4 core personal data."""

    L1 = "L1"
    L2 = "L2"
    L3 = "L3"
    L4 = "L4"


class Masking(StrEnum):
    """How a field is shown to a consumer whose grant does not clear its classification."""

    none = "none"
    name = "name"
    id_number = "id_number"
    phone = "phone"
    address = "address"
    partial = "partial"
    redact = "redact"


class Identifier(StrEnum):
    """National identifier formats the quality gate knows how to check."""

    resident_id = "resident_id"
    uscc = "uscc"
    division_code = "division_code"
    phone = "phone"


class FieldSpec(Strict):
    """One column of a resource: its type, grading, masking and checks."""

    name: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$")]
    title: str
    type: str
    classification: Classification
    masking: Masking = Masking.none
    required: bool = False
    identifier: Identifier | None = None
    values: list[str] | None = None
    not_future: bool = False
    matches_id: str | None = None
    after_birth_of: str | None = None
    source_column: str | None = None
    # The base data item this field holds a copy of, as `<base store>.<item>` (e.g. population.name);
    # the consistency check compares it with the authoritative source's value for the same entity.
    corresponds_to: Annotated[str | None, Field(pattern=r"^[a-z_]+\.[a-z][a-z0-9_]*$")] = None
    # Extra normalizations before comparing: `traditional` (繁→简). Width, spaces and case always apply.
    normalize: list[Literal["traditional"]] = Field(default_factory=list)
    # For a coded field whose departments use different words for the same state (scjg 注销 vs swj 注销,
    # scjg 存续 vs swj 正常): each value's shared meaning. Both sides of a correspondence compare meanings.
    vocabulary: dict[str, Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$")]] | None = None

    @field_validator("type")
    @classmethod
    def _known_type(cls, v: str) -> str:
        if v not in SIMPLE_TYPES and not DECIMAL_TYPE.match(v):
            raise ValueError(f"unknown type {v!r}; use one of {sorted(SIMPLE_TYPES)} or decimal(p,s)")
        return v

    @property
    def column(self) -> str:
        """The column's name at the source."""
        return self.source_column or self.name

    @property
    def arrow_type(self) -> pa.DataType:
        """The Arrow type the store keeps this field as."""
        m = DECIMAL_TYPE.match(self.type)
        if m:
            return pa.decimal128(int(m.group(1)), int(m.group(2)))
        return SIMPLE_TYPES[self.type]


class BaseStore(StrEnum):
    """The five base stores (基础库) of MISSION 4."""

    population = "population"
    legal_entity = "legal_entity"
    geography = "geography"
    credit = "credit"
    licence = "licence"


class StoreSpec(Strict):
    """Where a resource's rows are kept: a base, thematic or business store."""

    kind: Literal["base", "thematic", "business"]
    base: BaseStore | None = None
    theme: str | None = None

    @model_validator(mode="after")
    def _matching_detail(self) -> StoreSpec:
        if self.kind == "base" and self.base is None:
            raise ValueError("a base store names which one: base: population|legal_entity|geography|credit|licence")
        if self.kind == "thematic" and not self.theme:
            raise ValueError("a thematic store names its theme")
        if self.kind != "base" and self.base is not None:
            raise ValueError("only kind: base takes base:")
        return self

    @property
    def path(self) -> str:
        """The folder of the store inside the object store."""
        return {"base": f"base/{self.base}", "thematic": f"thematic/{self.theme}", "business": "business"}[self.kind]


class SourceSpec(Strict):
    """How to read a resource from its department: a SQL connection, a file drop, or the upper-level
    platform (`upstream`)."""

    connection: str | None = None
    table: str | None = None
    query: str | None = None
    file_pattern: str | None = None
    # The upper-level platform's resource this one lands, pushed down under a standing bulk grant (Zhejiang 14).
    upstream: str | None = None
    encoding: Literal["utf-8", "gbk"] = "utf-8"
    key: list[str] = Field(min_length=1)
    mode: Literal["incremental", "snapshot"]
    incremental_column: str | None = None
    lag_minutes: int = Field(default=10, ge=0)
    detect_deletes: bool | None = None
    timezone: str = "Asia/Shanghai"

    @model_validator(mode="after")
    def _one_origin(self) -> SourceSpec:
        origins = [x for x in (self.table, self.query, self.file_pattern, self.upstream) if x]
        if len(origins) != 1:
            raise ValueError("declare exactly one of table, query, file_pattern or upstream")
        if self.upstream and (self.connection or self.mode != "snapshot"):
            raise ValueError("an upstream resource is pushed whole: mode snapshot, and no connection")
        if (self.table or self.query) and not self.connection:
            raise ValueError("a table or query needs a connection")
        if self.file_pattern and self.connection:
            raise ValueError("a file drop has no connection")
        if self.mode == "incremental" and not self.incremental_column:
            raise ValueError("incremental mode needs incremental_column")
        if self.mode == "snapshot" and self.incremental_column:
            raise ValueError("snapshot mode takes no incremental_column")
        if self.file_pattern and self.mode != "snapshot":
            raise ValueError("a file drop is read as a snapshot")
        return self

    @property
    def deletes_detected(self) -> bool:
        """Snapshots always compare keys; incremental sources only when asked (it reads every key)."""
        return self.mode == "snapshot" if self.detect_deletes is None else self.detect_deletes


class ShareSpec(Strict):
    """Share type (Lichuan 7–8): not-shared entries must cite their legal basis."""

    type: Literal["unconditional", "conditional", "not_shared"]
    conditions: str | None = None
    legal_basis: str | None = None

    @model_validator(mode="after")
    def _basis(self) -> ShareSpec:
        if self.type == "not_shared" and not (self.legal_basis or "").strip():
            raise ValueError("a not_shared resource must cite its legal_basis")
        if self.type == "conditional" and not (self.conditions or "").strip():
            raise ValueError("a conditional resource states its conditions")
        return self


class UpdateSpec(Strict):
    """Update frequency and delivery deadline (Lichuan 17; Zhejiang 25)."""

    frequency: Literal["realtime", "hourly", "daily", "weekly", "monthly"]
    deadline_working_days: int = Field(ge=0, le=30)

    @property
    def schedule(self) -> str:
        """The Airflow schedule of this frequency."""
        return {
            "realtime": "*/15 * * * *",
            "hourly": "@hourly",
            "daily": "@daily",
            "weekly": "@weekly",
            "monthly": "@monthly",
        }[self.frequency]


class Resource(Strict):
    """One catalogue entry: a data resource that one department provides."""

    id: str
    version: int = Field(ge=1)
    title: str
    description: str = ""
    provider: str
    format: Literal["table", "file"] = "table"
    store: StoreSpec
    source: SourceSpec
    fields: list[FieldSpec] = Field(min_length=1)
    authoritative_for: list[str] = Field(default_factory=list)
    share: ShareSpec
    # 有条件开放 (`conditional`, Hengyang 22) is a type of its own: provided in part, or on conditions the
    # requester accepts (`open_conditions`); 依申请开放 (`on_application`, Fushun 20) is answered case by case.
    open: Literal["unconditional", "on_application", "conditional", "not_open"]
    # Why the data is not opened, or opened on application only: the basis published (Fushun 22).
    open_basis: str | None = None
    open_conditions: str | None = None
    serving_modes: list[Literal["verification", "query", "bulk"]]
    update: UpdateSpec
    usage: str = ""
    suite: str
    sample: list[dict[str, Any]] = Field(default_factory=list)

    @field_validator("id")
    @classmethod
    def _id_shape(cls, v: str) -> str:
        if not RESOURCE_ID.match(v):
            raise ValueError(f"resource id {v!r} must look like <department>.<name>, lower case")
        return v

    @model_validator(mode="after")
    def _consistent(self) -> Resource:
        dept = self.id.split(".", 1)[0]
        if self.provider != dept:
            raise ValueError(f"provider {self.provider!r} must be the id's department {dept!r}")
        if self.suite != self.id:
            raise ValueError(f"suite must be named after the resource: {self.id!r}")
        names = [f.name for f in self.fields]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"fields declared twice: {dupes}")
        for label, wanted in (("source.key", self.source.key), ("authoritative_for", self.authoritative_for)):
            unknown = [k for k in wanted if k not in names]
            if unknown:
                raise ValueError(f"{label} names unknown fields {unknown}")
        for f in self.fields:
            for label, ref in (("matches_id", f.matches_id), ("after_birth_of", f.after_birth_of)):
                if ref and (ref not in names or self.field(ref).identifier != Identifier.resident_id):
                    raise ValueError(f"{f.name}.{label} must name a resident_id field, not {ref!r}")
            if f.matches_id and not (f.type == "date" or f.values == ["男", "女"]):
                raise ValueError(f"{f.name}.matches_id needs a date field or a sex field with values [男, 女]")
            if f.after_birth_of and f.type != "date":
                raise ValueError(f"{f.name}.after_birth_of needs a date field")
            if f.vocabulary is not None and f.values is not None and set(f.values) != set(f.vocabulary):
                raise ValueError(f"{f.name}.vocabulary must give a meaning to each of its values {f.values}")
        inc = self.source.incremental_column
        if inc and inc not in names:
            raise ValueError(f"source.incremental_column {inc!r} is not a declared field")
        if inc and self.field(inc).type not in ("timestamp", "timestamptz", "integer"):
            raise ValueError(f"source.incremental_column {inc!r} must be a timestamp or integer field")
        if self.store.kind == "base" and self.share.type != "unconditional":
            raise ValueError("base-store resources are shared unconditionally")
        if (self.open == "conditional") != bool((self.open_conditions or "").strip()):
            raise ValueError("open: conditional states its open_conditions, and only it does")
        if self.share.type == "not_shared" and self.serving_modes:
            raise ValueError("a not_shared resource has no serving_modes")
        if self.share.type != "not_shared" and not self.serving_modes:
            raise ValueError("a shared resource names at least one serving mode")
        if self.open != "not_open" and self.share.type == "not_shared":
            raise ValueError("a resource not shared even between departments cannot be open to the public")
        if self.open != "not_open" and not any(f.classification == Classification.L1 for f in self.fields):
            raise ValueError("an open resource needs at least one L1 (public) field: only L1 fields are opened")
        for row_no, row in enumerate(self.sample):
            unknown = sorted(set(row) - set(names))
            if unknown:
                raise ValueError(f"sample row {row_no} has unknown fields {unknown}")
        return self

    def field(self, name: str) -> FieldSpec:
        """The declared field called `name`."""
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(f"{self.id}: no field {name!r}")

    @property
    def department(self) -> str:
        """The providing department's id."""
        return self.provider

    @property
    def arrow_schema(self) -> pa.Schema:
        """The schema of the resource's rows in its store, before bookkeeping columns."""
        return pa.schema([pa.field(f.name, f.arrow_type, nullable=True) for f in self.fields])

    @property
    def key_columns(self) -> list[str]:
        """The source columns of the key, in key order."""
        return [self.field(k).column for k in self.source.key]

    @property
    def store_path(self) -> str:
        """The Delta table's path inside the object store."""
        return f"stores/{self.store.path}/{self.id}"
