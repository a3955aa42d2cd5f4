"""Load and validate the catalogue folder; every problem names the file, the key and the reason."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import yaml
from pydantic import ValidationError

from sharehub.catalogue.models import Department, Resource
from sharehub.errors import CatalogueError

M = TypeVar("M", Department, Resource)


@dataclass(frozen=True)
class Problem:
    """One reason the catalogue is rejected."""

    file: str
    key: str
    reason: str

    def __str__(self) -> str:
        return f"{self.file}: {self.key}: {self.reason}"


@dataclass
class Catalogue:
    """The validated catalogue: departments, resources, and a content hash that names its version."""

    root: Path
    departments: dict[str, Department] = field(default_factory=dict)
    resources: dict[str, Resource] = field(default_factory=dict)
    digest: str = ""
    documents: dict[str, str] = field(default_factory=dict)

    def resource(self, resource_id: str) -> Resource:
        """The resource with this id, or a clear error listing what exists."""
        try:
            return self.resources[resource_id]
        except KeyError:
            known = ", ".join(sorted(self.resources)) or "none"
            raise CatalogueError(f"unknown resource {resource_id!r}; the catalogue has: {known}") from None


def _read_yaml(path: Path, problems: list[Problem]) -> dict | None:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        problems.append(Problem(path.name, "-", f"not valid YAML: {exc}"))
        return None
    if not isinstance(data, dict):
        problems.append(Problem(path.name, "-", "must be a mapping"))
        return None
    return data


def _pydantic_problems(path: Path, exc: ValidationError) -> list[Problem]:
    out = []
    for err in exc.errors():
        key = ".".join(str(p) for p in err["loc"]) or "-"
        out.append(Problem(path.name, key, err["msg"]))
    return out


def _load(path: Path, model: type[M], problems: list[Problem]) -> M | None:
    """One YAML file as `model`, whose `id` must be the file's name; problems are appended, not raised."""
    data = _read_yaml(path, problems)
    if data is None:
        return None
    try:
        item = model.model_validate(data)
    except ValidationError as exc:
        problems.extend(_pydantic_problems(path, exc))
        return None
    if item.id != path.stem:
        problems.append(Problem(path.name, "id", f"{model.__name__.lower()} {item.id!r} must live in {item.id}.yaml"))
    return item


def load_catalogue(root: Path) -> Catalogue:
    """Read `root/departments/*.yaml` and `root/resources/*.yaml`; raise CatalogueError listing every problem."""
    root = Path(root)
    problems: list[Problem] = []
    cat = Catalogue(root=root)
    if not root.is_dir():
        raise CatalogueError(f"catalogue folder {root} does not exist")
    hasher = hashlib.sha256()
    files = sorted(root.glob("departments/*.yaml")) + sorted(root.glob("resources/*.yaml"))
    for path in files:
        text = path.read_text(encoding="utf-8")
        rel = str(path.relative_to(root))
        cat.documents[rel] = text
        hasher.update(rel.encode() + b"\0" + text.encode() + b"\0")
    cat.digest = hasher.hexdigest()

    for path in sorted(root.glob("departments/*.yaml")):
        dept = _load(path, Department, problems)
        if dept is not None:
            cat.departments[dept.id] = dept

    for path in sorted(root.glob("resources/*.yaml")):
        res = _load(path, Resource, problems)
        if res is None:
            continue
        if res.provider not in cat.departments:
            problems.append(Problem(path.name, "provider", f"no department file departments/{res.provider}.yaml"))
        cat.resources[res.id] = res

    problems.extend(_authority_problems(cat))
    problems.extend(_correspondence_problems(cat))
    if not cat.resources and not problems:
        problems.append(Problem("resources/", "-", "the catalogue declares no resource"))
    if problems:
        raise CatalogueError("the catalogue is invalid:\n" + "\n".join(f"  {p}" for p in problems))
    return cat


def _authority_problems(cat: Catalogue) -> list[Problem]:
    """One datum, one source (一数一源): an item of a base store has exactly one authoritative resource."""
    owner: dict[tuple[str, str], str] = {}
    out = []
    for res in cat.resources.values():
        if res.store.kind != "base":
            continue
        for item in res.authoritative_for:
            slot = (str(res.store.base), item)
            if slot in owner:
                out.append(
                    Problem(
                        f"{res.id}.yaml",
                        "authoritative_for",
                        f"{slot[0]}.{item} already has an authoritative source: {owner[slot]}",
                    )
                )
            else:
                owner[slot] = res.id
    return out


def _correspondence_problems(cat: Catalogue) -> list[Problem]:
    """Every `corresponds_to` names an item some base resource is authoritative for, in the same vocabulary."""
    owners = {
        f"{res.store.base}.{item}": res.field(item)
        for res in cat.resources.values()
        if res.store.kind == "base"
        for item in res.authoritative_for
    }
    out = []
    for res in cat.resources.values():
        for f in res.fields:
            if not f.corresponds_to:
                continue
            where = (f"{res.id}.yaml", f"fields.{f.name}.corresponds_to")
            authority = owners.get(f.corresponds_to)
            if authority is None:
                out.append(Problem(*where, f"no base resource is authoritative for {f.corresponds_to}"))
            elif (f.vocabulary is None) != (authority.vocabulary is None):
                out.append(Problem(*where, f"{f.corresponds_to} and this field must both declare a vocabulary"))
            elif f.vocabulary and authority.vocabulary:
                unknown = sorted(set(f.vocabulary.values()) - set(authority.vocabulary.values()))
                if unknown:
                    out.append(Problem(*where, f"meanings {unknown} are not in {f.corresponds_to}'s vocabulary"))
    return out
