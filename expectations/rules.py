"""Custom Great Expectations 1.x expectations for national identifiers, and the suite built from a resource.

Each custom expectation is a column-map expectation, so its results carry the failing rows' index
columns (`unexpected_index_column_names`) like any built-in one.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Any, ClassVar

import great_expectations as gx
import great_expectations.expectations as gxe
from great_expectations.execution_engine import PandasExecutionEngine
from great_expectations.expectations.expectation import ColumnMapExpectation
from great_expectations.expectations.metrics import ColumnMapMetricProvider, column_condition_partial

from expectations.identifiers import resident_id_problem, uscc_problem

PHONE = re.compile(r"^(?:1[3-9]\d{9}|0\d{2,3}-?\d{7,8})$")
# Province-level prefixes of GB/T 2260, including Taiwan, Hong Kong and Macao.
PROVINCES = {
    11,
    12,
    13,
    14,
    15,
    21,
    22,
    23,
    31,
    32,
    33,
    34,
    35,
    36,
    37,
    41,
    42,
    43,
    44,
    45,
    46,
    50,
    51,
    52,
    53,
    54,
    61,
    62,
    63,
    64,
    65,
    71,
    81,
    82,
}


def division_code_ok(v: str) -> bool:
    """Six digits under a real province prefix (the full GB/T 2260 list is checked by a later rule)."""
    return len(v) == 6 and v.isdigit() and int(v[:2]) in PROVINCES


class ColumnValuesResidentId(ColumnMapMetricProvider):
    """Whether each value is a valid GB 11643 resident ID number."""

    condition_metric_name = "column_values.valid_resident_id"

    @column_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column: Any, **kwargs: Any) -> Any:
        return column.map(lambda v: resident_id_problem(v) is None)


class ExpectColumnValuesToBeValidResidentId(ColumnMapExpectation):
    """Expect 18-character resident ID numbers with a real birth date and the right check digit (GB 11643)."""

    map_metric: ClassVar[str] = "column_values.valid_resident_id"
    success_keys: ClassVar[tuple[str, ...]] = ("mostly",)


class ColumnValuesUscc(ColumnMapMetricProvider):
    """Whether each value is a valid GB 32100 unified social credit code."""

    condition_metric_name = "column_values.valid_uscc"

    @column_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column: Any, **kwargs: Any) -> Any:
        return column.map(lambda v: uscc_problem(v) is None)


class ExpectColumnValuesToBeValidUscc(ColumnMapExpectation):
    """Expect unified social credit codes in the GB 32100 alphabet with the right check digits."""

    map_metric: ClassVar[str] = "column_values.valid_uscc"
    success_keys: ClassVar[tuple[str, ...]] = ("mostly",)


class ColumnValuesDivisionCode(ColumnMapMetricProvider):
    """Whether each value is a plausible GB/T 2260 administrative division code."""

    condition_metric_name = "column_values.plausible_division_code"

    @column_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column: Any, **kwargs: Any) -> Any:
        return column.map(lambda v: division_code_ok(str(v)))


class ExpectColumnValuesToBePlausibleDivisionCode(ColumnMapExpectation):
    """Expect six-digit administrative division codes under a real province."""

    map_metric: ClassVar[str] = "column_values.plausible_division_code"
    success_keys: ClassVar[tuple[str, ...]] = ("mostly",)


def _identifier_expectation(identifier: str, column: str) -> gxe.Expectation:
    if identifier == "resident_id":
        return ExpectColumnValuesToBeValidResidentId(column=column)
    if identifier == "uscc":
        return ExpectColumnValuesToBeValidUscc(column=column)
    if identifier == "division_code":
        return ExpectColumnValuesToBePlausibleDivisionCode(column=column)
    return gxe.ExpectColumnValuesToMatchRegex(column=column, regex=PHONE.pattern)


def build_suite(resource: Any, today: date | None = None) -> gx.ExpectationSuite:
    """The resource's row-level suite, generated from its catalogue declaration.

    Key uniqueness is not in it: the gate validates in chunks, so uniqueness is checked over the
    key columns of the whole batch instead (see `sharehub.pipeline.gate`).
    """
    today = today or date.today()
    exps: list[gxe.Expectation] = []
    key = set(resource.source.key)
    for f in resource.fields:
        if f.required or f.name in key:
            exps.append(gxe.ExpectColumnValuesToNotBeNull(column=f.name))
        if f.identifier:
            exps.append(_identifier_expectation(str(f.identifier), f.name))
        if f.values:
            exps.append(gxe.ExpectColumnValuesToBeInSet(column=f.name, value_set=list(f.values)))
        if f.not_future:
            exps.append(gxe.ExpectColumnValuesToBeBetween(column=f.name, max_value=today))
    return gx.ExpectationSuite(name=resource.suite, expectations=exps)
