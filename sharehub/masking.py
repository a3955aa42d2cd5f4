"""Masking of values by their field's rule, for anything shown outside the store (notices, query results)."""

from __future__ import annotations

from sharehub.catalogue.models import Classification, FieldSpec, Masking


def mask(value: object, rule: Masking) -> str:
    """The value as a person without clearance may see it: 张*三, 1101**********002X, 138****1234."""
    if value is None:
        return "∅"
    text = str(value)
    if rule == Masking.none:
        return text
    if rule == Masking.name:
        return text[0] + "*" if len(text) <= 2 else text[0] + "*" * (len(text) - 2) + text[-1]
    if rule == Masking.id_number:
        return text[:4] + "*" * max(len(text) - 8, 0) + text[-4:] if len(text) > 8 else "*" * len(text)
    if rule == Masking.phone:
        return text[:3] + "****" + text[-4:] if len(text) >= 11 else "*" * len(text)
    if rule in (Masking.address, Masking.partial):
        keep = max(len(text) // 3, 1)
        return text[:keep] + "*" * (len(text) - keep)
    return "***"


def shown_in_clear(field: FieldSpec) -> bool:
    """Whether the field's values are served as they are (no masking rule, classification below L3)."""
    return _rule(field) == Masking.none


def _rule(field: FieldSpec) -> Masking:
    if field.masking == Masking.none and field.classification in (Classification.L3, Classification.L4):
        return Masking.redact
    return field.masking


def mask_field(value: object, field: FieldSpec) -> str:
    """Mask by the field's rule; L3 and L4 data with no rule of its own is redacted, never shown."""
    return mask(value, _rule(field))
