"""Thematic model files, read without importing the engines (the DAG file parses them)."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import yaml

from connectors.errors import FatalError

MODEL_ID = re.compile(r"^[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*$")
HEADER = re.compile(r"\A\s*/\*(.*?)\*/", re.S)


class ModelError(FatalError):
    """A model that cannot be read or run; the message names the model file and what is wrong."""


@dataclass(frozen=True)
class Model:
    """One declared thematic model."""

    id: str  # <theme>.<name>
    title: str
    key: list[str]
    sources: list[str]
    sql: str
    path: Path

    @property
    def theme(self) -> str:
        """The theme the model belongs to."""
        return self.id.split(".", 1)[0]

    @property
    def store_path(self) -> str:
        """The Delta table's path inside the object store."""
        theme, name = self.id.split(".", 1)
        return f"stores/themes/{theme}/{name}"

    @property
    def digest(self) -> str:
        """The sha256 of the model's SQL, to rebuild when it changes."""
        return hashlib.sha256(self.sql.encode()).hexdigest()


def load_models(root: Path, resource_ids: Iterable[str]) -> dict[str, Model]:
    """Every `<theme>.<name>.sql` under `root`; raise ModelError naming the file and the problem."""
    known = set(resource_ids)
    models = {}
    for path in sorted(Path(root).glob("*.sql")):
        model_id = path.stem
        if not MODEL_ID.match(model_id):
            raise ModelError(f"{path.name}: a model file is named <theme>.<name>.sql, lower case")
        text = path.read_text(encoding="utf-8")
        m = HEADER.match(text)
        if m is None:
            raise ModelError(f"{path.name}: the model must open with a /* YAML */ block (title, key, sources)")
        try:
            head = yaml.safe_load(m.group(1)) or {}
        except yaml.YAMLError as exc:
            raise ModelError(f"{path.name}: the header is not YAML: {exc}") from None
        for name, kind in (("title", str), ("key", list), ("sources", list)):
            if not isinstance(head.get(name), kind) or not head[name]:
                raise ModelError(f"{path.name}: header field {name!r} is missing or not a {kind.__name__}")
        unknown = sorted(set(head["sources"]) - known)
        if unknown:
            raise ModelError(f"{path.name}: sources {unknown} are not catalogue resources")
        models[model_id] = Model(
            model_id, head["title"], list(head["key"]), list(head["sources"]), text[m.end() :].strip(), path
        )
    return models
