"""Request and response models: catalogue."""

from __future__ import annotations

from pydantic import BaseModel, Field


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
