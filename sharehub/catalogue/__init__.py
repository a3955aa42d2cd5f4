"""The resource catalogue: pydantic models and the loader."""

from sharehub.catalogue.loader import Catalogue, Problem, load_catalogue
from sharehub.catalogue.models import Department, FieldSpec, Resource

__all__ = ["Catalogue", "Department", "FieldSpec", "Problem", "Resource", "load_catalogue"]
