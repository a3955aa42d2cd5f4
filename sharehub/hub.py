"""The hub's wiring for one process: settings, catalogue, object store and metadata database."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.orm import Session

from sharehub.catalogue import Catalogue, load_catalogue
from sharehub.metadata import db
from sharehub.metadata.models import CatalogueVersion
from sharehub.objectstore import ObjectStore
from sharehub.profiles import Profile, load_profile
from sharehub.settings import Settings, get_settings
from sharehub.workdays import WorkCalendar

if TYPE_CHECKING:
    from sharehub.serving.copies import ServingCopies


@dataclass
class Hub:
    """Everything a pipeline step needs, built from the settings on first use."""

    settings: Settings

    @classmethod
    def from_env(cls) -> Hub:
        """The hub described by the `SHAREHUB_*` environment."""
        return cls(get_settings())

    @cached_property
    def catalogue(self) -> Catalogue:
        """The validated catalogue; its version is recorded the first time it is seen."""
        cat = load_catalogue(self.settings.catalogue_dir)
        self.record_catalogue(cat)
        return cat

    @cached_property
    def profile(self) -> Profile:
        """The jurisdiction profile whose deadlines apply."""
        return load_profile(self.settings.profile)

    @cached_property
    def calendar(self) -> WorkCalendar:
        """The working-day calendar, with the local override file applied."""
        return WorkCalendar.load(self.settings.holiday_file)

    @cached_property
    def store(self) -> ObjectStore:
        """The object store for landing, quarantine and Delta stores."""
        return ObjectStore(self.settings)

    @cached_property
    def serving(self) -> ServingCopies:
        """The key-indexed serving copies of the stores (verification and query lookups)."""
        from sharehub.serving.copies import ServingCopies  # lazy: deltalake and pyarrow, for serving processes only

        return ServingCopies(self, self.settings.serving_refresh_seconds)

    @contextmanager
    def db(self) -> Iterator[Session]:
        """A metadata-database session that commits on success."""
        with db.session(self.settings.metadata_url) as s:
            yield s

    def record_catalogue(self, cat: Catalogue) -> int:
        """Record this catalogue content as a version if it is new; return its version number."""
        with self.db() as s:
            found = s.scalar(select(CatalogueVersion).where(CatalogueVersion.digest == cat.digest))
            if found is None:
                found = CatalogueVersion(digest=cat.digest, resource_ids=sorted(cat.resources), documents=cat.documents)
                s.add(found)
                s.flush()
            return found.id

    @property
    def catalogue_version(self) -> int:
        """The recorded version number of the loaded catalogue."""
        return self.record_catalogue(self.catalogue)
