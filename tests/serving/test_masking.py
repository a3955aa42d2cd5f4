"""Masking: a whole column masked in Arrow kernels reads exactly as each value masked on its own."""

from __future__ import annotations

import random
from datetime import date

import pyarrow as pa
import pytest

from sharehub.catalogue.models import Classification, FieldSpec, Masking
from sharehub.serving.masking import mask, mask_array, mask_field

# Characters of one, three and four UTF-8 bytes, a character outside the BMP, full-width forms and spaces:
# lengths and slices must count characters, not bytes.
ALPHABET = "abcXYZ0123张三丰龍鳳😀ＡＢ　 -"


def _field(masking: Masking, classification: Classification = Classification.L3, kind: str = "string") -> FieldSpec:
    return FieldSpec.model_validate(
        {"name": "f", "title": "f", "type": kind, "classification": classification, "masking": masking}
    )


def _texts(n: int = 5000) -> list[str | None]:
    rng = random.Random(11)
    return [
        None if rng.random() < 0.05 else "".join(rng.choice(ALPHABET) for _ in range(rng.randrange(0, 30)))
        for _ in range(n)
    ]


@pytest.mark.parametrize("masking", list(Masking))
def test_a_masked_column_reads_as_each_value_masked(masking: Masking) -> None:
    spec = _field(masking)
    values = _texts()
    expected = [None if v is None else mask_field(v, spec) for v in values]
    chunked = pa.chunked_array([pa.array(values[:1234]), pa.array(values[1234:])])
    assert mask_array(pa.array(values), spec).to_pylist() == expected
    assert mask_array(chunked, spec).to_pylist() == expected
    assert mask_array(pa.array(values, pa.large_string()), spec).to_pylist() == expected
    assert mask_array(pa.array(values, pa.string_view()), spec).to_pylist() == expected


def test_examples_and_other_types() -> None:
    names = pa.array(["张三", "欧阳娜娜", "李", "", None])
    assert mask_array(names, _field(Masking.name)).to_pylist() == ["张*", "欧**娜", "李*", "", None]
    ids = pa.array(["11010519491231002X"])
    assert mask_array(ids, _field(Masking.id_number)).to_pylist() == ["1101**********002X"]
    assert mask_array(pa.array(["13812341234"]), _field(Masking.phone)).to_pylist() == ["138****1234"]
    # An L3 field with no rule of its own is redacted whatever its type; L1 data is served as it is.
    born = pa.array([date(1990, 1, 2), None])
    assert mask_array(born, _field(Masking.none, kind="date")).to_pylist() == ["***", None]
    assert mask_array(born, _field(Masking.none, Classification.L1, "date")) is born
    # A rule that keeps part of a value of another type masks its text form, as mask() does.
    assert mask_array(pa.array([12345678901]), _field(Masking.phone, kind="integer")).to_pylist() == ["123****8901"]
    assert mask("", Masking.name) == "" and mask("", Masking.redact) == "***"
