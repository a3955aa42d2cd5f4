"""Jurisdiction profiles: which deadlines, in working days, each regulation sets, with the article cited."""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field

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


class Profile(BaseModel):
    """A deployment's jurisdiction: its regulation and the deadlines it sets."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    id: str
    regulation: str
    seed: str
    deadlines: dict[str, Deadline]

    def days(self, kind: str) -> int:
        """The working days allowed for `kind`."""
        return self.deadlines[kind].working_days


def load_profile(profile_id: str) -> Profile:
    """The shipped profile `profile_id` (lichuan, fushun, zhejiang, hengyang, zhongshan)."""
    path = FOLDER / f"{profile_id}.yaml"
    if not path.exists():
        known = ", ".join(sorted(p.stem for p in FOLDER.glob("*.yaml")))
        raise ValueError(f"unknown jurisdiction profile {profile_id!r}; shipped: {known}")
    profile = Profile.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))
    missing = sorted(set(DEADLINES) - set(profile.deadlines))
    if missing or profile.id != profile_id:
        raise ValueError(f"{path.name}: id must be {profile_id!r} and every deadline declared; missing {missing}")
    return profile
