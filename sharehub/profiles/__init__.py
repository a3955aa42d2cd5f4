"""Jurisdiction profiles: which deadlines, in working days, each regulation sets, with the article cited, and
the articles every other rule the platform applies rests on (`citations`). Code asks the active profile
(`cite`); where a regulation has no such article, the text says the rule is the platform's."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

FOLDER = Path(__file__).parent
DEADLINES = (
    "rectification",
    "feedback",
    "objection",
    "application_review",
    "provider_decision",
    "application_contest",
    "notify_applicant",
    "direct_grant",
    "conditional_delivery",
    "open_application",
)


class Deadline(BaseModel):
    """One deadline: its length and where it comes from."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    working_days: int = Field(ge=0, le=60)
    basis: str = Field(min_length=4, description="The article, quoted, or why the platform sets it.")
    from_regulation: bool


CITED = (
    "rectification",  # who orders a department to rectify, and where overdue rectification goes
    "bulletin",  # the periodic publication of how departments share
    "cross_level",  # how a department reaches data held at the upper level
    "advance_filing",  # a provider reporting ahead (报备) that its data will be late or its scope changes
)


class Citation(BaseModel):
    """The article a rule rests on, quoted as the seed words it, or None where the regulation is silent."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    article: str | None = Field(description="e.g. 第三十一条：…通知整改 (the quoted words must be the seed's)")


ApplicationStep = Literal["review", "provider"]


class Workflow(BaseModel):
    """How applications and deliveries go under this regulation, beyond their deadlines.

    `application_steps`: the steps a conditional application passes, in order: `review` (the platform
    office's check, 规范性检查) and `provider` (the providing department's decision); the last is always
    the provider's. `delivery_max_working_days`: the longest a catalogue may give a department to deliver
    a period's data (None: the regulation sets no limit); `realtime_stores`: the stores whose data must
    be delivered in real time. `objection_reviewer`: who checks an objection and answers it, the providing
    department, or the platform office, which has the provider correct what it finds wrong (Zhongshan 22).
    `not_shared_review`, where the regulation has one: a contested refusal of not-shared data is reviewed
    by the platform office and ends in reclassification or publication (公示) of why it cannot be shared
    (Hengyang 16). `open_basis_published`, where the regulation asks: the basis for not opening data, or
    opening it on application only, is published with the open catalogue (Fushun 22). `open_types`: the
    open-data types the regulation has (Fushun 20: 依申请开放; Hengyang 22: 有条件开放 instead). Each carries
    its basis (None: the regulation has no such rule)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    application_steps: tuple[ApplicationStep, ...] = Field(min_length=1)
    application_basis: str = Field(min_length=4)
    delivery_max_working_days: int | None = Field(ge=0, le=30)
    realtime_stores: tuple[str, ...] = ()
    delivery_basis: str = Field(min_length=4)
    objection_reviewer: Literal["provider", "platform"] = "provider"
    objection_basis: str = Field(min_length=4)
    not_shared_review: str | None = None
    open_basis_published: str | None = None
    open_types: tuple[Literal["unconditional", "on_application", "conditional", "not_open"], ...] = (
        "unconditional",
        "on_application",
        "not_open",
    )
    open_types_basis: str = Field(min_length=4)

    @model_validator(mode="after")
    def _provider_decides_last(self) -> Workflow:
        steps = self.application_steps
        if steps[-1] != "provider" or len(set(steps)) != len(steps):
            raise ValueError(f"application_steps end with the provider's decision, each once: not {list(steps)}")
        return self


class Profile(BaseModel):
    """A deployment's jurisdiction: its regulation and the deadlines it sets."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    id: str
    regulation: str
    seed: str
    deadlines: dict[str, Deadline]
    citations: dict[str, Citation]
    workflow: Workflow

    def days(self, kind: str) -> int:
        """The working days allowed for `kind`."""
        return self.deadlines[kind].working_days

    def cite(self, rule: str) -> str:
        """What a text cites for `rule`: the article of this jurisdiction's regulation, or, where it has none,
        that the rule is the platform's own."""
        found = self.citations[rule].article
        short = self.regulation.split("（")[0]
        return f"{short}{found}" if found else f"平台规则，{short}未作规定"

    def next_step(self, step: str | None) -> str | None:
        """The application step after `step` (None: the first); None after the provider's decision."""
        steps = self.workflow.application_steps
        if step is None:
            return steps[0]
        at = steps.index(step)  # type: ignore[arg-type]
        return steps[at + 1] if at + 1 < len(steps) else None

    def delivery_days(self, declared: int) -> int:
        """The working days a department has to deliver a period's data: the catalogue's `declared`, cut to
        the regulation's limit where it sets one."""
        limit = self.workflow.delivery_max_working_days
        return declared if limit is None else min(declared, limit)


def load_profile(profile_id: str) -> Profile:
    """The shipped profile `profile_id` (lichuan, fushun, zhejiang, hengyang, zhongshan)."""
    path = FOLDER / f"{profile_id}.yaml"
    if not path.exists():
        known = ", ".join(sorted(p.stem for p in FOLDER.glob("*.yaml")))
        raise ValueError(f"unknown jurisdiction profile {profile_id!r}; shipped: {known}")
    profile = Profile.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))
    missing = sorted(set(DEADLINES) - set(profile.deadlines)) + sorted(set(CITED) - set(profile.citations))
    if missing or profile.id != profile_id:
        raise ValueError(f"{path.name}: id must be {profile_id!r}, with every deadline and citation; missing {missing}")
    return profile
