"""Building the hub's thematic stores (`warehouse.themes` does the SQL and the Delta writing): which models
are declared, where their sources' stores are, and the audit entry of each build."""

from __future__ import annotations

from sharehub import audit
from sharehub.hub import Hub
from warehouse.declared import Model, ModelError, load_models
from warehouse.themes import Build, build_model, last_build

__all__ = ["Build", "build", "last_build", "models"]


def models(hub: Hub) -> dict[str, Model]:
    """The hub's declared models."""
    return load_models(hub.settings.models_dir, hub.catalogue.resources)


def build(hub: Hub, model_ids: list[str] | None = None, *, force: bool = False) -> list[Build]:
    """Build the named models (all by default) whose sources or SQL changed since their last build; each
    build that wrote a version is in the audit chain."""
    declared = models(hub)
    unknown = sorted(set(model_ids or []) - set(declared))
    if unknown:
        raise ModelError(f"no model {unknown[0]!r}; declared: {', '.join(sorted(declared)) or 'none'}")
    options = hub.store.delta_options()
    done = []
    for model_id in model_ids or sorted(declared):
        model = declared[model_id]
        sources = {rid: hub.store.uri(hub.catalogue.resource(rid).store_path) for rid in model.sources}
        made = build_model(model, sources, hub.store.uri(model.store_path), options, force=force)
        if made.status == "built":
            read = ", ".join(f"{rid}@v{v}" for rid, v in sorted(made.sources.items()))
            audit.record(hub, "store", None, model.id, result="stored", detail=f"theme v{made.version}; from {read}")
        done.append(made)
    return done
