"""Custom Great Expectations 1.x expectations for national identifiers, and the suite built from a resource.

Each custom expectation is a column-map expectation, so its results carry the failing rows' index
columns (`unexpected_index_column_names`) like any built-in one.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Any, ClassVar, Literal

import great_expectations as gx
import great_expectations.expectations as gxe
from great_expectations.execution_engine import PandasExecutionEngine
from great_expectations.expectations.expectation import ColumnMapExpectation, ColumnPairMapExpectation
from great_expectations.expectations.metrics.map_metric_provider.column_condition_partial import (
    column_condition_partial,
)
from great_expectations.expectations.metrics.map_metric_provider.column_map_metric_provider import (
    ColumnMapMetricProvider,
)
from great_expectations.expectations.metrics.map_metric_provider.column_pair_condition_partial import (
    column_pair_condition_partial,
)
from great_expectations.expectations.metrics.map_metric_provider.column_pair_map_metric_provider import (
    ColumnPairMapMetricProvider,
)

from expectations.gbt2260 import current_codes
from expectations.identifiers import resident_id_birth, resident_id_problem, resident_id_sex, uscc_problem

PHONE = re.compile(r"^(?:1[3-9]\d{9}|0\d{2,3}-?\d{7,8})$")


def division_code_ok(v: str) -> bool:
    """A GB/T 2260 administrative division code in force (see `expectations.gbt2260`)."""
    return v in current_codes()


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
    """Whether each value is a GB/T 2260 administrative division code in force."""

    condition_metric_name = "column_values.valid_division_code"

    @column_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column: Any, **kwargs: Any) -> Any:
        return column.map(lambda v: division_code_ok(str(v)))


class ExpectColumnValuesToBeValidDivisionCode(ColumnMapExpectation):
    """Expect administrative division codes that are in force in the shipped GB/T 2260 list."""

    map_metric: ClassVar[str] = "column_values.valid_division_code"
    success_keys: ClassVar[tuple[str, ...]] = ("mostly",)


_PAIR_KEYS = ("batch_id", "table", "column_A", "column_B", "row_condition", "condition_parser", "ignore_row_if")


def _agrees_with_id(ids: Any, other: Any) -> bool:
    """Whether a sex (男/女) or birth date agrees with what the ID number encodes; unknowns are not judged."""
    if ids is None or other is None or ids != ids or other != other:  # None or NaN
        return True
    if isinstance(other, str):
        return resident_id_sex(ids) in (None, other)
    born = resident_id_birth(ids)
    return born is None or born == (other.date() if hasattr(other, "date") and callable(other.date) else other)


def _after_birth(ids: Any, when: Any) -> bool:
    """Whether a date is not before the birth date the ID number encodes."""
    if ids is None or when is None or ids != ids or when != when:
        return True
    born = resident_id_birth(ids)
    day = when.date() if hasattr(when, "date") and callable(when.date) else when
    return born is None or day >= born


class ColumnPairAgreesWithResidentId(ColumnPairMapMetricProvider):
    """Whether column B (sex or birth date) agrees with the resident ID number in column A."""

    condition_metric_name = "column_pair_values.agree_with_resident_id"
    condition_domain_keys = _PAIR_KEYS
    condition_value_keys = ()

    @column_pair_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column_A: Any, column_B: Any, **kwargs: Any) -> Any:
        return column_A.combine(column_B, _agrees_with_id)


class ExpectColumnPairValuesToAgreeWithResidentId(ColumnPairMapExpectation):
    """Expect a row's sex and birth date to be the ones its GB 11643 ID number encodes."""

    map_metric: ClassVar[str] = "column_pair_values.agree_with_resident_id"
    success_keys: ClassVar[tuple[str, ...]] = ("column_A", "column_B", "ignore_row_if", "mostly")
    ignore_row_if: Literal["both_values_are_missing", "either_value_is_missing", "neither"] = "either_value_is_missing"


class ColumnPairAfterBirth(ColumnPairMapMetricProvider):
    """Whether the date in column B is not before the birth encoded in the ID number in column A."""

    condition_metric_name = "column_pair_values.after_birth"
    condition_domain_keys = _PAIR_KEYS
    condition_value_keys = ()

    @column_pair_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column_A: Any, column_B: Any, **kwargs: Any) -> Any:
        return column_A.combine(column_B, _after_birth)


class ExpectColumnPairValuesToBeAfterBirth(ColumnPairMapExpectation):
    """Expect a date (enrolment, visit, start) not to come before the person's birth."""

    map_metric: ClassVar[str] = "column_pair_values.after_birth"
    success_keys: ClassVar[tuple[str, ...]] = ("column_A", "column_B", "ignore_row_if", "mostly")
    ignore_row_if: Literal["both_values_are_missing", "either_value_is_missing", "neither"] = "either_value_is_missing"


def _identifier_expectation(identifier: str, column: str) -> gxe.Expectation:
    if identifier == "resident_id":
        return ExpectColumnValuesToBeValidResidentId(column=column)
    if identifier == "uscc":
        return ExpectColumnValuesToBeValidUscc(column=column)
    if identifier == "division_code":
        return ExpectColumnValuesToBeValidDivisionCode(column=column)
    return gxe.ExpectColumnValuesToMatchRegex(column=column, regex=PHONE.pattern)


def raised(exception_info: dict | None) -> str | None:
    """The message of an exception GX caught while computing a result, at the top level or per metric."""
    if not exception_info:
        return None
    if exception_info.get("raised_exception"):
        return str(exception_info.get("exception_message"))
    for value in exception_info.values():
        if isinstance(value, dict) and value.get("raised_exception"):
            return str(value.get("exception_message"))
    return None


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
        if f.matches_id:
            exps.append(ExpectColumnPairValuesToAgreeWithResidentId(column_A=f.matches_id, column_B=f.name))
        if f.after_birth_of:
            exps.append(ExpectColumnPairValuesToBeAfterBirth(column_A=f.after_birth_of, column_B=f.name))
        if f.not_future:
            exps.append(gxe.ExpectColumnValuesToBeBetween(column=f.name, max_value=today))
    return gx.ExpectationSuite(name=resource.suite, expectations=exps)
